"""Plan and apply across backends: concurrent, retried, isolated per resource, honestly reported.

``make_plan`` reads every backend's live state concurrently. ``apply`` runs a plan's changes in
phases (create, update, delete), each phase concurrently with a bounded pool; a failed change
never stops the others, deletes of a backend are skipped when any of its creates or updates
failed (so that a rename never leaves a job without alerts), and the report lists exactly what
was changed, what failed and what was not attempted.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from provisioner.backends.base import Backend
from provisioner.core.errors import MemprovError, OperationError, RetryableError
from provisioner.plan.model import Action, BackendPlan, Change, Plan

T = TypeVar("T")
DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying :class:`RetryableError` with exponential backoff and full jitter."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except RetryableError as e:
                if attempt == self.attempts:
                    raise OperationError(f"{e} (gave up after {attempt} attempts)") from e
                delay = (
                    e.retry_after
                    if e.retry_after is not None
                    else random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def make_plan(
    env: str,
    spec_name: str,
    backends: Sequence[Backend],
    warnings: Sequence[str] = (),
    retry: RetryPolicy | None = None,
) -> Plan:
    """Plan every backend concurrently; a backend that cannot be read reports its error."""
    policy = retry or RetryPolicy()

    def one(backend: Backend) -> BackendPlan:
        try:
            return policy.call(backend.plan)
        except MemprovError as e:
            return BackendPlan(backend.name, backend.target.describe(), (), error=e.render())

    if len(backends) <= 1:
        plans = [one(b) for b in backends]
    else:
        with ThreadPoolExecutor(max_workers=min(len(backends), DEFAULT_CONCURRENCY)) as pool:
            plans = list(pool.map(one, backends))
    return Plan(env, spec_name, tuple(plans), tuple(warnings))


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

    def of(self, outcome: Outcome) -> list[Result]:
        return [r for r in self.results if r.outcome is outcome]

    @property
    def ok(self) -> bool:
        return not self.of(Outcome.FAILED) and not self.of(Outcome.SKIPPED) and not self.interrupted


def _run_change(backend: Backend, change: Change, policy: RetryPolicy) -> None:
    target = backend.target
    if change.action in (Action.CREATE, Action.CONFLICT):
        want = backend.resource(change.key)
        if change.action is Action.CONFLICT:
            policy.call(lambda: target.update(backend, want, backend.live[change.key]))
        else:
            policy.call(lambda: target.create(backend, want))
    elif change.action is Action.UPDATE:
        want = backend.resource(change.key)
        policy.call(lambda: target.update(backend, want, backend.live[change.key]))
    elif change.action is Action.DELETE:
        policy.call(lambda: target.delete(backend, backend.live[change.key]))


def apply(
    plan: Plan,
    backends: Sequence[Backend],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    retry: RetryPolicy | None = None,
    on_result: Callable[[Result], None] | None = None,
    stop: threading.Event | None = None,
    force: bool = False,
) -> ApplyReport:
    """Apply ``plan`` (made from these ``backends``) and report every change's outcome.

    ``force`` (``apply --force``) lets targets that detect edits made since the plan overwrite them.
    """
    for backend in backends:
        backend.target.force = force
    policy = retry or RetryPolicy()
    by_name = {b.name: b for b in backends}
    report = ApplyReport()
    lock = threading.Lock()
    stop = stop or threading.Event()
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
            try:
                _run_change(by_name[change.backend], change, policy)
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
                for future in [pool.submit(run, c) for c in todo]:
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
    for backend in backends:
        changed = any(r.change.backend == backend.name and r.outcome is Outcome.APPLIED for r in report.results)
        try:
            backend.target.finish(backend, changed)
        except MemprovError as e:
            report.results.append(
                Result(
                    Change(Action.NOOP, backend.name, "finish", backend.target.describe()), Outcome.FAILED, e.render()
                )
            )
    return report
