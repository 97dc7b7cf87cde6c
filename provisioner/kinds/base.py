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
from dataclasses import dataclass, field
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
class History:
    """What ``memprov baseline`` learnt of the job's healthy runs beyond their peaks, in explicit
    units; ``None`` where the baseline does not say (see :class:`provisioner.spec.model.Baseline`)."""

    end_peak_max: int | None = None  # bytes: the highest peak over the last 15 minutes of a healthy run
    floor: int | None = None  # bytes: where healthy runs' troughs start (upper quartile)
    floor_velocity: float | None = None  # bytes per second: how fast they grow (upper quartile)
    floor_noise: int | None = None  # bytes: how far they stray above their own line
    burst: float | None = None  # bytes per second: the fastest growth a healthy run showed over one window
    sawtooth: int | None = None  # bytes: usual height of the peaks above the troughs
    duration_max: float | None = None  # seconds: the longest healthy run
    weekday_durations: Mapping[int, float] = field(default_factory=dict)  # day_of_week() (0 = Sunday) -> seconds
    oom_source: str | None = None  # which OOM-kill series exist: events | kube-state-metrics | both | none


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
    scrape_interval: float = 30.0  # seconds
    history: History = field(default_factory=History)


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
    slow: bool = False  # evaluated in the job's slow group (every five minutes) rather than the fast one


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


SLOW_INTERVAL = 300.0  # seconds: the slow group (anomaly references, history fallbacks, slow tiers, OOM kills)
DROP_RATIO = 0.6  # the working set fell under this share of its troughs within the slope window: a (re)start
FALL_RATIO = 0.8  # ... or the troughs fell under this share of where they were: memory was given back


@dataclass(frozen=True)
class Track:
    """What several kinds' rules share for one job: how its series are read, and its healthy track
    (built from every kind's params by :func:`provisioner.render.prometheus.rules.context`).
    Units: bytes, bytes per second, seconds. ``None``: the baseline does not say, and the rules
    fall back (the usual velocity and the p95 peak recorded from history in the slow group, no
    envelope, no usual end of a run: the horizon alone limits projections)."""

    fresh: float  # a raw series is seen this long after its last sample (three scrape intervals)
    slope_window: float  # growth.window: the troughs' velocity is fitted over it
    trend_window: float  # time_to_oom.window (a second slope series only when it differs)
    settle: float  # warm-up + trough window + slope window: slopes before this age are the model load's
    age_cap: float  # the run's age is counted over this window
    sawtooth: float  # usual height of the peaks above the troughs (0: unknown)
    usual: float | None  # usual trough velocity
    floor: float | None  # the healthy envelope: floor + envelope x (age - trough window), + margin
    envelope: float | None
    envelope_margin: float
    p95: float | None  # without an envelope: factor x the p95 peak
    factor: float
    duration: float | None  # the longest healthy run
    weekday_durations: Mapping[int, float]  # heavier weekdays' longest run, by day_of_week() number
    min_remaining: float  # a run past its usual end is still projected this far
    slow_interval: float = SLOW_INTERVAL

    @property
    def has_envelope(self) -> bool:
        return self.floor is not None and self.envelope is not None


class RuleContext:
    """The helpers a kind writes its PromQL with, bound to one job and environment."""

    def __init__(self, env: str, job_id: str, facts: Facts, track: Track) -> None:
        self.facts, self.track = facts, track
        self.labels = {"memprov_job": job_id, "memprov_env": env}
        self.sel = "{" + ", ".join(f'{k}="{v}"' for k, v in self.labels.items()) + "}"
        self.by = ", ".join(facts.sources.group_by)
        self.trough = duration(facts.trough_window)

    def ref(self, name: str) -> str:
        return f"{name}{self.sel}"

    def record(self, name: str, expr: str, **extra: str) -> dict[str, Any]:
        return {"record": name, "expr": expr, "labels": {**self.labels, **extra}}

    def slow(self, name: str) -> str:
        """A slow-group series read from the fast group: its latest sample within two slow intervals."""
        return f"last_over_time({self.ref(name)}[{duration(2 * self.track.slow_interval)}])"

    @property
    def slope(self) -> str:
        """The troughs' velocity series the projections use (the growth one unless the windows differ)."""
        return s.TREND if self.track.trend_window != self.track.slope_window else s.VELOCITY

    def usual(self) -> str:
        """The usual trough velocity in bytes per second: a constant, or the slow group's record."""
        if self.track.usual is not None:
            return number(max(self.track.usual, 1.0))
        return f"clamp_min({self.slow(s.BASELINE_VELOCITY)}, 1)"

    def off_track(self) -> str:
        """The troughs above where healthy runs' troughs are at this age (value: the trough, bytes)."""
        t, trough = self.track, self.ref(s.TROUGH)
        if t.floor is not None and t.envelope is not None:
            envelope = (
                f"{number(t.floor + t.envelope_margin)} + {number(t.envelope)} * "
                f"clamp_min({self.ref(s.AGE)} - {number(self.facts.trough_window)}, 0)"
            )
            return f"{trough} > {envelope}"
        if t.p95 is not None:
            return f"{trough} > {number(t.factor * t.p95)}"
        peak = f"{number(t.factor)} * {self.slow(s.BASELINE_PEAK)}"
        return f"{trough} > on (memprov_job, memprov_env) group_left () ({peak})"

    def own_floor(self) -> str:
        """The run's own floor: its troughs less the envelope's growth since the start (bytes)."""
        t = self.track
        assert t.envelope is not None
        age = f"clamp_min({self.ref(s.AGE)} - {number(self.facts.trough_window)}, 0)"
        return f"{self.ref(s.TROUGH)} - {number(t.envelope)} * {age}"

    def off_own_track(self, margin: float) -> str:
        """The run's own floor risen by ``margin`` bytes above the lowest it stood since the run settled
        (value: the trough, bytes): it grows faster than healthy runs do, wherever it started."""
        own = self.ref(s.OWN_FLOOR)
        lowest = f"min_over_time({own}[{duration(self.track.age_cap)}])"
        return f"{self.ref(s.TROUGH)}\nand\n{own} > {lowest} + {number(margin)}"

    def remaining(self, horizon: float) -> str:
        """Seconds a projection looks ahead: until the longest healthy run's end (per weekday when
        some differ), at least ``min_remaining``, at most ``horizon``."""
        t = self.track
        if t.duration is None and not t.weekday_durations:
            return number(horizon)
        base = t.duration or max(t.weekday_durations.values())
        longest = number(base)
        if t.weekday_durations:
            start = f"day_of_week(time() - {self.ref(s.AGE)})"
            longest = (
                f"({longest}"
                + "".join(
                    f" + ({start} == bool {day}) * {number(value - base)}"
                    for day, value in sorted(t.weekday_durations.items())
                )
                + ")"
            )
        ahead = f"clamp_min({longest} - {self.ref(s.AGE)}, {number(t.min_remaining)})"
        return f"clamp_max({ahead}, {number(horizon)})"

    def time_to_limit(self) -> str:
        """Seconds until the peaks (troughs + the usual sawtooth) reach the limit at the troughs' trend."""
        peaks = self.ref(s.TROUGH) + (f" + {number(self.track.sawtooth)}" if self.track.sawtooth else "")
        return f"({self.ref(s.LIMIT)} - on ({self.by}) group_right () ({peaks}))\n/ ({self.ref(self.slope)} > 0)"


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

    def slow_recordings(self, ctx: RuleContext, params: P) -> list[dict[str, Any]]:
        """Recording rules of the job's slow group (every five minutes) the kind's alerts need."""
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
    "History",
    "Hold",
    "Kind",
    "KindDef",
    "Level",
    "NoSettings",
    "Params",
    "RuleContext",
    "Support",
    "Texts",
    "Track",
]
