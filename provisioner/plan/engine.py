"""Apply a plan: concurrent, retried, isolated per resource, honestly reported.

``apply`` runs a plan's changes against the targets they were planned on, in phases (create,
update, delete), each phase concurrently with a bounded pool. Every change carries its desired and
live resources, so nothing but the plan and the targets is needed. Transient failures are retried
per request inside the targets, under one retry session per apply (:mod:`provisioner.plan.retry`:
a budget per service and a deadline, after which nothing new is started). A failed change never
stops the others, deletes of a backend are skipped when any of its creates or updates failed (so
that a rename never leaves a job without alerts), and the report lists exactly what was changed,
what failed and what was not attempted, and what the retries cost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from provisioner.core.errors import MemprovError
from provisioner.plan.contract import Target
from provisioner.plan.model import Action, Change, Plan
from provisioner.plan.retry import RetryPolicy, Stats, bound, session

DEFAULT_CONCURRENCY = 8


class Outcome(StrEnum):
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "not attempted"


@dataclass(frozen=True)
class Result:
    change: Change
    outcome: Outcome
    message: str = ""


@dataclass
class ApplyReport:
    results: list[Result] = field(default_factory=list)
    interrupted: bool = False
    retries: Stats = field(default_factory=Stats)  # what the apply's retries cost, per service

    def of(self, outcome: Outcome) -> list[Result]:
        return [r for r in self.results if r.outcome is outcome]

    @property
    def ok(self) -> bool:
        return not self.of(Outcome.FAILED) and not self.of(Outcome.SKIPPED) and not self.interrupted


def _run_change(target: Target, change: Change, force: bool) -> None:
    want, have = change.want, change.have
    if change.action is Action.CREATE and want is not None:
        target.create(want, force=force)
    elif change.action in (Action.UPDATE, Action.CONFLICT) and want is not None and have is not None:
        target.update(want, have, force=force)
    elif change.action is Action.DELETE and have is not None:
        target.delete(have, force=force)
    else:  # pragma: no cover - the planner attaches the resources every action needs
        raise AssertionError(f"{change.action} {change.key} carries no resource to apply")


def apply(
    plan: Plan,
    targets: Mapping[str, Target],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    retry: RetryPolicy | None = None,
    on_result: Callable[[Result], None] | None = None,
    stop: threading.Event | None = None,
    force: bool = False,
) -> ApplyReport:
    """Apply ``plan`` to the ``targets`` it was made against (by backend name) and report every outcome.

    ``force`` (``apply --force``) lets targets that detect edits made since the plan overwrite them,
    and take over the unowned resources the plan shows as conflicts. ``retry``: how the targets
    retry each request (attempts, budget, deadline); once the deadline has passed, changes not yet
    started are reported as not attempted.
    """
    with session(retry or RetryPolicy()) as retries:
        report = _apply(plan, targets, concurrency, on_result, stop or threading.Event(), force, retries.expired)
        report.retries = retries.stats
    return report


def _apply(
    plan: Plan,
    targets: Mapping[str, Target],
    concurrency: int,
    on_result: Callable[[Result], None] | None,
    stop: threading.Event,
    force: bool,
    expired: Callable[[], bool],
) -> ApplyReport:
    report = ApplyReport()
    lock = threading.Lock()
    recorded: set[int] = set()  # id() of every change with an outcome: each is reported exactly once
    running = threading.Condition()
    in_flight = 0

    def record(result: Result) -> None:
        with lock:
            if id(result.change) in recorded:
                return
            recorded.add(id(result.change))
            report.results.append(result)
        if on_result:
            on_result(result)

    def run(change: Change) -> None:
        nonlocal in_flight
        with running:
            in_flight += 1  # before looking at ``stop``: see the interrupt handling below
        try:
            if stop.is_set():
                record(Result(change, Outcome.SKIPPED, "interrupted before it started"))
                return
            if expired():
                record(Result(change, Outcome.SKIPPED, "the deadline of this apply passed before it started"))
                return
            try:
                _run_change(targets[change.backend], change, force)
            except MemprovError as e:
                record(Result(change, Outcome.FAILED, e.render()))
            except Exception as e:  # a backend bug must not hide what else happened
                record(Result(change, Outcome.FAILED, f"unexpected {type(e).__name__}: {e}"))
            else:
                record(Result(change, Outcome.APPLIED))
        finally:
            with running:
                in_flight -= 1
                running.notify_all()

    phases = [(Action.CREATE, Action.CONFLICT), (Action.UPDATE,), (Action.DELETE,)]
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for phase in phases:
            todo = [c for c in plan.actionable if c.action in phase]
            if phase == (Action.DELETE,):
                failed = {r.change.backend for r in report.of(Outcome.FAILED)}
                for c in [c for c in todo if c.backend in failed]:
                    record(
                        Result(
                            c,
                            Outcome.SKIPPED,
                            f"kept because other {c.backend} changes failed; fix them and apply again",
                        )
                    )
                todo = [c for c in todo if c.backend not in failed]
            if report.interrupted:
                for c in todo:
                    record(Result(c, Outcome.SKIPPED, "interrupted before it started"))
                continue
            try:
                for future in [pool.submit(bound(run), c) for c in todo]:
                    future.result()
            except KeyboardInterrupt:  # finish what is in flight, start nothing new, report
                stop.set()
                report.interrupted = True
                # Ctrl-C may land anywhere, even inside submit(): wait for the changes already
                # running (counted before they look at ``stop``), then report the rest as skipped.
                with running:
                    running.wait_for(lambda: in_flight == 0)
                for c in todo:
                    record(Result(c, Outcome.SKIPPED, "interrupted before it started"))
    for bp in plan.backends:
        target = targets.get(bp.backend)
        if target is None or bp.error:
            continue
        changed = any(r.change.backend == bp.backend and r.outcome is Outcome.APPLIED for r in report.results)
        try:
            target.finish(bp.desired, changed)
        except MemprovError as e:
            finish = Change(Action.NOOP, bp.backend, "finish", bp.target)
            report.results.append(Result(finish, Outcome.FAILED, e.render()))
    return report
