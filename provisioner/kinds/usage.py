"""usage: the run's memory floor plus its usual sawtooth above the warning or critical threshold.

The thresholds are the job's (``memory.thresholds``: a share of the limit, a size, or a multiple
of a baseline peak), raised for a tightly sized job to just above the highest end-of-run peak of
its healthy runs (a team that sizes its limit at p95 + a margin should not be warned by every
heavy run). The level compared is the troughs (rolling minimum over ``trough_window``: the
sawtooth and transient spikes removed) plus the usual height of the sawtooth, so a spike that
recovers is not an incident; this kind decides how long it must stay above before it fires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from provisioner.core.promql import number
from provisioner.core.types import Duration, Strict
from provisioner.kinds import series as s
from provisioner.kinds.base import Alert, Facts, Hold, Kind, KindDef, Params, RuleContext, Texts

KEEP = 120.0  # keep_firing_for: the troughs are smooth, a short hold rides over a missed evaluation
RAISE_FACTOR = 1.1  # a tightly sized job: warning at least 10 % above the highest healthy end-of-run peak ...
RAISE_CAP_WARNING, RAISE_CAP_CRITICAL = 0.97, 0.985  # ... never above this share of the limit; critical at
# least halfway from that warning to the limit


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
    explain = (
        "the troughs plus the usual sawtooth stay above the warning / critical share of the limit (raised to just "
        "above the highest end-of-run peak of healthy runs when that is higher) for `usage.warning_for` / "
        "`critical_for`"
    )
    names = ("BatchJobMemoryWarning", "BatchJobMemoryCritical")

    def derive(self, settings: Usage, facts: Facts, others: Mapping[str, BaseModel]) -> UsageParams:
        warning, critical = facts.warning_bytes / facts.limit, facts.critical_bytes / facts.limit
        end_peak = facts.history.end_peak_max
        if end_peak:  # a tightly sized job: its healthy runs end near or above the static thresholds
            warning = max(warning, min(RAISE_FACTOR * end_peak / facts.limit, RAISE_CAP_WARNING))
            critical = max(critical, min((1 + warning) / 2, RAISE_CAP_CRITICAL))
        return UsageParams(
            enabled=settings.enabled,
            warning_bytes=round(warning * facts.limit),
            critical_bytes=round(critical * facts.limit),
            warning_ratio=warning,
            critical_ratio=critical,
            warning_for=settings.warning_for,
            critical_for=settings.critical_for,
        )

    def holds(self, params: UsageParams) -> Sequence[Hold]:
        return (
            Hold("usage.warning_for", params.warning_for, "for"),
            Hold("usage.critical_for", params.critical_for, "for"),
        )

    def alerts(self, ctx: RuleContext, params: UsageParams) -> list[Alert]:
        saw = ctx.track.sawtooth
        level = f"({ctx.ref(s.TROUGH)} + {number(saw)})" if saw else ctx.ref(s.TROUGH)
        return [
            Alert(
                name,
                severity,
                f"{level}\n  / on ({ctx.by}) group_left\n{ctx.ref(s.LIMIT)} > {number(ratio)}",
                hold,
                KEEP,
            )
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
