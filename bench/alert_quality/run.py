"""Alert-quality benchmark: memprov's rules, on traces nobody tuned them on, scored by a real Prometheus.

    python bench/alert_quality/run.py --seeds 201-212 [--out DIR] [--json OUT]

Per seed, the independent checkers' shape (tracegen.py): 32 jobs x 14 days of cAdvisor series with
ground truth. Days 1-7 are history: they are written as OpenMetrics and given to the real
``memprov baseline --series`` in a scratch repository whose ``memprov.yaml`` declares each job as a
user would (its selector and limit, default settings). Days 8-14 are scored: the rules that
``memprov render`` makes of that spec and the baselines are evaluated over all 14 days in a
temporary Prometheus (recording rules inlined, ``query_range`` at the group interval, the
``for``/``keep_firing_for`` state machine: provisioner.analysis.evaluate), next to the naive static rule
``working set / limit > 0.85 for 5m``, and scored (score.py). Per seed the episodes are kept as
JSON in ``--out`` (``--reuse`` skips seeds already there); the tables (report.py) add up all the
seeds given. The seeds used for tuning and those used for reporting are fixed below: never tune on
a reporting seed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT)]

from report import main_table, regime_table, verdict  # noqa: E402
from score import Ep, Tally, score_seed  # noqa: E402
from tracegen import DAY, MI, REGIMES, T0, Generator, JobShape, Run  # noqa: E402

from provisioner.analysis.evaluate.alerts import duration, evaluate_alert  # noqa: E402
from provisioner.analysis.evaluate.inline import inline_groups  # noqa: E402
from provisioner.history.promapi import Series, TempPrometheus, openmetrics  # noqa: E402
from provisioner.render.prometheus.rules import ALERTS, rule_groups  # noqa: E402
from provisioner.spec.loader import load  # noqa: E402

TUNING_SEEDS = tuple(range(101, 107))  # the rules' defaults were tuned on these only (README: Seeds)
REPORTING_SEEDS = tuple(range(501, 513))  # the headline table: never run before the defaults were fixed
MEMPROV = "memprov"
STATIC = "static 85 % for 5m"
STATIC_GROUP: dict[str, Any] = {
    "name": "static-85-percent",
    "interval": "30s",
    "rules": [
        {
            "alert": "StaticMemoryAbove85Percent",
            "expr": "container_memory_working_set_bytes / container_spec_memory_limit_bytes > 0.85",
            "for": "5m",
            "labels": {"severity": "warning"},
        }
    ],
}


def spec_text(jobs: list[JobShape], defaults: str = "") -> str:
    """The spec a user would write: one job per trace job, its selector and limit, default settings
    (``defaults``: a YAML flow mapping of other settings to measure, e.g. ``{growth: {for: 3m}}``)."""
    lines = ["version: 1", "name: alert-bench", *([f"defaults: {defaults}"] if defaults else []), "jobs:"]
    for j in jobs:
        lines += [
            f"  {j.id}:",
            "    owner: bench",
            f"    model: {{name: {j.id}, version: '1'}}",
            "    runtime: kubernetes",
            f"    selector: {{namespace: {j.namespace}, container: {j.container}}}",
            f"    memory: {{limit: {round(j.limit / MI)}Mi}}",
        ]
    return "\n".join(lines) + "\n"


def series_of(runs: list[Run], jobs: dict[str, JobShape], before: float | None = None) -> list[Series]:
    """cAdvisor's working set and limit of every pod (a restarted container gets a new ``id``)."""
    out = []
    for run in runs:
        job = jobs[run.job]
        for pod in run.pods:
            parts: dict[str, list[tuple[float, float]]] = {}
            for t, v in pod.samples:
                if before is None or t < before:
                    container = "1" if pod.restarted is None or t < pod.restarted else "2"
                    parts.setdefault(container, []).append((t, v))
            for n, samples in parts.items():
                labels = {
                    "namespace": job.namespace,
                    "pod": pod.name,
                    "container": job.container,
                    "node": pod.node,
                    "image": f"registry.example/{job.id}:1",
                    "id": f"/kubepods/burstable/pod-{pod.name}/{n}",
                }
                out.append(Series.of("container_memory_working_set_bytes", labels, samples))
                out.append(Series.of("container_spec_memory_limit_bytes", labels, [(t, job.limit) for t, _ in samples]))
    return out


def baseline(repo: Path, history_days: int) -> str:
    """Run the real ``memprov baseline`` on the history files; returns baselines/local.yaml."""
    cmd = [sys.executable, "-m", "provisioner", "baseline", "--env", "local"]
    cmd += ["--series", str(repo / "history"), "--since", f"{history_days}d"]
    result = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode not in (0, 1):  # 1: the spec does not validate with the new baselines (reported)
        raise SystemExit(f"memprov baseline failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return (repo / "baselines" / "local.yaml").read_text(encoding="utf-8")


BEFORE, AFTER = 600.0, 7200.0  # each job's alerts are evaluated from 10 minutes before a run to 2 hours after


def spans(runs: list[Run], start: float, end: float) -> list[tuple[float, float]]:
    """The stretches of ``[start, end]`` around ``runs``, merged: a batch job's alerts can only fire
    while it runs, and outside-run episodes start within minutes of the end (2 hours are kept)."""
    out: list[tuple[float, float]] = []
    for run in sorted(runs, key=lambda r: r.start):
        lo, hi = max(start, run.start - BEFORE), min(end, run.end + AFTER)
        if hi < lo:
            continue
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def evaluate(
    prom: TempPrometheus,
    jobs: list[list[dict[str, Any]]],
    start: float,
    end: float,
    windows: list[list[tuple[float, float]]] | None = None,
) -> list[Any]:
    """Every alert of every job's groups (recording rules inlined), over the job's ``windows`` (default:
    all of ``[start, end]``), two queries at a time."""
    tasks = [
        (rule, duration(interval), lo, hi)
        for i, groups in enumerate(jobs)
        for rule, interval in inline_groups(groups)
        for lo, hi in (windows[i] if windows is not None else [(start, end)])
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda t: evaluate_alert(prom, t[0], t[2], t[3], t[1]), tasks)
        return [e for eps in results for e in eps]


def to_eps(episodes: list[Any], pod_job: dict[str, str]) -> list[Ep]:
    out = []
    for e in episodes:
        label = e.label
        pod = label.get("pod", "")
        job = label.get("memprov_job") or pod_job.get(pod, "")
        key = ",".join(f"{k}={v}" for k, v in e.labels)
        out.append(Ep(e.alert, e.severity, pod, job, key, e.start, e.end))
    return out


def run_seed(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    clock = time.monotonic()
    gen = Generator(seed, jobs=args.jobs, days=args.days)
    runs = gen.runs()
    jobs = {j.id: j for j in gen.jobs}
    cut = T0 + args.history_days * DAY
    with tempfile.TemporaryDirectory(prefix="memprov-aq-") as tmp:
        repo = Path(tmp)
        (repo / "memprov.yaml").write_text(spec_text(gen.jobs, args.defaults), encoding="utf-8")
        (repo / "history").mkdir()
        (repo / "history" / "cadvisor.om").write_text(openmetrics(series_of(runs, jobs, cut)), encoding="utf-8")
        reused = args.baselines_from / f"seed-{seed}.json" if args.baselines_from else None
        if reused is not None and reused.exists():  # re-score other rules on the same baselines
            baselines = json.loads(reused.read_text(encoding="utf-8"))["baselines"]
            (repo / "baselines").mkdir()
            (repo / "baselines" / "local.yaml").write_text(baselines, encoding="utf-8")
        else:
            baselines = baseline(repo, args.history_days)
        took = time.monotonic() - clock
        log(f"seed {seed}: {len(runs)} runs, baselines from days 1-{args.history_days} ({took:.0f}s)")
        spec = load(repo / "memprov.yaml", "local")
        groups = [rule_groups(spec, job) for job in spec.jobs]
        found = {str(r["alert"]) for gs in groups for g in gs for r in g["rules"] if "alert" in r}
        alerts = [n for names in ALERTS.values() for n in names if n in found]
        end = max(r.end for r in runs) + 2 * 3600
        with TempPrometheus(lookback_delta=args.lookback, workdir=Path(tmp)) as prom:
            prom.backfill(series_of(runs, jobs))
            prom.start()
            pod_job = {p.name: r.job for r in runs for p in r.pods}
            windows = [spans([r for r in runs if r.job == job.id], cut, end) for job in spec.jobs]
            mine = to_eps(evaluate(prom, groups, cut, end, windows), pod_job)
            log(f"seed {seed}: memprov's rules evaluated ({len(mine)} episodes, {time.monotonic() - clock:.0f}s)")
            static = to_eps(evaluate(prom, [[STATIC_GROUP]], cut, end), pod_job)
    log(f"seed {seed}: done in {time.monotonic() - clock:.0f}s")
    return {
        "seed": seed,
        "jobs": args.jobs,
        "days": args.days,
        "history_days": args.history_days,
        "lookback": args.lookback,
        "alerts": {MEMPROV: alerts, STATIC: ["StaticMemoryAbove85Percent"]},
        "episodes": {MEMPROV: [e.as_list() for e in mine], STATIC: [e.as_list() for e in static]},
        "baselines": baselines,
        "seconds": round(time.monotonic() - clock),
    }


def totals_of(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Tally]]]:
    totals: dict[str, dict[str, dict[str, Tally]]] = {}
    for res in results:
        runs = Generator(res["seed"], jobs=res["jobs"], days=res["days"]).runs()
        sets = {name: [Ep(*e) for e in eps] for name, eps in res["episodes"].items()}
        scored = score_seed(sets, res["alerts"], runs, res["history_days"])
        for name, views in scored.items():
            for view, cells in views.items():
                for regime, t in cells.items():
                    totals.setdefault(name, {}).setdefault(view, {}).setdefault(regime, Tally()).add(t)
    return totals


def seeds_of(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default=",".join(map(str, REPORTING_SEEDS[:1])), help="e.g. 501-512 or 101,102")
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--history-days", type=int, default=7)
    parser.add_argument("--lookback", default="5m", help="Prometheus look-back delta (default: Prometheus' own 5m)")
    parser.add_argument("--out", type=Path, help="keep each seed's episodes here (seed-N.json)")
    parser.add_argument("--reuse", action="store_true", help="do not re-run seeds whose JSON is in --out")
    parser.add_argument("--json", type=Path, help="write the totals as JSON")
    parser.add_argument("--baselines-from", type=Path, help="take each seed's baselines from an earlier --out")
    parser.add_argument("--defaults", default="", help="settings other than the defaults, e.g. '{growth: {for: 3m}}'")
    args = parser.parse_args(argv)
    seeds = seeds_of(args.seeds)
    results = []
    for seed in seeds:
        path = args.out / f"seed-{seed}.json" if args.out else None
        if path is not None and args.reuse and path.exists():
            results.append(json.loads(path.read_text(encoding="utf-8")))
            continue
        res = run_seed(seed, args)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(res) + "\n", encoding="utf-8")
        results.append(res)
    totals = totals_of(results)
    regimes = list(REGIMES)
    print(
        f"## Alert quality: seeds {args.seeds}, {args.jobs} jobs x {args.days} days, scored from day "
        f"{args.history_days + 1}, look-back {args.lookback}\n"
    )
    print(main_table(totals, MEMPROV) + "\n")
    print("### Per regime\n\n" + regime_table(totals, MEMPROV, regimes) + "\n")
    print("### Targets (issue 14)\n\n" + "\n".join(verdict(totals, MEMPROV)))
    if args.json:
        data = {n: {v: {r: t.as_dict() for r, t in c.items()} for v, c in vs.items()} for n, vs in totals.items()}
        args.json.write_text(json.dumps({"seeds": seeds, "totals": data}, indent=1) + "\n", encoding="utf-8")
    return 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
