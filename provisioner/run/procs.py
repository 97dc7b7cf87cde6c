"""The job's process tree and its memory, read from ``/proc`` without third-party libraries.

Costs decide the shape (measured on the CI machine, ../shared/notes/breaker-sampler.md §B1):
reading ``/proc/PID/statm`` of known pids is cheap (~15 µs each) and happens every tick;
finding the tree means reading ``/proc/*/stat`` of every process on the host, so it happens at
most once a second, together with each process's kernel high-water mark (``VmHWM``). The tree is
every descendant of the job plus anything left in the job's session (orphans re-parented to
init), so a daemonised helper still counts.

High-water marks make the peak exact where sampling is not: a 300 ms spike between two 1 s
samples still raises ``VmHWM``. Summing the HWMs of processes alive *at the same refresh* gives
an upper bound of the tree's peak that does not add up sequential stages; the maximum single
HWM, and ``wait4``'s ``ru_maxrss``, are lower bounds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, session id) of ``pid``, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[1]), int(fields[3])
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


def tree(root: int) -> set[int]:
    """``root``, its descendants, and every process in its session (it is a session leader)."""
    children: dict[int, list[int]] = {}
    found = {root}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        st = _stat(pid)
        if st is None:
            continue
        children.setdefault(st[0], []).append(pid)
        if st[1] == root:
            found.add(pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), ()):
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
    hwm_sum_peak: int = 0  # max over refreshes of the HWM sum of the processes alive together
    processes_max: int = 0

    def refresh(self) -> None:
        """Find the tree again and read each process's high-water mark."""
        self.pids = tree(self.root)
        total = 0
        for pid in self.pids:
            mark = hwm(pid)
            if mark is not None:
                self.hwms[pid] = max(mark, self.hwms.get(pid, 0))
            total += self.hwms.get(pid, 0)
        self.hwm_sum_peak = max(self.hwm_sum_peak, total)
        self.processes_max = max(self.processes_max, len(self.pids))

    def sample(self) -> tuple[int, int]:
        """(resident bytes of the tree now, live processes); gone pids are dropped."""
        total, alive = 0, 0
        for pid in list(self.pids):
            value = rss(pid)
            if value is None:
                if pid != self.root:
                    self.pids.discard(pid)
                continue
            total += value
            alive += 1
        return total, alive

    @property
    def hwm_max(self) -> int:
        return max(self.hwms.values(), default=0)
