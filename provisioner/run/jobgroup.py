"""The job's own memory cgroup: created for each run, entered by the job before it execs, read,
and removed at the end, so that the peak and the guards see the job and nothing else.

Where it goes. v1: a child of the wrapper's memory cgroup (charges and limits are hierarchical,
so whatever limits the wrapper still limits the job). v2: a child of the wrapper's cgroup when
that cgroup already hands the memory controller to its children (the root of a hierarchy);
otherwise a sibling, when the parent hands it out (v2's "no internal processes" rule forbids
enabling it below a cgroup that has processes) and the wrapper's cgroup has no limit of its own
(``memory.max``, ``memory.high``) that the job would escape there. Anything else (a read-only
cgroupfs, no permission, no delegation) gives no cgroup, and the caller says why in the record.

How the job enters it before exec: the wrapper moves itself in, spawns the job (a child starts in
its parent's cgroup) and moves itself back. Memory is charged where it is first touched, so what
the wrapper holds stays charged to its own cgroup; only the pages it touches while spawning (tens
of KiB) land in the job's. On v1 the cgroup is told not to move charges with a process.

Removal: processes the job left behind are moved to the wrapper's cgroup, then the directory is
removed (the kernel hands its page cache to the parent). A cgroup left by a wrapper that was
killed (empty, named ``memprov-<run id>``, over a minute old) is removed by the next run there.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from provisioner.run.cgroup import Cgroup, at

PREFIX = "memprov-"
STALE_AFTER = 60.0  # an empty job cgroup younger than this may be a run that is starting
RELEASE_WAIT = 5.0  # how long a dying leftover may keep the directory busy


@dataclass
class JobGroup:
    """A cgroup made for one run."""

    group: Cgroup
    home: Path  # the wrapper's own cgroup: it goes back there, and so do leftovers
    placement: str  # "child" or "sibling" of the wrapper's cgroup, or "given" (--cgroup DIR: not ours to remove)


def _controllers(path: Path) -> set[str]:
    try:
        return set((path / "cgroup.subtree_control").read_text().split())
    except OSError:
        return set()


def _unlimited_v2(path: Path) -> bool:
    for name in ("memory.max", "memory.high"):
        try:
            if (path / name).read_text().strip() != "max":
                return False
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return True


def parent_for(wrapper: Cgroup) -> tuple[Path | None, str]:
    """Where the job's cgroup can be made (and ``child``/``sibling``), or None and why not."""
    if wrapper.version == 1:
        try:  # 0 only on old kernels: a child's charges would not count towards the wrapper's limit
            if (wrapper.path / "memory.use_hierarchy").read_text().strip() == "0":
                return None, f"{wrapper.path} has memory.use_hierarchy 0: a child would escape its limit"
        except OSError:
            pass
        return wrapper.path, "child"
    if "memory" in _controllers(wrapper.path):
        return wrapper.path, "child"
    if wrapper.root is None or wrapper.path == wrapper.root:
        return None, f"{wrapper.path} does not enable the memory controller for its children"
    parent = wrapper.path.parent
    if "memory" not in _controllers(parent):
        return None, f"{parent} does not enable the memory controller for its children (no delegation)"
    if not _unlimited_v2(wrapper.path):
        return None, f"{wrapper.path} has a memory limit of its own, which a sibling cgroup would escape"
    return parent, "sibling"


def started_at(name: str) -> float | None:
    """When the run named ``memprov-<ms since epoch, hex>-<random>`` started (unix seconds)."""
    if not name.startswith(PREFIX):
        return None
    try:
        return int(name[len(PREFIX) :].split("-")[0], 16) / 1000
    except ValueError:
        return None


def sweep(parent: Path, now: float | None = None) -> list[Path]:
    """Remove the empty job cgroups that killed wrappers left under ``parent``; the removed ones."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        started = started_at(entry.name)
        if started is None or now - started < STALE_AFTER or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if (Path(entry.path) / "cgroup.procs").read_text().strip():
                continue  # its job still runs (the wrapper died, not the job): a later run removes it
            os.rmdir(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def create(wrapper: Cgroup, run_id: str) -> tuple[JobGroup | None, str]:
    """A new cgroup for the run, or None and why it cannot be had here."""
    parent, placement = parent_for(wrapper)
    if parent is None:
        return None, placement
    sweep(parent)
    path = parent / f"{PREFIX}{run_id}"
    try:
        os.mkdir(path)
    except OSError as e:
        return None, f"cannot create {path}: {e.strerror or e}"
    group = at(path, owned=True, root=wrapper.root)
    if group is None:
        with contextlib.suppress(OSError):
            os.rmdir(path)
        return None, f"{path} has no memory files: the memory controller is not enabled there"
    if group.version == 1:  # a process that moves in must not bring its charges along
        move = path / "memory.move_charge_at_immigrate"
        with contextlib.suppress(OSError):
            if move.read_text().strip() != "0":
                move.write_text("0")
    return JobGroup(group, wrapper.path, placement), ""


def _move(pid: int, to: Path) -> None:
    fd = os.open(to / "cgroup.procs", os.O_WRONLY)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)


def enter(job: JobGroup) -> None:
    """Move the wrapper into the job's cgroup, so that the job it spawns next starts there."""
    _move(os.getpid(), job.group.path)


def leave(job: JobGroup) -> str | None:
    """Move the wrapper back home; why it could not (its later memory then counts for the job)."""
    try:
        _move(os.getpid(), job.home)
    except OSError as e:
        return f"the wrapper could not leave {job.group.path}: {e.strerror or e}"
    return None


def release(job: JobGroup, wait: float = RELEASE_WAIT) -> tuple[list[int], str | None]:
    """Move what is left in the job's cgroup to the wrapper's and remove it: (moved pids, problem).
    A given cgroup (``--cgroup DIR``) is left as it is."""
    moved: list[int] = []
    if job.placement == "given":
        return moved, None
    deadline = time.monotonic() + wait
    while True:
        for pid in job.group.members() or ():
            with contextlib.suppress(OSError):  # it exited meanwhile
                _move(pid, job.home)
                moved.append(pid)
        try:
            os.rmdir(job.group.path)
            return moved, None
        except FileNotFoundError:
            return moved, None
        except OSError as e:
            if time.monotonic() > deadline:
                return moved, f"cannot remove {job.group.path}: {e.strerror or e}"
            time.sleep(0.02)
