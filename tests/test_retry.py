"""The retry machinery on its own: each service's back-off rules, the budget, the deadline, the session
across threads, and writes whose outcome is read back (:mod:`provisioner.plan.retry`).

The services' rules are checked against their documented semantics (botocore's standard mode,
azure-core's retry policy, Google's guidance for Cloud APIs, RFC 9110 ``Retry-After``), with a
seeded random generator and a clock that only the recorded sleeps move.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from provisioner.core.errors import OperationError, RetryableError
from provisioner.plan import retry
from provisioner.plan.retry import RetryPolicy, Transient


class Clock:
    """Virtual time: ``sleep`` records the wait and moves the clock."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock, **kw: object) -> RetryPolicy:
    return RetryPolicy(sleep=clock.sleep, clock=clock, seed=7, **kw)  # type: ignore[arg-type]


def failing(*errors: Exception, result: str = "ok") -> tuple[list[int], Callable[[], str]]:
    """A request that raises ``errors`` one per attempt, then answers ``result``."""
    calls = [0]
    queue = list(errors)

    def fn() -> str:
        calls[0] += 1
        if queue:
            raise queue.pop(0)
        return result

    return calls, fn


def test_aws_standard_waits_as_botocore_does() -> None:
    rng, rules = random.Random(1), retry.AwsStandard()
    throttle, other = Transient("Throttling", throttled=True), Transient("InternalFailure")
    for n in range(1, 9):  # t_i = rand * min(base * 2^(i-1), 20): base 1 s throttled, 50 ms otherwise
        assert 0 <= rules.delay(throttle, n, rng) <= min(2.0 ** (n - 1), 20.0)
        assert 0 <= rules.delay(other, n, rng) <= min(0.05 * 2 ** (n - 1), 20.0)
    waits = [rules.delay(throttle, 8, rng) for _ in range(2000)]
    assert max(waits) > 19 and min(waits) < 1  # full jitter up to the 20 s cap
    hinted = Transient("SlowDown", 30.0, throttled=True)  # x-amz-retry-after: at most 5 s over the jittered wait
    assert all(w <= 6.0 for w in (rules.delay(hinted, 1, rng) for _ in range(200)))
    assert rules.cost(throttle) == 5 and rules.cost(other) == 14 and rules.capacity == 500


def test_arm_grpc_and_http_waits() -> None:
    rng = random.Random(2)
    arm = retry.Arm()
    assert arm.delay(Transient("503"), 1, rng) == 0.0  # azure-core: no wait before the first retry
    assert arm.delay(Transient("503"), 3, rng) == pytest.approx(3.2)  # then 0.8 s * 2^(n-1)
    assert arm.delay(Transient("503"), 12, rng) == 120.0
    assert arm.delay(Transient("429", 17.0, throttled=True), 1, rng) == 17.0  # Retry-After, exactly
    grpc = retry.Grpc()
    assert 30.0 <= grpc.delay(Transient("RESOURCE_EXHAUSTED", throttled=True), 1, rng) <= 31.0
    assert grpc.delay(Transient("RESOURCE_EXHAUSTED", 2.5, throttled=True), 1, rng) == 2.5  # RetryInfo
    assert 1.0 <= grpc.delay(Transient("UNAVAILABLE"), 1, rng) <= 2.0
    assert grpc.delay(Transient("UNAVAILABLE"), 9, rng) == 32.0
    http = retry.Http()
    assert http.delay(Transient("429", 0.0, throttled=True), 4, rng) == 0.0  # Retry-After: 0 means now
    assert 0 <= http.delay(Transient("503"), 3, rng) <= 2.0


def test_a_request_is_retried_alone_and_counted() -> None:
    clock = Clock()
    calls, fn = failing(Transient("503"), Transient("429", 3.0, throttled=True))
    with retry.session(policy(clock)) as s:
        assert retry.request(retry.HTTP, fn) == "ok"
    assert calls == [3] and clock.sleeps[1] == 3.0
    assert s.stats.retries["http"] == 2 and s.stats.waited == pytest.approx(sum(clock.sleeps))


def test_giving_up_says_why() -> None:
    clock = Clock()
    _, fn = failing(*(Transient("503 unavailable") for _ in range(9)))
    with retry.session(policy(clock, attempts=3)) as s, pytest.raises(OperationError) as e:
        retry.request(retry.HTTP, fn)
    assert str(e.value) == "503 unavailable (gave up after 3 attempts)" and s.stats.gave_up == 1
    _, fn = failing(OperationError("400 invalid"))
    with retry.session(policy(clock)), pytest.raises(OperationError, match=r"^400 invalid$"):
        retry.request(retry.HTTP, fn)  # a refusal is never retried


def test_the_budget_is_a_token_bucket_refilled_by_successes() -> None:
    clock = Clock()
    rules = retry.AwsStandard()
    with retry.session(policy(clock, budget=30, attempts=10)) as s:
        _, fn = failing(*(Transient("InternalFailure") for _ in range(9)))
        with pytest.raises(OperationError, match="retry budget for aws is spent"):
            retry.request(rules, fn)
        assert s.stats.retries["aws"] == 2  # 30 tokens: two retries at 14, not a third
        _, ok = failing()
        for _ in range(12):  # first-try successes give 1 token each back
            retry.request(rules, ok)
        _, fn = failing(Transient("InternalFailure"))
        assert retry.request(rules, fn) == "ok"  # 2 + 12 >= 14: one more retry
        _, fn = failing(*(Transient("Throttling", throttled=True) for _ in range(2)))
        assert retry.request(rules, fn) == "ok"  # the success refunded 14; a throttle costs 5
        _, fn = failing(*(Transient("Throttling", throttled=True) for _ in range(3)))
        with pytest.raises(OperationError, match="budget"):
            retry.request(rules, fn)  # 14 - 5 - 5 + 5 = 9: one retry, then 4 < 5
    assert s.stats.retries["aws"] == 6


def test_the_deadline_stops_retries_and_new_work() -> None:
    clock = Clock()
    with retry.session(policy(clock, deadline=10.0)) as s:
        _, fn = failing(Transient("429", 6.0, throttled=True), Transient("429", 6.0, throttled=True))
        with pytest.raises(OperationError, match="the 10s deadline of this run passed"):
            retry.request(retry.HTTP, fn)
        assert clock.sleeps == [6.0] and not s.expired()
        clock.now = 10.0
        assert s.expired()


def test_the_session_follows_work_into_threads() -> None:
    clock = Clock()
    seen: list[retry.Session] = []

    def work() -> None:
        seen.append(retry.current())
        _, fn = failing(Transient("503"))
        retry.request(retry.HTTP, fn)

    with retry.session(policy(clock)) as s, ThreadPoolExecutor(4) as pool:
        list(pool.map(retry.bound(lambda _: work()), range(8)))
    assert seen == [s] * 8 and s.stats.retries["http"] == 8
    other: list[retry.Session] = []
    t = threading.Thread(target=lambda: other.append(retry.current()))  # not bound: a session of its own
    with retry.session(policy(clock)) as s2:
        t.start()
        t.join()
    assert other[0] is not s2


class Store:
    """A service that carries out a write and then loses the answer, ``lost`` times."""

    def __init__(self, lost: int = 0, refused: int = 0) -> None:
        self.items: list[str] = []
        self.lost, self.refused, self.sent = lost, refused, 0

    def create(self, item: str) -> None:
        self.sent += 1
        if self.refused:
            self.refused -= 1
            raise Transient("503 not now", unsure=False)
        self.items.append(item)
        if self.lost:
            self.lost -= 1
            raise Transient("connection reset after sending")


def test_a_write_whose_answer_was_lost_is_applied_not_failed() -> None:
    clock = Clock()
    store = Store(lost=9)
    with retry.session(policy(clock, attempts=3)):
        retry.write(retry.HTTP, lambda: store.create("a"), lambda: "a" in store.items)
    assert store.items == ["a", "a", "a"]  # an idempotent write (a PUT) may be sent again: it replaces itself


def test_a_non_idempotent_write_looks_before_sending_again() -> None:
    clock = Clock()
    store = Store(lost=1)
    with retry.session(policy(clock)):
        retry.write(retry.HTTP, lambda: store.create("a"), lambda: "a" in store.items, resend=False)
    assert store.items == ["a"] and store.sent == 1  # it had landed: not sent again, no duplicate
    store = Store(refused=2)
    with retry.session(policy(clock)):
        retry.write(retry.HTTP, lambda: store.create("b"), lambda: "b" in store.items, resend=False)
    assert store.items == ["b"] and store.sent == 3  # refused before it was carried out: sent again


def test_a_write_that_failed_says_whether_anything_changed() -> None:
    clock = Clock()
    store = Store(refused=9)
    with retry.session(policy(clock, attempts=2)), pytest.raises(OperationError) as e:
        retry.write(retry.HTTP, lambda: store.create("a"), lambda: "a" in store.items)
    assert str(e.value) == f"503 not now (gave up after 2 attempts); {retry.NOT_CHANGED}"

    def unreadable() -> bool:
        raise OperationError("GET -> HTTP 503 (gave up after 2 attempts)")

    store = Store(refused=9)
    with retry.session(policy(clock, attempts=2)), pytest.raises(OperationError) as e:
        retry.write(retry.HTTP, lambda: store.create("a"), unreadable)
    assert retry.UNKNOWN in str(e.value) and "could not be read back" in str(e.value)
    with retry.session(policy(clock)), pytest.raises(OperationError, match=r"^403 forbidden$"):
        retry.write(retry.HTTP, lambda: (_ for _ in ()).throw(OperationError("403 forbidden")), lambda: False)


def test_a_plain_retryable_error_is_treated_as_unsure() -> None:
    clock = Clock()
    store = Store()
    calls = [0]

    def create() -> None:
        calls[0] += 1
        store.items.append("x")
        if calls[0] == 1:
            raise RetryableError("timed out")

    with retry.session(policy(clock)):
        retry.write(retry.HTTP, create, lambda: "x" in store.items, resend=False)
    assert store.items == ["x"]
