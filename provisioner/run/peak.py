"""Which figure is a run's peak, which kernel source it comes from, and how sure it is.

The record names the source (``peak_method``) and says whether the figure is ``exact``, an
``upper`` bound or a ``lower`` bound (``peak_bound``), best source first:

- ``cgroup.max_usage`` (v1) / ``cgroup.peak`` (v2) of a cgroup the job has to itself (made for
  the run, or ``--cgroup DIR`` without the wrapper in it): the kernel's high-water mark of all the
  job's charged memory (anonymous, page cache, kernel), sampled by nobody: **exact**.
- the same mark of a cgroup the job shares only with the wrapper (a container whose entry point
  is ``memprov run``, when no cgroup can be made): reset at the start, it still holds the wrapper
  and what the cgroup held then: an **upper** bound.
- ``cgroup.sampled``: a job cgroup whose kernel keeps no mark (v2 before Linux 5.19): the highest
  charge seen at the ticks, a **lower** bound.
- No cgroup, a job that stayed one process: ``wait4`` (``ru_maxrss``, the kernel's high-water
  mark of the job's resident set, read when the wrapper reaps it), **exact**; it is dropped when
  it is not above the wrapper's own mark at the spawn, which a spawned child inherits, and the
  last ``VmHWM`` read (``hwm``) is a **lower** bound then; a job gone before anything was read
  (``true``) records one page (``floor``), the least an exec'd process holds: a **lower** bound
  that is never zero (a baseline refuses a zero peak) and never the wrapper's own memory.
- No cgroup, several processes: the largest of the sampled tree sum (``sampled``), one process's
  mark (``hwm``) and ``wait4``: a **lower** bound. (The sum of the marks of processes alive
  together is recorded as ``peak_hwm_sum_bytes``; it is no bound either way.)

Without a cgroup every figure is a resident-set size, which counts a page that several processes
share once per process (as ``ps`` and ``top`` do): the bounds are bounds of the tree's summed RSS,
which exceeds the distinct memory a cgroup charges by what the processes share (forked children
share their parent's pages until they write them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

EXACT, UPPER, LOWER = "exact", "upper", "lower"
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Sources:
    """What a run measured; see the module's text for what each is worth."""

    cgroup_mode: str | None = None  # created | given | owned | None
    cgroup_peak: int | None = None  # the kernel's mark, None when it keeps none
    cgroup_sampled: int = 0
    cgroup_method: str = "cgroup.max_usage"
    wrapper_inside: bool = False  # the wrapper's memory is charged to that cgroup too
    single_process: bool = False
    wait4: int | None = None  # ru_maxrss, None when not above the wrapper's own mark
    hwm_root: int | None = None  # the job process's last VmHWM
    hwm_max: int = 0
    sampled: int = 0


def choose(s: Sources) -> tuple[int, str, str]:
    """(bytes, method, bound) of the run's peak."""
    if s.cgroup_mode is not None:
        if s.cgroup_peak is None:
            return s.cgroup_sampled, "cgroup.sampled", LOWER
        value = max(s.cgroup_peak, s.cgroup_sampled)
        shared = s.cgroup_mode == "owned" or s.wrapper_inside
        return value, s.cgroup_method, UPPER if shared else EXACT
    if s.single_process and s.wait4 is not None:
        return s.wait4, "wait4", EXACT
    candidates = {"wait4": s.wait4 or 0, "hwm": max(s.hwm_max, s.hwm_root or 0), "sampled": s.sampled}
    best, method = 0, "sampled"
    for name, found in candidates.items():
        if found > best:
            best, method = found, name
    if best == 0:
        return PAGE, "floor", LOWER
    return best, method, LOWER


def live(s: Sources) -> int:
    """The peak so far while the run lives (the live gauge): the kernel's mark where there is one."""
    if s.cgroup_mode is not None:
        return max(s.cgroup_peak or 0, s.cgroup_sampled)
    return max(s.hwm_max, s.hwm_root or 0, s.sampled)
