"""``memprov run --guard``: a growing job is stopped (or asked to checkpoint, or a hook runs) when it
reaches its share of the limit, the history records it, and the exit code says so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from provisioner.run import guard
from tests.helpers import memprov
from tests.test_run import WORKLOAD

MiB = 2**20


@pytest.fixture
def workload(tmp_path: Path) -> list[str]:
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    return [sys.executable, str(script)]


def test_parse() -> None:
    g = guard.parse("95%:SIGTERM")
    assert (g.share, g.signal, g.stops) == (0.95, guard.signal.SIGTERM, True)
    assert g.threshold(1000) == 950 and g.threshold(None) is None
    g = guard.parse("7Gi:kill")
    assert (g.size, g.signal, g.threshold(None)) == (7 * 2**30, guard.signal.SIGKILL, 7 * 2**30)
    g = guard.parse("90%:USR1")
    assert (g.signal, g.stops) == (guard.signal.SIGUSR1, False)
    g = guard.parse("90%:run:echo hi")
    assert (g.command, g.stops) == ("echo hi", False)
    for bad in ("95%", "95", "95:TERM", "150%:TERM", "x:TERM", "95%:NOPE", "95%:run:"):
        with pytest.raises(ValueError, match="--guard"):
            guard.parse(bad)


def test_guard_stops_a_growing_job_before_the_limit(tmp_path: Path, workload: list[str]) -> None:
    done = memprov("run", "--job", "j", "--history", "h", "--cgroup", "none", "--interval", "100ms", "--limit", "1Gi",
                   "--guard", "50%:SIGTERM", "--", *workload, "grow", str(tmp_path), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 75, done.stderr
    assert "guard 50%:SIGTERM" in done.stderr and "sent SIGTERM" in done.stderr
    rec = json.loads((tmp_path / "h" / "runs.jsonl").read_text())
    assert (rec["exit_code"], rec["signal"], rec["outcome"]) == (128 + 15, "SIGTERM", "killed")
    (fired,) = rec["guard"]
    assert fired["guard"] == "50%:SIGTERM" and fired["memory_bytes"] >= 512 * MiB
    assert rec["limit_bytes"] == 2**30


def test_checkpoint_signal_and_hook_do_not_stop_the_job(tmp_path: Path, workload: list[str]) -> None:
    hook = f"echo $MEMPROV_JOB $MEMPROV_MEMORY_BYTES $MEMPROV_LIMIT_BYTES > {tmp_path}/hook.txt"
    done = memprov("run", "--job", "j", "--history", "h", "--cgroup", "none", "--interval", "100ms", "--limit", "1Gi",
                   "--guard", "20%:SIGUSR1", "--guard", f"10%:run:{hook}", "--", *workload, "checkpoint", str(tmp_path),
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "checkpointed").exists()
    rec = json.loads((tmp_path / "h" / "runs.jsonl").read_text())
    assert rec["outcome"] == "ok" and len(rec["guard"]) == 2
    job, used, limit = (tmp_path / "hook.txt").read_text().split()
    assert job == "j" and int(used) >= 0.1 * 2**30 and int(limit) == 2**30


def test_a_share_needs_a_limit(tmp_path: Path) -> None:
    done = memprov("run", "--job", "j", "--cgroup", "none", "--guard", "95%:SIGTERM", "--", "true", cwd=tmp_path)
    assert done.returncode == 2 and "give --limit SIZE" in done.stderr


# --- guards on this machine's real cgroups (v1; root, as on CI) -----------------------------------
@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_a_guard_never_fires_on_memory_that_is_not_the_jobs(tmp_path: Path) -> None:
    """The wrapper's cgroup holds 400 MiB of page cache and nothing else; `--guard 300Mi:SIGTERM --
    sleep 3` once fired after 4 ms (exit 75), and a 200 MB job was killed by a 500Mi guard."""
    from tests.test_run_cgroup import fill_page_cache, fresh_cgroup, last_record, wrapper_in

    with fresh_cgroup("guard-cache") as group:
        fill_page_cache(group, tmp_path / "cache.bin", 400)
        done = wrapper_in(group, "--job", "j", "--history", "h", "--guard", "300Mi:SIGTERM", "--", "sleep", "3",
                          cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert last_record(tmp_path / "h")["guard"] == [] and "guard" not in done.stderr
        code = "import time; b = bytearray(200 * 10**6); time.sleep(2)"
        done = wrapper_in(group, "--job", "j", "--history", "h", "--guard", "500Mi:SIGTERM", "--", sys.executable,
                          "-c", code, cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        rec = last_record(tmp_path / "h")
    assert (rec["outcome"], rec["guard"]) == ("ok", [])
    assert 200 * 10**6 <= rec["working_set_max_bytes"] < 500 * MiB


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_a_guard_acts_on_the_working_set_not_on_page_cache(tmp_path: Path, workload: list[str]) -> None:
    """Writing a 700 MiB file charges 700 MiB of page cache to the job, but the kernel can drop it
    (inactive_file): a 500Mi guard stays quiet. Growing anonymous memory is what it stops."""
    from tests.test_run_cgroup import fresh_cgroup, last_record, wrapper_in

    with fresh_cgroup("guard-ws") as group:
        dd = ["dd", "if=/dev/zero", f"of={tmp_path / 'out.bin'}", "bs=1M", "count=700", "status=none"]
        done = wrapper_in(group, "--job", "j", "--history", "h", "--guard", "500Mi:SIGTERM", "--", *dd, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        rec = last_record(tmp_path / "h")
        assert rec["guard"] == [] and rec["peak_cgroup_bytes"] >= 650 * MiB  # charged: the peak counts it
        assert rec["cache_max_bytes"] >= 600 * MiB and rec["working_set_max_bytes"] < 500 * MiB
        done = wrapper_in(group, "--job", "j", "--history", "h", "--guard", "500Mi:SIGTERM", "--", *workload,
                          "grow", str(tmp_path), cwd=tmp_path)  # fmt: skip
        assert done.returncode == 75, done.stderr
        rec = last_record(tmp_path / "h")
    (fired,) = rec["guard"]
    assert 500 * MiB <= fired["memory_bytes"] < 700 * MiB and rec["signal"] == "SIGTERM"


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_a_share_of_the_inherited_limit(tmp_path: Path, workload: list[str]) -> None:
    """The job's cgroup has no limit of its own; the wrapper's cgroup's 1 GiB binds it, and 50 % of it
    stops a job growing 50 MiB per 100 ms before it gets there."""
    from tests.test_run_cgroup import fresh_cgroup, last_record, wrapper_in

    with fresh_cgroup("guard-limit", limit=2**30) as group:
        done = wrapper_in(group, "--job", "j", "--history", "h", "--guard", "50%:SIGTERM", "--", *workload, "grow",
                          str(tmp_path), cwd=tmp_path)  # fmt: skip
        assert done.returncode == 75, done.stderr
        rec = last_record(tmp_path / "h")
    (fired,) = rec["guard"]
    assert rec["limit_bytes"] == 2**30 and 512 * MiB <= fired["memory_bytes"] < 800 * MiB
    assert rec["outcome"] == "killed" and rec["oom_kill_events"] == 0
