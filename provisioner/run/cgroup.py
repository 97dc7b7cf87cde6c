"""Reading a memory cgroup: v2 (``memory.current``/``peak``/``max``/``events``/``stat``) or v1
(``memory.usage_in_bytes``/``max_usage_in_bytes``/``limit_in_bytes``/``oom_control``/``stat``),
and finding the one a process lives in.

A cgroup's high-water mark (v2 ``memory.peak``, v1 ``memory.max_usage_in_bytes``) is exact for
everything charged to it: the anonymous memory, the page cache and the kernel memory of every
process that ever lived in it, sampled by nobody, so a 300 ms spike is in it. It is the job's
peak only when the job has the cgroup to itself; :mod:`provisioner.run.jobgroup` creates such a
cgroup for each run. The *working set* is what the kernel cannot drop at once and what the
kubelet and cAdvisor compare with the limit: the charge minus the inactive page cache
(``usage − inactive_file``). Guards act on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from provisioner.run.procs import rss

UNLIMITED = 2**60  # v1 reports "no limit" as a page-rounded LONG_MAX


@dataclass
class Cgroup:
    """One memory cgroup directory, its version and the mount point of its hierarchy."""

    path: Path
    version: int  # 1 or 2
    owned: bool = True  # only the wrapper (and small ancestors) live in it
    root: Path | None = None  # the hierarchy's mount point, where walking up stops
    peak_fd: int | None = None  # v2: a descriptor of memory.peak reset at the start of the run
    reset: bool = False  # whether the peak counts from the run's start

    def reset_peak(self) -> bool:
        """Make :meth:`peak` count from now; False where the kernel cannot (v2 before 6.12).

        v1 resets the mark to the *current* usage, v2 to the current charge of the descriptor's
        reader: either way what the cgroup holds now stays in the peak.
        """
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
        """This cgroup's own hard limit in bytes, None when unlimited."""
        value = self._int("memory.max" if self.version == 2 else "memory.limit_in_bytes")
        return value if value is not None and value < UNLIMITED else None

    def effective_limit(self) -> int | None:
        """The lowest hard limit of this cgroup and its ancestors (the one the OOM killer enforces).

        v1 says it in ``memory.stat`` (``hierarchical_memory_limit``); v2 is walked up to the mount.
        """
        if self.version == 1:
            value = self.stat().get("hierarchical_memory_limit")
            if value is not None:
                return value if value < UNLIMITED else None
        found: list[int] = []
        path = self.path
        while True:
            value = Cgroup(path, self.version).limit()
            if value is not None:
                found.append(value)
            if self.root is None or path == self.root or path.parent == path:
                break
            path = path.parent
        return min(found, default=None)

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

    def working_set(self, usage: int | None = None) -> tuple[int, int] | None:
        """(working set, page cache) now: the charge minus the inactive page cache, as the kubelet
        and cAdvisor count it, and the page cache charged (v1 ``total_cache``, v2 ``file``)."""
        usage = self.current() if usage is None else usage
        if usage is None:
            return None
        stat = self.stat()
        if self.version == 1:
            inactive, cache = stat.get("total_inactive_file", 0), stat.get("total_cache", 0)
        else:
            inactive, cache = stat.get("inactive_file", 0), stat.get("file", 0)
        return max(0, usage - inactive), cache

    def members(self) -> set[int] | None:
        """The processes in this cgroup (``cgroup.procs``), None when unreadable."""
        text = self._read("cgroup.procs")
        if text is None:
            return None
        try:
            return {int(x) for x in text.split()}
        except ValueError:
            return None

    @property
    def peak_method(self) -> str:
        return "cgroup.peak" if self.version == 2 else "cgroup.max_usage"


def at(path: Path, owned: bool = True, root: Path | None = None) -> Cgroup | None:
    """The cgroup at ``path`` (a fixture tree or ``--cgroup DIR``); None when it has no memory files."""
    if (path / "memory.current").is_file():
        return Cgroup(path, 2, owned, root)
    if (path / "memory.usage_in_bytes").is_file():
        return Cgroup(path, 1, owned, root)
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


def locate_with_mount(proc_cgroup: str, mountinfo: str) -> tuple[Path, Path] | None:
    """(memory cgroup directory, its hierarchy's mount point) from ``/proc/PID/cgroup`` and
    ``/proc/PID/mountinfo`` texts. A v1 ``memory`` controller wins over the v2 hierarchy (which
    then has no memory controller)."""
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
                    return _join(point, root, rel), Path(point)
    if unified is not None:
        for root, point, fstype, _ in mounts:
            if fstype == "cgroup2":
                return _join(point, root, unified), Path(point)
    return None


def locate(proc_cgroup: str, mountinfo: str) -> Path | None:
    """The memory cgroup directory alone (see :func:`locate_with_mount`)."""
    found = locate_with_mount(proc_cgroup, mountinfo)
    return found[0] if found else None


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
    found = locate_with_mount(proc_cgroup, mountinfo)
    if found is None:
        return None
    group = at(found[0], owned=False, root=found[1])
    if group is None:
        return None
    members = group.members()
    group.owned = bool(members) and members is not None and members <= {pid} | _small_ancestors(pid)
    return group
