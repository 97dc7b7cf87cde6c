"""The files target: every backend can write its rendered artefacts to a directory.

This is the embedded default (the ``local`` environment) and how GitOps users consume memprov.
Reads parse each file the backend recognises and decide ownership from the marker inside it;
writes are atomic (temporary file, fsync, rename), so a crash or Ctrl-C never leaves a
half-written file; deletes touch only files memprov owns. ``apply`` holds an exclusive lock on
each target directory (:func:`directory_lock`), which also sweeps temporary files a killed apply left.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from provisioner.core.errors import OperationError, SpecError
from provisioner.core.yamlio import OUTPUT_MAX_BYTES, OUTPUT_MAX_NODES, dumps, loads
from provisioner.plan.contract import Backend, Target, TargetConfig, TargetType
from provisioner.plan.model import Resource
from provisioner.spec.resolved import ResolvedSpec

TMP_PREFIX = ".memprov-"  # temporary files of atomic writes: .memprov-<name>.<pid>-<n>.tmp
LOCK_NAME = ".memprov.lock"


class FilesConfig(TargetConfig):
    """``targets.<backend>: {type: files, dir: ...}``; ``dir`` defaults to ``<output_dir>/<backend>``."""

    type: Literal["files"] = "files"
    dir: str | None = None


def atomic_write(path: Path, text: str, *, sync_dir: bool = True, durable: bool = True) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a torn one.

    ``sync_dir=False`` leaves the directory's fsync (which makes the rename durable) to the caller,
    who writes many files into few directories: :func:`sync_dirs` once for all of them.
    ``durable=False`` skips the fsyncs altogether, for output that is regenerated at will
    (``memprov render``): still atomic for readers, but a power cut may lose the last files written.
    The text is written as UTF-8 with ``\n`` line ends, the file is left with mode 0644.
    """
    data = text.encode("utf-8")  # before anything is created: text that cannot be written leaves nothing behind
    fd, tmp = _create_temporary(path)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir and durable:
        sync_dirs([path.parent])


_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_tmp_numbers = itertools.count()


def _create_temporary(path: Path) -> tuple[int, str]:
    """Create and open a new file next to ``path`` (its directories made if missing), only for us.

    ``.memprov-<name>.<pid>-<n>.tmp``, created exclusively (``O_EXCL``, as :func:`tempfile.mkstemp`
    does, mode 0600, links not followed): unique among this process's writes by the counter and
    among processes by the pid; a name left by a killed process of the same pid is skipped.
    """
    prefix = f"{path.parent}{os.sep}{TMP_PREFIX}{path.name}.{os.getpid()}-"
    made_dirs = False
    while True:
        tmp = f"{prefix}{next(_tmp_numbers)}.tmp"
        try:
            return os.open(tmp, _TMP_FLAGS, 0o600), tmp
        except FileExistsError:
            continue
        except FileNotFoundError:
            if made_dirs:
                raise
            path.parent.mkdir(parents=True, exist_ok=True)
            made_dirs = True


def sync_dirs(dirs: Iterable[Path]) -> None:
    """fsync each directory once: the renames into it survive a crash."""
    for directory in dict.fromkeys(dirs):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def directory_lock(root: Path, shown: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``root/.memprov.lock``, or fail at once saying who holds it.

    The kernel releases the lock when its process ends, however it ends, so a killed apply never
    leaves a stale lock. While it is held, ``.memprov-*.tmp`` files are leftovers of an apply
    that was killed mid-write (nobody else may be writing here): they are removed. On release
    the lock file goes, and so do the directories it needed if nothing else was written there.
    """
    created = [p for p in (root, *root.parents) if not p.exists()]
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    fd = _acquire(path, shown)
    try:
        for stale in root.rglob(f"{TMP_PREFIX}*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # before the lock goes: whoever opened it meanwhile sees it unlinked and retries
        os.close(fd)
        for directory in created:
            with contextlib.suppress(OSError):  # not empty: the apply wrote there
                directory.rmdir()


def _acquire(path: Path, shown: str) -> int:
    import fcntl

    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise OperationError(f"{path}: cannot open the lock file ({e.strerror}){_in_the_way(path)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise OperationError(
                f"{shown} is locked by another memprov apply{f' (pid {holder})' if holder.isdigit() else ''}; "
                "nothing was changed. Wait for it to finish, then plan and apply again."
            ) from None
        try:
            current = os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:  # still the lock file, not one its holder just removed
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


def _in_the_way(path: Path) -> str:
    """Why a write failed, when it is something the user can see: a directory or a file in the way."""
    if path.is_dir():
        return f"; {path} is a directory in the way"
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    return f"; {blocker} is a file in the way" if blocker else ""


class FilesTarget(Target):
    """A backend's resources as files under one directory, in the backend's own file format."""

    type = "files"

    def __init__(self, root: Path, display: str, codec: Backend) -> None:
        self.root, self.display, self.codec = root, display, codec

    def describe(self) -> str:
        return f"files {self.display}"

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Only one apply at a time writes here; temporary files an interrupted one left are removed."""
        return directory_lock(self.root, self.display)

    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        wanted = {r.key for r in desired}
        out = []
        for key, path in self.present().items():
            found = self.read_one(key, path)
            if found is not None and (found.owned or key in wanted):
                out.append(found)
        return out

    # --- streaming (see provisioner.plan.planner): one file at a time -------------------------------
    STREAMS: ClassVar[bool] = True

    def present(self) -> dict[str, Path]:
        """The files here that the backend recognises, by resource key, without reading them."""
        if not self.root.is_dir():
            return {}
        codec = self.codec
        out = {}
        for path in sorted(self.root.glob(codec.FILE_GLOB)):
            key = codec.key_for_path(path.relative_to(self.root).as_posix())
            if key is not None and path.is_file():
                out[key] = path
        return out

    def _text(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise OperationError(f"{path}: cannot read ({e}); fix or remove the file") from e

    def read_one(self, key: str, path: Any) -> Resource | None:
        """The resource in one file (owned or not), or None when it is gone."""
        text = self._text(path)
        if text is None:
            return None
        try:
            body, owned = self.codec.parse(key, text)
        except ValueError:
            # unreadable: ours only if it still carries our marker, for this environment and spec
            body, owned = {"unreadable": text[:200]}, self.codec.owns_text(text)
        rel = path.relative_to(self.root).as_posix()
        return Resource(kind=self.codec.kind_of(key), key=key, body=body, owned=owned, title=rel)

    def holds(self, want: Resource, path: Any) -> bool:
        """Whether the file holds exactly what writing ``want`` would write (then it is unchanged and ours)."""
        text = self._text(path)
        return text is not None and text == self.codec.serialise(want)

    def path(self, key: str) -> Path:
        return self.root / self.codec.filename(key)

    def write(self, resource: Resource) -> None:
        path = self.path(resource.key)
        try:
            atomic_write(path, self.codec.serialise(resource))
        except OSError as e:
            raise OperationError(f"{path}: cannot write ({e.strerror}){_in_the_way(path)}") from e

    def create(self, desired: Resource, *, force: bool = False) -> None:
        self.write(desired)

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        self.write(desired)

    def delete(self, live: Resource, *, force: bool = False) -> None:
        path = self.path(live.key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as e:
            raise OperationError(f"{path}: cannot delete ({e.strerror})") from e


def target_dir(spec: ResolvedSpec, configured: str | None, backend: str) -> tuple[Path, str]:
    """A files target's directory (a configured relative path is relative to the spec) and how to show it."""
    if configured is None:
        root = spec.output_dir / backend  # already relative to the spec
    else:
        root = Path(configured) if Path(configured).is_absolute() else spec.base_dir / configured
    try:
        return root, str(root.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return root, str(root)


def files_target(backend: Backend, config: FilesConfig) -> FilesTarget:
    return FilesTarget(*target_dir(backend.spec, config.dir, backend.name), codec=backend)


FILES = TargetType(FilesConfig, files_target)
"""The files target every backend has (its own config model may extend :class:`FilesConfig`)."""


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
            body = loads(text, key, max_bytes=OUTPUT_MAX_BYTES, max_nodes=OUTPUT_MAX_NODES).data
        except SpecError as e:
            raise ValueError(str(e)) from None
        return body, yaml_owned(text, self.spec.env, self.spec.name)

    def owns_text(self, text: str) -> bool:
        return yaml_owned(text, self.spec.env, self.spec.name)
