"""The harness interface every live target implements for the contract and chaos suites.

A harness runs one target's server (moto, a fake, or a real Prometheus/Alertmanager) behind a
fault proxy, in a copy of the example repository whose environment file points memprov at the
proxy. Plans and applies go through memprov's real loader, registry, backend, client and engine;
retries sleep in virtual time (recorded, never waited). What the test asserts comes from the
harness's own view of the service (:meth:`Harness.view`), read without memprov.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from provisioner.backends.registry import build
from provisioner.plan import retry
from provisioner.plan.contract import Backend, Target
from provisioner.plan.engine import ApplyReport, Outcome, apply
from provisioner.plan.model import Action, Plan, Resource, canonical
from provisioner.plan.planner import Binding, make_plan
from provisioner.plan.retry import RetryPolicy
from provisioner.spec.loader import load
from tests.fakes.chaos import Chaos, Request
from tests.helpers import example_repo

# doc-embed's own growth line in memprov.yaml: the edit that takes the job off a backend
PRUNE_LINE = "    growth: {factor: 3, window: 15m}"


@dataclass(frozen=True)
class Item:
    """A resource as the service holds it, read by the test itself."""

    body: Any
    owned: bool


class Harness(ABC):
    """One live target and its server (see the module)."""

    name: ClassVar[str]  # the test id
    backend: ClassVar[str]  # memprov's backend
    env: ClassVar[str]  # the environment whose file points at the server
    total: ClassVar[int]  # resources the example spec renders on this target
    update: ClassVar[tuple[str, str]] = (
        "thresholds: {warning: 75%, critical: 90%}",
        "thresholds: {warning: 70%, critical: 90%}",
    )
    updated: ClassVar[frozenset[str]]  # exactly what ``update`` changes
    prune: ClassVar[tuple[str, str]] = (PRUNE_LINE, PRUNE_LINE + "\n    backends: [grafana]")
    prune_updates: ClassVar[frozenset[str]] = frozenset()  # what ``prune`` updates (its deletes: the job's resources)
    stale: ClassVar[str | None]  # a key memprov would own that no job renders (None: the target has one resource)
    foreign: ClassVar[tuple[str, ...]]  # unowned keys next to memprov's that nothing may touch
    preexisting: ClassVar[frozenset[str]] = frozenset()  # unowned before memprov's first apply (a server's own file)
    lookalikes: ClassVar[bool] = True  # an unowned resource can hold a desired key (else: ownership is the name)
    local_writes: ClassVar[bool] = False  # writes are files on this machine; the wire carries only the reload
    timeout: ClassVar[float | None] = 2.0  # the client's timeout set in the environment file (None: not settable)
    variables: ClassVar[dict[str, str]] = {}
    secrets: ClassVar[tuple[str, ...]] = ()  # values that must never appear in a plan or a report

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.chaos = Chaos(timeout=self.timeout)
        self.sleeps: list[float] = []
        self.retries: list[str] = []
        self.repo = tmp / "repo"

    # --- lifecycle ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[Harness]:
        saved = {k: os.environ.get(k) for k in self.variables}
        os.environ.update(self.variables)
        try:
            with self.serve():
                example_repo(self.repo)
                self.write_env()
                yield self
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    @abstractmethod
    def serve(self) -> contextlib.AbstractContextManager[None]:
        """Start the server and the fault proxy in front of it; stop both afterwards."""

    @abstractmethod
    def write_env(self) -> None:
        """``environments/<env>.yaml`` of :attr:`repo`, pointing the target at the proxy."""

    # --- memprov ----------------------------------------------------------------------------------
    def policy(self, **kw: Any) -> RetryPolicy:
        """Retries in virtual time: every wait is recorded and moves the clock of the thread that waits (threads
        wait side by side, as they would), none is slept."""
        waited = threading.local()

        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            waited.offset = getattr(waited, "offset", 0.0) + seconds

        return RetryPolicy(
            sleep=sleep,
            clock=lambda: time.monotonic() + getattr(waited, "offset", 0.0),
            observe=lambda service, _wait: self.retries.append(service),
            **kw,
        )

    def bindings(self) -> list[Binding]:
        return build(load(self.repo / "memprov.yaml", self.env), [self.backend])

    def plan(self, **kw: Any) -> tuple[Plan, dict[str, Target]]:
        bindings = self.bindings()
        plan = make_plan(self.env, "batch-inference", bindings, retry=self.policy(**kw))
        return plan, {b.name: t for b, t in bindings}

    def apply(self, plan: Plan | None = None, targets: dict[str, Target] | None = None, *, force: bool = False,
              **kw: Any) -> tuple[Plan, ApplyReport]:  # fmt: skip
        if plan is None or targets is None:
            plan, targets = self.plan(**kw)
            assert not plan.errors, plan.errors
        return plan, apply(plan, targets, retry=self.policy(**kw), force=force)

    @property
    def codec(self) -> Backend:
        return self.bindings()[0][0]

    def desired(self) -> dict[str, Resource]:
        return {r.key: r for r in self.codec.desired}

    def edit_spec(self, old: str, new: str) -> None:
        spec = self.repo / "memprov.yaml"
        text = spec.read_text(encoding="utf-8")
        assert old in text, old
        spec.write_text(text.replace(old, new, 1), encoding="utf-8")

    def written(self, want: Resource, view: dict[str, Item] | None = None) -> bool:
        """Whether ``want`` was written (for a target of local files: on disk, whether or not the server runs it)."""
        return self.holds(want, view)

    def holds(self, want: Resource, view: dict[str, Item] | None = None) -> bool:
        """Whether the service holds ``want`` as memprov's (compared as the backend normalises bodies)."""
        item = (view if view is not None else self.view()).get(want.key)
        norm = self.codec.normalise
        return item is not None and item.owned and canonical(norm(item.body)) == canonical(norm(want.body))

    # --- the service, seen and changed without memprov ---------------------------------------------
    @abstractmethod
    def view(self) -> dict[str, Item]:
        """Every resource here (owned or not), by key, read straight from the server."""

    def duplicates(self) -> list[str]:
        """Keys held more than once (only a service whose keys are not unique can have any)."""
        return []

    @abstractmethod
    def edit(self, key: str) -> None:
        """Someone changes the resource at ``key`` (its threshold, or a title) without memprov."""

    @abstractmethod
    def plant(self, key: str, owned: bool) -> None:
        """A resource memprov did not make at ``key``: unowned (a look-alike), or carrying memprov's marker
        for this environment (a stale one of memprov's, of a job no longer in the spec)."""

    @abstractmethod
    def put(self, resource: Resource) -> None:
        """``resource`` written straight to the service, as memprov's own write would have left it."""

    # --- faults -------------------------------------------------------------------------------------
    @abstractmethod
    def is_write(self, req: Request, key: str) -> bool:
        """Whether ``req`` writes (creates or updates) the resource at ``key``."""

    @abstractmethod
    def is_read(self, req: Request) -> bool:
        """Whether ``req`` reads live state."""

    def refuse(self, key: str) -> str:
        """Every write of ``key`` refused for good (a 403); returns what the report must say about it.
        Targets whose writes are local files have no such refusal on the wire (``local_writes``)."""
        assert not self.local_writes
        self.chaos.rule("403", lambda r: self.is_write(r, key), times=None)
        return "403"


def check_report(h: Harness, report: ApplyReport, before: dict[str, Item], after: dict[str, Item]) -> None:
    """Every line of ``report`` is true of the service: applied changes hold, the rest left things as they were."""
    finish = [r for r in report.results if r.change.kind == "finish"]
    reloaded = not any(r.outcome is Outcome.FAILED for r in finish)
    for r in report.results:
        c = r.change
        if c.kind == "finish":
            continue
        if r.outcome is Outcome.APPLIED:
            if c.action is Action.DELETE:
                assert c.key not in after or not after[c.key].owned, f"{c.key} reported deleted"
            else:
                assert c.want is not None
                check = h.holds if reloaded else h.written  # a failed reload is its own line, checked below
                assert check(c.want, after), f"{c.key} reported applied, but the service does not hold it"
        elif retry.PARTLY in r.message:  # what landed and what did not is in the message
            assert c.key in after and after[c.key].owned, f"{c.key} reported partly applied ({r.message})"
        elif retry.UNKNOWN not in r.message:
            assert after.get(c.key) == before.get(c.key), f"{c.key} reported {r.outcome.value} ({r.message})"
    if not reloaded:  # the server does not run what was written, as the finish line says
        written = [r.change.want for r in report.of(Outcome.APPLIED) if r.change.want is not None]
        assert written and not all(h.holds(w, after) for w in written)
