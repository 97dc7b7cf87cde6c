"""Retries per request, with each service's own back-off rules, a budget and a deadline per plan or apply.

Every request a live target sends goes through :func:`request` (a read, or a write the service
makes idempotent) or :func:`write` (a write whose outcome must be known exactly): one request, so a
transient failure repeats that request only, never a whole read of many resources. How long to wait
and what a retry costs are the service's :class:`Rules` (:class:`AwsStandard`, :class:`Grpc`,
:class:`Arm`, :class:`Http`). ``plan`` and ``apply`` each open a :class:`Session` (:func:`session`) from
a :class:`RetryPolicy`: attempts per request, a retry budget per service (a token bucket refilled by
successes, as the AWS SDKs' retry quota), a deadline after which nothing is retried and the engine
starts nothing new, and an injectable clock and sleep. The session is found through a context
variable, so targets keep their signatures; worker threads inherit it through :func:`bound`.

A write that still fails is read back before it is reported (``landed``): when live already holds
what was sent, memprov's own attempt succeeded and the change is applied; otherwise the error says
that nothing was changed, or, when it could not be read back either, that the outcome is unknown.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from provisioner.core.errors import OperationError, RetryableError

T = TypeVar("T")
P = ParamSpec("P")
NOT_CHANGED = "nothing was changed"
PARTLY = "partly applied"  # a change of several requests of which some landed: the message says which
UNKNOWN = "it may or may not have been applied (it could not be read back); run memprov plan to see"


class Transient(RetryableError):
    """A failure worth retrying, described the way the back-off rules need it.

    ``throttled``: the service asked to slow down (HTTP 429, ``Throttling``, ``RESOURCE_EXHAUSTED``).
    ``unsure``: the request may have been carried out before it failed (a timeout, a connection
    reset after sending, a 5xx): a non-idempotent write must look before sending it again.
    """

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        *,
        throttled: bool = False,
        unsure: bool = True,
    ) -> None:
        super().__init__(message, retry_after)
        self.throttled, self.unsure = throttled, unsure


def _flags(error: RetryableError) -> tuple[bool, bool]:
    """(throttled, unsure) of any retryable error; a plain one is treated as unsure."""
    if isinstance(error, Transient):
        return error.throttled, error.unsure
    return False, True


class Rules:
    """A service's back-off rules: the wait before retry ``n`` (1-based) and what the retry costs.

    The defaults are the AWS SDKs' standard retry mode (``botocore/retries/standard.py``, "Retry
    behavior" in the AWS SDKs and Tools reference): full jitter over ``base × 2^(n-1)`` capped at
    20 s, base 1 s for throttling and 50 ms otherwise; a retry quota of 500 tokens per client, 5 per
    retried throttle, 14 per other retry, refilled by 1 per first-try success and by the last retry's
    cost when a retried request succeeds. The other services' rules keep that budget and change the waits.
    """

    service = "service"
    capacity = 500
    throttle_cost = 5
    retry_cost = 14
    success_refill = 1

    def delay(self, error: RetryableError, retry: int, rng: random.Random) -> float:
        throttled, _ = _flags(error)
        base = 1.0 if throttled else 0.05
        return rng.random() * min(base * 2.0 ** (retry - 1), 20.0)

    def cost(self, error: RetryableError) -> int:
        return self.throttle_cost if _flags(error)[0] else self.retry_cost


class AwsStandard(Rules):
    """AWS standard retry mode (see :class:`Rules`), with ``x-amz-retry-after`` raising the wait to at
    most 5 s over the jittered one, as botocore does."""

    service = "aws"

    def delay(self, error: RetryableError, retry: int, rng: random.Random) -> float:
        wait = super().delay(error, retry, rng)
        if error.retry_after is not None:
            return max(wait, min(error.retry_after, wait + 5.0))
        return wait


class Http(Rules):
    """Plain HTTP APIs (Grafana, Mimir/Cortex ruler, Prometheus, Alertmanager): ``Retry-After`` exactly
    when the server sends it (RFC 9110 §10.2.3), else full jitter over ``0.5 s × 2^(n-1)`` capped at 20 s."""

    service = "http"

    def delay(self, error: RetryableError, retry: int, rng: random.Random) -> float:
        if error.retry_after is not None:
            return error.retry_after
        return rng.uniform(0, min(0.5 * 2.0 ** (retry - 1), 20.0))


class Arm(Rules):
    """Azure Resource Manager: ``Retry-After`` (or ``retry-after-ms``) exactly, as ARM asks of throttled
    callers ("Understand how Azure Resource Manager throttles requests"); else azure-core's exponential
    back-off: no wait before the first retry, then ``0.8 s × 2^(n-1)`` capped at 120 s."""

    service = "azure"

    def delay(self, error: RetryableError, retry: int, rng: random.Random) -> float:
        if error.retry_after is not None:
            return error.retry_after
        return 0.0 if retry <= 1 else min(0.8 * 2.0 ** (retry - 1), 120.0)


class Grpc(Rules):
    """Google APIs over gRPC: the server's ``google.rpc.RetryInfo`` delay when it sends one; else, as
    Google's guidance for Cloud APIs asks, at least 30 s after ``RESOURCE_EXHAUSTED`` and at least 1 s
    after ``UNAVAILABLE``/``INTERNAL``/``DEADLINE_EXCEEDED``, doubling with up to 1 s of jitter, capped at 32 s."""

    service = "gcp"

    def delay(self, error: RetryableError, retry: int, rng: random.Random) -> float:
        if error.retry_after is not None:
            return error.retry_after
        if _flags(error)[0]:
            return 30.0 + rng.uniform(0, 1)
        return min(2.0 ** (retry - 1) + rng.uniform(0, 1), 32.0)


HTTP = Http()


@dataclass(frozen=True)
class RetryPolicy:
    """How a plan or an apply retries: ``attempts`` per request, ``deadline`` seconds for the whole
    run, the per-service budget size (``budget``: tokens, see :class:`Rules`), and what to wait with.

    ``observe`` hears of every retry (service, wait in seconds): the chaos tests and benchmarks count them.
    """

    attempts: int = 5
    deadline: float = 600.0
    budget: int = 500
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    seed: int | None = None
    observe: Callable[[str, float], None] | None = None


@dataclass
class Stats:
    """What a session spent: retries per service, seconds waited, requests given up."""

    retries: Counter[str] = field(default_factory=Counter)
    waited: float = 0.0
    gave_up: int = 0


class Session:
    """The retry state of one plan or one apply: budgets per service, the deadline, what was spent."""

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self.deadline = self.policy.clock() + self.policy.deadline
        self.rng = random.Random(self.policy.seed)
        self.stats = Stats()
        self._tokens: dict[int, int] = {}
        self._lock = threading.Lock()

    def expired(self) -> bool:
        return self.policy.clock() >= self.deadline

    def _refuse(self, rules: Rules, error: RetryableError, attempt: int, verifying: bool) -> tuple[str, float]:
        """Why not to retry (``""``: retry) and the wait before the retry; takes the retry's cost."""
        if attempt >= self.policy.attempts:
            return f"gave up after {attempt} attempts", 0.0
        with self._lock:
            wait = rules.delay(error, attempt, self.rng)
            if self.policy.clock() + wait > self.deadline:
                deadline = f"{self.policy.deadline:g}s"
                return f"gave up after {attempt} attempts: the {deadline} deadline of this run passed", 0.0
            if not verifying:
                left = self._tokens.get(id(rules), min(rules.capacity, self.policy.budget))
                if left < rules.cost(error):
                    return f"gave up after {attempt} attempts: the retry budget for {rules.service} is spent", 0.0
                self._tokens[id(rules)] = left - rules.cost(error)
            self.stats.retries[rules.service] += 1
            self.stats.waited += wait
        return "", wait

    def _succeeded(self, rules: Rules, refund: int) -> None:
        with self._lock:
            full = min(rules.capacity, self.policy.budget)
            left = self._tokens.get(id(rules), full)
            self._tokens[id(rules)] = min(full, left + (refund or rules.success_refill))


_SESSION: contextvars.ContextVar[Session | None] = contextvars.ContextVar("memprov_retry_session", default=None)
_VERIFYING: contextvars.ContextVar[bool] = contextvars.ContextVar("memprov_retry_verifying", default=False)


def current() -> Session:
    """The session of the plan or apply running in this context (a fresh default one outside any)."""
    return _SESSION.get() or Session()


@contextlib.contextmanager
def session(policy: RetryPolicy | Session | None = None) -> Iterator[Session]:
    """Run a plan or an apply under one retry session (a :class:`RetryPolicy` opens a new one)."""
    s = policy if isinstance(policy, Session) else Session(policy)
    token = _SESSION.set(s)
    try:
        yield s
    finally:
        _SESSION.reset(token)


def bound(fn: Callable[P, T]) -> Callable[P, T]:
    """``fn`` run in a copy of the caller's context, for a worker thread (the session goes with it)."""
    ctx = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return ctx.copy().run(fn, *args, **kwargs)

    return run


def request(rules: Rules, fn: Callable[[], T]) -> T:
    """``fn`` (one request), retried on :class:`RetryableError` by ``rules`` within the session's limits.

    Giving up raises :class:`OperationError` with the last error and why (``gave up after N attempts``).
    """
    s, verifying = current(), _VERIFYING.get()
    attempt, refund = 1, 0
    while True:
        try:
            result = fn()
        except RetryableError as e:
            why, wait = s._refuse(rules, e, attempt, verifying)
            if why:
                with s._lock:
                    s.stats.gave_up += 1
                raise OperationError(f"{e} ({why})") from e
            refund = 0 if verifying else rules.cost(e)  # a read-back took nothing from the budget
            if s.policy.observe is not None:
                s.policy.observe(rules.service, wait)
            s.policy.sleep(wait)
            attempt += 1
            continue
        if not verifying:
            s._succeeded(rules, refund)
        return result


def write(rules: Rules, fn: Callable[[], Any], landed: Callable[[], bool], *, resend: bool = True) -> None:
    """A write whose outcome is reported exactly: ``fn`` retried as :func:`request`, and ``landed()`` (does
    live now hold what ``fn`` sends?) asked before giving up, so a lost answer to a write that was
    carried out is not a failure. ``resend=False`` (a non-idempotent create): ``landed()`` is also asked
    before sending again after an unsure failure, so that a retry never makes a duplicate.
    """
    attempted, unsure = False, False

    def landed_now() -> bool:
        token = _VERIFYING.set(True)
        try:
            return landed()
        finally:
            _VERIFYING.reset(token)

    def once() -> None:
        nonlocal attempted, unsure
        if attempted and unsure and not resend and landed_now():
            return
        attempted = True
        try:
            fn()
        except RetryableError as e:
            unsure = _flags(e)[1]
            raise

    try:
        request(rules, once)
    except OperationError as e:
        if not isinstance(e.__cause__, RetryableError):
            raise  # a refusal by the service (400, 403, 409...): it did not carry it out
        try:
            done = landed_now()
        except OperationError as unknown:
            raise OperationError(f"{e}; {UNKNOWN} ({unknown})") from e
        if done:
            return
        raise OperationError(f"{e}; {NOT_CHANGED}") from e
