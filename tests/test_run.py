"""``memprov run`` with real child processes that allocate in known patterns: exit codes, signals,
stdio, the recorded peak (a short spike between two samples), history, the crash path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import example_repo, memprov

MiB = 2**20
GiB = 2**30

# A workload that allocates in a known pattern; argv: MODE [DIR]. Memory is touched (bytearray
# zero-fills), so it is resident.
WORKLOAD = r"""
import os, signal, sys, time
mode = sys.argv[1]
here = sys.argv[2] if len(sys.argv) > 2 else "."
def wait_for(name):
    while not os.path.exists(os.path.join(here, name)):
        time.sleep(0.02)
def mark(name):
    open(os.path.join(here, name), "w").close()
if mode == "spike":  # 3 children x 100 MiB; the parent spikes 1 GiB for 300 ms, then lives on
    kids = []
    for i in range(3):
        pid = os.fork()
        if pid == 0:
            block = bytearray(100 * 2**20)
            mark(f"kid{i}")
            wait_for("stop")
            os._exit(0)
        kids.append(pid)
    for i in range(3):
        wait_for(f"kid{i}")
    spike = bytearray(2**30)
    time.sleep(0.3)
    del spike
    time.sleep(3)  # after the spike: the wrapper re-reads the tree's high-water marks (every second)
    mark("stop")
    for pid in kids:
        os.waitpid(pid, 0)
elif mode == "hold":  # 200 MiB, then wait to be killed
    block = bytearray(200 * 2**20)
    mark("ready")
    time.sleep(600)
elif mode == "grow":  # 50 MiB every 100 ms up to 2 GiB, then wait to be stopped
    blocks = []
    for _ in range(40):
        blocks.append(bytearray(50 * 2**20))
        time.sleep(0.1)
    time.sleep(600)
elif mode == "trap":  # SIGTERM handled: write a mark, exit 7
    def on_term(signum, frame):
        mark("got-term")
        os._exit(7)
    signal.signal(signal.SIGTERM, on_term)
    mark("ready")
    time.sleep(600)
elif mode == "checkpoint":  # SIGUSR1 = save and go on; grows past the guard, ends normally
    signal.signal(signal.SIGUSR1, lambda s, f: mark("checkpointed"))
    blocks = [bytearray(100 * 2**20) for _ in range(3)]
    wait_for("checkpointed")
"""


@pytest.fixture
def workload(tmp_path: Path) -> list[str]:
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    return [sys.executable, str(script)]


def records(history: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (history / "runs.jsonl").read_text().splitlines()]


def wrap(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return memprov("run", *args, cwd=cwd)


def test_exit_code_stdio_and_record(tmp_path: Path) -> None:
    done = wrap(
        "--job", "clv-daily", "--env", "prod", "--history", "h", "--meta", "records=500", "--cgroup", "none",
        "--", sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stdout == "out\n" and "err\n" in done.stderr
    (rec,) = records(tmp_path / "h")
    assert rec["schema"] == "memprov.run/v1"
    assert (rec["job"], rec["env"], rec["exit_code"], rec["outcome"]) == ("clv-daily", "prod", 3, "failed")
    assert rec["meta"] == {"records": "500"} and rec["host"] and rec["run_id"]
    assert rec["peak_rss_bytes"] > 0 and rec["peak_method"] in ("hwm", "wait4", "sampled")
    assert rec["peak_bound"] == "lower" and rec["single_process"] is True  # a python -c is below the wrapper's own mark
    assert not (tmp_path / "h" / "running" / f"{rec['run_id']}.json").exists()


def test_help_and_global_options_go_through_the_full_cli(tmp_path: Path) -> None:
    helped = wrap("--help", cwd=tmp_path)
    assert helped.returncode == 0 and "--guard" in helped.stdout and "--history" in helped.stdout
    assert "--cgroup" in helped.stdout and "--linger" in helped.stdout
    done = memprov("--spec", "other.yaml", "run", "--job", "j", "--history=h", "--", "sh", "-c", "exit 5", cwd=tmp_path)
    assert done.returncode == 5 and records(tmp_path / "h")[0]["exit_code"] == 5


def test_signal_death_is_128_plus_n_and_killed(tmp_path: Path) -> None:
    done = wrap("--job", "j", "--history", "h", "--cgroup", "none", "--", "sh", "-c", "kill -9 $$", cwd=tmp_path)
    assert done.returncode == 128 + 9
    (rec,) = records(tmp_path / "h")
    assert (rec["outcome"], rec["signal"]) == ("killed", "SIGKILL")


def test_command_not_found_and_bad_flags_exit_clearly(tmp_path: Path) -> None:
    missing = wrap("--job", "j", "--", "no-such-command-here", cwd=tmp_path)
    assert missing.returncode == 127 and "no-such-command-here: command not found" in missing.stderr
    for args, message in [
        (["--", "true"], "--job is required"),
        (["--job", "a b", "--", "true"], "--job 'a b'"),
        (["--job", "j", "--interval", "1", "--", "true"], "--interval"),
        (["--job", "j", "--interval", "10ms", "--", "true"], "between every 50ms"),
        (["--job", "j", "--meta", "novalue", "--", "true"], "--meta 'novalue': write KEY=VALUE"),
        (["--job", "j", "--guard", "95:TERM", "--limit", "1Gi", "--", "true"], "a size with a unit"),
        (["--job", "j", "--guard", "95%:NOPE", "--limit", "1Gi", "--", "true"], "not a signal name"),
        (["--job", "j", "--limit", "lots", "--", "true"], "--limit lots"),
        (["--job", "j", "--listen", "nowhere", "--", "true"], "--listen nowhere: write HOST:PORT"),
        (["--job", "j", "--pushgateway", "ftp://x", "--", "true"], "http:// or https://"),
        (["--job", "j"], "no command to run"),
        (["--job", "j", "--bogus", "--", "true"], "no such option: --bogus"),
        (["--job", "j", "--history"], "option --history requires a value"),
        (["--job", "j", "--cgroup", "nowhere", "--", "true"], "--cgroup nowhere: write auto, none, or"),
        (["--job", "j", "--listen", "127.0.0.1:0", "--linger", "soon", "--", "true"], "--linger:"),
        (["--job", "j", "--listen", "127.0.0.1:0", "--linger", "2h", "--", "true"], "give 0s to 1h"),
    ]:
        done = wrap(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)


def spike_truth(tmp_path: Path, workload: list[str]) -> int:
    """The spike workload's tree peak by an independent measure: the high-water mark of a fresh
    cgroup it runs in alone, without memprov."""
    from tests.test_run_cgroup import fresh_cgroup, inside

    work = tmp_path / "truth"
    work.mkdir()
    with fresh_cgroup("spike-truth") as group:
        subprocess.run(inside(group, *workload, "spike", str(work)), check=True, timeout=120)
        return int((group / "memory.max_usage_in_bytes").read_text())


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_a_300ms_spike_of_1gib_is_in_the_exact_peak_at_1s(tmp_path: Path, workload: list[str]) -> None:
    """Default mode: the job's own cgroup's mark, within 3 % of the same workload alone in a fresh cgroup."""
    truth = spike_truth(tmp_path, workload)
    assert truth >= 3 * 100 * MiB + GiB
    done = wrap(
        "--job", "j", "--interval", "1s", "--history", "h", "--", *workload, "spike", str(tmp_path), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    (rec,) = records(tmp_path / "h")
    assert (rec["peak_method"], rec["peak_bound"], rec["cgroup"]["mode"]) == ("cgroup.max_usage", "exact", "created")
    assert abs(rec["peak_rss_bytes"] - truth) <= 0.03 * truth, (rec["peak_rss_bytes"], truth)
    # summed RSS counts the pages the forked children share with their parent once per process: it may
    # sit a few MiB above what the cgroup charged, never far
    assert rec["peak_sampled_bytes"] <= 1.03 * rec["peak_rss_bytes"] and rec["processes_max"] >= 4


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_without_a_cgroup_a_tree_peak_is_a_lower_bound(tmp_path: Path, workload: list[str]) -> None:
    """--cgroup none: several processes, so no kernel figure is exact for the tree; the record says
    lower bound, and the kernel's marks still saw the 1 GiB spike between two 1 s samples."""
    truth = spike_truth(tmp_path, workload)
    done = wrap("--job", "j", "--interval", "1s", "--history", "h", "--cgroup", "none", "--", *workload, "spike",
                str(tmp_path), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (rec,) = records(tmp_path / "h")
    assert rec["peak_bound"] == "lower" and rec["single_process"] is False and rec["cgroup"]["mode"] == "none"
    assert rec["peak_hwm_max_bytes"] >= GiB and rec["peak_wait4_bytes"] >= GiB  # the spiking process's own mark
    assert GiB <= rec["peak_rss_bytes"] <= truth * 1.03
    by_method = {
        "hwm": rec["peak_hwm_max_bytes"],
        "wait4": rec["peak_wait4_bytes"],
        "sampled": rec["peak_sampled_bytes"],
    }
    assert rec["peak_rss_bytes"] == max(by_method.values()) == by_method[rec["peak_method"]]
    assert rec["processes_max"] >= 4


@pytest.mark.integration  # the kernel's cgroup v1 memory controller, as root
def test_without_a_cgroup_one_process_is_exact_by_wait4(tmp_path: Path) -> None:
    code = "import time; b = bytearray(300 * 2**20); time.sleep(0.3)"
    timed = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-c", code], capture_output=True, text=True)
    truth = int(timed.stderr.split()[-1]) * 1024  # GNU time: the child's ru_maxrss in KiB
    done = wrap("--job", "j", "--history", "h", "--cgroup", "none", "--", sys.executable, "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (rec,) = records(tmp_path / "h")
    assert (rec["peak_method"], rec["peak_bound"], rec["single_process"]) == ("wait4", "exact", True)
    assert abs(rec["peak_rss_bytes"] - truth) <= 0.03 * truth, (rec["peak_rss_bytes"], truth)


def test_sigterm_and_sigint_are_forwarded_to_the_job(tmp_path: Path, workload: list[str]) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        run_dir = tmp_path / sig.name
        run_dir.mkdir()
        wrapper = subprocess.Popen(
            [sys.executable, "-m", "provisioner", "run", "--job", "j", "--cgroup", "none", "--",
             *workload, "trap", str(run_dir)],
            cwd=tmp_path,
        )  # fmt: skip
        try:
            wait_for_path(run_dir / "ready")
            wrapper.send_signal(signal.SIGTERM if sig == signal.SIGTERM else signal.SIGINT)
            if sig == signal.SIGTERM:
                assert wrapper.wait(60) == 7
                assert (run_dir / "got-term").exists()
            else:  # Python ends on an unhandled KeyboardInterrupt by dying of SIGINT: 128 + 2
                assert wrapper.wait(60) == 130
        finally:
            wrapper.kill()


def wait_for_path(path: Path, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while not path.exists():
        if time.monotonic() > end:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def test_sigkilled_wrapper_leaves_an_incomplete_run_with_its_peak(tmp_path: Path, workload: list[str]) -> None:
    repo = example_repo(tmp_path / "repo")
    hist = tmp_path / "h"
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "provisioner", "run", "--job", "clv-daily", "--env", "local", "--history", str(hist),
         "--cgroup", "none", "--", *workload, "hold", str(tmp_path)],
        cwd=tmp_path,
    )  # fmt: skip
    job_pid = None
    try:
        wait_for_path(tmp_path / "ready")
        end = time.monotonic() + 60
        beat: dict[str, Any] = {}
        while not beat or beat["peak_rss_bytes"] < 200 * MiB:  # the next heartbeat (≤ 5 s) has the 200 MiB
            assert time.monotonic() < end, beat
            time.sleep(0.2)
            files = list((hist / "running").glob("*.json"))
            beat = json.loads(files[0].read_text()) if files else {}
        job_pid = beat["pid"]
        wrapper.kill()  # as the kernel does with memory.oom.group: no chance to write anything
        wrapper.wait(60)
    finally:
        wrapper.kill()
        if job_pid:
            os.killpg(job_pid, signal.SIGKILL)
    # baseline reads it as incomplete (not a successful run)
    done = memprov("baseline", "--runs", str(hist), "--job", "clv-daily", "--dry-run", "--format", "json", cwd=repo)
    assert done.returncode == 0, done.stderr
    (base,) = json.loads(done.stdout)
    assert (base["runs"], base["failed"]) == (0, 1)
    # the next wrapper moves it into runs.jsonl
    assert wrap("--job", "clv-daily", "--history", str(hist), "--", "true", cwd=tmp_path).returncode == 0
    first, second = records(hist)
    assert first["outcome"] == "incomplete" and first["peak_rss_bytes"] >= 200 * MiB
    assert second["outcome"] == "ok"
    assert not list((hist / "running").glob("*.json"))


def test_eight_concurrent_wrappers_append_whole_lines(tmp_path: Path) -> None:
    hist = tmp_path / "h"
    procs = []
    for i in range(8):
        args = ["--job", f"job-{i}", "--history", str(hist), "--meta", f"i={i}", "--meta", "pad=" + "x" * 4000]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "provisioner", "run", *args, "--", "sh", "-c", f"exit {i}"], cwd=tmp_path
            )
        )
    assert sorted(p.wait(120) for p in procs) == list(range(8))
    found = records(hist)
    assert len(found) == 8
    assert sorted(int(r["meta"]["i"]) for r in found) == list(range(8))
    assert all(r["exit_code"] == int(r["meta"]["i"]) for r in found)
    assert len({r["run_id"] for r in found}) == 8


def test_baseline_reads_the_run_history(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    hist = tmp_path / "h"
    for code in (0, 0, 0, 1):
        done = wrap("--job", "clv-daily", "--history", str(hist), "--", "sh", "-c", f"exit {code}", cwd=tmp_path)
        assert done.returncode == code
    wrap("--job", "clv-daily", "--env", "prod", "--history", str(hist), "--", "true", cwd=tmp_path)
    for source in (hist, hist / "runs.jsonl"):
        done = memprov("baseline", "--runs", str(source), "--job", "clv-daily", "--dry-run", "--format", "json",
                       cwd=repo)  # fmt: skip
        assert done.returncode == 0, done.stderr
        (base,) = json.loads(done.stdout)
        assert (base["runs"], base["failed"]) == (3, 1)  # the prod run is not local's
        peaks = [r["peak_rss_bytes"] for r in records(hist)[:3]]
        assert base["peak_max"] == max(peaks)
    (hist / "runs.jsonl").write_text((hist / "runs.jsonl").read_text() + "{not json\n")
    done = memprov("baseline", "--runs", str(hist), "--dry-run", cwd=repo)
    assert done.returncode == 2 and f"{hist / 'runs.jsonl'}:6: not a JSON object" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_a_cgroup_the_wrappers_own_mark_is_never_the_jobs(tmp_path: Path) -> None:
    """A spawned child inherits the wrapper's high-water mark (~23 MiB) in ru_maxrss; `sleep 1`
    used to record it. Now wait4 is dropped and the job's own VmHWM is a (tight) lower bound."""
    done = wrap("--job", "j", "--history", "h", "--cgroup", "none", "--", "sleep", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (rec,) = records(tmp_path / "h")
    assert rec["wrapper_hwm_bytes"] > 10 * MiB and rec["peak_wait4_bytes"] is None
    assert (rec["peak_method"], rec["peak_bound"]) == ("hwm", "lower")
    assert 0 < rec["peak_rss_bytes"] < 4 * MiB
