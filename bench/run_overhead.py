"""What `memprov run` costs: added start-up time, and the sampler's CPU while a job runs.

    python bench/run_overhead.py [--duration 20] [--children 32] [--repeat 9] [--cgroup auto --cgroup none]

For each ``--cgroup`` mode (default: both ``auto``, which makes a memory cgroup per run where it
can, and ``none``): start-up is the median wall time of `memprov run --job bench -- true` minus
that of `true` (the wrapper's exec of Python, imports, cgroup, spawn, first sample, final record,
cgroup removal). Sampler CPU: a job of ``--children`` processes holding 20 MiB each runs for
``--duration`` seconds under ``--interval 1s`` and ``100ms`` (the default); the wrapper's own CPU
time (``getrusage(RUSAGE_SELF)`` at its end, in the history record as ``wrapper_cpu_s``) minus
its start-up CPU (from the `true` runs), divided by the duration, is the share of one core the
sampling costs. Runs in a temporary directory (no spec there: the job id is not checked).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRAP = [sys.executable, "-m", "provisioner", "run", "--job", "bench"]
JOB = """
import os, sys, time
n, seconds = int(sys.argv[1]), float(sys.argv[2])
kids = []
for _ in range(n - 1):
    pid = os.fork()
    if pid == 0:
        block = bytearray(20 * 2**20)
        time.sleep(seconds)
        os._exit(0)
    kids.append(pid)
block = bytearray(20 * 2**20)
time.sleep(seconds)
for pid in kids:
    os.waitpid(pid, 0)
"""


def wall(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def last_record(history: Path) -> dict[str, object]:
    lines = (history / "runs.jsonl").read_text().splitlines()
    return dict(json.loads(lines[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--children", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--cgroup", action="append", choices=("auto", "none"), help="modes to measure (default: both)")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's memprov
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        history = work / "h"
        bare = [wall(["true"], work) for _ in range(args.repeat)]
        python = [wall([sys.executable, "-c", "pass"], work) for _ in range(args.repeat)]
        script = work / "job.py"
        script.write_text(JOB)
        for mode in args.cgroup or ["auto", "none"]:
            wrap = [*WRAP, "--cgroup", mode]
            wrapped, startup_cpu = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                subprocess.run([*wrap, "--history", str(history), "--", "true"], cwd=work, env=env, check=True,
                               stderr=subprocess.DEVNULL)  # fmt: skip
                wrapped.append(time.perf_counter() - t)
                startup_cpu.append(float(last_record(history)["wrapper_cpu_s"]))  # type: ignore[arg-type]
            added = statistics.median(wrapped) - statistics.median(bare)
            how = last_record(history)["cgroup"]
            median = statistics.median(wrapped)
            print(f"--cgroup {mode} ({how}): start-up: `memprov run -- true` {median * 1000:.0f} ms, "
                  f"`true` {statistics.median(bare) * 1000:.1f} ms: {added * 1000:.0f} ms added "
                  f"(of which the Python interpreter alone: {statistics.median(python) * 1000:.0f} ms); "
                  f"wrapper CPU for a `true` run {statistics.median(startup_cpu) * 1000:.0f} ms")  # fmt: skip
            base_cpu = statistics.median(startup_cpu)
            for interval in ("1s", "100ms"):
                cmd = [*wrap, "--interval", interval, "--history", str(history), "--", sys.executable, str(script)]
                subprocess.run([*cmd, str(args.children), str(args.duration)], cwd=work, env=env, check=True,
                               stderr=subprocess.DEVNULL)  # fmt: skip
                rec = last_record(history)
                cpu = float(rec["wrapper_cpu_s"]) - base_cpu  # type: ignore[arg-type]
                share = cpu / float(rec["duration_s"])  # type: ignore[arg-type]
                print(f"--cgroup {mode}: sampling at {interval} with {rec['processes_max']} processes for "
                      f"{rec['duration_s']} s: {cpu * 1000:.0f} ms CPU = {share:.2%} of a core "
                      f"({rec['samples']} samples)")  # fmt: skip


if __name__ == "__main__":
    main()
