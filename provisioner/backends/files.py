"""The files target: every backend can write its rendered artefacts to a directory.

This is the embedded default (the ``local`` environment) and how GitOps users consume memprov.
Reads parse each file the backend recognises and decide ownership from the marker inside it;
writes are atomic (temporary file, fsync, rename), so a crash or Ctrl-C never leaves a
half-written file; deletes touch only files memprov owns.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from provisioner.backends.base import Backend, Resource, Target
from provisioner.core.errors import OperationError, SpecError
from provisioner.core.yamlio import dumps, loads
from provisioner.spec.resolved import ResolvedSpec


class FilesConfig(BaseModel):
    """``targets.<backend>: {type: files, dir: ...}``; ``dir`` defaults to ``<output_dir>/<backend>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["files"] = "files"
    dir: str | None = None


class FileCodec(Protocol):
    """What a backend provides so that the files target can store its resources."""

    FILE_GLOB: ClassVar[str]

    def filename(self, key: str) -> str:
        """Relative path for a resource key."""
        ...

    def key_for_path(self, relpath: str) -> str | None:
        """Inverse of :meth:`filename`; None for files this backend does not write."""
        ...

    def kind_of(self, key: str) -> str: ...

    def serialise(self, resource: Resource) -> str: ...

    def parse(self, key: str, text: str) -> tuple[Any, bool]:
        """(body, owned) from a file's text; raise ValueError if it cannot be read."""
        ...


def atomic_write(path: Path, text: str, *, sync_dir: bool = True, durable: bool = True) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a torn one.

    ``sync_dir=False`` leaves the directory's fsync (which makes the rename durable) to the caller,
    who writes many files into few directories: :func:`sync_dirs` once for all of them.
    ``durable=False`` skips the fsyncs altogether, for output that is regenerated at will
    (``memprov render``): still atomic for readers, but a power cut may lose the last files written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir and durable:
        sync_dirs([path.parent])


def sync_dirs(dirs: Iterable[Path]) -> None:
    """fsync each directory once: the renames into it survive a crash."""
    for directory in dict.fromkeys(dirs):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _in_the_way(path: Path) -> str:
    """Why a write failed, when it is something the user can see: a directory or a file in the way."""
    if path.is_dir():
        return f"; {path} is a directory in the way"
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    return f"; {blocker} is a file in the way" if blocker else ""


class FilesTarget(Target):
    type = "files"

    def __init__(self, root: Path, display: str | None = None) -> None:
        self.root = root
        self.display = display or str(root)

    def describe(self) -> str:
        return f"files {self.display}"

    def _codec(self, backend: Backend) -> FileCodec:
        if not hasattr(backend, "serialise"):
            raise TypeError(f"backend {backend.name} cannot be written to files")
        return backend  # type: ignore[return-value]

    def read_live(self, backend: Backend) -> list[Resource]:
        codec = self._codec(backend)
        if not self.root.is_dir():
            return []
        out = []
        wanted = backend.desired_keys
        for path in sorted(self.root.glob(codec.FILE_GLOB)):
            rel = path.relative_to(self.root).as_posix()
            key = codec.key_for_path(rel)
            if key is None or not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise OperationError(f"{path}: cannot read ({e}); fix or remove the file") from e
            try:
                body, owned = codec.parse(key, text)
            except ValueError:
                # unreadable: ours only if it still carries our marker, for this environment and spec
                body, owned = {"unreadable": text[:200]}, yaml_owned(text, backend.spec.env, backend.spec.name)
            if owned or key in wanted:
                out.append(Resource(kind=codec.kind_of(key), key=key, body=body, owned=owned, title=rel))
        return out

    def _path(self, backend: Backend, key: str) -> Path:
        return self.root / self._codec(backend).filename(key)

    def _write(self, backend: Backend, resource: Resource) -> None:
        path = self._path(backend, resource.key)
        try:
            atomic_write(path, self._codec(backend).serialise(resource))
        except OSError as e:
            raise OperationError(f"{path}: cannot write ({e.strerror}){_in_the_way(path)}") from e

    def create(self, backend: Backend, desired: Resource) -> None:
        self._write(backend, desired)

    def update(self, backend: Backend, desired: Resource, live: Resource) -> None:
        self._write(backend, desired)

    def delete(self, backend: Backend, live: Resource) -> None:
        path = self._path(backend, live.key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as e:
            raise OperationError(f"{path}: cannot delete ({e.strerror})") from e


def marker_line(env: str, spec_name: str) -> str:
    """First line of every YAML file memprov writes; it is also the ownership marker."""
    return (
        f"# Generated by memprov; do not edit (change memprov.yaml and run memprov apply). "
        f"managed-by=memprov memprov-env={env} memprov-spec={spec_name}\n"
    )


def yaml_owned(text: str, env: str, spec_name: str) -> bool:
    first = text.split("\n", 1)[0]
    return (
        "managed-by=memprov" in first
        and f"memprov-env={env} " in first + " "
        and f"memprov-spec={spec_name} " in first + " "
    )


class YamlFiles:
    """Codec mixin: resources stored as YAML files whose first line is the ownership marker."""

    spec: ResolvedSpec
    resource_kind: ClassVar[str]

    def kind_of(self, key: str) -> str:
        return self.resource_kind

    def serialise(self, resource: Resource) -> str:
        return dumps(resource.body, header=marker_line(self.spec.env, self.spec.name))

    def parse(self, key: str, text: str) -> tuple[Any, bool]:
        try:
            body = loads(text, key).data
        except SpecError as e:
            raise ValueError(str(e)) from None
        return body, yaml_owned(text, self.spec.env, self.spec.name)
