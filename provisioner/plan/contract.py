"""The backend contract: what a backend and a target provide so that memprov can plan and apply.

A :class:`Backend` renders the resolved spec into :class:`~provisioner.plan.model.Resource` objects
(pure), normalises bodies so that desired and live compare equal when they mean the same, says who
owns a body, and declares how its resources are written to files (every backend has a files
target) and which targets it has (:attr:`Backend.TARGETS`, data: a config model and a builder per
``type``). A :class:`Target` is where resources live: it reads what is there and creates, updates
and deletes one resource at a time; it is built from the backend and its config, and needs nothing
else afterwards. Planning (:mod:`provisioner.plan.planner`) and applying
(:mod:`provisioner.plan.engine`) work on any backend through these declared, typed hooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from provisioner.core.extras import Extra
from provisioner.kinds.base import Kind, Support
from provisioner.plan.model import Change, Resource
from provisioner.spec.resolved import ResolvedSpec


@dataclass(frozen=True)
class JobSupport:
    """How a backend expresses one alert kind of one job."""

    job: str
    kind: Kind
    support: Support
    needs: tuple[str, ...] = ()  # what must exist for the alert to see anything: metrics, agents, settings


class Target(ABC):
    """Where a backend's resources live: a directory, an HTTP API, a cloud account."""

    type: ClassVar[str]
    DETECTS_EDITS: ClassVar[bool] = False
    """Capability: an update or delete refuses a resource edited since the plan (unless ``--force``).
    Without it, the last writer wins: apply overwrites an edit made between plan and apply."""
    STREAMS: ClassVar[bool] = False  # planned one resource at a time with the three methods below (see planner)

    @abstractmethod
    def describe(self) -> str:
        """Short human description, e.g. ``files out/local/prometheus``."""

    @abstractmethod
    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        """Resources memprov owns here, plus any unowned ones whose key a ``desired`` resource has."""

    @abstractmethod
    def create(self, desired: Resource, *, force: bool = False) -> None: ...

    @abstractmethod
    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        """Replace ``live`` (as the plan read it, handle included) with ``desired``; ``force``:
        overwrite edits made since the plan and take over an unowned resource."""

    @abstractmethod
    def delete(self, live: Resource, *, force: bool = False) -> None: ...

    def present(self) -> Mapping[str, Any]:
        """Streaming targets: what is here, by key, without reading it (a handle for the two below)."""
        raise NotImplementedError

    def read_one(self, key: str, where: Any) -> Resource | None:
        """Streaming targets: the resource at ``where`` (owned or not), or None when it is gone."""
        raise NotImplementedError

    def holds(self, want: Resource, where: Any) -> bool:
        """Streaming targets: whether ``where`` holds exactly what writing ``want`` would (unchanged and ours)."""
        raise NotImplementedError

    def finish(self, desired: Sequence[Resource], changed: bool) -> None:  # noqa: B027 - optional hook
        """Called once after apply (e.g. to reload a server and check it loaded ``desired``)."""

    def lock(self) -> AbstractContextManager[None]:
        """Held from plan to the end of apply, so that two applies never write here at once.

        The files targets hold an exclusive ``flock``; services without a lease rely on the
        changed-since-the-plan checks of their updates and deletes instead (the default: no lock).
        """
        return nullcontext()


class TargetConfig(BaseModel):
    """The base of every ``targets.<backend>`` model: its ``type`` picks the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


C = TypeVar("C", bound=TargetConfig)


@dataclass(frozen=True)
class TargetType(Generic[C]):
    """One ``type`` of ``targets.<backend>``: its config model and how to build the target from it."""

    config: type[C]
    build: Callable[[Any, C], Target]  # (the backend, its validated config) -> the target
    extra: Extra | None = None  # the pip extra whose SDK the target imports (checked before it is built)


class Backend(ABC):
    """Render, normalise, own, store as files; declare targets and the kinds it expresses.

    A backend is built for one resolved spec and the validated config of its target (``None``:
    the default files target).
    """

    name: ClassVar[str]
    TARGETS: ClassVar[Mapping[str, TargetType[Any]]]
    SUPPORTS: ClassVar[frozenset[Kind]] = frozenset()  # the alert kinds it writes alerts for (octodns' SUPPORTS)
    FILE_GLOB: ClassVar[str]  # the files this backend writes under a files target's directory

    def __init__(self, spec: ResolvedSpec, config: TargetConfig | None = None) -> None:
        self.spec = spec
        self.config = config

    # --- rendering and comparing ------------------------------------------------------------------
    @abstractmethod
    def render(self) -> list[Resource]:
        """Desired resources for ``self.spec``; pure and deterministic."""

    def normalise(self, body: Any) -> Any:
        """Strip server-owned or irrelevant fields; applied to desired and live alike."""
        return body

    def filter_changes(self, changes: list[Change]) -> list[Change]:
        """Drop false positives the diff cannot know about; default keeps everything."""
        return changes

    def describe_change(self, desired: Any, live: Any) -> tuple[str, ...]:
        """What an update changes, in words; default: nothing beyond the diff."""
        return ()

    def support(self) -> list[JobSupport]:
        """Per job and alert kind: native, approximated or unsupported here (default: none to report)."""
        return []

    def notes(self) -> list[str]:
        """Things the plan's reader must know that are not changes (missing secrets, caveats)."""
        return []

    def owns(self, body: Any) -> bool:
        """Whether a live body carries memprov's ownership marker for this environment and spec (targets
        whose marker is elsewhere, a file's first line or a name prefix, decide without it)."""
        return False

    # --- the files codec (every backend can be written to a directory) ----------------------------
    @abstractmethod
    def filename(self, key: str) -> str:
        """Relative path of a resource's file."""

    @abstractmethod
    def key_for_path(self, relpath: str) -> str | None:
        """Inverse of :meth:`filename`; None for files this backend does not write."""

    def kind_of(self, key: str) -> str:
        """The resource kind a file holds."""
        return self.name

    @abstractmethod
    def serialise(self, resource: Resource) -> str: ...

    @abstractmethod
    def parse(self, key: str, text: str) -> tuple[Any, bool]:
        """(body, owned) from a file's text; raise ValueError if it cannot be read."""

    def owns_text(self, text: str) -> bool:
        """Whether an unreadable file still carries memprov's marker (so that it may be replaced)."""
        return False

    # --- owned by the base ---------------------------------------------------------------------
    @cached_property
    def desired(self) -> list[Resource]:
        found = self.render()
        dupes = sorted(k for k, n in Counter(r.key for r in found).items() if n > 1)
        if dupes:
            raise AssertionError(f"{self.name} rendered duplicate keys: {dupes}")
        return found

    def stream(self) -> Iterator[Resource]:
        """The desired resources one at a time, each rendered when asked for, so that a plan against a
        files target holds one job's resources at once (default: :attr:`desired`, rendered at once)."""
        yield from self.desired

    def target(self) -> Target:
        """The target this backend's config names (the files target by default)."""
        name = self.config.type if self.config is not None else "files"
        kind = self.TARGETS[name]
        if kind.extra is not None:
            kind.extra.require(f"targets.{self.name} type {name}")
        return kind.build(self, self.config if self.config is not None else kind.config())
