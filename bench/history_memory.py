"""Peak memory of `memprov baseline` against a Prometheus, as the history grows.

    python bench/history_memory.py [--days 7 28 84] [--per-day 4]

For each length, generates that many days of the example jobs' runs (the alert-quality
benchmark's trace generator: 30-second samples, sawtooth, spikes, incidents), backfills them
into a temporary Prometheus, then runs `memprov baseline --prometheus URL --since ... --dry-run`
in a fresh process and reports its wall time and peak RSS: the child's own VmHWM, sampled every
20 ms (wait4's ru_maxrss would start at this process's peak, which holds every sample). memprov
pushes the aggregation into PromQL and folds one day at a time, so its memory should not grow
with the samples.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE / "alert_quality"), str(ROOT)]

from run import job_shapes, series_of  # noqa: E402
from tracegen import Generator, Plan  # noqa: E402

from provisioner.history.promapi import TempPrometheus  # noqa: E402
from provisioner.spec.loader import load  # noqa: E402


def _vmhwm(pid: int) -> int:
    """Peak resident set size of ``pid``'s address space so far, KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, nargs="+", default=[7, 28, 84])
    parser.add_argument("--per-day", type=int, default=4)
    args = parser.parse_args()
    spec = load(ROOT / "memprov.yaml", "local")
    shapes = {s.id: s for s in job_shapes(spec)}
    print("| days of history | runs | samples | `memprov baseline` wall | peak RSS |")
    print("|--:|--:|--:|--:|--:|")
    for days in args.days:
        plan = Plan(seed=1, runs=days * args.per_day, history_days=0, per_day=args.per_day, scrape=30.0)
        runs = Generator(plan).runs(list(shapes.values()))
        series = series_of(runs, shapes)
        samples = sum(len(s.samples) for s in series)
        work = Path(tempfile.mkdtemp(prefix="memprov-bench-history-"))
        try:
            shutil.copyfile(ROOT / "memprov.yaml", work / "memprov.yaml")
            shutil.copytree(ROOT / "environments", work / "environments")
            with TempPrometheus(lookback_delta="45s") as prom:
                prom.backfill(series)
                prom.start()
                since = f"{(time.time() - plan.t0) // 86400 + 2:.0f}d"
                spec_file = str(work / "memprov.yaml")
                cmd = [sys.executable, "-m", "provisioner", "--spec", spec_file, "baseline", "--prometheus", prom.url]
                cmd += ["--since", since]
                start = time.monotonic()
                child = subprocess.Popen([*cmd, "--dry-run"], stdout=subprocess.DEVNULL)
                hwm = 0
                while child.poll() is None:  # the child's own high-water mark (VmHWM of its address space):
                    hwm = max(hwm, _vmhwm(child.pid))  # wait4's ru_maxrss would start at this process's peak
                    time.sleep(0.02)
                status = child.returncode
                wall = time.monotonic() - start
                if status != 0:
                    print(f"baseline failed for {days} days (status {status})", file=sys.stderr)
                    return 1
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rss = hwm / 1024  # KiB -> MiB
        print(f"| {days} | {len(runs)} | {samples:,} | {wall:.1f} s | {rss:.0f} MiB |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
