"""cgroups: v1 and v2 files read from fixture trees and from this machine; the job's own cgroup made,
entered, read and removed on this machine's real v1 memory controller (the CI machine kind; these
tests need root and fail, not skip, without it); where a v2 job cgroup goes, on fixture trees."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.run import cgroup as cg
from provisioner.run import jobgroup
from tests.helpers import ROOT, memprov

FIXTURES = ROOT / "tests" / "fixtures" / "cgroup"
MiB = 2**20


# --- helpers for real cgroups (also used by the guard and metrics tests) --------------------------
def require_v1_root() -> Path:
    """This process's v1 memory cgroup; fails with the reason when these tests cannot run here."""
    if os.geteuid() != 0:
        pytest.fail(
            "this test creates and removes cgroups under the v1 memory controller, which needs root; "
            "run the suite as root (CI does: .ci/run runs as root on a cgroup v1 machine)"
        )
    group = cg.detect()
    if group is None or group.version != 1:
        pytest.fail(
            "this test needs the cgroup v1 memory controller (/sys/fs/cgroup/memory), as on the CI machine "
            f"kind; found {group.path if group else 'no memory cgroup'}"
        )
    return group.path


@contextlib.contextmanager
def fresh_cgroup(name: str, limit: int | None = None) -> Iterator[Path]:
    """A new v1 memory cgroup below this process's, removed afterwards (its processes killed)."""
    parent = require_v1_root()
    path = parent / f"memprov-test-{name}-{os.getpid()}-{os.urandom(3).hex()}"
    os.mkdir(path)
    if limit is not None:
        (path / "memory.limit_in_bytes").write_text(str(limit))
    try:
        yield path
    finally:
        for _ in range(250):
            for sub in [*sorted(path.glob("*/"), reverse=True), path]:  # job cgroups a failed test left, then it
                with contextlib.suppress(OSError):
                    for pid in (sub / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                    if sub != path:
                        os.rmdir(sub)
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.02)
        else:
            raise AssertionError(f"could not remove the test cgroup {path}")


def inside(group: Path, *argv: str) -> list[str]:
    """``argv`` started inside ``group``: a shell moves itself there, then execs it."""
    return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(group), *argv]


def wrapper_in(group: Path, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``memprov run ARGS`` with the wrapper itself inside ``group``."""
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        inside(group, sys.executable, "-m", "provisioner", "run", *args),
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def fill_page_cache(group: Path, file: Path, mib: int) -> None:
    """Charge ``mib`` MiB of page cache to ``group`` (a file written from inside it)."""
    subprocess.run(
        inside(group, "dd", "if=/dev/zero", f"of={file}", "bs=1M", f"count={mib}", "status=none"), check=True
    )
    usage = int((group / "memory.usage_in_bytes").read_text())
    assert usage >= mib * MiB * 0.9, f"the page cache was not charged to {group}: {usage}"


def last_record(history: Path) -> dict[str, Any]:
    return json.loads((history / "runs.jsonl").read_text().splitlines()[-1])


def job_cgroups(group: Path) -> list[Path]:
    return sorted(group.glob(f"{jobgroup.PREFIX}*"))


# --- fixture trees and this machine's files -----------------------------------------------------
def test_v2_files() -> None:
    group = cg.at(FIXTURES / "v2")
    assert group is not None and group.version == 2 and group.owned
    assert (group.current(), group.peak(), group.limit()) == (734003200, 1048576000, 2147483648)
    assert group.oom_kills() == 1 and group.stat()["inactive_file"] == 20000000
    assert group.working_set() == (734003200 - 20000000, 30000000)  # usage - inactive_file; file
    assert group.peak_method == "cgroup.peak" and group.members() == set()


def test_v2_without_memory_peak_falls_back() -> None:  # kernels before 5.19
    group = cg.at(FIXTURES / "v2-nopeak")
    assert group is not None and group.version == 2
    assert (group.peak(), group.limit(), group.current()) == (None, None, 734003200)  # memory.max "max"


def test_v1_files() -> None:
    group = cg.at(FIXTURES / "v1")
    assert group is not None and group.version == 1
    assert (group.current(), group.peak()) == (524288000, 943718400)
    assert group.limit() is None  # 9223372036854771712 = no limit
    assert group.oom_kills() == 2 and group.stat()["total_rss"] == 500000000
    assert group.working_set() == (524288000 - 1000, 0)  # total_inactive_file; no total_cache line
    assert group.peak_method == "cgroup.max_usage"


def test_none() -> None:
    assert cg.at(Path("none")) is None
    assert cg.at(FIXTURES) is None  # no memory files: not a cgroup


def test_locate_from_proc_and_mountinfo() -> None:
    def text(name: str) -> str:
        return (FIXTURES / name).read_text()

    assert cg.locate_with_mount(text("proc-v1.txt"), text("mountinfo-v1.txt")) == (
        Path("/sys/fs/cgroup/memory/process_api/b7b922f4df619bb11cf79d10692f036f"),
        Path("/sys/fs/cgroup/memory"),
    )
    assert cg.locate(text("proc-v2-host.txt"), text("mountinfo-v2-host.txt")) == Path(
        "/sys/fs/cgroup/system.slice/run-r1234.scope"
    )
    pod = text("mountinfo-v2-pod.txt")
    assert cg.locate(text("proc-v2-pod.txt"), pod) == Path("/sys/fs/cgroup")  # cgroup namespace
    scope = "/kubepods.slice/kubepods-burstable.slice/cri-containerd-abc.scope"
    assert cg.locate(f"0::{scope}\n", pod) == Path("/sys/fs/cgroup")  # no namespace: the mount's root
    assert cg.locate("0::/\n", "") is None


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_this_machines_real_cgroup_parses() -> None:
    require_v1_root()
    group = cg.detect()
    assert group is not None and group.version == 1 and group.root == Path("/sys/fs/cgroup/memory")
    current = group.current()
    assert current is not None and current > 0
    assert isinstance(group.peak(), int) and isinstance(group.oom_kills(), int)
    assert group.limit() is None or group.limit() > 0  # type: ignore[operator]
    assert "hierarchical_memory_limit" in group.stat() and group.working_set() is not None
    assert os.getpid() in (group.members() or set())


# --- v2: where the job's cgroup goes, on fixture trees ------------------------------------------
def v2_tree(tmp_path: Path, layout: dict[str, dict[str, str]]) -> Path:
    """A cgroup v2 tree of plain files: {relative dir: {file: content}}; every dir gets memory.current."""
    for rel, files in layout.items():
        d = tmp_path / rel
        d.mkdir(parents=True, exist_ok=True)
        for name, content in {"memory.current": "1000\n", "cgroup.procs": "", **files}.items():
            (d / name).write_text(content)
    return tmp_path


def test_v2_job_cgroup_is_a_child_where_the_memory_controller_is_handed_down(tmp_path: Path) -> None:
    root = v2_tree(tmp_path, {".": {"cgroup.subtree_control": "cpu memory pids\n"}})
    wrapper = cg.Cgroup(root, 2, root=root)  # a process in the root cgroup (a host shell without systemd)
    assert jobgroup.parent_for(wrapper) == (root, "child")


def test_v2_job_cgroup_is_a_sibling_under_a_delegated_parent(tmp_path: Path) -> None:
    root = v2_tree(
        tmp_path,
        {
            ".": {"cgroup.subtree_control": "memory\n"},
            "user.slice/user-1000.slice/app.slice": {"cgroup.subtree_control": "memory pids\n"},
            "user.slice/user-1000.slice/app.slice/run.scope": {"memory.max": "max\n", "memory.high": "max\n"},
        },
    )
    app = root / "user.slice/user-1000.slice/app.slice"
    wrapper = cg.Cgroup(app / "run.scope", 2, root=root)  # has processes: no child may get memory (v2 rule)
    assert jobgroup.parent_for(wrapper) == (app, "sibling")


def test_v2_no_job_cgroup_that_would_escape_a_limit_or_without_delegation(tmp_path: Path) -> None:
    root = v2_tree(
        tmp_path,
        {
            ".": {"cgroup.subtree_control": "memory\n"},
            "kubepods/pod1": {"cgroup.subtree_control": "memory\n"},
            "kubepods/pod1/ctr": {"memory.max": "2147483648\n"},  # a container with a limit
            "system.slice": {"cgroup.subtree_control": "cpu\n"},
            "system.slice/job.service": {"memory.max": "max\n"},
        },
    )
    parent, why = jobgroup.parent_for(cg.Cgroup(root / "kubepods/pod1/ctr", 2, root=root))
    assert parent is None and "memory limit of its own" in why
    parent, why = jobgroup.parent_for(cg.Cgroup(root / "system.slice/job.service", 2, root=root))
    assert parent is None and "no delegation" in why
    bare = v2_tree(tmp_path / "bare", {".": {"cgroup.subtree_control": "cpu\n"}})
    parent, why = jobgroup.parent_for(cg.Cgroup(bare, 2, root=bare))  # a root that keeps memory to itself
    assert parent is None and "does not enable the memory controller" in why


def test_v1_no_child_cgroup_where_charges_would_not_reach_the_parent(tmp_path: Path) -> None:
    (tmp_path / "memory.usage_in_bytes").write_text("1000\n")
    (tmp_path / "memory.use_hierarchy").write_text("0\n")  # old kernels: a child escapes the parent's limit
    parent, why = jobgroup.parent_for(cg.Cgroup(tmp_path, 1))
    assert parent is None and "use_hierarchy 0" in why
    (tmp_path / "memory.use_hierarchy").write_text("1\n")
    assert jobgroup.parent_for(cg.Cgroup(tmp_path, 1)) == (tmp_path, "child")


def test_v2_a_made_directory_without_memory_files_is_removed(tmp_path: Path) -> None:
    """A plain directory is not a cgroup: the kernel makes the memory files, so without them
    (the controller not enabled there) the wrapper removes what it made and does without."""
    root = v2_tree(tmp_path, {".": {"cgroup.subtree_control": "memory\n"}})
    made, why = jobgroup.create(cg.Cgroup(root, 2, root=root), "1a2b3c4d5e6-00000000")
    assert made is None and "no memory files" in why
    assert not list(root.glob("memprov-*"))


def test_v2_effective_limit_is_the_lowest_up_to_the_mount(tmp_path: Path) -> None:
    root = v2_tree(
        tmp_path,
        {
            ".": {},
            "a": {"memory.max": "1073741824\n"},
            "a/b": {"memory.max": "max\n"},
            "a/b/c": {"memory.max": "2147483648\n"},
        },
    )
    assert cg.Cgroup(root / "a/b/c", 2, root=root).effective_limit() == 2**30
    assert cg.Cgroup(root / "a/b", 2, root=root / "a/b").effective_limit() is None  # stops at the mount


# --- the job's own cgroup on this machine's v1 controller ---------------------------------------
@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_default_run_makes_enters_reads_and_removes_a_cgroup_of_its_own(tmp_path: Path) -> None:
    with fresh_cgroup("own") as group:
        done = wrapper_in(
            group, "--job", "j", "--history", "h", "--", "sh", "-c", "cat /proc/self/cgroup", cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        rec = last_record(tmp_path / "h")
        made = Path(rec["cgroup"]["path"])
        assert rec["cgroup"]["mode"] == "created" and made.parent == group
        assert made.name == f"memprov-{rec['run_id']}"
        assert f":memory:/{made.relative_to('/sys/fs/cgroup/memory')}\n" in done.stdout  # the job ran in it
        assert not made.exists() and job_cgroups(group) == []  # removed after the run
        assert (rec["peak_method"], rec["peak_bound"]) == ("cgroup.max_usage", "exact")


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_the_wrappers_own_memory_is_never_counted(tmp_path: Path) -> None:
    """`-- sleep 1` peaks at under a MiB; the wrapper holds 20+ MiB, which wait4 would have shown."""
    with fresh_cgroup("childonly") as group:
        done = wrapper_in(group, "--job", "j", "--history", "h", "--", "sleep", "1", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        rec = last_record(tmp_path / "h")
    assert rec["wrapper_hwm_bytes"] > 10 * MiB
    assert rec["peak_cgroup_bytes"] == rec["peak_rss_bytes"] < 2 * MiB
    assert rec["peak_wait4_bytes"] is None  # not above the wrapper's own mark, so not the job's


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_page_cache_the_cgroup_held_before_is_not_the_jobs(tmp_path: Path) -> None:
    """The wrapper's cgroup holds 400 MiB of page cache and nothing else: once taken for the job's,
    its peak started at 400 MiB; now the job's own cgroup starts empty."""
    with fresh_cgroup("cache") as group:
        fill_page_cache(group, tmp_path / "cache.bin", 400)
        code = "b = bytearray(100 * 2**20)"
        done = wrapper_in(group, "--job", "j", "--history", "h", "--", sys.executable, "-c", code, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        rec = last_record(tmp_path / "h")
    assert 100 * MiB <= rec["peak_rss_bytes"] < 130 * MiB, rec


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_processes_left_behind_are_moved_out_and_the_cgroup_removed(tmp_path: Path) -> None:
    with fresh_cgroup("leftover") as group:
        script = f"sleep 60 >/dev/null 2>&1 & echo $! > {tmp_path}/pid"
        done = wrapper_in(group, "--job", "j", "--history", "h", "--", "sh", "-c", script, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        pid = int((tmp_path / "pid").read_text())
        try:
            rec = last_record(tmp_path / "h")
            assert rec["cgroup"]["left_behind"] == [pid]
            assert "moved to" in done.stderr and job_cgroups(group) == []
            assert pid in {int(p) for p in (group / "cgroup.procs").read_text().split()}  # the wrapper's cgroup
        finally:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_a_killed_wrappers_empty_cgroup_is_removed_by_the_next_run(tmp_path: Path) -> None:
    """Real cgroups as SIGKILLed wrappers leave them: an empty one over a minute old goes; a young
    one (a run starting now) and one whose job still runs stay."""
    now = time.time()
    with fresh_cgroup("sweep") as group:
        old = group / f"memprov-{int((now - 300) * 1000):011x}-deadbeef"
        young = group / f"memprov-{int(now * 1000):011x}-cafecafe"
        busy = group / f"memprov-{int((now - 300) * 1000):011x}-0badf00d"
        for d in (old, young, busy):
            os.mkdir(d)
        job = subprocess.Popen(inside(busy, "sleep", "60"))
        try:
            for _ in range(500):
                if (busy / "cgroup.procs").read_text().strip():
                    break
                time.sleep(0.01)
            done = wrapper_in(group, "--job", "j", "--", "true", cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert not old.exists() and young.exists() and busy.exists()
            assert job_cgroups(group) == [busy, young]
        finally:
            job.kill()
            job.wait()


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_where_no_cgroup_can_be_made_the_record_says_so_and_bounds_the_peak(tmp_path: Path) -> None:
    """A hierarchy the wrapper may not write (here: its cgroup made read-only, and root without
    CAP_DAC_OVERRIDE, as in a container): it uses its own cgroup when nothing else lives there (an
    upper bound: the wrapper is in it), else no cgroup (the record says why)."""
    drop = ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override"]
    code = "b = bytearray(200 * 2**20)"
    with fresh_cgroup("readonly") as group:
        os.chmod(group, 0o555)
        try:
            argv = inside(group, *drop, sys.executable, "-m", "provisioner", "run", "--job", "j", "--history", "h",
                          "--", sys.executable, "-c", code)  # fmt: skip
            done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            rec = last_record(tmp_path / "h")
            assert rec["cgroup"]["mode"] == "owned" and rec["cgroup"]["path"] == str(group)
            assert rec["cgroup"]["peak_reset"] is True and rec["cgroup"]["start_bytes"] > 0
            assert (rec["peak_method"], rec["peak_bound"]) == ("cgroup.max_usage", "upper")
            assert rec["peak_rss_bytes"] >= 200 * MiB + rec["cgroup"]["start_bytes"] * 0.9  # the wrapper's share in it
            other = subprocess.Popen(inside(group, "sleep", "60"))  # now it is shared
            try:
                for _ in range(500):
                    if len((group / "cgroup.procs").read_text().split()) == 1:
                        break
                    time.sleep(0.01)
                done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
                assert done.returncode == 0, done.stderr
                rec = last_record(tmp_path / "h")
            finally:
                other.kill()
                other.wait()
        finally:
            os.chmod(group, 0o755)
    assert rec["cgroup"]["mode"] == "none" and "Permission denied" in rec["cgroup"]["reason"]
    assert "holds other processes" in rec["cgroup"]["reason"]
    assert (rec["peak_method"], rec["peak_bound"]) == ("wait4", "exact")  # one process, above the wrapper's mark
    assert 200 * MiB <= rec["peak_rss_bytes"] < 240 * MiB


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_a_real_oom_kill_is_oom_killed_against_the_inherited_limit(tmp_path: Path) -> None:
    """The job's cgroup has no limit of its own; the wrapper's (300 MiB) binds it, and the kernel's
    OOM killer picks the job, counted in the job's cgroup."""
    with fresh_cgroup("oom", limit=300 * MiB) as group:
        code = "import time; b = bytearray(600 * 2**20); time.sleep(5)"
        done = wrapper_in(group, "--job", "j", "--history", "h", "--", sys.executable, "-c", code, cwd=tmp_path)
        rec = last_record(tmp_path / "h")
    assert done.returncode == 137, done.stderr
    assert (rec["outcome"], rec["signal"], rec["oom_kill_events"]) == ("oom_killed", "SIGKILL", 1)
    assert rec["limit_bytes"] == 300 * MiB and rec["peak_bound"] == "exact"
    assert 200 * MiB <= rec["peak_rss_bytes"] <= 300 * MiB  # the wrapper's own charge is under the limit too


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_plain_sigkill_is_killed_not_oom_killed(tmp_path: Path) -> None:
    with fresh_cgroup("kill") as group:
        done = wrapper_in(group, "--job", "j", "--history", "h", "--", "sh", "-c", "kill -9 $$", cwd=tmp_path)
        rec = last_record(tmp_path / "h")
    assert done.returncode == 137 and (rec["outcome"], rec["oom_kill_events"]) == ("killed", 0)


# --- --cgroup DIR: a cgroup given for the job, read only (fixture trees) -----------------------
def fixture_copy(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(FIXTURES / name, dest)
    return dest


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_a_given_real_cgroup_gets_the_job_and_is_left_as_it_is(tmp_path: Path) -> None:
    with fresh_cgroup("given", limit=2**30) as given:
        code = "b = bytearray(150 * 2**20)"
        done = memprov("run", "--job", "j", "--history", "h", "--cgroup", str(given), "--", sys.executable, "-c", code,
                       cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        rec = last_record(tmp_path / "h")
        assert given.is_dir() and rec["cgroup"]["mode"] == "given" and rec["limit_bytes"] == 2**30
        assert (rec["peak_method"], rec["peak_bound"]) == ("cgroup.max_usage", "exact")
        assert 150 * MiB <= rec["peak_rss_bytes"] < 170 * MiB  # the job only: the wrapper stayed outside
        done = wrapper_in(given, "--job", "j", "--history", "h", "--cgroup", str(given), "--", "true", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        rec = last_record(tmp_path / "h")
    assert rec["cgroup"]["wrapper_inside"] is True and rec["peak_bound"] == "upper"


def test_a_given_cgroup_gives_the_exact_peak_and_limit(tmp_path: Path) -> None:
    group = fixture_copy(tmp_path, "v2")
    done = memprov("run", "--job", "j", "--history", "h", "--cgroup", str(group), "--", "true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rec = json.loads((tmp_path / "h" / "runs.jsonl").read_text())
    assert (rec["peak_method"], rec["peak_bound"], rec["peak_rss_bytes"]) == ("cgroup.peak", "exact", 1048576000)
    assert rec["peak_cgroup_bytes"] == 1048576000 and rec["cgroup"]["mode"] == "given"
    assert rec["limit_bytes"] == 2147483648 and rec["cgroup"]["version"] == 2
    assert rec["oom_kill_events"] == 0 and rec["outcome"] == "ok"


def test_a_given_cgroup_without_peak_file_is_a_sampled_lower_bound(tmp_path: Path) -> None:
    group = fixture_copy(tmp_path, "v2-nopeak")
    done = memprov("run", "--job", "j", "--history", "h", "--cgroup", str(group), "--", "true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rec = json.loads((tmp_path / "h" / "runs.jsonl").read_text())
    assert (rec["peak_method"], rec["peak_bound"]) == ("cgroup.sampled", "lower")
    assert rec["peak_rss_bytes"] >= 734003200 and rec["limit_bytes"] is None


def test_oom_killed_only_with_sigkill_and_an_oom_kill_event_fixture(tmp_path: Path) -> None:
    group = fixture_copy(tmp_path, "v1")
    script = tmp_path / "oom.py"
    script.write_text(
        "import os, signal, sys\n"
        "with open(os.path.join(sys.argv[1], 'memory.oom_control'), 'w') as f:\n"
        "    f.write('oom_kill_disable 0\\nunder_oom 0\\noom_kill 3\\n')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = memprov("run", "--job", "j", "--history", "h", "--cgroup", str(group), "--", sys.executable, str(script),
                   str(group), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 137
    oom = json.loads((tmp_path / "h" / "runs.jsonl").read_text())
    assert (oom["outcome"], oom["oom_kill_events"], oom["peak_method"]) == ("oom_killed", 1, "cgroup.max_usage")
