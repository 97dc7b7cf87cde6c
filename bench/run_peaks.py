"""Is the peak that `memprov run` records the job's? Issue #18's table, re-measured.

    python bench/run_peaks.py [--runs 3] [--json OUT] [--tolerance 3]

Five workloads (500 MB held; a 1 GiB spike for 300 ms; numpy 800 MB, or an 800 MB bytearray
without numpy; 4 children of 300 MB alive together; the same children freeing and exiting soon
after) run ``--runs`` times each three ways:

- **truth**: alone, without memprov, under ``/usr/bin/time`` (GNU time: the child's
  ``ru_maxrss``) and inside a fresh cgroup that this script makes (its ``max_usage_in_bytes``);
  every process of the workload also reports its own ``VmHWM`` before it exits;
- **default**: ``memprov run -- …`` as shipped;
- **none**: ``memprov run --cgroup none -- …``.

The reference truth of a one-process workload is ``/usr/bin/time``'s figure (the job's resident
peak, as the issue measured it); of a tree, the fresh cgroup's (``time`` reports the largest
single process, and the summed ``VmHWM`` counts pages the children share with their parent once
per process). Every run of the default mode must be within ``--tolerance`` % of the truth runs'
median. Needs root on a cgroup v1 machine (the CI machine kind), to make the truth's cgroup and
because the default mode makes one per run. Exit status: 0 when every default row is within the
tolerance, 1 when one is not, 2 when this machine cannot run it (said why).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MB = 10**6
TIME = "/usr/bin/time"

WORKLOAD = r"""
import json, os, resource, sys, time
mode, out = sys.argv[1], sys.argv[2]
MB = 10**6
def report(role, **extra):
    with open("/proc/self/status") as f:
        hwm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open(os.path.join(out, f"{role}-{os.getpid()}.json"), "w") as f:
        json.dump({"role": role, "hwm": hwm, "maxrss": maxrss, **extra}, f)
def mark(name):
    open(os.path.join(out, name), "w").close()
def wait_for(name):
    while not os.path.exists(os.path.join(out, name)):
        time.sleep(0.005)
if mode == "held":  # bytearray(n) is zero-filled with memset: every page is resident
    block = bytearray(500 * MB)
    time.sleep(1.5)
    report("main")
elif mode == "spike":
    time.sleep(0.5)
    block = bytearray(2**30)
    time.sleep(0.3)
    del block
    time.sleep(1.5)
    report("main")
elif mode == "numpy":
    try:
        import numpy
        block, kind = numpy.ones(100_000_000), "numpy"  # 800 MB of float64 ones, all written
    except ImportError:
        block, kind = bytearray(800 * MB), "bytearray"
    time.sleep(1)
    report("main", kind=kind)
else:  # children | children-exit: 4 forked children of 300 MB each, all holding it at once
    kids = []
    for i in range(4):
        pid = os.fork()
        if pid == 0:
            block = bytearray(300 * MB)
            mark(f"ready{i}")
            wait_for("go")
            if mode == "children-exit":
                del block  # free, then exit at once
            report("child")
            os._exit(0)
        kids.append(pid)
    for i in range(4):
        wait_for(f"ready{i}")
    time.sleep(1.5 if mode == "children" else 0.2)
    mark("go")
    for pid in kids:
        os.waitpid(pid, 0)
    report("main")
"""

ROWS = {
    "held": "500 MB held",
    "spike": "1 GiB spike, 300 ms",
    "numpy": "numpy 800 MB",
    "children": "4 children of 300 MB, alive together",
    "children-exit": "same, children exit after freeing",
}
TREES = ("children", "children-exit")


def require() -> Path:
    """This process's v1 memory cgroup; exits 2 with the reason when this machine cannot run the bench."""
    from provisioner.run import cgroup as cg

    problems = []
    if os.geteuid() != 0:
        problems.append("run it as root: it makes cgroups under the v1 memory controller (CI runs as root)")
    group = cg.detect()
    if group is None or group.version != 1:
        problems.append("it needs the cgroup v1 memory controller at /sys/fs/cgroup/memory (the CI machine kind)")
    if not os.access(TIME, os.X_OK) or b"GNU" not in subprocess.run([TIME, "--version"], capture_output=True).stdout:
        problems.append(f"it needs GNU time at {TIME}: apt-get install time")
    if problems or group is None:
        for p in problems:
            print(f"run_peaks: {p}", file=sys.stderr)
        sys.exit(2)
    return group.path


def self_reports(work: Path) -> dict[str, Any]:
    found = [json.loads(p.read_text()) for p in work.glob("*-*.json")]
    main = [r for r in found if r["role"] == "main"]
    return {
        "self_hwm": sum(r["hwm"] for r in found),  # processes alive together: the tree rows hold a barrier
        "processes": len(found),
        "kind": main[0].get("kind") if main else None,
    }


def truth(parent: Path, script: Path, mode: str, scratch: Path, n: int) -> dict[str, Any]:
    """The workload alone: GNU time outside, the workload inside a fresh cgroup made here."""
    work = scratch / f"truth-{mode}-{n}"
    work.mkdir()
    group = parent / f"bench-truth-{os.getpid()}-{mode}-{n}"
    os.mkdir(group)
    try:
        inside = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(group)]
        timed = work / "time.txt"
        subprocess.run([TIME, "-o", str(timed), "-f", "%M", *inside, sys.executable, str(script), mode, str(work)],
                       check=True, timeout=300)  # fmt: skip
        cgroup_peak = int((group / "memory.max_usage_in_bytes").read_text())
    finally:
        for _ in range(250):
            with contextlib.suppress(OSError):
                os.rmdir(group)
                break
            time.sleep(0.02)
    return {"time": int(timed.read_text().split()[-1]) * 1024, "cgroup": cgroup_peak, **self_reports(work)}


def wrapped(script: Path, mode: str, scratch: Path, n: int, cgroup: str) -> dict[str, Any]:
    """The workload under ``memprov run`` (this checkout's), and the record it wrote."""
    work = scratch / f"{cgroup}-{mode}-{n}"
    work.mkdir()
    history = work / "history"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "provisioner", "run", "--job", "bench", "--history", str(history), "--cgroup", cgroup,
           "--", sys.executable, str(script), mode, str(work)]  # fmt: skip
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"run_peaks: {' '.join(cmd)} exited {done.returncode}:\n{done.stderr}")
    rec = json.loads((history / "runs.jsonl").read_text().splitlines()[-1])
    keys = ("peak_rss_bytes", "peak_method", "peak_bound", "peak_cgroup_bytes", "peak_wait4_bytes",
            "peak_hwm_max_bytes", "peak_hwm_sum_bytes", "peak_sampled_bytes", "processes_max", "cgroup")  # fmt: skip
    return {k: rec[k] for k in keys} | self_reports(work)


def mb(values: list[int]) -> str:
    lo, hi = round(min(values) / MB), round(max(values) / MB)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def pct(values: list[int], ref: float) -> str:
    lo, hi = (round((v / ref - 1) * 100, 1) + 0.0 for v in (min(values), max(values)))  # + 0.0: no "-0.0"
    return f"{lo:+.1f} %" if round(lo, 1) == round(hi, 1) else f"{lo:+.1f}…{hi:+.1f} %"


def how(runs: list[dict[str, Any]]) -> str:
    return ", ".join(sorted({f"`{r['peak_method']}` {r['peak_bound']}" for r in runs}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each workload in each way")
    ap.add_argument("--tolerance", type=float, default=3.0, help="percent the default mode may differ from truth")
    ap.add_argument("--json", type=Path, help="write every run's figures there")
    ap.add_argument("--only", choices=sorted(ROWS), action="append", help="measure only these workloads")
    args = ap.parse_args()
    parent = require()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    failed = []
    with tempfile.TemporaryDirectory(prefix="memprov-run-peaks-") as tmp:
        scratch = Path(tmp)
        script = scratch / "workload.py"
        script.write_text(WORKLOAD)
        for mode in args.only or list(ROWS):
            runs: dict[str, list[dict[str, Any]]] = {"truth": [], "default": [], "none": []}
            for n in range(args.runs):  # interleaved, so that a slow moment of the machine hits every way
                runs["truth"].append(truth(parent, script, mode, scratch, n))
                runs["default"].append(wrapped(script, mode, scratch, n, "auto"))
                runs["none"].append(wrapped(script, mode, scratch, n, "none"))
                print(f"run_peaks: {mode} run {n + 1}/{args.runs} done", file=sys.stderr, flush=True)
            results[mode] = runs
    lines = [
        f"`python bench/run_peaks.py --runs {args.runs}` on {platform.node()}, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; MB = 10⁶ bytes; "
        f"{args.runs} runs each (min–max). Reference truth: `/usr/bin/time` for one process, the fresh cgroup for "
        "a tree.",
        "",
        "| workload | truth | `/usr/bin/time` | own `VmHWM` (sum) | fresh cgroup | memprov default | Δ | how | "
        "`--cgroup none` | Δ | how |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, runs in results.items():
        t = runs["truth"]
        ref_key = "cgroup" if mode in TREES else "time"
        ref = statistics.median(r[ref_key] for r in t)
        default = [r["peak_rss_bytes"] for r in runs["default"]]
        none = [r["peak_rss_bytes"] for r in runs["none"]]
        label = ROWS[mode] + (" (bytearray: no numpy)" if mode == "numpy" and t[0]["kind"] != "numpy" else "")
        lines.append(
            f"| {label} | {mb([r[ref_key] for r in t])} ({'cgroup' if mode in TREES else 'time'}) "
            f"| {mb([r['time'] for r in t])} | {mb([r['self_hwm'] for r in t])} | {mb([r['cgroup'] for r in t])} "
            f"| {mb(default)} | {pct(default, ref)} | {how(runs['default'])} "
            f"| {mb(none)} | {pct(none, ref)} | {how(runs['none'])} |"
        )
        worst = max(abs(v / ref - 1) * 100 for v in default)
        if worst > args.tolerance:
            failed.append(f"{ROWS[mode]}: the default mode is {worst:.1f} % off the truth (at most {args.tolerance} %)")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"rows": ROWS, "results": results}, indent=1, default=str) + "\n")
    for f in failed:
        print(f"run_peaks: FAILED {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
