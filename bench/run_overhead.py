"""What `memprov run` costs: added start-up time, and the sampler's CPU while a job runs.

    python bench/run_overhead.py [--duration 20] [--children 32] [--repeat 9]

Start-up: the median wall time of `memprov run --job bench -- true` minus that of `true`
(the wrapper's exec of Python, imports, spawn, first sample, final record). Sampler CPU: a job of
``--children`` processes holding 20 MiB each runs for ``--duration`` seconds under
``--interval 1s`` and ``100ms``; the wrapper's own CPU time (``getrusage(RUSAGE_SELF)`` at its
end, in the history record as ``wrapper_cpu_s``) minus its start-up CPU (from the `true` runs),
divided by the duration, is the share of one core the sampling costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRAP = [sys.executable, "-m", "provisioner", "run", "--job", "bench", "--cgroup", "none"]
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


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    return time.perf_counter() - t


def last_record(history: Path) -> dict[str, object]:
    lines = (history / "runs.jsonl").read_text().splitlines()
    return dict(json.loads(lines[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--children", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        history = Path(tmp) / "h"
        bare = [wall(["true"]) for _ in range(args.repeat)]
        wrapped, startup_cpu = [], []
        for _ in range(args.repeat):
            wrapped.append(wall([*WRAP, "--history", str(history), "--", "true"]))
            startup_cpu.append(float(last_record(history)["wrapper_cpu_s"]))  # type: ignore[arg-type]
        python = [wall([sys.executable, "-c", "pass"]) for _ in range(args.repeat)]
        added = statistics.median(wrapped) - statistics.median(bare)
        print(f"start-up: `memprov run -- true` {statistics.median(wrapped) * 1000:.0f} ms, `true` "
              f"{statistics.median(bare) * 1000:.1f} ms: {added * 1000:.0f} ms added "
              f"(of which the Python interpreter alone: {statistics.median(python) * 1000:.0f} ms); "
              f"wrapper CPU for a `true` run {statistics.median(startup_cpu) * 1000:.0f} ms")  # fmt: skip
        script = Path(tmp) / "job.py"
        script.write_text(JOB)
        base_cpu = statistics.median(startup_cpu)
        for interval in ("1s", "100ms"):
            cmd = [*WRAP, "--interval", interval, "--history", str(history), "--", sys.executable, str(script)]
            subprocess.run([*cmd, str(args.children), str(args.duration)], cwd=ROOT, check=True)
            rec = last_record(history)
            cpu = float(rec["wrapper_cpu_s"]) - base_cpu  # type: ignore[arg-type]
            share = cpu / float(rec["duration_s"])  # type: ignore[arg-type]
            print(f"sampling at {interval} with {rec['processes_max']} processes for {rec['duration_s']} s: "
                  f"{cpu * 1000:.0f} ms CPU = {share:.2%} of a core ({rec['samples']} samples)")  # fmt: skip


if __name__ == "__main__":
    main()
