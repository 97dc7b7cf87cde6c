"""Performance benchmark: validate, render and plan after apply of 10,000 jobs × 4 environments.

    python bench/run.py [--jobs 10000] [--per-file 1000] [--repeat 3] [--env prod] [--envs all]
                        [--json OUT] [--keep DIR] [--no-pin] [--pythonpath DIR] [--profile]

Generates a spec with bench/specgen.py (the jobs in ``jobs/*.yaml`` files of ``--per-file`` jobs),
then runs the real CLI in fresh processes and reads each child's CPU time (user + system) and peak
RSS from the kernel (``wait4``). Every figure is also given as a ratio against two references
measured in the same run, on the same core: ``python -c pass`` (the interpreter) and a typer
hello-world (the CLI framework memprov is built on), so that a loaded or faster machine shifts
both. Rows: the references, ``memprov --help``, ``memprov validate`` of the repository's 4-job
example, and for the generated spec ``memprov validate`` (every environment), ``memprov render
--env ENV --out DIR``, one ``memprov apply --env E --yes`` per environment, then ``memprov plan
--env E --detailed-exitcode`` after it (must exit 0: the re-plan is empty). CPU time is the figure
(wall time is shown, but other work on the machine inflates it). Exit status 0 when every target
is met and every check holds, 1 otherwise. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 1800  # per command
GIB_KIB = 1024 * 1024
TARGETS = {"validate": 15.0, "render": 30.0, "plan": 30.0}  # CPU seconds, 10,000 jobs x 4 environments
RSS_TARGET_KIB = GIB_KIB
HELLO = """
import typer

app = typer.Typer()


@app.command()
def hello(name: str = "world") -> None:
    print(f"hello {name}")


app()
"""


@dataclass(frozen=True)
class Sample:
    wall_s: float
    cpu_s: float  # user + system of the child and the children it waited for
    sys_s: float  # of which system (the kernel: writing files, mostly)
    rss_kib: int  # peak resident set size (ru_maxrss)
    code: int


@dataclass
class Row:
    key: str
    label: str
    samples: list[Sample] = field(default_factory=list)
    target_s: float | None = None
    rss_target_kib: int | None = None
    problem: str = ""

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu_s for s in self.samples) if self.samples else float("nan")

    @property
    def rss(self) -> int:
        return max((s.rss_kib for s in self.samples), default=0)

    @property
    def ok(self) -> bool:
        if self.problem:
            return False
        cpu_ok = self.target_s is None or self.cpu < self.target_s
        rss_ok = self.rss_target_kib is None or self.rss < self.rss_target_kib
        return cpu_ok and rss_ok

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(cpu_median_s=self.cpu, rss_max_kib=self.rss, ok=self.ok)
        return out


class Runner:
    """Fresh processes, pinned to one core when taskset exists, in one working directory."""

    def __init__(self, cwd: Path, pin: bool, pythonpath: str | None) -> None:
        self.cwd = cwd
        allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
        self.cpu = allowed[0]
        self.taskset = shutil.which("taskset") if pin else None
        self.env = {k: v for k, v in os.environ.items() if k not in ("MEMPROV_SPEC", "MEMPROV_DEBUG", "PYTHONPATH")}
        self.env["NO_COLOR"] = "1"
        if pythonpath:
            self.env["PYTHONPATH"] = pythonpath
        self.logs = cwd / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.count = 0

    @property
    def pinning(self) -> str:
        if self.taskset:
            return f"pinned to CPU {self.cpu} with `taskset -c {self.cpu}`"
        return "NOT pinned (taskset unavailable or --no-pin)"

    def run(self, argv: Sequence[str], expect: Sequence[int] = (0,), cwd: Path | None = None) -> Sample:
        cmd = [self.taskset, "-c", str(self.cpu), *argv] if self.taskset else list(argv)
        self.count += 1
        log = self.logs / f"{self.count:03d}.log"
        with log.open("wb") as fh:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=cwd or self.cwd, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
            timer = threading.Timer(TIMEOUT_S, proc.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code not in expect:
            tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-12:])
            raise RuntimeError(f"{' '.join(map(str, argv))} exited {code} (expected {list(expect)}); {log}:\n{tail}")
        return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_stime, int(usage.ru_maxrss), code)

    def measure(
        self, row: Row, argv: Sequence[str], repeat: int, expect: Sequence[int] = (0,), cwd: Path | None = None
    ) -> Row:
        for _ in range(repeat):
            try:
                row.samples.append(self.run(argv, expect, cwd))
            except RuntimeError as e:
                row.problem = str(e)
                break
        return row


def memprov_executable() -> str:
    local = Path(sys.executable).parent / "memprov"
    found = str(local) if local.exists() else shutil.which("memprov")
    if not found:
        raise SystemExit("error: no memprov command; run `pip install -e .` first")
    return found


def machine(runner: Runner) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    commit = subprocess.run(
        ["git", "--no-optional-locks", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "commit": commit or "?",
        "pythonpath": runner.env.get("PYTHONPATH", ""),
        "pinning": runner.pinning,
        "loadavg_before": round(os.getloadavg()[0], 2),
    }


def bench(args: argparse.Namespace, work: Path) -> tuple[list[Row], dict[str, Any]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from specgen import generate

    def say(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    spec = generate(work / "spec", args.jobs, per_file=args.per_file or None)
    runner = Runner(work / "spec", pin=not args.no_pin, pythonpath=args.pythonpath)
    info = machine(runner)
    info["spec"] = spec.as_dict()
    exe = memprov_executable()
    hello = work / "hello.py"
    hello.write_text(HELLO, encoding="utf-8")
    example = work / "example"
    example.mkdir()
    shutil.copyfile(ROOT / "memprov.yaml", example / "memprov.yaml")
    shutil.copytree(ROOT / "environments", example / "environments")
    n = args.repeat
    say(f"{args.jobs} jobs × {len(spec.environments)} environments in {work}; {runner.pinning}")
    rows = [
        runner.measure(Row("python", "`python -c pass`"), [sys.executable, "-c", "pass"], max(n, 5)),
        runner.measure(
            Row("hello", "typer hello-world (`hello.py --name x`)"), [sys.executable, str(hello)], max(n, 5)
        ),
        runner.measure(Row("help", "`memprov --help`"), [exe, "--help"], max(n, 5)),
        runner.measure(
            Row("example", "`memprov validate`, the 4-job example"), [exe, "validate"], max(n, 5), cwd=example
        ),
    ]
    say("validate")
    rows.append(
        runner.measure(
            Row(
                "validate", f"`memprov validate` ({len(spec.environments)} environments)", target_s=TARGETS["validate"]
            ),
            [exe, "validate"],
            n,
        )
    )
    say(f"render --env {args.env}")
    render = Row("render", f"`memprov render --env {args.env} --out DIR` (empty DIR)", target_s=TARGETS["render"])
    for i in range(n):
        out = work / f"render-{i}"
        runner.measure(render, [exe, "render", "--env", args.env, "--out", str(out)], 1)
        shutil.rmtree(out, ignore_errors=True)
        if render.problem:
            break
    rows.append(render)
    envs = spec.environments if args.envs == "all" else tuple(args.envs.split(","))
    for env in envs:
        say(f"apply and plan --env {env}")
        shutil.rmtree(work / "spec" / "out" / env, ignore_errors=True)
        rows.append(runner.measure(Row(f"apply.{env}", f"`memprov apply --env {env} --yes` (empty output)"),
                                   [exe, "apply", "--env", env, "--yes"], 1))  # fmt: skip
        plan = Row(f"plan.{env}", f"`memprov plan --env {env}` after apply (no changes)", target_s=TARGETS["plan"])
        rows.append(runner.measure(plan, [exe, "plan", "--env", env, "--detailed-exitcode"], n, expect=(0,)))
    for r in rows:
        if r.target_s is not None:
            r.rss_target_kib = RSS_TARGET_KIB
    if args.profile:
        say("profile")
        prof = work / "plan.prof"
        runner.run([sys.executable, "-m", "cProfile", "-o", str(prof), exe, "plan", "--env", args.env])
        info["profile"] = profile_summary(prof)
    info["loadavg_after"] = round(os.getloadavg()[0], 2)
    return rows, info


def profile_summary(path: Path, top: int = 15) -> list[tuple[str, float, float]]:
    """(function, self share, cumulative share) of the profiled command, memprov's and the slowest others."""
    import pstats

    stats: dict[Any, Any] = getattr(pstats.Stats(str(path)), "stats")  # noqa: B009 - untyped attribute
    total = sum(tt for _, _, tt, _, _ in stats.values()) or 1.0
    rows = [(f"{Path(f[0]).name}:{f[1]}({f[2]})", tt / total, ct / total) for f, (_, _, tt, ct, _) in stats.items()]
    return sorted(rows, key=lambda r: -r[1])[:top]


def _s(value: float) -> str:
    return "–" if value != value else f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def table(rows: Sequence[Row]) -> list[str]:
    ref = {r.key: r.cpu for r in rows if r.key in ("python", "hello")}
    out = [
        "| command | n | CPU median (min–max) | of which system | × `python -c pass` | × typer hello | wall median "
        "| peak RSS | target |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        if not r.samples:
            out.append(f"| {r.label} | 0 | | | | | | | ✗ {r.problem.splitlines()[0][:100]} |")
            continue
        cpus = [s.cpu_s for s in r.samples]
        spread = f" ({_s(min(cpus))}–{_s(max(cpus))})" if len(cpus) > 1 else ""
        wall = statistics.median(s.wall_s for s in r.samples)
        verdict = ""
        if r.target_s is not None:
            verdict = f"< {r.target_s:g} s CPU, < 1 GiB: " + ("✓" if r.ok else "✗")
        if r.problem:
            verdict = "✗ " + r.problem.splitlines()[0][:100]
        ratios = [f"{r.cpu / ref[k]:.1f}" if ref.get(k) else "" for k in ("python", "hello")]
        out.append(
            f"| {r.label} | {len(cpus)} | {_s(r.cpu)}{spread} | {_s(statistics.median(s.sys_s for s in r.samples))} "
            f"| {ratios[0]} | {ratios[1]} | {_s(wall)} "
            f"| {r.rss / 1024:.0f} MiB | {verdict} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in the generated spec (default 10000)")
    parser.add_argument("--per-file", type=int, default=1000, help="jobs per jobs/*.yaml file; 0: all in memprov.yaml")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per figure (default 3)")
    parser.add_argument("--env", default="prod", help="environment of the render figure (default prod)")
    parser.add_argument("--envs", default="all", help="environments to apply and re-plan (default all; a,b,...)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write every sample as JSON")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR (emptied first) and keep it")
    parser.add_argument("--no-pin", action="store_true", help="do not pin commands to one core")
    parser.add_argument("--pythonpath", help="PYTHONPATH for the commands (measure another checkout's code)")
    parser.add_argument("--profile", action="store_true", help="also cProfile one `memprov plan --env ENV`")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memprov-bench-") as scratch:
        work = args.keep.resolve() if args.keep else Path(scratch)
        if args.keep:
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
        started = time.perf_counter()
        rows, info = bench(args, work)
        spec = info["spec"]
        files = ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in spec["files"].items() if not k.startswith("jobs/"))
        parts = [v for k, v in spec["files"].items() if k.startswith("jobs/")]
        if parts:
            files += f", {len(parts)} jobs/*.yaml files of {min(parts) / 1024:.0f}–{max(parts) / 1024:.0f} KiB"
        lines = [
            f"## memprov benchmark: {spec['jobs']} jobs × {len(spec['environments'])} environments",
            "",
            f"- machine: {info['cpu']}, {info['cores']} cores; {info['python']}; {info['os']}; {info['pinning']}",
            f"- memprov at {info['commit']}"
            + (f", code from PYTHONPATH={info['pythonpath']}" if info["pythonpath"] else ""),
            f"- spec: {files}",
            f"- load average {info['loadavg_before']} before, {info['loadavg_after']} after; "
            f"{time.perf_counter() - started:.0f} s in all",
            "",
            *table(rows),
        ]  # fmt: skip
        if info.get("profile"):
            lines += ["", "| function (cProfile of `memprov plan`) | self | cumulative |", "|---|--:|--:|"]
            lines += [f"| `{name}` | {s:.0%} | {c:.0%} |" for name, s, c in info["profile"]]
        print("\n".join(lines))
        if args.json:
            payload = {"machine": info, "rows": [r.as_dict() for r in rows]}
            args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    failed = [r for r in rows if not r.ok]
    for r in failed:
        print(f"[bench] FAILED: {r.label}: {r.problem or f'CPU {_s(r.cpu)}, peak RSS {r.rss / 1024:.0f} MiB'}",
              file=sys.stderr)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
