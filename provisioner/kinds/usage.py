"""usage: the working set above the warning or critical threshold for a sustained time.

The thresholds are the job's (``memory.thresholds``: a share of the limit, a size, or a multiple
of a baseline peak); this kind decides how long memory must stay above them before it fires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from provisioner.core.promql import number
from provisioner.core.types import Duration, Strict
from provisioner.kinds import series as s
from provisioner.kinds.base import Alert, Facts, Hold, Kind, KindDef, Params, RuleContext, Texts

KEEP = 300.0  # keep_firing_for: a sawtooth dipping under the line is not a recovery


class Usage(Strict):
    """Working set against the limit, above a threshold for a sustained time."""

    enabled: bool = True
    warning_for: Duration = Field(default=300.0, description="how long above warning before firing")
    critical_for: Duration = Field(default=120.0, description="how long above critical before firing")


@dataclass(frozen=True)
class UsageParams(Params):
    warning_bytes: int
    critical_bytes: int
    warning_ratio: float  # of the limit
    critical_ratio: float
    warning_for: float  # seconds
    critical_for: float

    def tiers(self) -> tuple[tuple[str, float, float], ...]:
        """(severity, ratio of the limit, seconds to hold) of each tier."""
        return (("warning", self.warning_ratio, self.warning_for), ("critical", self.critical_ratio, self.critical_for))


class UsageKind(KindDef[Usage, UsageParams]):
    kind = Kind.USAGE
    key = "usage"
    settings = Usage
    explain = "the working set stays above the warning / critical threshold for `usage.warning_for` / `critical_for`"
    names = ("BatchJobMemoryWarning", "BatchJobMemoryCritical")

    def derive(self, settings: Usage, facts: Facts, others: Mapping[str, BaseModel]) -> UsageParams:
        return UsageParams(
            enabled=settings.enabled,
            warning_bytes=facts.warning_bytes,
            critical_bytes=facts.critical_bytes,
            warning_ratio=facts.warning_bytes / facts.limit,
            critical_ratio=facts.critical_bytes / facts.limit,
            warning_for=settings.warning_for,
            critical_for=settings.critical_for,
        )

    def holds(self, params: UsageParams) -> Sequence[Hold]:
        return (
            Hold("usage.warning_for", params.warning_for, "for"),
            Hold("usage.critical_for", params.critical_for, "for"),
        )

    def alerts(self, ctx: RuleContext, params: UsageParams) -> list[Alert]:
        return [
            Alert(name, severity, f"{ctx.ref(s.RATIO)} > {number(ratio)}", hold, KEEP)
            for name, (severity, ratio, hold) in zip(self.names, params.tiers(), strict=True)
        ]

    def texts(self, t: Texts, params: UsageParams) -> dict[str, dict[str, str]]:
        pct = "{{ $value | humanizePercentage }}"
        return {
            "BatchJobMemoryWarning": {
                "summary": f"{t.name}: memory at {pct} of its limit",
                "description": f"{t.who} uses {pct} of its {t.limit} memory limit on {t.node} (warning at "
                f"{t.warning}, {t.warning_pct}). Check the input size of this run before it reaches critical.",
            },
            "BatchJobMemoryCritical": {
                "summary": f"{t.name}: memory at {pct} of its limit, OOM kill is near",
                "description": f"{t.who} uses {pct} of its {t.limit} memory limit on {t.node} (critical at "
                f"{t.critical}, {t.critical_pct}). Act now: stop the run or give it more memory before the kernel "
                "kills it.",
            },
        }


KIND = UsageKind()
