"""Apply under random faults until the target converges, checking every report line on the way.

:func:`chaos_run` plants resources memprov must never touch, then converges twice, behind the fault
proxy at probability ``p`` (seeded): from an empty service, and from that populated state after a
spec change that updates and deletes. Each apply plans and applies through the faults; its report
is checked line by line against the service's own state (:func:`~tests.contract.base.check_report`),
and a fault-free plan then says whether the target has converged (an empty re-plan). Used by
tests/test_chaos.py and bench/chaos/run.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.plan import retry
from provisioner.plan.engine import Outcome
from tests.contract.base import Harness, check_report


@dataclass
class Phase:
    """One convergence: how many applies it took (None: not within the limit) and what they cost."""

    name: str
    applies: int | None = None
    retries: int = 0  # requests retried
    faults: int = 0  # faults injected
    unreadable: int = 0  # applies that could not read live state (nothing was changed)
    lines: int = 0  # report lines checked against the service
    unknown: int = 0  # lines saying the outcome could not be known
    waited: float = 0.0  # seconds of back-off, summed over threads
    notes: list[str] = field(default_factory=list)


def quiet_plan_is_empty(h: Harness) -> bool:
    p, h.chaos.p = h.chaos.p, 0.0
    try:
        plan, _ = h.plan()
    finally:
        h.chaos.p = p
    assert not plan.errors, plan.errors
    return not plan.has_changes


def converge(h: Harness, name: str, max_applies: int, untouched: dict[str, object]) -> Phase:
    phase = Phase(name)
    faults, retries, sleeps = h.chaos.faults(), len(h.retries), len(h.sleeps)
    for n in range(1, max_applies + 1):
        before = h.view()
        plan, targets = h.plan()
        if plan.errors:  # live state could not be read: apply refuses, nothing is changed
            phase.unreadable += 1
            phase.notes.append(f"apply {n}: {plan.errors[0][:160]}")
            assert h.view() == before
        else:
            _, report = h.apply(plan, targets, force=bool(h.preexisting))
            after = h.view()
            check_report(h, report, before, after)
            phase.lines += len(report.results)
            phase.unknown += sum(retry.UNKNOWN in r.message for r in report.of(Outcome.FAILED))
            keys = [(r.change.backend, r.change.kind, r.change.key) for r in report.results]
            assert len(keys) == len(set(keys)), "a change reported twice"
            for r in report.of(Outcome.FAILED):
                phase.notes.append(f"apply {n}: {r.change.key}: {r.message[:160]}")
        assert not h.duplicates(), h.duplicates()
        assert {k: h.view().get(k) for k in untouched} == untouched, "an unowned resource was touched"
        if quiet_plan_is_empty(h):
            phase.applies = n
            break
    phase.faults = h.chaos.faults() - faults
    phase.retries = len(h.retries) - retries
    phase.waited = sum(h.sleeps[sleeps:])
    return phase


def chaos_run(h: Harness, p: float, seed: int, max_applies: int = 3) -> list[Phase]:
    """From empty, then from populated with updates and deletes; faults at probability ``p``."""
    for key in h.foreign:
        h.plant(key, owned=False)
    untouched = {k: h.view()[k] for k in h.foreign}
    h.chaos.p, h.chaos.seed = p, seed
    phases = [converge(h, "from empty", max_applies, untouched)]
    if phases[0].applies is None:
        return phases
    h.edit_spec(*h.update)
    h.edit_spec(*h.prune)
    phases.append(converge(h, "updates and deletes", max_applies, untouched))
    return phases
