"""The backend contract.

A backend renders the spec into :class:`Resource` objects (pure) and names a :class:`Target`
that reads, creates, updates and deletes them where they live. The base class owns ``plan``:
read live (owned resources, plus unowned ones that collide with a desired key), normalise both
sides with the same function, diff, then let the backend filter false positives. ``apply`` is
in :mod:`provisioner.plan.engine` and works on any backend through the same primitives.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from provisioner.plan.model import ORDER, Action, BackendPlan, Change, canonical
from provisioner.spec.resolved import ResolvedSpec


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


@dataclass(frozen=True)
class Support:
    """How a backend expresses one alert kind for one job."""

    job: str
    kind: str
    level: str  # native | approximated | unsupported
    note: str = ""


class Target(ABC):
    """Where a backend's resources live: a directory, an HTTP API, a cloud account."""

    type: ClassVar[str]
    force: bool = False  # apply --force: overwrite edits made since the plan (targets that can detect them)

    @abstractmethod
    def describe(self) -> str:
        """Short human description, e.g. ``files out/local/prometheus``."""

    @abstractmethod
    def read_live(self, backend: Backend) -> list[Resource]:
        """Resources memprov owns here, plus any unowned ones whose key is in ``backend.desired_keys``."""

    @abstractmethod
    def create(self, backend: Backend, desired: Resource) -> None: ...

    @abstractmethod
    def update(self, backend: Backend, desired: Resource, live: Resource) -> None: ...

    @abstractmethod
    def delete(self, backend: Backend, live: Resource) -> None: ...

    def finish(self, backend: Backend, changed: bool) -> None:  # noqa: B027 - optional hook
        """Called once after apply (e.g. to reload a server); default does nothing."""


class Backend(ABC):
    """Render + normalise + filter; the base owns ``plan``."""

    name: ClassVar[str]
    TARGETS: ClassVar[dict[str, type[BaseModel]]] = {}

    def __init__(self, spec: ResolvedSpec, target: Target) -> None:
        self.spec = spec
        self.target = target
        self._desired: list[Resource] | None = None
        self.live: dict[str, Resource] = {}

    # --- to implement ------------------------------------------------------------------
    @abstractmethod
    def render(self) -> list[Resource]:
        """Desired resources for ``self.spec``; pure and deterministic."""

    def normalise(self, body: Any) -> Any:
        """Strip server-owned or irrelevant fields; applied to desired and live alike."""
        return body

    def filter_changes(self, changes: list[Change]) -> list[Change]:
        """Drop false positives the diff cannot know about; default keeps everything."""
        return changes

    def support(self) -> list[Support]:
        """Per job and alert kind: native, approximated or unsupported here."""
        return []

    def notes(self) -> list[str]:
        """Things the plan's reader must know that are not changes (missing secrets, caveats)."""
        return []

    def describe_change(self, desired: Any, live: Any) -> tuple[str, ...]:
        """What an update changes, in words; default: nothing beyond the diff."""
        return ()

    # --- owned by the base ---------------------------------------------------------------
    @property
    def desired(self) -> list[Resource]:
        if self._desired is None:
            self._desired = self.render()
            keys = [r.key for r in self._desired]
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            if dupes:
                raise AssertionError(f"{self.name} rendered duplicate keys: {dupes}")
        return self._desired

    @property
    def desired_keys(self) -> set[str]:
        return {r.key for r in self.desired}

    def plan(self) -> BackendPlan:
        desired = {r.key: r for r in self.desired}
        live_all = self.target.read_live(self)
        live = self.live = {r.key: r for r in live_all}
        changes: list[Change] = []
        for key, want in desired.items():
            have = live.get(key)
            want_body = self.normalise(want.body)

            def change(action: Action, want: Resource = want, body: Any = want_body, **kw: Any) -> Change:
                return Change(action, self.name, want.kind, want.key, want.title, want.job, desired=body, **kw)

            if have is None:
                changes.append(change(Action.CREATE))
            elif not have.owned:
                reason = "exists but is not managed by memprov"
                changes.append(change(Action.CONFLICT, live=self.normalise(have.body), reason=reason))
            else:
                have_body = self.normalise(have.body)
                if canonical(have_body) == canonical(want_body):
                    changes.append(change(Action.NOOP, live=have_body))
                else:
                    details = self.describe_change(want_body, have_body)
                    changes.append(change(Action.UPDATE, live=have_body, details=details))
        for key, have in live.items():
            if key not in desired and have.owned:
                changes.append(
                    Change(
                        Action.DELETE,
                        self.name,
                        have.kind,
                        key,
                        have.title,
                        have.job,
                        live=self.normalise(have.body),
                        reason="no longer in the spec",
                    )
                )
        changes = self.filter_changes(changes)
        changes.sort(key=lambda c: (ORDER[c.action], c.key))
        notes = tuple(
            f"{s.job}: {s.kind} is {s.level} on {self.name}" + (f" ({s.note})" if s.note else "")
            for s in self.support()
            if s.level != "native"
        ) + tuple(self.notes())
        return BackendPlan(
            self.name,
            self.target.describe(),
            tuple(changes),
            live_owned=sum(1 for r in live_all if r.owned),
            notes=notes,
        )

    def resource(self, key: str) -> Resource:
        return next(r for r in self.desired if r.key == key)
