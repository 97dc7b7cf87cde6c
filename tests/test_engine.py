"""The plan/apply engine against a fake target: the external world is faked, memprov's own code is not.

``FakeTarget`` keeps resources in a dict and can be told to fail an operation on a key (a
:class:`RetryableError` that clears after a few attempts, or an :class:`OperationError`). Each of
its operations is one request, retried per request as the live targets' are (``retry.request``).
``FakeBackend`` renders a fixed set of bodies; the base class plans it and the engine applies it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from provisioner.core.errors import MemprovError, OperationError, RetryableError
from provisioner.plan import output, retry
from provisioner.plan.contract import Backend, Target
from provisioner.plan.engine import Outcome, apply
from provisioner.plan.model import Action, Plan, Resource
from provisioner.plan.planner import make_plan
from provisioner.plan.retry import RetryPolicy
from provisioner.spec.loader import load
from provisioner.spec.resolved import ResolvedSpec
from tests.helpers import example_repo, targets_of

NO_SLEEP = RetryPolicy(sleep=lambda _delay: None)


class FakeTarget(Target):
    type = "fake"

    def __init__(self, live: dict[str, Any] | None = None, unowned: dict[str, Any] | None = None) -> None:
        self.store: dict[str, Resource] = {k: Resource("thing", k, v) for k, v in (live or {}).items()}
        self.store |= {k: Resource("thing", k, v, owned=False) for k, v in (unowned or {}).items()}
        self.failures: dict[tuple[str, str], list[MemprovError]] = {}
        self.hooks: dict[tuple[str, str], Callable[[], None]] = {}
        self.calls: list[tuple[str, str]] = []
        self.reads = 0
        self.read_failures: list[MemprovError] = []
        self.finished: bool | None = None
        self.forced = False
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    def fail(self, op: str, key: str, *errors: MemprovError) -> None:
        self.failures[(op, key)] = list(errors)

    def describe(self) -> str:
        return "fake store"

    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        return retry.request(retry.HTTP, self._read)

    def _read(self) -> list[Resource]:
        self.reads += 1
        if self.read_failures:
            raise self.read_failures.pop(0)
        return list(self.store.values())  # unowned ones too: the base must never delete those

    def _call(self, op: str, key: str) -> None:
        retry.request(retry.HTTP, lambda: self._attempt(op, key))

    def _attempt(self, op: str, key: str) -> None:
        with self.lock:
            self.calls.append((op, key))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            queue = self.failures.get((op, key))
            error = queue.pop(0) if queue else None
        try:
            if (op, key) in self.hooks:
                self.hooks[(op, key)]()
            if error is not None:
                raise error
        finally:
            with self.lock:
                self.in_flight -= 1

    def create(self, desired: Resource, *, force: bool = False) -> None:
        self.forced = force
        self._call("create", desired.key)
        self.store[desired.key] = replace(desired, owned=True)

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        self.forced = force
        self._call("update", desired.key)
        self.store[desired.key] = replace(desired, owned=True)

    def delete(self, live: Resource, *, force: bool = False) -> None:
        self._call("delete", live.key)
        del self.store[live.key]

    def finish(self, desired: Sequence[Resource], changed: bool) -> None:
        self.finished = changed


class FakeBackend(Backend):
    name: ClassVar[str] = "fake"
    TARGETS: ClassVar[dict[str, Any]] = {}
    FILE_GLOB = "*"

    def __init__(self, spec: ResolvedSpec, target: FakeTarget, bodies: dict[str, Any]) -> None:
        super().__init__(spec)
        self.fake, self.bodies = target, bodies

    def target(self) -> Target:
        return self.fake

    def filename(self, key: str) -> str:
        return key

    def key_for_path(self, relpath: str) -> str | None:
        return relpath

    def serialise(self, resource: Resource) -> str:
        return repr(resource.body)

    def parse(self, key: str, text: str) -> tuple[Any, bool]:
        raise ValueError("not stored in files")

    def render(self) -> list[Resource]:
        return [Resource("thing", key, body, job=key, title=f"Thing {key}") for key, body in self.bodies.items()]

    def normalise(self, body: Any) -> Any:
        """The server adds an ``id``; it is not ours to compare."""
        return {k: v for k, v in body.items() if k != "id"} if isinstance(body, dict) else body


class Alpha(FakeBackend):
    name = "alpha"


class Beta(FakeBackend):
    name = "beta"


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> ResolvedSpec:
    return load(example_repo(tmp_path_factory.mktemp("repo")) / "memprov.yaml", "local")


def plan_of(*backends: Backend, env: str = "local") -> Plan:
    return make_plan(env, "batch-inference", [(b, b.target()) for b in backends], retry=NO_SLEEP)


def targets(*backends: Backend) -> dict[str, Target]:
    return {b.name: b.target() for b in backends}


def actions(plan: Plan) -> list[tuple[str, str]]:
    return [(c.action.value, c.key) for c in plan.changes]


# --- plan ---------------------------------------------------------------------------------------------
def test_plan_creates_updates_deletes_owned_only_and_flags_conflicts(spec: ResolvedSpec) -> None:
    target = FakeTarget(
        live={"same": {"v": 1}, "changed": {"v": 1}, "gone": {"v": 1}},
        unowned={"taken": {"v": "theirs"}, "unrelated": {"v": "theirs"}},
    )
    backend = FakeBackend(spec, target, {"new": {"v": 1}, "same": {"v": 1}, "changed": {"v": 2}, "taken": {"v": 1}})
    plan = plan_of(backend)
    assert actions(plan) == [
        ("create", "new"),
        ("conflict", "taken"),
        ("update", "changed"),
        ("delete", "gone"),
        ("no-op", "same"),
    ]  # "unrelated" is not memprov's and not wanted: never touched, never shown
    assert plan.counts() == {"create": 1, "update": 1, "delete": 1, "no-op": 1, "conflict": 1}
    assert plan.backends[0].live_owned == 3
    update = next(c for c in plan.changes if c.action is Action.UPDATE)
    assert update.diff() == ["@@ -1 +1 @@", "-v: 1", "+v: 2"]
    conflict = next(c for c in plan.changes if c.action is Action.CONFLICT)
    assert conflict.reason == "exists but is not managed by memprov"


def test_normalise_applies_to_both_sides(spec: ResolvedSpec) -> None:
    target = FakeTarget(live={"a": {"v": 1, "id": 42}})
    plan = plan_of(FakeBackend(spec, target, {"a": {"v": 1}}))
    assert actions(plan) == [("no-op", "a")]
    assert not plan.has_changes


def test_conflicts_are_refused_unless_forced_then_taken_over(spec: ResolvedSpec) -> None:
    target = FakeTarget(unowned={"taken": {"v": "theirs"}})
    backend = FakeBackend(spec, target, {"taken": {"v": 1}})
    plan = plan_of(backend)
    assert plan.safety_problems() == [
        "fake: 1 resource(s) exist but are not managed by memprov (taken); "
        "rename the job, remove them, or take them over with --force"
    ]
    text = [line for _style, line in output.text(plan)]
    assert any(line.startswith("refused without --force: fake: 1 resource(s)") for line in text)
    assert text[-1].endswith(f"--checksum {plan.checksum} --force")
    report = apply(plan, targets(backend), retry=NO_SLEEP, force=True)
    assert report.ok and target.forced is True
    assert target.store["taken"] == Resource("thing", "taken", {"v": 1}, owned=True, job="taken", title="Thing taken")
    assert not plan_of(FakeBackend(spec, target, {"taken": {"v": 1}})).has_changes


@pytest.mark.parametrize(
    ("owned", "updates", "deletes", "creates", "refused"),
    [
        (10, 3, 0, 0, False),  # exactly 30%: allowed
        (10, 4, 0, 0, True),
        (10, 2, 2, 0, True),  # updates and deletes count together
        (10, 0, 3, 25, False),  # creates never count
        (9, 0, 9, 0, False),  # fewer than 10 existing: no mass-change rule
        (20, 6, 0, 0, False),
        (20, 7, 0, 0, True),
    ],
)
def test_mass_change_rule(
    spec: ResolvedSpec, owned: int, updates: int, deletes: int, creates: int, refused: bool
) -> None:
    target = FakeTarget(live={f"r{i}": {"v": 1} for i in range(owned)})
    bodies: dict[str, Any] = {f"r{i}": {"v": 2 if i < updates else 1} for i in range(owned - deletes)}
    bodies |= {f"new{i}": {"v": 1} for i in range(creates)}
    plan = plan_of(FakeBackend(spec, target, bodies))
    assert plan.counts()["update"] == updates and plan.counts()["delete"] == deletes
    problems = plan.safety_problems()
    assert bool(problems) is refused
    if refused:
        assert problems == [
            f"fake: {updates + deletes} of {owned} existing resources would be updated or deleted "
            "(more than 30%); review the plan and pass --force"
        ]


def test_checksum_is_stable(spec: ResolvedSpec) -> None:
    def make() -> Plan:
        a = Alpha(spec, FakeTarget(live={"x": {"v": 1}, "old": {}}), {"x": {"v": 2}, "y": {"v": 1}})
        b = Beta(spec, FakeTarget(), {"z": {"v": 1}})
        return plan_of(a, b)

    first, second = make(), make()
    assert first.checksum == second.checksum
    assert len(first.checksum) == 64
    swapped = Plan(first.env, first.spec_name, tuple(reversed(first.backends)))
    assert swapped.checksum == first.checksum  # the order backends were read in does not matter


def test_checksum_depends_on_what_would_change(spec: ResolvedSpec) -> None:
    def checksum(desired: dict[str, Any], live: dict[str, Any], env: str = "local") -> str:
        return plan_of(FakeBackend(spec, FakeTarget(live=live), desired), env=env).checksum

    base = checksum({"a": {"v": 2}, "b": {"v": 1}}, {"a": {"v": 1}})
    assert checksum({"a": {"v": 3}, "b": {"v": 1}}, {"a": {"v": 1}}) != base  # another desired body
    assert checksum({"a": {"v": 2}, "b": {"v": 1}}, {"a": {"v": 0}}) != base  # live moved since the review
    assert checksum({"a": {"v": 2}, "b": {"v": 1}}, {"a": {"v": 1}}, env="prod") != base
    assert checksum({"a": {"v": 2}}, {"a": {"v": 1}}) != base  # one change fewer
    assert checksum({"a": {"v": 2}, "b": {"v": 1}, "c": {"v": 1}}, {"a": {"v": 1}, "c": {"v": 1}}) == base  # no-op


# --- apply --------------------------------------------------------------------------------------------
def test_apply_runs_creates_then_updates_then_deletes_and_reports(spec: ResolvedSpec) -> None:
    target = FakeTarget(live={"u1": {"v": 1}, "u2": {"v": 1}, "d1": {}, "d2": {}})
    backend = FakeBackend(spec, target, {"c1": {}, "c2": {}, "u1": {"v": 2}, "u2": {"v": 2}})
    seen: list[str] = []
    report = apply(plan_of(backend), targets(backend), retry=NO_SLEEP, on_result=lambda r: seen.append(r.change.key))
    ops = [op for op, _ in target.calls]
    assert ops == ["create", "create", "update", "update", "delete", "delete"]
    assert report.ok and len(report.of(Outcome.APPLIED)) == 6 and sorted(seen) == ["c1", "c2", "d1", "d2", "u1", "u2"]
    assert target.finished is True
    assert output.report_lines(report)[0][1] == ("Apply complete: 6 of 6 changes applied, 0 failed, 0 not attempted.")
    replan = plan_of(FakeBackend(spec, target, backend.bodies))
    assert not replan.has_changes and replan.counts()["no-op"] == 4


def test_retries_back_off_with_jitter_then_succeed(spec: ResolvedSpec) -> None:
    delays: list[float] = []
    policy = RetryPolicy(attempts=5, sleep=delays.append)
    target = FakeTarget()
    target.fail("create", "a", *(RetryableError("429 slow down") for _ in range(4)))
    target.fail("create", "b", RetryableError("503", retry_after=7.5))
    backend = FakeBackend(spec, target, {"a": {}, "b": {}})
    report = apply(plan_of(backend), targets(backend), retry=policy, concurrency=1)
    assert report.ok
    assert target.calls.count(("create", "a")) == 5
    assert len(delays) == 5
    assert 7.5 in delays  # Retry-After is honoured exactly
    jittered = [d for d in delays if d != 7.5]
    caps = [0.5, 1.0, 2.0, 4.0]  # the Http rules: 0.5 s * 2^n; full jitter draws below the cap
    assert all(0 <= d <= cap for d, cap in zip(jittered, caps, strict=True)), jittered


def test_retries_give_up_and_say_so(spec: ResolvedSpec) -> None:
    delays: list[float] = []
    target = FakeTarget()
    target.fail("create", "a", *(RetryableError("503 unavailable") for _ in range(10)))
    backend = FakeBackend(spec, target, {"a": {}})
    report = apply(plan_of(backend), targets(backend), retry=RetryPolicy(attempts=3, sleep=delays.append))
    assert [(r.change.key, r.outcome, r.message) for r in report.results] == [
        ("a", Outcome.FAILED, "503 unavailable (gave up after 3 attempts)")
    ]
    assert len(delays) == 2 and target.calls == [("create", "a")] * 3
    assert target.finished is False


def test_the_deadline_stops_retries_and_starts_nothing_new(spec: ResolvedSpec) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    target = FakeTarget(live={"d": {}})
    target.fail("create", "a", *(RetryableError("429", retry_after=40.0) for _ in range(3)))
    target.hooks[("create", "b")] = lambda: now.__setitem__(0, now[0] + 30)  # a slow request: past the deadline
    backend = FakeBackend(spec, target, {"a": {}, "b": {}, "c": {}})
    policy = RetryPolicy(deadline=100.0, sleep=sleep, clock=lambda: now[0])
    report = apply(plan_of(backend), targets(backend), retry=policy, concurrency=1)
    outcomes = {r.change.key: (r.outcome, r.message) for r in report.results}
    assert outcomes == {
        "a": (Outcome.FAILED, "429 (gave up after 3 attempts: the 100s deadline of this run passed)"),
        "b": (Outcome.APPLIED, ""),  # started at 80 s, finished at 110 s
        "c": (Outcome.SKIPPED, "the deadline of this apply passed before it started"),
        "d": (Outcome.SKIPPED, "kept because other fake changes failed; fix them and apply again"),
    }
    assert report.retries.retries["http"] == 2 and report.retries.waited == 80.0


def test_operation_errors_are_not_retried_and_failures_are_isolated(spec: ResolvedSpec) -> None:
    target = FakeTarget(live={"u": {"v": 1}})
    target.fail("create", "bad", OperationError("403 forbidden"))
    backend = FakeBackend(spec, target, {"ok1": {}, "bad": {}, "ok2": {}, "u": {"v": 2}})
    report = apply(plan_of(backend), targets(backend), retry=NO_SLEEP)
    outcomes = {r.change.key: (r.outcome, r.message) for r in report.results}
    assert outcomes == {
        "ok1": (Outcome.APPLIED, ""),
        "ok2": (Outcome.APPLIED, ""),
        "bad": (Outcome.FAILED, "403 forbidden"),
        "u": (Outcome.APPLIED, ""),
    }
    assert target.calls.count(("create", "bad")) == 1
    assert not report.ok and "bad" not in target.store and target.store["u"].body == {"v": 2}


def test_deletes_are_kept_when_a_create_of_the_same_backend_failed(spec: ResolvedSpec) -> None:
    """A renamed job: the new rule failed to be created, so the old one must stay."""
    a_target, b_target = FakeTarget(live={"old-name": {}}), FakeTarget(live={"gone": {}})
    a_target.fail("create", "new-name", OperationError("400 invalid"))
    alpha = Alpha(spec, a_target, {"new-name": {}})
    beta = Beta(spec, b_target, {"fresh": {}})
    report = apply(plan_of(alpha, beta), targets(alpha, beta), retry=NO_SLEEP)
    outcomes = {(r.change.backend, r.change.key): r.outcome for r in report.results}
    assert outcomes == {
        ("alpha", "new-name"): Outcome.FAILED,
        ("alpha", "old-name"): Outcome.SKIPPED,
        ("beta", "fresh"): Outcome.APPLIED,
        ("beta", "gone"): Outcome.APPLIED,  # another backend's deletes go ahead
    }
    assert "old-name" in a_target.store and "gone" not in b_target.store
    skipped = report.of(Outcome.SKIPPED)[0]
    assert skipped.message == "kept because other alpha changes failed; fix them and apply again"
    lines = [line for _style, line in output.report_lines(report)]
    assert lines[0] == "Apply incomplete: 2 of 4 changes applied, 1 failed, 1 not attempted."
    assert "  + alpha thing new-name: 400 invalid" in lines
    assert "  - alpha thing old-name: kept because other alpha changes failed; fix them and apply again" in lines
    assert a_target.finished is False and b_target.finished is True


def test_deletes_are_kept_when_an_update_failed(spec: ResolvedSpec) -> None:
    target = FakeTarget(live={"u": {"v": 1}, "d": {}})
    target.fail("update", "u", OperationError("409"))
    backend = FakeBackend(spec, target, {"u": {"v": 2}})
    report = apply(plan_of(backend), targets(backend), retry=NO_SLEEP)
    assert [(r.change.key, r.outcome) for r in report.results] == [("u", Outcome.FAILED), ("d", Outcome.SKIPPED)]
    assert ("delete", "d") not in target.calls


def test_a_backend_bug_is_one_failed_change_not_a_crash(spec: ResolvedSpec) -> None:
    target = FakeTarget()
    target.hooks[("create", "x")] = lambda: {}["missing"]  # a KeyError inside a target
    backend = FakeBackend(spec, target, {"x": {}, "y": {}})
    report = apply(plan_of(backend), targets(backend), retry=NO_SLEEP)
    outcomes = {r.change.key: (r.outcome, r.message) for r in report.results}
    assert outcomes == {"x": (Outcome.FAILED, "unexpected KeyError: 'missing'"), "y": (Outcome.APPLIED, "")}


def test_concurrency_is_bounded(spec: ResolvedSpec) -> None:
    target = FakeTarget()
    bodies = {f"r{i}": {} for i in range(8)}
    for key in bodies:
        target.hooks[("create", key)] = lambda: time.sleep(0.03)
    backend = FakeBackend(spec, target, bodies)
    assert apply(plan_of(backend), targets(backend), retry=NO_SLEEP, concurrency=3).ok
    assert 2 <= target.max_in_flight <= 3


def test_unreadable_live_state_is_retried_then_reported_per_backend(spec: ResolvedSpec) -> None:
    flaky, broken = FakeTarget(live={"a": {}}), FakeTarget()
    flaky.read_failures = [RetryableError("502")]
    broken.read_failures = [OperationError("401 unauthorized: check the token")]
    plan = plan_of(Alpha(spec, flaky, {"a": {}}), Beta(spec, broken, {"b": {}}))
    assert flaky.reads == 2 and plan.backends[0].error is None
    assert plan.errors == ("beta: 401 unauthorized: check the token",)
    assert plan.backends[1].changes == ()


def test_finish_failure_is_reported(spec: ResolvedSpec) -> None:
    class Reloading(FakeTarget):
        def finish(self, desired: Sequence[Resource], changed: bool) -> None:
            raise OperationError("reload failed: 500")

    backend = FakeBackend(spec, Reloading(), {"a": {}})
    report = apply(plan_of(backend), targets(backend), retry=NO_SLEEP)
    assert [(r.change.kind, r.outcome, r.message) for r in report.results][-1] == (
        "finish",
        Outcome.FAILED,
        "reload failed: 500",
    )
    assert not report.ok


def test_ctrl_c_finishes_what_is_in_flight_starts_nothing_new_and_says_so(spec: ResolvedSpec) -> None:
    stop = threading.Event()
    target = FakeTarget(live={"u": {"v": 1}, "d": {}})

    def press_ctrl_c() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(10), "the engine did not handle the interrupt"

    target.hooks[("create", "c1")] = press_ctrl_c
    backend = FakeBackend(spec, target, {"c1": {}, "c2": {}, "c3": {}, "u": {"v": 2}})
    report = apply(plan_of(backend), targets(backend), retry=NO_SLEEP, concurrency=1, stop=stop)
    assert report.interrupted and not report.ok
    outcomes = {r.change.key: (r.outcome, r.message) for r in report.results}
    assert outcomes == {
        "c1": (Outcome.APPLIED, ""),  # in flight when Ctrl-C came: finished, and reported as changed
        "c2": (Outcome.SKIPPED, "interrupted before it started"),
        "c3": (Outcome.SKIPPED, "interrupted before it started"),
        "u": (Outcome.SKIPPED, "interrupted before it started"),
        "d": (Outcome.SKIPPED, "interrupted before it started"),
    }
    assert target.calls == [("create", "c1")]
    assert output.report_lines(report)[0][1] == (
        "Apply interrupted: 1 of 5 changes applied, 0 failed, 4 not attempted."
    )


def test_the_engine_is_exercised_through_a_real_backend_too(tmp_path: Path) -> None:
    """The same engine over the files target of a real backend: apply, then the re-plan is empty."""
    from provisioner.backends.registry import build

    resolved = load(example_repo(tmp_path / "repo") / "memprov.yaml", "local")
    bindings = build(resolved)
    plan = make_plan("local", resolved.name, bindings, retry=NO_SLEEP)
    expected = 3 * len(resolved.jobs) + 3  # two rule groups and a dashboard per job; routing, overview, provider
    assert plan.counts()["create"] == expected == 15
    assert apply(plan, targets_of(bindings), retry=NO_SLEEP).ok
    again = make_plan("local", resolved.name, build(resolved), retry=NO_SLEEP)
    assert not again.has_changes and again.counts()["no-op"] == expected
