"""Performance benchmark: start-up, validate + render, and plan for 1,000 jobs × 4 environments.

    python bench/run.py [--jobs 1000] [--repeat 5] [--heavy-repeat 3] [--env prod] [--json OUT]
                        [--profile] [--keep DIR] [--no-pin]

Generates a spec with bench/specgen.py in a temporary directory, then measures, each as the median
(min, max) of fresh processes: ``memprov --help`` (and which heavy modules it imports), the
in-process phases of one environment (load/validate, render and serialise per backend, atomic
writes), end-to-end ``memprov render --env ENV --out DIR``, ``memprov validate`` over every
environment, and ``memprov plan --env E`` for each environment against an empty and an applied
output directory. Every command runs pinned to one core (``taskset``) when taskset exists; peak
RSS comes from the kernel's per-child accounting (``wait4``). Prints a Markdown table and the
machine; ``--json OUT`` writes everything. ``--profile`` adds a cProfile of the render path.
Exit status: 0 when every target is met and every check holds, 1 otherwise. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
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
HEAVY = ("pydantic", "rich", "grafanalib", "jinja2", "boto3", "google", "azure", "httpx", "matplotlib")
HELP_TARGET_S = 0.3
RENDER_TARGET_S = 5.0
BACKENDS = ("prometheus", "alertmanager", "grafana")
TIMEOUT_S = 900  # per command


# --- measuring child processes ---------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    wall_s: float
    cpu_s: float  # user + sys of the child
    rss_kib: int  # peak resident set size of the child (ru_maxrss, KiB on Linux)
    code: int


@dataclass
class Row:
    """One line of the table: a measured command or phase, its samples and its verdict."""

    key: str
    label: str
    samples: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    target_s: float | None = None
    note: str = ""
    check: str = ""  # a pass/fail condition shown in the target column (e.g. "none")
    problem: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def ok(self) -> bool:
        return not self.problem and (self.target_s is None or self.median < self.target_s)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(median_s=self.median, min_s=min(self.samples, default=None), max_s=max(self.samples, default=None))
        out.update(rss_kib_max=max(self.rss_kib, default=None), ok=self.ok)
        return out


class Runner:
    """Runs commands in fresh processes, pinned to one core when possible, in a working directory."""

    def __init__(self, cwd: Path, pin: bool) -> None:
        self.cwd = cwd
        allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
        self.cpu = 0 if 0 in allowed else allowed[0]
        self.taskset = shutil.which("taskset") if pin else None
        self.env = {k: v for k, v in os.environ.items() if k not in ("MEMPROV_SPEC", "MEMPROV_DEBUG")}
        self.env["NO_COLOR"] = "1"
        self.logs = cwd / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.count = 0

    @property
    def pinning(self) -> str:
        if self.taskset:
            return f"pinned to CPU {self.cpu} with `taskset -c {self.cpu}`"
        return "NOT pinned (taskset unavailable or --no-pin): figures may use more than one core"

    def run(self, argv: Sequence[str], expect: Sequence[int] = (0,)) -> tuple[Sample, str]:
        """Run ``argv``; returns the sample and the combined output. Raises on an unexpected exit code."""
        cmd = [self.taskset, "-c", str(self.cpu), *argv] if self.taskset else list(argv)
        self.count += 1
        log = self.logs / f"{self.count:03d}.log"
        with log.open("wb") as fh:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
            timer = threading.Timer(TIMEOUT_S, proc.kill)  # a hung command must not hang the benchmark
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)  # rusage of this child only
            finally:
                timer.cancel()
            wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        output = log.read_text(encoding="utf-8", errors="replace")
        if wall >= TIMEOUT_S:
            raise RuntimeError(f"{' '.join(map(str, argv))} killed after {TIMEOUT_S} s")
        if code not in expect:
            tail = "\n".join(output.splitlines()[-15:])
            raise RuntimeError(f"{' '.join(map(str, argv))} exited {code} (expected {list(expect)}):\n{tail}")
        return Sample(wall, usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss), code), output

    def measure(self, row: Row, argv: Sequence[str], repeat: int, expect: Sequence[int] = (0,)) -> Row:
        for _ in range(repeat):
            try:
                sample, _ = self.run(argv, expect)
            except RuntimeError as e:
                row.problem = str(e)
                break
            row.samples.append(sample.wall_s)
            row.cpu_s.append(sample.cpu_s)
            row.rss_kib.append(sample.rss_kib)
        return row


# --- what runs inside the children -------------------------------------------------------------
HELP_PROBE = """
import contextlib, io, json, sys
sys.argv = ["memprov", "--help"]
from provisioner.cli.app import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def phases_worker(spec_file: Path, env: str, out_file: Path) -> None:
    """In-process phases for one environment, in this (fresh) process; writes seconds per phase as JSON."""
    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    from provisioner.backends.files import FilesTarget, atomic_write
    from provisioner.backends.registry import backend_class
    from provisioner.spec.loader import load

    result: dict[str, Any] = {"import": time.perf_counter() - t0}
    t0 = time.perf_counter()
    spec = load(spec_file, env)
    result["load"] = time.perf_counter() - t0
    result["jobs"] = len(spec.jobs)
    written: dict[Path, str] = {}
    with tempfile.TemporaryDirectory(prefix="memprov-bench-write-", dir=spec_file.parent) as tmp:
        for name in BACKENDS:
            if not spec.jobs_using(name):
                continue
            backend: Any = backend_class(name)(spec, FilesTarget(Path(tmp) / name))
            t0 = time.perf_counter()
            resources = backend.render()
            result[f"render.{name}"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            texts = {Path(tmp) / name / backend.filename(r.key): backend.serialise(r) for r in resources}
            result[f"serialise.{name}"] = time.perf_counter() - t0
            result[f"files.{name}"] = len(texts)
            result[f"bytes.{name}"] = sum(len(t.encode("utf-8")) for t in texts.values())
            written.update(texts)
        t0 = time.perf_counter()
        for path, text in written.items():
            atomic_write(path, text)
        result["write"] = time.perf_counter() - t0
    out_file.write_text(json.dumps(result), encoding="utf-8")


def profile_worker(spec_file: Path, env: str, top: int, out_file: Path) -> None:
    """cProfile of load + render + serialise (no writes) for one environment; writes the top functions."""
    import cProfile
    import pstats

    sys.path.insert(0, str(ROOT))
    from provisioner.backends.files import FilesTarget
    from provisioner.backends.registry import backend_class
    from provisioner.spec.loader import load

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    spec = load(spec_file, env)
    for name in BACKENDS:
        backend: Any = backend_class(name)(spec, FilesTarget(spec_file.parent / "profile-out" / name))
        for resource in backend.render():
            backend.serialise(resource)
    profiler.disable()
    wall = time.perf_counter() - start
    profiler.dump_stats(str(out_file.with_suffix(".prof")))
    stats: dict[Any, Any] = getattr(pstats.Stats(profiler), "stats")  # noqa: B009 - untyped attribute
    total = sum(tt for _, _, tt, _, _ in stats.values())

    def label(func: tuple[str, int, str]) -> str:
        file, line, fn = func
        return f"{_short(file)}:{line}({fn})" if file != "~" else fn

    rows = [(label(f), tt, ct, nc) for f, (_, nc, tt, ct, _) in stats.items()]
    by_file: dict[str, float] = {}
    for f, (_, _, tt, _, _) in stats.items():
        key = _short(f[0]) if f[0] != "~" else "(builtins)"
        by_file[key] = by_file.get(key, 0.0) + tt
    ours = [r for r in rows if r[0].startswith("provisioner/")]
    result = {
        "wall_s": wall,
        "profiled_s": total,
        "self": sorted(rows, key=lambda r: -r[1])[:top],
        "cumulative_ours": sorted(ours, key=lambda r: -r[2])[:top],
        "by_file": sorted(by_file.items(), key=lambda kv: -kv[1])[:top],
    }
    out_file.write_text(json.dumps(result), encoding="utf-8")


def _short(file: str) -> str:
    """A path as ``provisioner/x.py`` or ``ruamel/yaml/emitter.py`` (site-packages stripped)."""
    path = Path(file)
    if path.is_relative_to(ROOT):
        return path.relative_to(ROOT).as_posix()
    parts = path.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1 :])
    if "lib" in parts and len(parts) > parts.index("lib") + 2:
        return "stdlib/" + "/".join(parts[parts.index("lib") + 2 :])
    return file


# --- the benchmark -----------------------------------------------------------------------------
def machine(runner: Runner, tmp: Path) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = "?"
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
        best = max((m for m in mounts if str(tmp.resolve()).startswith(m[1])), key=lambda m: len(m[1]))
        fs = f"{best[2]} ({best[1]})"
    except (OSError, ValueError):
        pass
    try:
        from importlib.metadata import version

        memprov_version = version("memprov")
    except Exception:
        memprov_version = "?"
    commit = _git("rev-parse", "--short", "HEAD").strip()
    dirty = len(_git("status", "--porcelain", "--", "provisioner", "templates").splitlines())
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "memprov": memprov_version,
        "commit": commit or "?",
        "uncommitted_paths": dirty,  # under provisioner/ and templates/: figures are for the working tree
        "source_sha256": source_fingerprint(),
        "tmp_filesystem": fs,
        "pinning": runner.pinning,
        "loadavg_before": round(os.getloadavg()[0], 2),
    }


def _git(*args: str) -> str:
    """Read-only git query (``--no-optional-locks``: never refreshes or writes the index)."""
    cmd = ["git", "--no-optional-locks", "-C", str(ROOT), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def source_fingerprint() -> str:
    """Hash of memprov's code and templates, to tell whether they changed while the benchmark ran."""
    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("provisioner/**/*.py"), *ROOT.glob("templates/**/*")]):
        if path.is_file():
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def memprov_executable() -> tuple[str, str | None]:
    """The console script pip installed next to this interpreter, and the PATH one if it differs (a shim)."""
    local = Path(sys.executable).parent / "memprov"
    on_path = shutil.which("memprov")
    if local.exists():
        return str(local), on_path if on_path and Path(on_path).resolve() != local.resolve() else None
    if on_path is None:
        raise SystemExit("error: no memprov command; run `pip install -e .` first")
    return on_path, None


def bench_help(runner: Runner, exe: str, shim: str | None, repeat: int) -> tuple[list[Row], dict[str, Any]]:
    rows = [
        runner.measure(Row("python", "`python -c pass` (interpreter floor)"), [sys.executable, "-c", "pass"], repeat)
    ]
    rows.append(runner.measure(Row("help", "`memprov --help`", target_s=HELP_TARGET_S), [exe, "--help"], repeat))
    if shim:
        rows.append(runner.measure(Row("help.shim", f"`memprov --help` via PATH ({shim})"), [shim, "--help"], repeat))
    sample, output = runner.run([sys.executable, "-X", "importtime", "-c", HELP_PROBE])
    lines = output.splitlines()
    modules: list[str] = json.loads(next(line for line in reversed(lines) if line.startswith("[")))
    heavy = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    top: list[tuple[str, int]] = []
    for line in lines:
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line.removeprefix("import time:").split("|")
            depth = (len(name) - len(name.lstrip()) - 1) // 2  # 0: imported by the probe itself
            if depth <= 1 and not name.strip().startswith(("encodings", "_")):
                top.append((name.strip(), int(cumulative)))
    top.sort(key=lambda kv: -kv[1])
    row = Row("help.imports", f"modules imported by `--help` among {', '.join(HEAVY)}", check="none")
    if heavy:
        row.problem = f"--help imports {', '.join(heavy)}"
    rows.append(row)
    info = {"modules": len(modules), "heavy": heavy, "top_imports_us": top[:8], "probe_rss_kib": sample.rss_kib}
    return rows, info


def bench_phases(runner: Runner, spec_file: Path, env: str, repeat: int) -> tuple[list[Row], list[dict[str, Any]]]:
    runs: list[dict[str, Any]] = []
    rss: list[int] = []
    problem = ""
    for i in range(repeat):
        out = spec_file.parent / f"phases-{i}.json"
        try:
            sample, _ = runner.run([sys.executable, __file__, "--phases-worker", str(spec_file), env, str(out)])
        except RuntimeError as e:
            problem = str(e)
            break
        runs.append(json.loads(out.read_text(encoding="utf-8")))
        rss.append(sample.rss_kib)
    names = ["import", "load"] + [
        f"{p}.{b}" for b in BACKENDS for p in ("render", "serialise") if runs and f"{p}.{b}" in runs[0]
    ]
    rows = []
    for name in names:
        phase, _, backend = name.partition(".")
        what = {
            "import": "import memprov's modules",
            "load": f"load + validate ({env})",
            "render": f"render {backend}",
            "serialise": f"serialise {backend}",
        }[phase]
        n_files = runs[0].get(f"files.{backend}", 0) if runs else 0
        note = f"{n_files} file{'s' * (n_files != 1)}, {runs[0][f'bytes.{backend}'] / 2**20:.1f} MiB" if n_files else ""
        rows.append(
            Row(
                f"phase.{name}",
                f"in-process: {what}",
                [r[name] for r in runs],
                note=note if phase == "serialise" else "",
            )
        )
    work = [n for n in names if n != "import"]
    total = Row(
        "phase.total",
        f"in-process: **load + render + serialise ({env})**",
        [sum(r[n] for n in work) for r in runs],
        rss_kib=rss,
        target_s=RENDER_TARGET_S,
        problem=problem,
    )
    files = sum(v for k, v in runs[0].items() if k.startswith("files.")) if runs else 0
    write = Row("phase.write", f"in-process: write {files} files atomically (fsync each)", [r["write"] for r in runs])
    return [*rows, total, write], runs


def bench_commands(runner: Runner, exe: str, spec_file: Path, envs: Sequence[str], env: str, repeat: int) -> list[Row]:
    spec = ["--spec", str(spec_file)]
    rows = []
    render = Row(f"render.{env}", f"`memprov render --env {env} --out DIR` (empty DIR)", target_s=RENDER_TARGET_S)
    for i in range(repeat):
        runner.measure(render, [exe, *spec, "render", "--env", env, "--out", str(spec_file.parent / f"render-{i}")], 1)
        if render.problem:
            break
    rows.append(render)
    rows.append(
        runner.measure(
            Row("validate", f"`memprov validate` ({len(envs)} environments)"), [exe, *spec, "validate"], repeat
        )
    )
    for e in envs:
        out_dir = spec_file.parent / "out" / e
        shutil.rmtree(out_dir, ignore_errors=True)
        plan = [exe, *spec, "plan", "--env", e, "--detailed-exitcode"]
        rows.append(
            runner.measure(
                Row(f"plan.{e}.empty", f"`memprov plan --env {e}` (empty output)"), plan, repeat, expect=(3,)
            )
        )
        apply = Row(
            f"apply.{e}", f"`memprov apply --env {e} --yes` (empty output)", note="one run: sets up the next row"
        )
        rows.append(runner.measure(apply, [exe, *spec, "apply", "--env", e, "--yes"], 1))
        replan = Row(f"plan.{e}.applied", f"`memprov plan --env {e}` (applied: no changes)")
        rows.append(runner.measure(replan, plan, repeat, expect=(0,)))
        if replan.problem:
            replan.problem = "the re-plan after apply is not empty (or failed): " + replan.problem
    return rows


# --- output ------------------------------------------------------------------------------------
def _s(value: float | None) -> str:
    if value is None or value != value:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def table(rows: Sequence[Row]) -> list[str]:
    out = ["| measurement | n | median | min | max | peak RSS | target |", "|---|--:|--:|--:|--:|--:|---|"]
    for r in rows:
        rss = f"{max(r.rss_kib) / 1024:.0f} MiB" if r.rss_kib else ""
        if r.problem:
            verdict = "✗ " + r.problem.splitlines()[0][:90]
        elif r.check:
            verdict = f"{r.check} ✓"
        elif r.target_s is not None:
            verdict = f"< {_s(r.target_s)} " + ("✓" if r.ok else "✗")
        else:
            verdict = ""
        label = f"{r.label} — {r.note}" if r.note else r.label
        if not r.samples:
            out.append(f"| {label} | | | | | {rss} | {verdict} |")
            continue
        n = len(r.samples)
        lo, hi = (_s(min(r.samples)), _s(max(r.samples))) if n > 1 else ("", "")
        out.append(f"| {label} | {n} | {_s(r.median)} | {lo} | {hi} | {rss} | {verdict} |")
    return out


def profile_report(result: dict[str, Any]) -> list[str]:
    total = result["profiled_s"]
    out = [
        "",
        f"### Profile of load + render + serialise (cProfile, {result['wall_s']:.1f} s under the profiler)",
        "",
        "| self time | share | calls | function |",
        "|--:|--:|--:|---|",
    ]
    out += [f"| {tt:.2f} s | {tt / total:.0%} | {nc} | `{name}` |" for name, tt, _, nc in result["self"]]
    out += ["", "| self time by file | share |", "|---|--:|"]
    out += [f"| `{file}` | {tt / total:.0%} |" for file, tt in result["by_file"]]
    out += ["", "| memprov function (cumulative) | share |", "|---|--:|"]
    out += [f"| `{name}` | {ct / total:.0%} |" for name, _, ct, _ in result["cumulative_ours"]]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs in the generated spec (default 1000)")
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per start-up figure (default 5)")
    parser.add_argument("--heavy-repeat", type=int, default=3, help="fresh processes per render/plan figure (3)")
    parser.add_argument("--env", default="prod", help="environment for the render figures (default prod)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write every figure and sample as JSON")
    parser.add_argument("--profile", action="store_true", help="also profile the render path (cProfile)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it (spec, outputs, logs)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin commands to one core")
    parser.add_argument("--phases-worker", nargs=3, metavar=("SPEC", "ENV", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-worker", nargs=4, metavar=("SPEC", "ENV", "TOP", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phases_worker:
        spec, env, out = args.phases_worker
        phases_worker(Path(spec), env, Path(out))
        return 0
    if args.profile_worker:
        spec, env, top, out = args.profile_worker
        profile_worker(Path(spec), env, int(top), Path(out))
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from specgen import generate

    with tempfile.TemporaryDirectory(prefix="memprov-bench-") as scratch:
        work = args.keep.resolve() if args.keep else Path(scratch)
        if args.keep:
            shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        return _bench(args, work, generate)


def _bench(args: argparse.Namespace, work: Path, generate: Any) -> int:
    def say(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    try:
        spec = generate(work / "spec", args.jobs)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    runner = Runner(work / "spec", pin=not args.no_pin)
    exe, shim = memprov_executable()
    info = machine(runner, work)
    say(f"{args.jobs} jobs × {len(spec.environments)} environments in {work}; {runner.pinning}")
    started = time.perf_counter()
    say("start-up")
    rows, imports = bench_help(runner, exe, shim, args.repeat)
    say(f"in-process phases ({args.env})")
    phase_rows, phases = bench_phases(runner, spec.spec_file, args.env, args.heavy_repeat)
    rows += phase_rows
    say("render, validate, plan and apply commands")
    rows += bench_commands(runner, exe, spec.spec_file, spec.environments, args.env, args.heavy_repeat)
    info["loadavg_after"] = round(os.getloadavg()[0], 2)
    changed = source_fingerprint() != info["source_sha256"]
    info["source_changed_during_run"] = changed
    profile: dict[str, Any] | None = None
    if args.profile:
        say("profile")
        out = work / "profile.json"
        runner.run([sys.executable, __file__, "--profile-worker", str(spec.spec_file), args.env, "15", str(out)])
        profile = json.loads(out.read_text(encoding="utf-8"))

    sizes = ", ".join(f"{k} {v / 1024:.0f} KiB" if v >= 1024 else f"{k} {v} B" for k, v in spec.files.items())
    runtimes = ", ".join(f"{k} {v}" for k, v in spec.mix.items() if ":" not in k)
    thresholds = ", ".join(f"{k.partition(':')[2]} {v}" for k, v in spec.mix.items() if ":" in k)
    mix = f"runtimes: {runtimes}; thresholds: {thresholds}"
    lines = [
        f"## memprov benchmark: {spec.jobs} jobs × {len(spec.environments)} environments",
        "",
        f"- machine: {info['cpu']}, {info['cores']} cores; {info['python']}; {info['os']}; "
        f"temp filesystem {info['tmp_filesystem']}",
        f"- memprov {info['memprov']} at {info['commit']}"
        + (f" + {info['uncommitted_paths']} uncommitted path(s)" if info["uncommitted_paths"] else "")
        + f" (source {info['source_sha256']}"
        + (", CHANGED during the run: figures mix two versions)" if changed else ")")
        + f"; every command {info['pinning']}",
        f"- spec: {sizes} (limit 1 MiB per file); {mix}",
        f"- `--help` loads {imports['modules']} modules; slowest top-level imports: "
        + ", ".join(f"{n} {us / 1000:.0f} ms" for n, us in imports["top_imports_us"][:4]),
        f"- median (min, max) of fresh processes; total bench time {time.perf_counter() - started:.0f} s; "
        f"load average {info['loadavg_before']} before, {info['loadavg_after']} after (other work skews figures)",
        "",
        *table(rows),
    ]
    if profile:
        lines += profile_report(profile)
    print("\n".join(lines))
    if args.json:
        payload = {
            "machine": info,
            "spec": spec.as_dict(),
            "help_imports": imports,
            "rows": [r.as_dict() for r in rows],
            "phases": phases,
            "profile": profile,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    failed = [r for r in rows if not r.ok]
    for r in failed:
        say(f"FAILED: {r.label}: {r.problem or f'median {_s(r.median)} ≥ target {_s(r.target_s)}'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
