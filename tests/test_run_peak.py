"""Which figure a run records as its peak, from which source, and how sure it is (every branch of
:func:`provisioner.run.peak.choose`; the figures themselves are checked against independent
measures in test_run.py, test_run_cgroup.py and bench/run_peaks.py)."""

from __future__ import annotations

from provisioner.run.peak import EXACT, LOWER, PAGE, UPPER, Sources, choose, live

MiB = 2**20


def test_a_cgroup_of_the_jobs_own_is_exact() -> None:
    s = Sources(cgroup_mode="created", cgroup_peak=500 * MiB, cgroup_sampled=300 * MiB, sampled=400 * MiB)
    assert choose(s) == (500 * MiB, "cgroup.max_usage", EXACT)
    s.cgroup_mode, s.cgroup_method = "given", "cgroup.peak"
    assert choose(s) == (500 * MiB, "cgroup.peak", EXACT)


def test_a_cgroup_shared_with_the_wrapper_is_an_upper_bound() -> None:
    assert choose(Sources(cgroup_mode="owned", cgroup_peak=500 * MiB))[2] == UPPER
    assert choose(Sources(cgroup_mode="given", cgroup_peak=500 * MiB, wrapper_inside=True))[2] == UPPER
    assert choose(Sources(cgroup_mode="created", cgroup_peak=500 * MiB, wrapper_inside=True))[2] == UPPER


def test_a_cgroup_without_a_kernel_mark_is_a_sampled_lower_bound() -> None:
    assert choose(Sources(cgroup_mode="created", cgroup_peak=None, cgroup_sampled=7)) == (7, "cgroup.sampled", LOWER)


def test_one_process_without_a_cgroup() -> None:
    one = Sources(single_process=True, wait4=500 * MiB, hwm_root=480 * MiB, sampled=400 * MiB)
    assert choose(one) == (500 * MiB, "wait4", EXACT)
    small = Sources(single_process=True, wait4=None, hwm_root=MiB)
    assert choose(small) == (MiB, "hwm", LOWER)  # below the wrapper's mark: its own last VmHWM
    gone = Sources(single_process=True, wait4=None)
    assert choose(gone) == (PAGE, "floor", LOWER)  # ended before any read: one page, never the wrapper's mark


def test_several_processes_without_a_cgroup_are_a_lower_bound() -> None:
    tree = Sources(wait4=300 * MiB, hwm_max=350 * MiB, sampled=900 * MiB)
    assert choose(tree) == (900 * MiB, "sampled", LOWER)
    tree.sampled = 100 * MiB
    assert choose(tree) == (350 * MiB, "hwm", LOWER)
    assert choose(Sources()) == (PAGE, "floor", LOWER)


def test_the_live_peak_is_the_kernels_mark_so_far() -> None:
    assert live(Sources(cgroup_mode="created", cgroup_peak=800, cgroup_sampled=500)) == 800
    assert live(Sources(hwm_root=700, sampled=300)) == 700
