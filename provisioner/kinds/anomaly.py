"""anomaly: while the job runs, its memory is unlike the same time in previous weeks (a z-score).

The mean and spread of the same window in the previous weeks *that have data* (up to ``weeks``, at
least ``min_weeks``: a job that did not run at that hour a week, or a server whose retention is
shorter than ``weeks``, still has a reference) are recorded in the job's slow group, and the run's
window mean is compared with them; the spread is floored at ``min_stddev`` times the usual level
so that a job that barely varies does not alert on a 2 % change. A drift worth a look, never a
page; it needs a retention of ``min_weeks`` x ``compare`` + ``window`` at least.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, model_validator

from provisioner.core.promql import duration, number
from provisioner.core.types import Duration, Strict
from provisioner.kinds import series as s
from provisioner.kinds.base import Alert, Facts, Hold, Kind, KindDef, Params, RuleContext, Texts

KEEP = 600.0


class Anomaly(Strict):
    """Z-score of the run's memory against the same time in the previous weeks that exist."""

    enabled: bool = True
    zscore: float = Field(default=3.0, gt=0)
    compare: Duration = Field(default=604800.0, description="how far back to compare, e.g. 1w")
    weeks: int = Field(default=3, ge=1, le=8, description="compare with up to this many previous weeks")
    min_weeks: int = Field(
        default=2, ge=1, le=8, description="... of which at least this many must have data (one week alone is noisy)"
    )
    window: Duration = Field(default=1800.0, description="compare the average over this window")
    min_stddev: float = Field(
        default=0.1, gt=0, le=1, description="floor of the standard deviation, as a fraction of the usual level"
    )
    for_: Duration = Field(default=600.0, alias="for")

    @model_validator(mode="after")
    def _weeks(self) -> Anomaly:
        if self.min_weeks > self.weeks:
            raise ValueError(f"min_weeks ({self.min_weeks}) must be at most weeks ({self.weeks}); lower min_weeks")
        return self


@dataclass(frozen=True)
class AnomalyParams(Params):
    zscore: float
    compare: float  # seconds between the compared windows (a week)
    weeks: int
    min_weeks: int
    window: float  # seconds
    min_stddev: float  # share of the usual level
    hold: float  # seconds (for:)

    @property
    def offsets(self) -> list[float]:
        """How far back each compared window lies, in seconds."""
        return [self.compare * k for k in range(1, self.weeks + 1)]


class AnomalyKind(KindDef[Anomaly, AnomalyParams]):
    kind = Kind.ANOMALY
    key = "anomaly"
    settings = Anomaly
    explain = (
        "while the job runs, z-score against the same window in the previous weeks that have data (up to "
        "`anomaly.weeks`, at least `min_weeks`) above `anomaly.zscore`, checked every five minutes"
    )
    names = ("BatchJobMemoryAnomaly",)

    def derive(self, settings: Anomaly, facts: Facts, others: Mapping[str, BaseModel]) -> AnomalyParams:
        return AnomalyParams(
            enabled=settings.enabled,
            zscore=settings.zscore,
            compare=settings.compare,
            weeks=settings.weeks,
            min_weeks=settings.min_weeks,
            window=settings.window,
            min_stddev=settings.min_stddev,
            hold=settings.for_,
        )

    def holds(self, params: AnomalyParams) -> Sequence[Hold]:
        return (Hold("anomaly.window", params.window, "window"),)

    def slow_recordings(self, ctx: RuleContext, params: AnomalyParams) -> list[dict[str, Any]]:
        """Mean and spread of the same window in the previous weeks that have data.

        The spread combines the variation within each past window (the sawtooth) and between
        weeks; a week without data adds nothing to the sums and is not counted.
        """
        jws, w = ctx.ref(s.JOB_WS), duration(params.window)
        offsets = [duration(o) for o in params.offsets]

        def total(term: Callable[[str], str]) -> str:
            return "\n  + ".join(f"({term(o)} or vector(0))" for o in offsets)

        count = f"(\n  {total(lambda o: f'count(count_over_time({jws}[{w}] offset {o}))')}\n)"
        sums = total(lambda o: f"sum(avg_over_time({jws}[{w}] offset {o}))")
        mean = f"(\n  {sums}\n)\n/ ({count} >= {params.min_weeks})"
        hist_mean = ctx.ref(s.HIST_MEAN)

        def spread_term(o: str) -> str:
            sd, avg = f"stddev_over_time({jws}[{w}] offset {o})", f"avg_over_time({jws}[{w}] offset {o})"
            return f"sum({sd} ^ 2 + ({avg} - {hist_mean}) ^ 2)"

        spread = f"sqrt(\n  (\n  {total(spread_term)}\n  )\n  / {count}\n)"
        return [ctx.record(s.HIST_MEAN, mean), ctx.record(s.HIST_SD, spread)]

    def alerts(self, ctx: RuleContext, params: AnomalyParams) -> list[Alert]:
        jws, w = ctx.ref(s.JOB_WS), duration(params.window)
        mean, sd = ctx.ref(s.HIST_MEAN), ctx.ref(s.HIST_SD)
        floor = f"{number(params.min_stddev)} * {mean}"
        expr = (
            f"(avg_over_time({jws}[{w}]) - {mean})\n/ (({sd} > {floor}) or {floor})\n  > {number(params.zscore)}\n"
            f"and {jws}"  # only while the job runs: the window's average outlives the run
        )
        return [Alert("BatchJobMemoryAnomaly", "warning", expr, params.hold, KEEP, scope="job", slow=True)]

    def texts(self, t: Texts, params: AnomalyParams) -> dict[str, dict[str, str]]:
        z = '{{ $value | printf "%.1f" }}'
        return {
            "BatchJobMemoryAnomaly": {
                "summary": f"{t.name}: memory unlike previous weeks (z-score {z})",
                "description": f"{t.who} uses memory {z} standard deviations above the same time in the previous "
                f"weeks that have data (up to {params.weeks}; alert above {params.zscore:g}). Not near the limit: "
                "a drift worth a look (data distribution, model version), not a page.",
            }
        }


KIND = AnomalyKind()
