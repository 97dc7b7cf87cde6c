"""What the cloud backends (cloudwatch, azure, gcp) share: ownership by labels or tags, the
native / approximated / unsupported report per job and kind, and a files codec of one JSON
request body per resource (``memprov-<env>-….json``).

A subclass says what its resources are called (``KIND``), where a body keeps its labels
(:meth:`labels`), which severities have somewhere to notify (:meth:`receivers`) and what to
tell the user when one has none (``NO_RECEIVER``), and gives its render module (``RENDER``, a
:class:`CloudRenderer`: the per-kind table's ``support(job)``, ``platform(job)``, ``caveats(job)``).
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from provisioner.core.errors import OperationError
from provisioner.core.names import MANAGED_BY, ownership_tags
from provisioner.kinds.base import Kind, Level, Support
from provisioner.plan.contract import Backend, JobSupport
from provisioner.plan.model import Resource, canonical
from provisioner.render.cloud import Rendering
from provisioner.spec.resolved import ResolvedJob


class CloudRenderer(Protocol):
    """What a cloud's render module offers its backend (each module is one)."""

    @property
    def TABLE(self) -> Mapping[Kind, Rendering[Any]]:  # the module constant it reads
        """How it expresses each kind it renders."""

    def support(self, job: ResolvedJob) -> list[tuple[Kind, Support]]: ...

    def needs(self, job: ResolvedJob) -> dict[Kind, tuple[str, ...]]: ...

    def platform(self, job: ResolvedJob) -> str: ...

    def caveats(self, job: ResolvedJob) -> list[str]: ...


class CloudBackend(Backend):
    KIND: ClassVar[str]
    RENDER: ClassVar[CloudRenderer]
    NO_RECEIVER: ClassVar[str]  # "no SNS topic for {severities}: …"
    FILE_GLOB = "*.json"

    @abstractmethod
    def labels(self, body: Any) -> dict[str, str]:
        """The body's tags / labels / user_labels, as a mapping."""

    @abstractmethod
    def receivers(self) -> set[str]:
        """The severities that notify someone (a topic, an action group, a channel)."""

    def extra_notes(self) -> list[str]:
        return []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.SUPPORTS = frozenset(kind for kind, r in cls.RENDER.TABLE.items() if r.render is not None)

    def owns(self, body: Any) -> bool:
        """Every ownership label present with this environment's and spec's values."""
        labels = self.labels(body)
        return all(labels.get(k) == v for k, v in ownership_tags(self.spec.env, self.spec.name).items())

    def support(self) -> list[JobSupport]:
        out = []
        for job in self.spec.jobs_using(self.name):
            needs = self.RENDER.needs(job)
            out += [
                JobSupport(job.id, kind, support, needs.get(kind, ())) for kind, support in self.RENDER.support(job)
            ]
        return out

    def notes(self) -> list[str]:
        """Per job, which alert kinds are native, approximated or unsupported here; then caveats."""
        r, out = self.RENDER, []
        for job in self.spec.jobs_using(self.name):
            found = r.support(job)
            parts = [f"{lvl.value}: {', '.join(k.value for k, s in found if s.level is lvl)}" for lvl in Level]
            shown = " · ".join(p for p in parts if not p.endswith(": "))
            out.append(f"{job.id}: alert kinds on {self.name} ({r.platform(job)}) — {shown}")
            out += r.caveats(job)
        severities = {self.labels(res.body).get("memprov-severity", "") for res in self.desired} - {""}
        missing = sorted(s for s in severities if s not in self.receivers())
        if missing:
            out.append(self.NO_RECEIVER.format(severities=", ".join(missing)))
        return out + self.extra_notes()

    # --- files codec: one JSON body per resource -------------------------------------------------
    def filename(self, key: str) -> str:
        return f"{key}.json"

    def key_for_path(self, relpath: str) -> str | None:
        prefix = f"{MANAGED_BY}-{self.spec.env}-"
        if "/" in relpath or not relpath.endswith(".json") or not relpath.startswith(prefix):
            return None
        return relpath.removesuffix(".json")

    def kind_of(self, key: str) -> str:
        return self.KIND

    def serialise(self, resource: Resource) -> str:
        return json.dumps(resource.body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def parse(self, key: str, text: str) -> tuple[Any, bool]:
        try:
            body = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(str(e)) from None
        return body, self.owns(body)


class GuardedTarget:
    """The checks the cloud targets make before writing: what the plan read must still be there,
    still memprov's, and unchanged since (its ``version``), unless ``--force``; and memprov never
    deletes what it does not own, ``--force`` or not.

    A target sets ``NOUN`` ("alarm"), ``SERVICE`` ("CloudWatch"), ``MARKER`` ("tags") and
    :meth:`version` (the last-modified stamp of a live resource the plan or a re-read saw), and keeps
    its backend as ``owner`` (whose ``normalise`` tells when live already is as desired).
    """

    NOUN: ClassVar[str]
    SERVICE: ClassVar[str]
    MARKER: ClassVar[str]
    DETECTS_EDITS: ClassVar[bool] = True
    owner: Backend

    def same(self, now: Resource | None, desired: Resource) -> bool:
        """Whether ``now`` already is ``desired``, both normalised: a write of memprov's that landed (or the
        same edit made by someone else), so there is nothing to refuse and nothing to send."""
        norm = self.owner.normalise
        return now is not None and canonical(norm(now.body)) == canonical(norm(desired.body))

    def version(self, resource: Resource) -> str | None:
        raise NotImplementedError

    def check_unchanged(self, now: Resource | None, planned: Resource, verb: str, force: bool) -> None:
        """``now`` (a fresh read) against ``planned`` (what the plan read): refuse what changed since."""
        if now is None:
            raise OperationError(f"{self.NOUN} {planned.key} was deleted since the plan; run memprov plan again")
        if force:
            return
        if planned.owned and not now.owned:
            raise OperationError(
                f"{self.NOUN} {planned.key} is no longer managed by memprov ({self.MARKER}); it was not {verb}"
            )
        if self.version(planned) != self.version(now):
            raise OperationError(
                f"{self.NOUN} {planned.key} was changed in {self.SERVICE} since the plan; it was not {verb}. "
                "Review it with memprov plan, or apply --force."
            )

    def check_takeover(self, live: Resource, force: bool) -> None:
        """An update of a resource memprov does not own: only with ``--force`` (the engine asks only then)."""
        if not live.owned and not force:
            raise OperationError(f"{self.NOUN} {live.key} is not managed by memprov; pass --force to take it over")

    def check_deletable(self, now: Resource | None, planned: Resource, force: bool) -> bool:
        """Whether to delete: False when already gone; refused when not memprov's, even with ``--force``."""
        if now is None:
            return False
        if not now.owned:
            raise OperationError(
                f"{self.NOUN} {planned.key} is no longer managed by memprov ({self.MARKER}); it was not deleted"
            )
        self.check_unchanged(now, planned, "deleted", force)
        return True
