"""baseline: the run's memory stays far above the p95 peak of the job's past successful runs.

Not an OOM warning (the limit may be far away) but a sign that this run is unlike the others:
more input, a new model version, a changed data distribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from provisioner.core.promql import number
from provisioner.core.types import Duration, Strict
from provisioner.kinds import series as s
from provisioner.kinds.base import Alert, Facts, Hold, Kind, KindDef, Params, RuleContext, Texts

KEEP = 300.0


class BaselineAlert(Strict):
    """The run's peak far above the p95 peak of past successful runs."""

    enabled: bool = True
    factor: float = Field(default=1.3, gt=1)
    for_: Duration = Field(default=300.0, alias="for")


@dataclass(frozen=True)
class BaselineParams(Params):
    factor: float
    hold: float  # seconds (for:)
    p95: int | None  # bytes: the recorded p95 peak of past successful runs, if any
    threshold: int | None  # bytes: factor x p95, when a p95 is recorded

    def ratio(self, limit: int) -> float | None:
        """The threshold as a share of the limit, when a p95 is recorded."""
        return self.factor * self.p95 / limit if self.p95 else None


class BaselineKind(KindDef[BaselineAlert, BaselineParams]):
    kind = Kind.BASELINE
    key = "baseline_alert"
    settings = BaselineAlert
    explain = "the job's memory stays above `baseline_alert.factor` × the p95 peak of past successful runs"
    names = ("BatchJobMemoryAboveBaseline",)

    def derive(self, settings: BaselineAlert, facts: Facts, others: Mapping[str, BaseModel]) -> BaselineParams:
        p95 = facts.peak_p95
        return BaselineParams(
            enabled=settings.enabled,
            factor=settings.factor,
            hold=settings.for_,
            p95=p95,
            threshold=round(settings.factor * p95) if p95 else None,
        )

    def holds(self, params: BaselineParams) -> Sequence[Hold]:
        return (Hold("baseline_alert.for", params.hold, "for"),)

    def alerts(self, ctx: RuleContext, params: BaselineParams) -> list[Alert]:
        expr = (
            f"{ctx.ref(s.JOB_WS)}\n  > on (memprov_job, memprov_env)\n"
            f'({number(params.factor)} * {s.BASELINE_PEAK}{{{ctx.sel[1:-1]}, quantile="0.95"}})'
        )
        return [Alert("BatchJobMemoryAboveBaseline", "warning", expr, params.hold, KEEP, scope="job")]

    def texts(self, t: Texts, params: BaselineParams) -> dict[str, dict[str, str]]:
        value, factor = "{{ $value | humanize1024 }}B", f"{params.factor:g}"
        return {
            "BatchJobMemoryAboveBaseline": {
                "summary": f"{t.name}: memory {value}, above {factor}x the usual p95 peak",
                "description": f"{t.who} uses {value}, more than {factor}x the p95 peak of past successful runs "
                f"({t.p95}). Not yet near the limit: look at what this run processes differently.",
            }
        }


KIND = BaselineKind()
