"""What every orchestrator client provides, and the HTTP plumbing they share (httpx).

A client ``observe``s the job with reads only, turns a decision into the exact list of
:class:`Call` s it would send (``plan``: this list is what a dry run audits), and ``execute``s them
in order, verifying each step before the next, from a given step on (so a half-done sequence is
resumed, not restarted). A call that fails stops the sequence with :class:`StepFailed`, which
carries how far it got. Tokens are registered with the redactor; calls never carry them.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.breaker.planner import Decision, Observed
from provisioner.core.errors import OperationError

if TYPE_CHECKING:
    import httpx

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Call:
    """One request the breaker sends: ``op`` is ``METHOD /path`` for HTTP, an API operation otherwise."""

    name: str
    op: str
    body: Any = None
    params: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    mutating: bool = True
    expect: tuple[int, ...] = (200,)
    verify: Mapping[str, Any] = field(default_factory=dict)  # client-specific check before the next step

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["params"] = dict(self.params)
        out["verify"] = dict(self.verify)
        out["expect"] = list(self.expect)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Call:
        return cls(**{**raw, "expect": tuple(raw.get("expect", (200,)))})


@dataclass(frozen=True)
class StepResult:
    call: str
    status: int | str
    ms: int
    note: str = ""
    since_delivery_ms: int = 0  # from the webhook's arrival to this step's end (filled in by the service)


class StepFailed(OperationError):
    def __init__(self, message: str, done: int) -> None:
        super().__init__(message)
        self.done = done


Record = Callable[[int, StepResult], None]


class Client(ABC):
    """An orchestrator as the breaker sees it."""

    name: str = ""

    @abstractmethod
    def observe(self) -> Observed:
        """The run at risk and its memory, with reads only."""

    @abstractmethod
    def plan(self, decision: Decision, observed: Observed, marker: str) -> list[Call]:
        """The calls that carry out ``decision``; ``marker`` is written to the orchestrator side."""

    @abstractmethod
    def execute(self, calls: list[Call], start: int, record: Record) -> list[StepResult]:
        """Send ``calls[start:]`` in order, verifying each; ``record(i, result)`` after each success."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""


class HttpClient(Client):
    """An orchestrator reached over HTTP with httpx; subclasses build the calls and the checks."""

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 15, **kw: Any) -> None:
        import httpx  # only once an alert needs an orchestrator: `breaker serve` starts without it

        self.http = httpx.Client(base_url=url, headers=dict(headers or {}), timeout=timeout, **kw)
        self.what = self.name or url

    def close(self) -> None:
        self.http.close()

    def request(self, call: Call) -> httpx.Response:
        method, _, path = call.op.partition(" ")
        import httpx

        headers = {"Content-Type": call.content_type} if call.body is not None else {}
        try:
            return self._send(method, path, call, headers)
        except httpx.HTTPError as e:
            raise OperationError(f"{self.what}: {call.op}: {type(e).__name__}: {e}") from None

    def _send(self, method: str, path: str, call: Call, headers: dict[str, str]) -> httpx.Response:
        content = None
        if call.body is not None:
            import json

            content = json.dumps(call.body).encode()
        return self.http.request(method, path, params=dict(call.params) or None, content=content, headers=headers)

    def get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request(Call("read", f"GET {path}", params=params or {}, mutating=False, expect=(200, 404)))

    def check(self, call: Call, response: httpx.Response) -> str:
        """Verify a step after its response; return a note, raise to stop. Default: nothing more."""
        return ""

    def execute(self, calls: list[Call], start: int, record: Record) -> list[StepResult]:
        results = []
        for i in range(start, len(calls)):
            call = calls[i]
            t0 = time.monotonic()
            response = self.request(call)
            if response.status_code not in call.expect:
                raise StepFailed(
                    f"{self.what}: step {i + 1} ({call.name}) {call.op} answered {response.status_code}: "
                    f"{response.text[:300]}",
                    i,
                )
            try:
                note = self.check(call, response)
            except OperationError as e:
                raise StepFailed(f"{self.what}: step {i + 1} ({call.name}): {e}", i) from None
            result = StepResult(call.name, response.status_code, round((time.monotonic() - t0) * 1000), note)
            record(i, result)
            results.append(result)
        return results


def wait_for(what: str, probe: Callable[[], Any], ok: Callable[[Any], bool], timeout: float, every: float = 0.5) -> Any:
    """Poll ``probe`` until ``ok`` holds; raise with the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise OperationError(f"{what}: still {value!r} after {timeout:g} s")
        time.sleep(every)
