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
