"""The resolved spec: frozen, fully defaulted data that renderers consume.

Renderers never look at raw spec models: every job carries its thresholds in bytes and as a
ratio of the limit, each alert kind's derived values (``alerts``, read with ``KIND.of(job)``),
routes, links and metric names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.core.promql import Sources
from provisioner.kinds.base import History, Kind, Params
from provisioner.spec.breaker import Breaker
from provisioner.spec.clouds import Aws, Azure, Gcp
from provisioner.spec.environment import Environment
from provisioner.spec.model import Baseline, Notification, Route, Runtime, Selector, Thresholds


@dataclass(frozen=True)
class ResolvedJob:
    id: str
    name: str
    description: str
    owner: str
    team: str
    model_name: str
    model_version: str
    runtime: Runtime
    selector: Selector
    limit: int
    baseline: Baseline | None
    thresholds: Thresholds
    warning_bytes: int
    critical_bytes: int
    trough_window: float
    usual_velocity: float | None  # bytes per second: how fast the troughs of past runs grew (baseline)
    alerts: Mapping[Kind, Params]  # every kind's derived values, in Kind order; read with KIND.of(job)
    route: Route
    backends: tuple[str, ...]
    runbook_url: str
    dashboard_uid: str
    dashboard_url: str
    sources: Sources
    labels: dict[str, str] = field(default_factory=dict)
    gcp: Gcp = field(default_factory=Gcp)  # Cloud Monitoring metric source (the gcp backend)
    aws: Aws = field(default_factory=Aws)  # CloudWatch metric source (the cloudwatch backend)
    azure: Azure = field(default_factory=Azure)  # Azure Monitor metric source (the azure backend)
    breaker: Breaker | None = None  # as configured; active only where the environment has a breaker block
    history: History = field(default_factory=History)  # what the baseline says of healthy runs, explicit units

    @property
    def warning_ratio(self) -> float:
        return self.warning_bytes / self.limit

    @property
    def critical_ratio(self) -> float:
        return self.critical_bytes / self.limit


@dataclass(frozen=True)
class TargetBlocks:
    """The environment's ``targets.<backend>`` blocks as written, and where each key is.

    Each block is validated by the backend registry (:func:`provisioner.backends.registry.configure`),
    which knows every backend's target models; the spec knows none of them.
    """

    blocks: Mapping[str, Any] = field(default_factory=dict)
    file: str = ""
    where: Mapping[tuple[str | int, ...], tuple[str, int | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedSpec:
    name: str
    env: str
    spec_file: Path
    environment: Environment
    scrape_interval: float
    evaluation_interval: float
    notifications: dict[str, Notification]
    jobs: tuple[ResolvedJob, ...]
    sources: tuple[str, ...] = ()
    targets: TargetBlocks = field(default_factory=TargetBlocks)
    where: dict[tuple[str | int, ...], tuple[str, int | None]] = field(  # spec key -> (file, line)
        default_factory=dict, compare=False, repr=False
    )

    @property
    def base_dir(self) -> Path:
        return self.spec_file.parent

    @property
    def output_dir(self) -> Path:
        out = Path(self.environment.output_dir or f"out/{self.env}")
        return out if out.is_absolute() else self.base_dir / out

    def jobs_using(self, backend: str) -> tuple[ResolvedJob, ...]:
        return tuple(j for j in self.jobs if backend in j.backends)
