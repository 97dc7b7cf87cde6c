"""The plan as a value: resources, changes per backend, counts, a checksum and the safety checks.

A :class:`Plan` is frozen and carries everything needed to show it (text, Markdown, JSON) and
to apply it: each :class:`Change` holds the desired and the live :class:`Resource` (the live one
with its target-private handle: ids, versions), so applying needs nothing but the plan and the
targets. Its checksum binds ``apply --checksum`` to exactly the reviewed changes.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from provisioner.core.yamlio import dumps

MASS_CHANGE_MIN_EXISTING = 10
MASS_CHANGE_FRACTION = 0.3


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    NOOP = "no-op"
    CONFLICT = "conflict"  # desired resource collides with one memprov does not own

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "delete": "-", "no-op": "=", "conflict": "!"}[self.value]


ORDER = {Action.CREATE: 0, Action.CONFLICT: 0, Action.UPDATE: 1, Action.DELETE: 2, Action.NOOP: 3}


@dataclass(frozen=True)
class Resource:
    """One thing a backend manages: a rule file, a dashboard, an alarm..."""

    kind: str
    key: str  # identity within the target (uid, group or alarm name)
    body: Any  # JSON-compatible data; what is compared
    owned: bool = True
    job: str | None = None
    title: str = ""
    handle: Any = field(default=None, compare=False)  # target-private data (ids, versions, etags)


def canonical(body: Any) -> str:
    """The one serialisation used to compare and hash bodies."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def body_hash(body: Any) -> str:
    return hashlib.sha256(canonical(body).encode()).hexdigest()[:16] if body is not None else "-"


@dataclass(frozen=True)
class Change:
    action: Action
    backend: str
    kind: str
    key: str
    title: str = ""
    job: str | None = None
    desired: Any = None
    live: Any = None
    reason: str = ""
    details: tuple[str, ...] = ()  # what changed, in words (from the backend)
    want: Resource | None = field(default=None, compare=False, repr=False)  # the desired resource, as rendered
    have: Resource | None = field(default=None, compare=False, repr=False)  # the live resource, as read

    @property
    def label(self) -> str:
        return f"{self.kind} {self.key}"

    def diff(self, context: int = 2) -> list[str]:
        """Unified diff of the live and desired bodies as readable YAML-ish lines."""
        before = _pretty(self.live).splitlines() if self.live is not None else []
        after = _pretty(self.desired).splitlines() if self.desired is not None else []
        return list(difflib.unified_diff(before, after, "live", "desired", n=context, lineterm=""))[2:]


def _pretty(body: Any) -> str:
    """Bodies as YAML (readable PromQL and text), keys in their rendered order."""
    if isinstance(body, str):
        return body

    return dumps(body)


@dataclass(frozen=True)
class BackendPlan:
    backend: str
    target: str
    changes: tuple[Change, ...]
    live_owned: int = 0
    notes: tuple[str, ...] = ()
    error: str | None = None
    inexact: tuple[str, ...] = ()  # per job, the kinds this backend approximates or cannot express (--strict)

    @property
    def desired(self) -> tuple[Resource, ...]:
        """Every resource the spec wants here (created, updated or unchanged)."""
        return tuple(c.want for c in self.changes if c.want is not None and c.action is not Action.DELETE)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is not Action.NOOP)

    def safety_problems(self) -> list[str]:
        out = []
        conflicts = [c for c in self.changes if c.action is Action.CONFLICT]
        if conflicts:
            names = ", ".join(c.key for c in conflicts[:5]) + (" ..." if len(conflicts) > 5 else "")
            out.append(
                f"{self.backend}: {len(conflicts)} resource(s) exist but are not managed by memprov "
                f"({names}); rename the job, remove them, or take them over with --force"
            )
        churn = self.count(Action.UPDATE) + self.count(Action.DELETE)
        if self.live_owned >= MASS_CHANGE_MIN_EXISTING and churn > MASS_CHANGE_FRACTION * self.live_owned:
            out.append(
                f"{self.backend}: {churn} of {self.live_owned} existing resources would be updated or "
                f"deleted (more than {MASS_CHANGE_FRACTION:.0%}); review the plan and pass --force"
            )
        return out


@dataclass(frozen=True)
class Plan:
    env: str
    spec_name: str
    backends: tuple[BackendPlan, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for b in self.backends for c in b.changes)

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for b in self.backends for c in b.actionable)

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(f"{b.backend}: {b.error}" for b in self.backends if b.error)

    def counts(self) -> dict[str, int]:
        out = {a.value: 0 for a in Action}
        for c in self.changes:
            out[c.action.value] += 1
        return out

    def safety_problems(self) -> list[str]:
        return [p for b in self.backends for p in b.safety_problems()]

    @functools.cached_property
    def checksum(self) -> str:
        """sha256 over the actionable changes: what they do, to what, from which state to which.

        Computed once per plan (it hashes every changed body; the plan is frozen).
        """
        items = sorted(
            [c.backend, c.action.value, c.kind, c.key, body_hash(c.desired), body_hash(c.live)] for c in self.actionable
        )
        payload = canonical({"env": self.env, "spec": self.spec_name, "changes": items})
        return hashlib.sha256(payload.encode()).hexdigest()
