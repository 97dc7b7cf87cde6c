"""``memprov run --profile memray`` and ``memprov profile attach`` with real Python children that
allocate in known functions: the top allocating line lands in the history record (also after a
SIGKILL), non-Python commands and missing tools are refused clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from provisioner.run import profile as prof
from tests.helpers import memprov

MiB = 2**20

# Line 5 holds 60 MiB at the peak; argv[1]: "exit N" or "kill" (SIGKILL itself, as an OOM kill would).
ALLOC = """\
import os, signal, sys, time

def score():
    time.sleep(0.01)
    block = bytearray(60 * 2**20)
    time.sleep(0.2)
    return block

kept = score()
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.exit(int(sys.argv[2]))
"""

# Allocates 1 MiB every 20 ms in grow() (line 5), keeping the last 50: what attach must find.
LOOP = """\
import collections, pathlib, sys, time
keep = collections.deque(maxlen=50)

def grow():
    keep.append(bytearray(2**20))

pathlib.Path(sys.argv[1]).touch()
while True:
    grow()
    time.sleep(0.02)
"""


def last_record(history: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((history / "runs.jsonl").read_text().splitlines()[-1])
    return record


def run_profiled(tmp_path: Path, *command: str, flag: str = "memray") -> subprocess.CompletedProcess[str]:
    (tmp_path / "alloc.py").write_text(ALLOC)
    return memprov(
        "run", "--job", "j", "--history", "h", "--cgroup", "none", "--profile", flag, "--", *command, cwd=tmp_path
    )


def test_python_job_records_its_top_allocating_line_and_keeps_its_exit_code(tmp_path: Path) -> None:
    done = run_profiled(tmp_path, sys.executable, "alloc.py", "exit", "3")
    assert done.returncode == 3, done.stderr
    record = last_record(tmp_path / "h")
    assert record["exit_code"] == 3 and record["outcome"] == "failed"
    assert record["command"] == os.path.basename(sys.executable)  # the user's command, not memray's
    profile = record["profile"]
    assert profile["tool"] == "memray" and Path(profile["file"]).is_file()
    assert Path(profile["file"]) == (tmp_path / "h" / "profiles" / f"{record['run_id']}.memray.bin")
    top = profile["top"][0]
    assert top["location"] == "alloc.py:5 in score" and top["bytes"] >= 60 * MiB and top["allocations"] >= 1
    assert profile["peak_bytes"] >= 60 * MiB
    assert record["peak_rss_bytes"] >= 60 * MiB  # the sampler still watches the job (memray's tracker included)
    assert "alloc.py:5 in score" in done.stderr


def test_a_sigkilled_job_still_leaves_its_top_line(tmp_path: Path) -> None:
    done = run_profiled(tmp_path, sys.executable, "alloc.py", "kill", "0")
    assert done.returncode == 137, done.stderr
    record = last_record(tmp_path / "h")
    assert record["signal"] == "SIGKILL" and record["outcome"] == "killed"
    assert record["profile"]["top"][0]["location"] == "alloc.py:5 in score"


def test_executable_script_and_native_mode(tmp_path: Path) -> None:
    script = tmp_path / "job"
    script.write_text(f"#!{sys.executable}\n" + ALLOC)
    script.chmod(0o755)
    done = run_profiled(tmp_path, "./job", "exit", "0", flag="memray,native")
    assert done.returncode == 0, done.stderr
    assert last_record(tmp_path / "h")["profile"]["top"][0]["location"].endswith("job:6 in score")


@pytest.mark.parametrize(
    ("command", "flag", "message"),
    [
        (["sh", "-c", "true"], "memray", "sh: not a Python command"),
        ([sys.executable], "memray", "no program: give a script, -m MODULE or -c CODE"),
        ([sys.executable, "alloc.py"], "perf", "the only profiler is memray"),
        ([sys.executable, "alloc.py"], "memray,fast", "unknown option 'fast'"),
    ],
)
def test_refused_with_exit_2(tmp_path: Path, command: list[str], flag: str, message: str) -> None:
    done = run_profiled(tmp_path, *command, flag=flag)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "h").exists()


def test_a_job_python_without_memray_is_refused(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    venv_python = str(tmp_path / "venv" / "bin" / "python")
    done = run_profiled(tmp_path, venv_python, "alloc.py", "exit", "0")
    assert done.returncode == 2
    assert "cannot import memray" in done.stderr and f"{venv_python} -m pip install" in done.stderr


def test_split_keeps_interpreter_options() -> None:
    assert prof.split(["python3", "-u", "-X", "dev", "-m", "pkg.mod", "-x"]) == (
        ["python3", "-u", "-X", "dev"],
        ["-m", "pkg.mod", "-x"],
    )
    assert prof.wrap(["python", "-c", "pass"], Path("/c.bin"), prof.Profile(aggregate=True)) == [
        "python", "-m", "memray", "run", "-q", "-f", "-o", "/c.bin", "--aggregate", "-c", "pass",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="stdin"):
        prof.split(["python", "-"])


def test_attach_prints_the_allocating_line_of_a_running_job(tmp_path: Path) -> None:
    (tmp_path / "loop.py").write_text(LOOP)
    child = subprocess.Popen([sys.executable, "loop.py", "started"], cwd=tmp_path)
    try:
        while not (tmp_path / "started").exists():
            time.sleep(0.02)
        done = memprov("profile", "attach", "--pid", str(child.pid), "--duration", "2s", "--out", "c.bin", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "loop.py:5 in grow" in done.stdout and (tmp_path / "c.bin").is_file()
        assert child.poll() is None  # detached; the job runs on
    finally:
        child.kill()
        child.wait()


def test_attach_without_a_debugger_says_how_to_fix_it(tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    done = memprov("profile", "attach", "--pid", str(os.getpid()), cwd=tmp_path, env={"PATH": str(bare)})
    assert done.returncode == 2
    assert "needs gdb or lldb" in done.stderr and "install gdb (apt-get install gdb)" in done.stderr


def test_attach_refuses_a_bad_pid_and_duration(tmp_path: Path) -> None:
    done = memprov("profile", "attach", "--pid", "999999999", cwd=tmp_path)
    assert done.returncode == 2 and "no such process" in done.stderr
    done = memprov("profile", "attach", "--pid", str(os.getpid()), "--duration", "2h", cwd=tmp_path)
    assert done.returncode == 2 and "between 1s and 1h" in done.stderr


def test_ptrace_scope_is_checked(tmp_path: Path) -> None:
    assert prof.attach_blocker(tmp_path / "absent") is None  # gdb is here (scripts/ensure-tools); no Yama
    yama = tmp_path / "ptrace_scope"
    yama.write_text("3\n")
    assert "ptrace is disabled" in (prof.attach_blocker(yama) or "")
    assert "ptrace allowed" in (prof.attach_blocker(yama) or "")
    yama.write_text("0\n")
    assert prof.attach_blocker(yama) is None
