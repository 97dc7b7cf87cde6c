"""Planning: read what is live, normalise both sides with the same function, diff, filter.

:func:`plan_backend` is the template method of the backend contract: the target reads the owned
resources (and any unowned one whose key the spec wants), the backend normalises desired and live
bodies alike, the diff becomes create / update / delete / no-op / conflict changes that carry the
resources themselves, and the backend may drop false positives. :func:`make_plan` plans every
backend concurrently, under one retry session (each read request is retried on its own, see
:mod:`provisioner.plan.retry`); a backend whose live state cannot be read reports its error instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from provisioner.core.errors import MemprovError, SpecError
from provisioner.kinds.base import Level
from provisioner.plan.contract import Backend, Target
from provisioner.plan.model import ORDER, Action, BackendPlan, Change, Plan, Resource, canonical
from provisioner.plan.retry import RetryPolicy, bound, session

DEFAULT_CONCURRENCY = 8
Binding = tuple[Backend, Target]  # a backend and the target its environment names


def plan_backend(backend: Backend, target: Target) -> BackendPlan:
    """The changes that make ``target`` hold exactly what ``backend`` renders (owned resources only)."""
    if target.STREAMS:
        return _streamed(backend, target)
    desired = {r.key: r for r in backend.desired}
    live_all = target.read_live(backend.desired)
    live = {r.key: r for r in live_all}
    changes: list[Change] = []
    norm = backend.normalise

    def change(action: Action, want: Resource | None, have: Resource | None, **kw: Any) -> Change:
        some = want or have
        assert some is not None
        return Change(
            action,
            backend.name,
            some.kind,
            some.key,
            some.title,
            some.job,
            desired=norm(want.body) if want is not None else None,
            live=norm(have.body) if have is not None else None,
            want=want,
            have=have,
            **kw,
        )

    for key, want in desired.items():
        have = live.get(key)
        if have is None:
            changes.append(change(Action.CREATE, want, None))
        elif not have.owned:
            changes.append(change(Action.CONFLICT, want, have, reason="exists but is not managed by memprov"))
        elif canonical(norm(have.body)) == canonical(norm(want.body)):
            changes.append(change(Action.NOOP, want, have))
        else:
            details = backend.describe_change(norm(want.body), norm(have.body))
            changes.append(change(Action.UPDATE, want, have, details=details))
    for key, have in live.items():
        if key not in desired and have.owned:
            changes.append(change(Action.DELETE, None, have, reason="no longer in the spec"))
    return _finish(backend, target, changes, sum(1 for r in live_all if r.owned))


def _finish(backend: Backend, target: Target, changes: list[Change], live_owned: int) -> BackendPlan:
    changes = backend.filter_changes(changes)
    changes.sort(key=lambda c: (ORDER[c.action], c.key))
    inexact = tuple(
        f"{s.job}: {s.kind.value} is {s.support.level.value} on {backend.name}"
        + (f" ({s.support.why})" if s.support.why else "")
        for s in backend.support()
        if s.support.level is not Level.NATIVE
    )
    return BackendPlan(
        backend.name,
        target.describe(),
        tuple(changes),
        live_owned=live_owned,
        notes=inexact + tuple(backend.notes()),
        inexact=inexact,
    )


def _streamed(backend: Backend, target: Target) -> BackendPlan:
    """:func:`plan_backend` against a files target, one resource at a time: each desired resource is
    rendered, compared with its file and let go. A file that holds exactly what apply would write is
    unchanged without being parsed, and an unchanged resource keeps no body in the plan, so memory
    does not grow with the number of unchanged resources (the plan of 10,000 jobs after an apply)."""
    present = target.present()
    norm = backend.normalise
    changes: list[Change] = []
    seen: set[str] = set()
    live_owned = 0

    def change(action: Action, want: Resource | None, have: Resource | None, **kw: Any) -> Change:
        some = want or have
        assert some is not None
        desired = norm(want.body) if want is not None else None
        live = norm(have.body) if have is not None else None
        return Change(
            action, backend.name, some.kind, some.key, some.title, some.job, desired, live, want=want, have=have, **kw
        )

    for want in backend.stream():
        if want.key in seen:
            raise AssertionError(f"{backend.name} rendered duplicate keys: {[want.key]}")
        seen.add(want.key)
        path = present.get(want.key)
        if path is not None and target.holds(want, path):
            live_owned += 1
            slim = Resource(want.kind, want.key, None, want.owned, want.job, want.title)  # its key, for finish()
            changes.append(Change(Action.NOOP, backend.name, want.kind, want.key, want.title, want.job, want=slim))
            continue
        have = target.read_one(want.key, path) if path is not None else None
        if have is None:
            changes.append(change(Action.CREATE, want, None))
        elif not have.owned:
            changes.append(change(Action.CONFLICT, want, have, reason="exists but is not managed by memprov"))
        else:
            live_owned += 1
            desired, live = norm(want.body), norm(have.body)
            if canonical(live) == canonical(desired):
                changes.append(change(Action.NOOP, want, have))
            else:
                changes.append(change(Action.UPDATE, want, have, details=backend.describe_change(desired, live)))
    for key, path in present.items():
        if key not in seen and (have := target.read_one(key, path)) is not None and have.owned:
            live_owned += 1
            changes.append(change(Action.DELETE, None, have, reason="no longer in the spec"))
    return _finish(backend, target, changes, live_owned)


def make_plan(
    env: str,
    spec_name: str,
    bindings: Sequence[Binding],
    warnings: Sequence[str] = (),
    retry: RetryPolicy | None = None,
) -> Plan:
    """Plan every backend concurrently; a backend that cannot be read reports its error."""
    with session(retry or RetryPolicy()):
        return _plan_all(env, spec_name, bindings, warnings)


def _plan_all(env: str, spec_name: str, bindings: Sequence[Binding], warnings: Sequence[str]) -> Plan:
    def one(binding: Binding) -> BackendPlan:
        backend, target = binding
        try:
            return plan_backend(backend, target)
        except SpecError:  # rendering refused the input (a template, an expression): not a read failure
            raise
        except MemprovError as e:
            return BackendPlan(backend.name, target.describe(), (), error=e.render())

    if len(bindings) <= 1:
        plans = [one(b) for b in bindings]
    else:
        with ThreadPoolExecutor(max_workers=min(len(bindings), DEFAULT_CONCURRENCY)) as pool:
            plans = list(pool.map(bound(one), bindings))
    return Plan(env, spec_name, tuple(plans), tuple(warnings))
