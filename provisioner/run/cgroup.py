"""The memory cgroup a job runs in: v2 (``memory.current``/``peak``/``max``/``events``) or v1
(``memory.usage_in_bytes``/``max_usage_in_bytes``/``limit_in_bytes``/``oom_control``).

A cgroup's peak is exact for a whole process tree, but only for the processes in it: it is the
run's peak only when the cgroup belongs to the job (a Kubernetes container whose entry point is
the wrapper, a ``systemd-run --scope``). :func:`detect` therefore says whether the wrapper *owns*
its cgroup (nothing else lives there but the wrapper and small ancestors, such as an entry-point
shell); an explicit directory (``--cgroup DIR``) is taken as owned. An owned cgroup's peak is
reset when the run starts (v1: a write to ``max_usage_in_bytes``; v2 since Linux 6.12: a
per-descriptor reset of ``memory.peak``), so that it does not include earlier work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from provisioner.run.procs import rss

UNLIMITED = 2**60  # v1 reports "no limit" as a page-rounded LONG_MAX


@dataclass
class Cgroup:
    """One memory cgroup directory and its version."""

    path: Path
    version: int  # 1 or 2
    owned: bool
    peak_fd: int | None = None  # v2: a descriptor of memory.peak reset at the start of the run
    reset: bool = False  # whether the peak counts from the run's start

    def reset_peak(self) -> bool:
        """Make :meth:`peak` count from now; False where the kernel cannot (v2 before 6.12)."""
        try:
            if self.version == 1:
                with open(self.path / "memory.max_usage_in_bytes", "w") as f:
                    f.write("0")
            else:
                fd = os.open(self.path / "memory.peak", os.O_RDWR)
                try:
                    os.write(fd, b"reset\n")
                except OSError:
                    os.close(fd)
                    raise
                self.peak_fd = fd
        except OSError:
            return False
        self.reset = True
        return True

    def _read(self, name: str) -> str | None:
        try:
            with open(self.path / name) as f:
                return f.read()
        except OSError:
            return None

    def _int(self, name: str) -> int | None:
        text = self._read(name)
        if text is None:
            return None
        text = text.strip()
        if text == "max":
            return None
        try:
            return int(text)
        except ValueError:
            return None

    def current(self) -> int | None:
        """Bytes charged now (page cache included, as the kernel counts towards the limit)."""
        return self._int("memory.current" if self.version == 2 else "memory.usage_in_bytes")

    def peak(self) -> int | None:
        """High-water mark of :meth:`current`; None when the kernel has none (v2 before Linux 5.19)."""
        if self.peak_fd is not None:
            try:
                return int(os.pread(self.peak_fd, 64, 0).strip())
            except (OSError, ValueError):
                return None
        return self._int("memory.peak" if self.version == 2 else "memory.max_usage_in_bytes")

    def limit(self) -> int | None:
        """The hard limit in bytes, None when unlimited."""
        value = self._int("memory.max" if self.version == 2 else "memory.limit_in_bytes")
        return value if value is not None and value < UNLIMITED else None

    def oom_kills(self) -> int | None:
        """How many processes the kernel OOM-killed in this cgroup so far (``oom_kill``)."""
        text = self._read("memory.events" if self.version == 2 else "memory.oom_control")
        if text is None:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return None

    def stat(self) -> dict[str, int]:
        """``memory.stat`` as a dict (v1 keys such as ``total_rss``, v2 keys such as ``anon``)."""
        out: dict[str, int] = {}
        for line in (self._read("memory.stat") or "").splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                out[key] = int(value)
        return out

    @property
    def peak_method(self) -> str:
        return "cgroup.peak" if self.version == 2 else "cgroup.max_usage"


def at(path: Path, owned: bool = True) -> Cgroup | None:
    """The cgroup at ``path`` (a fixture tree or ``--cgroup DIR``); None when it has no memory files
    (``--cgroup none``: per-process marks only)."""
    if str(path) == "none":
        return None
    if (path / "memory.current").is_file():
        return Cgroup(path, 2, owned)
    if (path / "memory.usage_in_bytes").is_file():
        return Cgroup(path, 1, owned)
    return None


def _mounts(mountinfo: str) -> list[tuple[str, str, str, set[str]]]:
    """(root, mount point, fstype, super options) of each cgroup mount."""
    out = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
            continue
        out.append((fields[3], fields[4], rest[0], set(rest[2].split(","))))
    return out


def locate(proc_cgroup: str, mountinfo: str) -> Path | None:
    """The memory cgroup directory from ``/proc/PID/cgroup`` and ``/proc/PID/mountinfo`` texts.

    A v1 ``memory`` controller wins over the v2 hierarchy (which then has no memory controller).
    """
    mounts = _mounts(mountinfo)
    unified: str | None = None
    for line in proc_cgroup.splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        if hid == "0" and controllers == "":
            unified = rel
            continue
        if "memory" in controllers.split(","):
            for root, point, fstype, opts in mounts:
                if fstype == "cgroup" and "memory" in opts:
                    return _join(point, root, rel)
    if unified is not None:
        for root, point, fstype, _ in mounts:
            if fstype == "cgroup2":
                return _join(point, root, unified)
    return None


def _join(point: str, root: str, rel: str) -> Path:
    if root != "/" and (rel == root or rel.startswith(root + "/")):
        rel = rel[len(root) :]
    return Path(point) / rel.lstrip("/")


SMALL = 32 * 2**20  # an ancestor this small (sh -c, tini) does not spoil the cgroup's peak


def _small_ancestors(pid: int) -> set[int]:
    """The ancestors of ``pid`` whose resident memory is small (an entry-point shell, an init)."""

    out = set()
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if pid < 1:
            break
        if (rss(pid) or 0) <= SMALL:
            out.add(pid)
    return out


def detect(pid: int | None = None) -> Cgroup | None:
    """The memory cgroup of ``pid`` (default: this process), with ``owned`` set when only the
    process and small ancestors (an entry-point shell) live in it; None without a memory controller."""
    pid = pid or os.getpid()
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            proc_cgroup = f.read()
        with open(f"/proc/{pid}/mountinfo") as f:
            mountinfo = f.read()
    except OSError:
        return None
    path = locate(proc_cgroup, mountinfo)
    if path is None:
        return None
    group = at(path, owned=False)
    if group is None:
        return None
    try:
        with open(path / "cgroup.procs") as f:
            members = {int(x) for x in f.read().split()}
    except (OSError, ValueError):
        return group
    owned = bool(members) and members <= {pid} | _small_ancestors(pid)
    group.owned = owned
    return group
