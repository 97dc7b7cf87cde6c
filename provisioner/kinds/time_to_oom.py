"""time_to_oom: a run off its healthy track whose peaks, at the troughs' current trend, reach the
limit within a horizon and before the longest healthy run would have ended.

Critical within ``horizon``; a warning tier within ``warning_horizon`` while the troughs also grow
``warning_factor`` times faster than usual: the slow leak, hours ahead (evaluated in the slow
group). A healthy run would in theory also fill its limit at its usual velocity, but it ends
first: the projection stops at the run's usual end (``memprov baseline``'s longest healthy run,
per weekday when some days are heavier, at least ``min_remaining`` ahead), and a run still on its
healthy track (:meth:`RuleContext.off_track`) never pages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field, model_validator

from provisioner.core.promql import duration, number
from provisioner.core.types import Duration, Strict
from provisioner.core.units import format_duration
from provisioner.kinds import growth
from provisioner.kinds.base import Alert, Facts, Hold, Kind, KindDef, Params, RuleContext, Texts

KEEP = 600.0  # keep_firing_for of the trend alerts: a slope estimate wobbles


class TimeToOom(Strict):
    """Critical: the run is off its healthy track and, at the troughs' current trend, its peaks reach
    the limit within ``horizon`` and before the run's usual end (the longest healthy run, at least
    ``min_remaining`` ahead). Warning: the same within ``warning_horizon`` (``null``: no warning
    tier) while the troughs grow ``warning_factor`` times faster than usual: a slow leak, early.
    """

    enabled: bool = True
    horizon: Duration = Field(default=1800.0, description="critical when the limit is reached within this")
    window: Duration = Field(
        default=900.0, description="the troughs' trend is fitted over this window (one slope when it equals growth's)"
    )
    min_remaining: Duration = Field(default=600.0, description="a run past its usual end is still projected this far")
    for_: Duration = Field(default=120.0, alias="for")
    warning_horizon: Duration | None = Field(
        default=14400.0, description="warning when the limit is reached within this (and growth is unusual)"
    )
    warning_factor: float = Field(
        default=1.5, gt=1, description="the warning also needs the troughs to grow this many times faster than usual"
    )
    warning_for: Duration = Field(default=600.0, description="how long the warning condition must hold")
    page_factor: float | None = Field(
        default=2.0,
        gt=1,
        description="the critical tier also needs the troughs to grow this many times faster than the baseline's usual "
        "velocity (a heavier run grows a little faster than usual, a surge or a leak much faster); null: no such "
        "condition",
    )

    @model_validator(mode="after")
    def _horizons(self) -> TimeToOom:
        if self.warning_horizon is not None and self.warning_horizon <= self.horizon:
            raise ValueError(
                f"warning_horizon ({format_duration(self.warning_horizon)}) must be longer than horizon "
                f"({format_duration(self.horizon)}); raise it, or set warning_horizon: null to have no warning tier"
            )
        return self


@dataclass(frozen=True)
class TimeToOomParams(Params):
    horizon: float  # seconds
    window: float  # seconds: the troughs' trend is fitted over it
    hold: float  # seconds (for:)
    warning_horizon: float | None  # seconds; None: no warning tier
    warning_factor: float  # times the usual velocity
    warning_hold: float  # seconds (warning_for)
    page_factor: float | None  # times the usual velocity the critical tier needs (None: no such condition)
    warning_velocity: float  # bytes per second: warning_factor x the usual velocity, or the growth floor
    surge_velocity: float  # bytes per second: growth.factor x the usual velocity, or the growth floor
    usual: float | None  # bytes per second
    min_remaining: float  # seconds: a run past its usual end is still projected this far
    duration: float | None  # seconds: the longest healthy run (None: unknown, the horizon alone limits)
    weekday_durations: Mapping[int, float]  # heavier weekdays' longest run, by day_of_week() number


class TimeToOomKind(KindDef[TimeToOom, TimeToOomParams]):
    kind = Kind.TIME_TO_OOM
    key = "time_to_oom"
    settings = TimeToOom
    explain = (
        "the run is off its healthy track and, at the troughs' trend, its peaks reach the limit within "
        "`time_to_oom.horizon` and before the longest healthy run would have ended (critical), or within "
        "`warning_horizon` while the troughs grow over `warning_factor` × the usual velocity (warning, checked "
        "every five minutes)"
    )
    names = ("BatchJobMemoryTimeToOOMWarning", "BatchJobMemoryTimeToOOM")

    def derive(self, settings: TimeToOom, facts: Facts, others: Mapping[str, BaseModel]) -> TimeToOomParams:
        g = others["growth"]
        assert isinstance(g, growth.Growth)
        low, usual = growth.floor(g, facts.limit), facts.usual_velocity
        return TimeToOomParams(
            enabled=settings.enabled,
            horizon=settings.horizon,
            window=settings.window,
            hold=settings.for_,
            warning_horizon=settings.warning_horizon,
            warning_factor=settings.warning_factor,
            warning_hold=settings.warning_for,
            page_factor=settings.page_factor,
            warning_velocity=settings.warning_factor * usual if usual else low,
            surge_velocity=g.factor * usual if usual else low,
            usual=usual,
            min_remaining=settings.min_remaining,
            duration=facts.history.duration_max,
            weekday_durations=facts.history.weekday_durations,
        )

    def holds(self, params: TimeToOomParams) -> Sequence[Hold]:
        return (Hold("time_to_oom.window", params.window, "window"), Hold("time_to_oom.for", params.hold, "for"))

    def alerts(self, ctx: RuleContext, params: TimeToOomParams) -> list[Alert]:
        """The critical tier in the fast group; the warning tier, hours ahead, in the slow one
        (value of both: seconds until the limit)."""
        out = []
        if params.warning_horizon is not None:
            expr = (
                f"{ctx.time_to_limit()}\n  < {ctx.remaining(params.warning_horizon)}\n"
                f"and {ctx.off_track()}\nand {self._faster(ctx, params, params.warning_factor)}"
            )
            name = "BatchJobMemoryTimeToOOMWarning"
            out.append(Alert(name, "warning", expr, params.warning_hold, KEEP, slow=True))
        expr = f"{ctx.time_to_limit()}\n  < {ctx.remaining(params.horizon)}\nand {ctx.off_track()}"
        if params.page_factor is not None and params.usual is not None:  # a baseline's usual velocity only:
            # the history fallback of a job without one includes the very run being judged
            expr += f"\nand {self._faster(ctx, params, params.page_factor)}"
        out.append(Alert("BatchJobMemoryTimeToOOM", "critical", expr, params.hold, KEEP))
        return out

    @staticmethod
    def _faster(ctx: RuleContext, params: TimeToOomParams, factor: float) -> str:
        """The troughs' trend over ``factor`` times the usual velocity (value: the ratio)."""
        slope = ctx.ref(ctx.slope)
        if params.usual is not None:
            return f"{slope} / {ctx.usual()} > {number(factor)}"
        return f"{slope}\n  / on (memprov_job, memprov_env) group_left\n{ctx.usual()}\n  > {number(factor)}"

    def texts(self, t: Texts, params: TimeToOomParams) -> dict[str, dict[str, str]]:
        left = "{{ $value | humanizeDuration }}"
        warn_under, factor = duration(params.warning_horizon or params.horizon), f"{params.warning_factor:g}"
        return {
            "BatchJobMemoryTimeToOOMWarning": {
                "summary": f"{t.name}: growing faster than usual, on course to reach its memory limit in {left}",
                "description": f"{t.who} on {t.node} retains memory faster than in past runs (over {factor}x the "
                "usual velocity, measured on the troughs of the sawtooth); at this pace the peaks reach the "
                f"{t.limit} limit in {left} (warning under {warn_under}). This is how a "
                "slow leak looks: there is time to find out why before it pages.",
            },
            "BatchJobMemoryTimeToOOM": {
                "summary": f"{t.name}: predicted to reach its memory limit in {left}",
                "description": f"{t.who} on {t.node} is off the track of its healthy runs and, at the current "
                f"growth of its troughs, its peaks reach the {t.limit} limit in {left}, before such a run would have "
                f"ended (alerting under {duration(params.horizon)}). Stop or resize the run now to avoid an OOM kill.",
            },
        }


KIND = TimeToOomKind()
