"""The job's process tree and its memory, read from ``/proc`` without third-party libraries.

Costs decide the shape (measured on the CI machine, ../shared/notes/breaker-sampler.md §B1):
reading ``/proc/PID/statm`` of known pids is cheap (~15 µs each) and happens every tick, with
each known process's ``children`` list so that a new child is sampled from the next tick on;
finding the whole tree means reading ``/proc/*/stat`` of every process on the host, so it
happens at most once a second, together with each process's kernel high-water mark (``VmHWM``).
The tree is every descendant of the job plus anything left in the job's session (orphans
re-parented to init), or, when the job has a cgroup of its own, exactly that cgroup's processes.

What each figure is worth for the tree's peak: a sample sums processes alive at one moment, a
lower bound that misses what happens between ticks; one process's ``VmHWM``, or ``wait4``'s
``ru_maxrss`` (the largest of the job and the descendants it waited for), is a lower bound too;
summing the marks of processes alive at the same refresh over-counts peaks that did not
coincide, and pages they share, and misses processes that lived between refreshes. Only for a
job that stayed one process is its own mark the exact peak.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, session id) of ``pid``, None when it is gone."""
    fields = _stat_fields(pid)
    try:
        return (int(fields[1]), int(fields[3])) if fields else None
    except (IndexError, ValueError):
        return None


def waited_for_children(pid: int) -> bool | None:
    """Whether ``pid`` (alive or a zombie not yet reaped) ever reaped a child: its children's page
    faults (``cminflt``) or CPU time (``cutime``/``cstime``) were added to it. None when gone."""
    fields = _stat_fields(pid)
    try:
        return any(int(fields[i]) for i in (8, 10, 13, 14)) if fields else None
    except (IndexError, ValueError):
        return None


def rss(pid: int) -> int | None:
    """Resident bytes of ``pid`` now (``statm``), None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return None


def hwm(pid: int) -> int | None:
    """Peak resident bytes of ``pid`` since it started (``VmHWM``); None when gone or a zombie."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            data = f.read()
    except OSError:
        return None
    at = data.find(b"VmHWM:")
    if at < 0:
        return None
    try:
        return int(data[at + 6 : data.index(b"kB", at)]) * 1024
    except ValueError:
        return None


def children(pid: int) -> list[int]:
    """The children of ``pid``'s main thread (``/proc/PID/task/PID/children``); [] when unknown."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def tree(root: int) -> set[int]:
    """``root``, its descendants, and every process in its session (it is a session leader)."""
    kids: dict[int, list[int]] = {}
    found = {root}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        st = _stat(pid)
        if st is None:
            continue
        kids.setdefault(st[0], []).append(pid)
        if st[1] == root:
            found.add(pid)
    todo = list(found)
    while todo:
        for child in kids.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@dataclass
class Tree:
    """The job's processes: sampled every tick, re-discovered and HWM-read at each refresh."""

    root: int
    pids: set[int] = field(default_factory=set)
    hwms: dict[int, int] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)  # every process ever found in the tree
    hwm_sum_peak: int = 0  # max over refreshes of the HWM sum of the processes alive together
    processes_max: int = 0

    def refresh(self, members: set[int] | None = None) -> None:
        """Find the tree again (``members``: the job cgroup's processes) and read each high-water mark."""
        self.pids = set(members) if members is not None else tree(self.root)
        total = 0
        for pid in self.pids:
            mark = hwm(pid)
            if mark is not None:
                self.hwms[pid] = max(mark, self.hwms.get(pid, 0))
            total += self.hwms.get(pid, 0)
        self._count()
        self.hwm_sum_peak = max(self.hwm_sum_peak, total)

    def _count(self) -> None:
        self.seen |= self.pids
        self.processes_max = max(self.processes_max, len(self.pids))

    def sample(self, discover: bool = True) -> tuple[int, int]:
        """(resident bytes of the tree now, live processes); gone pids are dropped, and with
        ``discover`` the new children of known processes are added and sampled at once, and the
        job's own high-water mark is read too (for a job that stays one process, the last one
        read before it exits is its peak give or take a tick)."""
        if discover:
            mark = hwm(self.root)
            if mark is not None:
                self.hwms[self.root] = max(mark, self.hwms.get(self.root, 0))
        total, alive = 0, 0
        todo = list(self.pids)
        while todo:
            pid = todo.pop()
            value = rss(pid)
            if value is None:
                if pid != self.root:
                    self.pids.discard(pid)
                continue
            total += value
            alive += 1
            if discover:
                for child in children(pid):
                    if child not in self.pids:
                        self.pids.add(child)
                        todo.append(child)
        if discover:
            self._count()
        return total, alive

    @property
    def hwm_max(self) -> int:
        return max(self.hwms.values(), default=0)

    @property
    def single(self) -> bool:
        """Only the job's own process was ever seen (see :func:`waited_for_children` too)."""
        return self.seen <= {self.root}
