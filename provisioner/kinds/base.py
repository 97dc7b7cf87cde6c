"""What every alert kind is made of, and the vocabulary backends use to say how they express one.

A kind (:class:`KindDef`) has one home module under :mod:`provisioner.kinds`. It declares its spec
settings (a pydantic model, the ``defaults.<key>`` / ``jobs.<id>.<key>`` block), derives its values
from them once, when the spec is resolved, in explicit units (bytes, bytes per second, seconds),
writes its reference rules in PromQL through a :class:`RuleContext`, and gives the default texts
of its alerts. Consumers read a job's derived values with ``KIND.of(job)``, typed.

Backends describe each kind with a :class:`Support` (native, approximated with the reason, or
unsupported with the reason) from the same table that renders it, so the plan's notes cannot
drift from what is rendered.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel

from provisioner.core.promql import Sources, duration, number
from provisioner.kinds import series as s


class Kind(StrEnum):
    """The alert kinds, in the order their rules and resources are rendered."""

    USAGE = "usage"
    GROWTH = "growth"
    TIME_TO_OOM = "time_to_oom"
    BASELINE = "baseline"
    ANOMALY = "anomaly"
    OOM_KILLED = "oom_killed"


class Level(StrEnum):
    """How faithfully a backend expresses a kind."""

    NATIVE = "native"
    APPROXIMATED = "approximated"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Support:
    """A backend's answer for one kind of one job: its level and, unless native, why."""

    level: Level
    why: str = ""

    @classmethod
    def native(cls, why: str = "") -> Support:
        return cls(Level.NATIVE, why)

    @classmethod
    def approximated(cls, why: str) -> Support:
        return cls(Level.APPROXIMATED, why)

    @classmethod
    def unsupported(cls, why: str) -> Support:
        return cls(Level.UNSUPPORTED, why)


@dataclass(frozen=True)
class Facts:
    """What a kind's values are derived from: the job's memory facts, in explicit units."""

    limit: int  # bytes
    warning_bytes: int
    critical_bytes: int
    peak_p50: int | None  # bytes: peaks of past successful runs
    peak_p95: int | None
    usual_velocity: float | None  # bytes per second: how fast the troughs of past runs grew
    trough_window: float  # seconds
    evaluation_interval: float  # seconds
    sources: Sources


@dataclass(frozen=True)
class Params:
    """A kind's derived values for one job; every kind's own params extend this."""

    enabled: bool


@dataclass(frozen=True)
class Hold:
    """A window or ``for:`` duration of a kind's settings, for lint: ``key`` is its spec key."""

    key: str  # e.g. growth.window
    seconds: float
    role: str  # "window" (a range the rule reads) or "for" (how long the condition must hold)


@dataclass(frozen=True)
class Alert:
    """One alerting rule a kind writes: memprov adds the labels, context annotations and texts."""

    name: str
    severity: str
    expr: str
    hold: float  # for:, seconds
    keep: float = 0.0  # keep_firing_for, seconds
    scope: str = "instance"  # instance | job | dead: which labels the context annotations look up


@dataclass(frozen=True)
class Texts:
    """What a kind's alert texts are written from: the job in words (built by the Prometheus renderer)."""

    name: str  # the job's display name
    who: str  # "name (id, model m v, owner o)"
    node: str  # the node, as an alert template: {{ $labels.node }}
    instance: str  # the last instance label, as an alert template: {{ $labels.container }}
    limit: str  # "8GiB"
    warning: str  # "6GiB"
    critical: str
    warning_pct: str  # "75%"
    critical_pct: str
    p95: str  # "4GiB", or "its usual p95 peak"


class RuleContext:
    """The helpers a kind writes its PromQL with, bound to one job and environment."""

    def __init__(self, env: str, job_id: str, facts: Facts, settle: float) -> None:
        self.facts, self.settle = facts, settle
        self.labels = {"memprov_job": job_id, "memprov_env": env}
        self.sel = "{" + ", ".join(f'{k}="{v}"' for k, v in self.labels.items()) + "}"
        self.by = ", ".join(facts.sources.group_by)
        self.trough = duration(facts.trough_window)

    def ref(self, name: str) -> str:
        return f"{name}{self.sel}"

    def record(self, name: str, expr: str, **extra: str) -> dict[str, Any]:
        return {"record": name, "expr": expr, "labels": {**self.labels, **extra}}

    def settled(self, window: float) -> str:
        """True for instances older than warm-up + trough + slope ``window``: the model-load ramp is over."""
        age = self.settle + window + self.facts.trough_window
        samples = number(0.9 * age / self.facts.evaluation_interval)
        return f"count_over_time({self.ref(s.WS)}[{duration(age)}]) >= {samples}"

    def faster(self, velocity: str, factor: float) -> str:
        """``velocity`` more than ``factor`` times the job's usual velocity (value: the ratio)."""
        return (
            f"{self.ref(velocity)}\n  / on (memprov_job, memprov_env) group_left\n"
            f"clamp_min({self.ref(s.BASELINE_VELOCITY)}, 1)\n  > {number(factor)}"
        )


class NoSettings(BaseModel):
    """The settings of a kind that has no block in the spec: it is on wherever its source exists."""


S = TypeVar("S", bound=BaseModel)
P = TypeVar("P", bound=Params)


class HasAlerts(Protocol):
    """Anything that carries derived kind values (a resolved job)."""

    @property
    def alerts(self) -> Mapping[Kind, Params]: ...


class KindDef(ABC, Generic[S, P]):
    """One alert kind. Subclasses set the class attributes and implement :meth:`derive` and :meth:`alerts`."""

    kind: Kind
    key: str | None  # the settings' key under defaults / jobs.<id>; None: the kind has no spec block
    settings: type[S]  # its settings model (:class:`NoSettings` when it has no spec block)
    explain: str  # one sentence: when it fires
    names: tuple[str, ...]  # the Prometheus alert names it may write, in order

    @abstractmethod
    def derive(self, settings: S, facts: Facts, others: Mapping[str, BaseModel]) -> P:
        """The kind's values for one job. ``others``: every kind's merged settings, by key."""

    def of(self, job: HasAlerts) -> P:
        """This kind's derived values of ``job``."""
        return cast(P, job.alerts[self.kind])  # resolve() stores each kind's own params type

    def holds(self, params: P) -> Sequence[Hold]:
        """Windows and ``for:`` durations of the settings (lint checks them against the scrape interval)."""
        return ()

    def recordings(self, ctx: RuleContext, params: P) -> list[dict[str, Any]]:
        """Recording rules the kind's alerts need beyond the job's shared series."""
        return []

    @abstractmethod
    def alerts(self, ctx: RuleContext, params: P) -> list[Alert]:
        """The kind's alerting rules (only called when enabled)."""

    def unexpressed(self, params: P) -> str | None:
        """Why this job gets no alert of the kind although it is enabled (e.g. no source series), or None."""
        return None

    def texts(self, t: Texts, params: P) -> dict[str, dict[str, str]]:
        """Default ``summary`` and ``description`` of each alert (Prometheus templating allowed)."""
        return {}


__all__ = [
    "Alert",
    "Facts",
    "Hold",
    "Kind",
    "KindDef",
    "Level",
    "NoSettings",
    "Params",
    "RuleContext",
    "Support",
    "Texts",
]
