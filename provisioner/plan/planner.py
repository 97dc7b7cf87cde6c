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
        live_owned=sum(1 for r in live_all if r.owned),
        notes=inexact + tuple(backend.notes()),
        inexact=inexact,
    )


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
