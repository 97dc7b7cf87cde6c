"""cgroup v1 and v2 reading from fixture trees and from this machine's real files, and the
wrapper's use of an owned cgroup: exact peak, limit, OOM-kill events."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from provisioner.run import cgroup as cg
from tests.helpers import ROOT, memprov

FIXTURES = ROOT / "tests" / "fixtures" / "cgroup"


def test_v2_files() -> None:
    group = cg.at(FIXTURES / "v2")
    assert group is not None and group.version == 2 and group.owned
    assert (group.current(), group.peak(), group.limit()) == (734003200, 1048576000, 2147483648)
    assert group.oom_kills() == 1 and group.stat()["inactive_file"] == 20000000
    assert group.peak_method == "cgroup.peak"


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
    assert group.peak_method == "cgroup.max_usage"


def test_none() -> None:
    assert cg.at(Path("none")) is None
    assert cg.at(FIXTURES) is None  # no memory files: not a cgroup


def test_locate_from_proc_and_mountinfo() -> None:
    def text(name: str) -> str:
        return (FIXTURES / name).read_text()

    assert cg.locate(text("proc-v1.txt"), text("mountinfo-v1.txt")) == Path(
        "/sys/fs/cgroup/memory/process_api/b7b922f4df619bb11cf79d10692f036f"
    )
    assert cg.locate(text("proc-v2-host.txt"), text("mountinfo-v2-host.txt")) == Path(
        "/sys/fs/cgroup/system.slice/run-r1234.scope"
    )
    pod = text("mountinfo-v2-pod.txt")
    assert cg.locate(text("proc-v2-pod.txt"), pod) == Path("/sys/fs/cgroup")  # cgroup namespace
    scope = "/kubepods.slice/kubepods-burstable.slice/cri-containerd-abc.scope"
    assert cg.locate(f"0::{scope}\n", pod) == Path("/sys/fs/cgroup")  # no namespace: the mount's root
    assert cg.locate("0::/\n", "") is None


def test_this_machines_real_cgroup_parses() -> None:
    group = cg.detect()
    assert group is not None, "this machine has a memory controller (v1, see the research notes)"
    assert group.version in (1, 2)
    current = group.current()
    assert current is not None and current > 0
    assert isinstance(group.peak(), int)
    assert group.limit() is None or group.limit() > 0  # type: ignore[operator]
    assert isinstance(group.oom_kills(), int)
    assert group.stat()
    assert isinstance(group.owned, bool)  # depends on what else lives in this machine's cgroup


def fixture_copy(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(FIXTURES / name, dest)
    return dest


def test_owned_cgroup_gives_the_exact_peak_and_limit(tmp_path: Path) -> None:
    group = fixture_copy(tmp_path, "v2")
    done = memprov("run", "--job", "j", "--history", "h", "--cgroup", str(group), "--", "true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rec = json.loads((tmp_path / "h" / "runs.jsonl").read_text())
    assert (rec["peak_method"], rec["peak_rss_bytes"]) == ("cgroup.peak", 1048576000)
    assert rec["peak_cgroup_bytes"] == 1048576000
    assert rec["limit_bytes"] == 2147483648 and rec["cgroup"]["version"] == 2
    assert rec["oom_kill_events"] == 0 and rec["outcome"] == "ok"


def test_owned_cgroup_without_peak_file_uses_samples(tmp_path: Path) -> None:
    group = fixture_copy(tmp_path, "v2-nopeak")
    done = memprov("run", "--job", "j", "--history", "h", "--cgroup", str(group), "--", "true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rec = json.loads((tmp_path / "h" / "runs.jsonl").read_text())
    assert rec["peak_method"] == "cgroup.sampled" and rec["peak_rss_bytes"] >= 734003200
    assert rec["limit_bytes"] is None


def test_oom_killed_only_with_sigkill_and_an_oom_kill_event(tmp_path: Path) -> None:
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
    done = memprov("run", "--job", "j", "--history", "h", "--cgroup", str(group), "--", "sh", "-c", "kill -9 $$",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 137
    oom, plain = (json.loads(line) for line in (tmp_path / "h" / "runs.jsonl").read_text().splitlines())
    assert (oom["outcome"], oom["oom_kill_events"], oom["peak_method"]) == ("oom_killed", 1, "cgroup.max_usage")
    assert (plain["outcome"], plain["oom_kill_events"]) == ("killed", 0)
