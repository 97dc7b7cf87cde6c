"""The resolved spec: frozen, fully defaulted data that renderers consume.

Renderers never look at raw spec models: every job carries its thresholds in bytes and as a
ratio of the limit, its merged alert settings, routes, links and metric names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.core.promql import Sources
from provisioner.spec.environment import Environment
from provisioner.spec.model import (
    Anomaly,
    Aws,
    Azure,
    Baseline,
    BaselineAlert,
    Gcp,
    Growth,
    Notification,
    Route,
    Runtime,
    Selector,
    Thresholds,
    TimeToOom,
    Usage,
)


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
    usage: Usage
    growth: Growth
    time_to_oom: TimeToOom
    anomaly: Anomaly
    baseline_alert: BaselineAlert
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

    @property
    def warning_ratio(self) -> float:
        return self.warning_bytes / self.limit

    @property
    def critical_ratio(self) -> float:
        return self.critical_bytes / self.limit


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
    targets: dict[str, Any] = field(default_factory=dict)  # backend -> validated target config

    @property
    def base_dir(self) -> Path:
        return self.spec_file.parent

    @property
    def output_dir(self) -> Path:
        out = Path(self.environment.output_dir or f"out/{self.env}")
        return out if out.is_absolute() else self.base_dir / out

    def jobs_using(self, backend: str) -> tuple[ResolvedJob, ...]:
        return tuple(j for j in self.jobs if backend in j.backends)
