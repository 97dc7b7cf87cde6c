"""anomaly: while the job runs, its memory is unlike the same time in previous weeks (a z-score).

The mean and spread of the same window in previous weeks are recorded, and the run's window mean
is compared with them; the spread is floored at ``min_stddev`` times the usual level so that a
job that barely varies does not alert on a 2 % change. A drift worth a look, never a page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from provisioner.core.promql import duration, number
from provisioner.core.types import Duration, Strict
from provisioner.kinds import series as s
from provisioner.kinds.base import Alert, Facts, Hold, Kind, KindDef, Params, RuleContext, Texts

KEEP = 600.0


class Anomaly(Strict):
    """Z-score of the run's memory against the same job in previous weeks."""

    enabled: bool = True
    zscore: float = Field(default=3.0, gt=0)
    compare: Duration = Field(default=604800.0, description="how far back to compare, e.g. 1w")
    weeks: int = Field(default=3, ge=1, le=8)
    window: Duration = Field(default=1800.0, description="compare the average over this window")
    min_stddev: float = Field(
        default=0.1, gt=0, le=1, description="floor of the standard deviation, as a fraction of the usual level"
    )
    for_: Duration = Field(default=600.0, alias="for")


@dataclass(frozen=True)
class AnomalyParams(Params):
    zscore: float
    compare: float  # seconds between the compared windows (a week)
    weeks: int
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
        "while the job runs, z-score against the same window in the previous `anomaly.weeks` weeks above "
        "`anomaly.zscore`"
    )
    names = ("BatchJobMemoryAnomaly",)

    def derive(self, settings: Anomaly, facts: Facts, others: Mapping[str, BaseModel]) -> AnomalyParams:
        return AnomalyParams(
            enabled=settings.enabled,
            zscore=settings.zscore,
            compare=settings.compare,
            weeks=settings.weeks,
            window=settings.window,
            min_stddev=settings.min_stddev,
            hold=settings.for_,
        )

    def holds(self, params: AnomalyParams) -> Sequence[Hold]:
        return (Hold("anomaly.window", params.window, "window"),)

    def recordings(self, ctx: RuleContext, params: AnomalyParams) -> list[dict[str, Any]]:
        """Mean and spread of the same window in previous weeks, then the z-score against them.

        The spread combines the variation within each past window (the sawtooth) and between
        weeks; it is floored at ``min_stddev`` x the usual level so that a job that barely
        varied does not alert on a 2 % change.
        """
        w = duration(params.window)
        offsets = [duration(o) for o in params.offsets]
        means = [f"avg_over_time({ctx.ref(s.JOB_WS)}[{w}] offset {o})" for o in offsets]
        sds = [f"stddev_over_time({ctx.ref(s.JOB_WS)}[{w}] offset {o})" for o in offsets]
        n = number(params.weeks)
        mean = ctx.ref(s.HIST_MEAN)
        within = "\n    + ".join(f"{sd} ^ 2" for sd in sds)
        across = "\n    + ".join(f"({m} - {mean}) ^ 2" for m in means)
        floor = f"{number(params.min_stddev)} * {mean}"
        return [
            ctx.record(s.HIST_MEAN, "(\n  " + "\n  + ".join(means) + f"\n) / {n}"),
            ctx.record(s.HIST_SD, f"sqrt(\n  (\n    {within}\n  ) / {n}\n  + (\n    {across}\n  ) / {n}\n)"),
            ctx.record(
                s.ZSCORE,
                f"(avg_over_time({ctx.ref(s.JOB_WS)}[{w}]) - {mean})\n/ (({ctx.ref(s.HIST_SD)} > {floor}) or {floor})",
            ),
        ]

    def alerts(self, ctx: RuleContext, params: AnomalyParams) -> list[Alert]:
        # only while the job runs: the window's average outlives the run by ``anomaly.window``
        expr = f"{ctx.ref(s.ZSCORE)} > {number(params.zscore)}\nand on (memprov_job, memprov_env) {ctx.ref(s.JOB_WS)}"
        return [Alert("BatchJobMemoryAnomaly", "warning", expr, params.hold, KEEP, scope="job")]

    def texts(self, t: Texts, params: AnomalyParams) -> dict[str, dict[str, str]]:
        z = '{{ $value | printf "%.1f" }}'
        return {
            "BatchJobMemoryAnomaly": {
                "summary": f"{t.name}: memory unlike previous weeks (z-score {z})",
                "description": f"{t.who} uses memory {z} standard deviations above the same time in the previous "
                f"{params.weeks} week(s) (alert above {params.zscore:g}). Not near the limit: a drift worth a look "
                "(data distribution, model version), not a page.",
            }
        }


KIND = AnomalyKind()
