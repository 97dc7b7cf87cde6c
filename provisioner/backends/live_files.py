"""Files that a running server reads (Prometheus rule files, ``alertmanager.yml``): edits made since
the plan are refused, and what the server runs, not just what is on disk, is the live state.

:class:`GuardedFiles` remembers the bytes of each file the plan read (a hash in the resource's
handle): an update or delete of a file edited since then is refused unless ``apply --force`` (or the
file already is as desired), and a create meets an unowned file that appeared since the plan with a
refusal. :class:`ServerFiles` adds the server: :meth:`ServerFiles.unloaded` names the files the
server does not run as they are on disk (a reload that failed), which the plan then shows as still
to be created, so that a re-plan after a failed reload is not empty; ``finish`` reloads the server
(``POST /-/reload``, retried per request) and checks that it runs what was written.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from provisioner.backends.files import FilesTarget
from provisioner.backends.http import HttpApi, NotFound
from provisioner.core.errors import OperationError
from provisioner.core.types import SecretRef
from provisioner.plan.contract import Backend
from provisioner.plan.model import Resource, canonical


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


class GuardedFiles(FilesTarget):
    """A files target that refuses to overwrite or delete a file edited since the plan (see the module)."""

    DETECTS_EDITS: ClassVar[bool] = True
    STREAMS: ClassVar[bool] = False  # the handle of each file the plan read is what refuses an edit since
    NOUN: ClassVar[str] = "file"

    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        out = []
        for r in super().read_live(desired):
            path = self.path(r.key)
            out.append(Resource(r.kind, r.key, r.body, r.owned, r.job, r.title, _digest(path)) if path.is_file() else r)
        return out

    def _now(self, key: str) -> tuple[Resource | None, str | None]:
        """The file as it is now (parsed) and the hash of its bytes; (None, None) when it is gone."""
        path = self.path(key)
        digest = _digest(path)
        if digest is None:
            return None, None
        try:
            body, owned = self.codec.parse(key, path.read_text(encoding="utf-8"))
        except (ValueError, OSError, UnicodeDecodeError):
            return Resource(self.codec.kind_of(key), key, None, owned=False), digest
        return Resource(self.codec.kind_of(key), key, body, owned=owned), digest

    def _same(self, now: Resource | None, desired: Resource) -> bool:
        norm = self.codec.normalise
        return now is not None and now.owned and canonical(norm(now.body)) == canonical(norm(desired.body))

    def create(self, desired: Resource, *, force: bool = False) -> None:
        now, _ = self._now(desired.key)
        if now is not None and not now.owned and not force:
            raise OperationError(
                f"{self.path(desired.key)} appeared after the plan, not managed by memprov; nothing was written. "
                "Run memprov plan again to review it."
            )
        if not self._same(now, desired):
            self.write(desired)

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        if not live.owned and not force:
            raise OperationError(f"{self.path(desired.key)} is not managed by memprov; pass --force to take it over")
        now, digest = self._now(desired.key)
        if self._same(now, desired):
            return  # already as desired
        if not force and live.handle is not None and digest != live.handle:
            raise OperationError(
                f"{self.path(desired.key)} was changed since the plan; it was not updated. "
                "Review it with memprov plan, or apply --force."
            )
        self.write(desired)

    def delete(self, live: Resource, *, force: bool = False) -> None:
        _, digest = self._now(live.key)
        if digest is None:
            return
        if not force and live.handle is not None and digest != live.handle:
            raise OperationError(
                f"{self.path(live.key)} was changed since the plan; it was not deleted. "
                "Review it with memprov plan, or apply --force."
            )
        super().delete(live, force=force)


class ServerFiles(GuardedFiles):
    """Files a server runs: the live state is what it has loaded; ``finish`` reloads it and checks."""

    SERVER: ClassVar[str]  # "Prometheus"

    def __init__(self, root: Path, display: str, codec: Backend, url: str, token: SecretRef | None) -> None:
        super().__init__(root, display, codec)
        self.url, self.token = url, token

    def api(self) -> HttpApi:
        return HttpApi(self.url, what=self.SERVER, token=self.token)

    @abstractmethod
    def unloaded(self, api: HttpApi, files: Sequence[Resource]) -> tuple[set[str], list[Resource]]:
        """Of ``files`` (read from disk), the keys the server does not run as they are on disk; and what it
        still runs from files that are gone (owned resources, to be deleted)."""

    @abstractmethod
    def check_loaded(self, api: HttpApi, desired: Sequence[Resource], wait: float) -> str:
        """After a reload: what the server does not run of ``desired`` (``""``: all of it), waiting up to
        ``wait`` seconds for it to finish loading."""

    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        files = super().read_live(desired)
        api = self.api()
        try:
            stale, gone = self.unloaded(api, [r for r in files if r.owned])
        finally:
            api.close()
        return [r for r in files if r.key not in stale] + gone

    def finish(self, desired: Sequence[Resource], changed: bool) -> None:
        if not changed:
            return
        api = self.api()
        try:
            try:
                api.request("POST", "/-/reload")
            except NotFound as e:
                raise OperationError(
                    f"{e}; start {self.SERVER} with --web.enable-lifecycle so that memprov can reload it "
                    "(the files were written)"
                ) from e
            except OperationError as e:  # the answer may be what was lost: does it run them?
                try:
                    missing = self.check_loaded(api, desired, wait=0)
                except OperationError:
                    missing = "them"
                if missing:
                    raise OperationError(
                        f"{e}; the files were written but {self.SERVER} does not run {missing}: apply again"
                    ) from e
                return
            missing = self.check_loaded(api, desired, wait=10)
            if missing:
                raise OperationError(f"{self.SERVER} {self.url} does not run {missing} after the reload")
        finally:
            api.close()
