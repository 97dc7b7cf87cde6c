"""baseline: the run is off its healthy track: its troughs are above where healthy runs' troughs
are at the same point of a run, or above where its own settled troughs and healthy growth put them.

The track (the *envelope*) comes from ``memprov baseline``: where healthy runs' troughs start
(``floor``) and how fast they grow (``floor_velocity``), upper quartiles, plus a margin (a share of
the limit, or how far healthy troughs stray from their own line). The envelope must leave room for
every healthy run's own starting level; a run that starts low and then grows too fast stays under
it for long. So the run is also held to its *own* track (``own_track``): its own floor (the troughs
less the envelope's growth since the start, recorded once the run has settled and not right after
a restart) must not rise by a margin (``own_margin``) above the lowest it stood; that margin also allows for
the troughs a lagging collector lifts for a cycle or two (``sawtooth_share`` of the usual sawtooth).
Without that baseline: the troughs above ``factor`` times the p95 peak of past runs. Not an OOM
warning (the limit may be far away) but a sign that this run is unlike the others: more input, a
leak, a changed distribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from provisioner.core.types import Duration, Strict
from provisioner.kinds import series as s
from provisioner.kinds.base import Alert, Facts, Hold, Kind, KindDef, Params, RuleContext, Texts

KEEP = 300.0


class BaselineAlert(Strict):
    """The run is off its healthy track: its troughs are above where healthy runs' troughs are at
    the same point of the run (the baseline's ``floor`` + ``floor_velocity`` x time since the start,
    plus a margin). Without that baseline: its memory above ``factor`` x the p95 peak of past runs."""

    enabled: bool = True
    margin: float = Field(
        default=0.01, ge=0, lt=0.5, description="at least this share of the limit above the healthy envelope"
    )
    noise_factor: float = Field(default=1.5, ge=0, description="... and this many times the baseline's floor_noise")
    velocity_margin: float = Field(
        default=0.1, ge=0, lt=2, description="the envelope grows this much faster than the baseline's floor_velocity"
    )
    own_track: bool = Field(
        default=True,
        description="also fire when the run's own floor (its troughs less the envelope's growth) rises by the "
        "margin above the lowest it stood since the run settled: a run that grows faster than healthy runs, "
        "wherever it started",
    )
    sawtooth_share: float = Field(
        default=0.6,
        ge=0,
        description="the own-track margin is at least this share of the usual sawtooth height (a lagging "
        "garbage collector lifts a run's troughs by part of it for a cycle or two)",
    )
    factor: float = Field(default=1.3, gt=1, description="without an envelope: this many times the p95 peak")
    for_: Duration = Field(default=240.0, alias="for")


@dataclass(frozen=True)
class BaselineParams(Params):
    factor: float
    hold: float  # seconds (for:)
    p95: int | None  # bytes: the recorded p95 peak of past successful runs, if any
    threshold: int | None  # bytes: factor x p95, when a p95 is recorded
    floor: float | None  # bytes: where healthy runs' troughs start (the envelope's start), if recorded
    envelope: float | None  # bytes per second: the envelope's slope (floor_velocity + velocity_margin)
    margin: float  # bytes above the envelope: max(margin x limit, noise_factor x floor_noise)
    own_margin: float | None  # bytes the run's own floor may rise above its lowest (None: own_track off)

    def ratio(self, limit: int) -> float | None:
        """The threshold as a share of the limit, when a p95 is recorded."""
        return self.factor * self.p95 / limit if self.p95 else None


class BaselineKind(KindDef[BaselineAlert, BaselineParams]):
    kind = Kind.BASELINE
    key = "baseline_alert"
    settings = BaselineAlert
    explain = (
        "the run's troughs stay above where healthy runs' troughs are at the same age (the baseline's floor and "
        "floor velocity, plus a margin), or above where the run's own settled troughs and that growth put them "
        "(plus a margin, at least `sawtooth_share` × the usual sawtooth); without them, above "
        "`baseline_alert.factor` × the p95 peak"
    )
    names = ("BatchJobMemoryAboveBaseline",)

    def derive(self, settings: BaselineAlert, facts: Facts, others: Mapping[str, BaseModel]) -> BaselineParams:
        p95, h = facts.peak_p95, facts.history
        margin = max(settings.margin * facts.limit, settings.noise_factor * float(h.floor_noise or 0))
        return BaselineParams(
            enabled=settings.enabled,
            factor=settings.factor,
            hold=settings.for_,
            p95=p95,
            threshold=round(settings.factor * p95) if p95 else None,
            floor=float(h.floor) if h.floor is not None else None,
            envelope=None if h.floor_velocity is None else h.floor_velocity * (1 + settings.velocity_margin),
            margin=margin,
            own_margin=max(margin, settings.sawtooth_share * float(h.sawtooth or 0)) if settings.own_track else None,
        )

    def holds(self, params: BaselineParams) -> Sequence[Hold]:
        return (Hold("baseline_alert.for", params.hold, "for"),)

    def recordings(self, ctx: RuleContext, params: BaselineParams) -> list[dict[str, Any]]:
        if params.own_margin is None or not ctx.track.has_envelope:
            return []
        # recorded exactly where the troughs' velocity is: once the run has settled, not right after a
        # restart (the velocity series carries those guards; reading it costs less than repeating them)
        return [ctx.record(s.OWN_FLOOR, f"{ctx.own_floor()}\nand\n{ctx.ref(s.VELOCITY)}")]

    def alerts(self, ctx: RuleContext, params: BaselineParams) -> list[Alert]:
        expr = ctx.off_track()
        if params.own_margin is not None and ctx.track.has_envelope:
            expr = f"({expr})\nor\n({ctx.off_own_track(params.own_margin)})"
        return [Alert("BatchJobMemoryAboveBaseline", "warning", expr, params.hold, KEEP)]

    def texts(self, t: Texts, params: BaselineParams) -> dict[str, dict[str, str]]:
        value, factor = "{{ $value | humanize1024 }}B", f"{params.factor:g}"
        if params.floor is not None and params.envelope is not None:
            return {
                "BatchJobMemoryAboveBaseline": {
                    "summary": f"{t.name}: memory {value}, above where healthy runs are at this point",
                    "description": f"{t.who} on {t.node}: the floor of its memory (the sawtooth's troughs) is "
                    f"{value}, above where the troughs of past healthy runs are at the same point of a run (their "
                    "start plus their usual growth, with a margin), or it has grown faster than they do since this "
                    "run settled. A heavier input, a leak or a drift: not yet near the limit, look at what this run "
                    "processes differently.",
                }
            }
        return {
            "BatchJobMemoryAboveBaseline": {
                "summary": f"{t.name}: memory {value}, above {factor}x the usual p95 peak",
                "description": f"{t.who} uses {value}, more than {factor}x the p95 peak of past successful runs "
                f"({t.p95}). Not yet near the limit: look at what this run processes differently.",
            }
        }


KIND = BaselineKind()
