"""growth: the run's memory troughs climbing faster than ``factor`` times the job's usual velocity
and faster than ``burst_factor`` times the fastest growth a healthy run showed, once settled.

A batch run saw-tooths (chunks load, the garbage collector frees them); the troughs (rolling
minimum over one sawtooth period) rise only when memory is really retained, so their slope is the
run's true growth. An input surge (10x the usual records) shows as troughs climbing at several
times the velocity of past runs, long before the limit is near. A heavier-than-usual healthy run
also climbs faster for a while: ``memprov baseline`` records the fastest such burst (``burst``),
and growth within it is not an alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from provisioner.core.promql import number
from provisioner.core.types import Duration, Size, Strict
from provisioner.kinds import series as s
from provisioner.kinds.base import Alert, Facts, Hold, Kind, KindDef, Params, RuleContext, Texts

KEEP = 600.0  # keep_firing_for of the trend alerts: a slope estimate wobbles


class Growth(Strict):
    """Troughs climbing faster than ``factor`` times the job's usual velocity, and faster than
    ``burst_factor`` times the fastest growth a healthy run showed over one window (``burst``)."""

    enabled: bool = True
    factor: float = Field(default=3.0, gt=1)
    burst_factor: float = Field(
        default=1.5, gt=0, description="... and this many times the baseline's burst (the fastest healthy growth)"
    )
    window: Duration = Field(default=900.0, description="the troughs' slope is fitted over this window")
    for_: Duration = Field(default=300.0, alias="for")
    warmup: Duration = Field(default=300.0, description="ignore the model-load ramp at the start of a run")
    min_velocity: Size | None = Field(
        default=None,
        description="growth slower than this (bytes per minute) never alerts; default without a baseline: "
        "the limit per 6 hours",
    )


def floor(settings: Growth, limit: int) -> float:
    """Bytes per second below which growth never alerts: ``min_velocity``, or the limit per 6 hours.

    Slower growth is what the time-to-OOM warning tier is for; below this, for a job that usually
    barely grows, "3x faster than usual" is within the noise of the slope. (The Prometheus rule of
    a job whose baseline records its burst uses :attr:`GrowthParams.bar` instead: the burst is the
    measured noise.)
    """
    return (settings.min_velocity if settings.min_velocity is not None else limit / 360) / 60


@dataclass(frozen=True)
class GrowthParams(Params):
    factor: float
    window: float  # seconds: the troughs' slope is fitted over it
    hold: float  # seconds (for:)
    warmup: float  # seconds
    floor: float  # bytes per second: slower growth never alerts
    usual: float | None  # bytes per second: the recorded usual velocity, if any
    burst_factor: float
    burst: float | None  # bytes per second: the fastest growth a healthy run showed over one window
    threshold: float  # bytes per second: max(factor x usual, floor), or the floor without a recorded velocity
    bar: float | None  # bytes per second, with a recorded usual velocity: max(factor x usual, burst_factor x
    # burst, min_velocity): what the Prometheus rule compares with


class GrowthKind(KindDef[Growth, GrowthParams]):
    kind = Kind.GROWTH
    key = "growth"
    settings = Growth
    explain = (
        "the troughs climb faster than `growth.factor` × the usual velocity and `burst_factor` × the fastest "
        "growth a healthy run showed (and faster than `min_velocity`), once the run has settled"
    )
    names = ("BatchJobMemoryGrowthFast",)

    def derive(self, settings: Growth, facts: Facts, others: Mapping[str, BaseModel]) -> GrowthParams:
        usual, burst = facts.usual_velocity, facts.history.burst
        low = floor(settings, facts.limit)
        fast = max(settings.factor * max(usual or 0.0, 1.0), settings.burst_factor * (burst or 0.0))
        least = settings.min_velocity / 60 if settings.min_velocity is not None else 0.0
        return GrowthParams(
            enabled=settings.enabled,
            factor=settings.factor,
            window=settings.window,
            hold=settings.for_,
            warmup=settings.warmup,
            floor=low,
            usual=usual,
            burst_factor=settings.burst_factor,
            burst=burst,
            threshold=max(settings.factor * usual, low) if usual else low,
            bar=max(fast, least) if usual is not None else None,
        )

    def holds(self, params: GrowthParams) -> Sequence[Hold]:
        return (Hold("growth.window", params.window, "window"), Hold("growth.for", params.hold, "for"))

    def alerts(self, ctx: RuleContext, params: GrowthParams) -> list[Alert]:
        velocity = ctx.ref(s.VELOCITY)
        if params.usual is not None and params.bar is not None:  # value: how many times the usual velocity
            usual = max(params.usual, 1.0)
            expr = f"{velocity} / {number(usual)} > {number(params.bar / usual)}"
        else:
            expr = (
                f"{velocity}\n  / on (memprov_job, memprov_env) group_left\n{ctx.usual()}\n"
                f"  > {number(params.factor)}\nand {velocity} > {number(params.floor)}"
            )
        return [Alert("BatchJobMemoryGrowthFast", "warning", expr, params.hold, KEEP)]

    def texts(self, t: Texts, params: GrowthParams) -> dict[str, dict[str, str]]:
        times = '{{ $value | printf "%.1f" }}'
        return {
            "BatchJobMemoryGrowthFast": {
                "summary": f"{t.name}: memory growing {times}x faster than usual",
                "description": f"{t.who} on {t.node} retains memory {times}x faster than in past runs (alert above "
                f"{params.factor:g}x the usual velocity, measured on the troughs of the sawtooth). This is how an "
                "input surge looks (e.g. 10x the usual records): check the input of this run and stop it if the "
                "input is wrong.",
            }
        }


KIND = GrowthKind()
