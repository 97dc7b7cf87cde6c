"""Alert-quality benchmark: memprov's rules against the naive static rule, on a real Prometheus.

    python bench/alert_quality/run.py [--runs N] [--seed S] [--json OUT]

Generates seeded traces for the example spec's jobs (tracegen.py) with weeks of healthy history
before the evaluated runs (as many days as the rules look back, unless ``--history-days``),
backfills them into a temporary Prometheus (provisioner.history.promapi), evaluates every alert of
each job's rendered rule group with Prometheus' own semantics (recording rules inlined,
query_range at the group interval, the for/keep_firing_for state machine:
provisioner.analysis.evaluate), evaluates the static ``working set / limit > 0.85 for 2m`` rule the same
way, scores both against the ground truth (score.py) and prints Markdown tables (report.py).
See README.md for the method and how to read the tables.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT)]

from report import alert_table, as_json, examples, job_table, kind_table, summary_table, verdict  # noqa: E402
from score import score  # noqa: E402
from tracegen import DAY, Generator, JobShape, Plan, Run  # noqa: E402

from provisioner.analysis.evaluate.alerts import Episode, duration, evaluate_alert  # noqa: E402
from provisioner.analysis.evaluate.inline import inline_group  # noqa: E402
from provisioner.core.units import parse_duration  # noqa: E402
from provisioner.history.promapi import Series, TempPrometheus  # noqa: E402
from provisioner.render.prometheus.rules import rule_group  # noqa: E402
from provisioner.spec.loader import load  # noqa: E402
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec  # noqa: E402

STATIC_GROUP: dict[str, Any] = {
    "name": "static-85-percent",
    "interval": "30s",
    "rules": [
        {
            "alert": "StaticMemoryAbove85Percent",
            "expr": "container_memory_working_set_bytes / container_spec_memory_limit_bytes > 0.85",
            "for": "2m",
            "labels": {"severity": "warning"},
        }
    ],
}
_OFFSET = re.compile(r"\boffset\s+([0-9][0-9smhdwy]*)")
_RANGE = re.compile(r"\[\s*([0-9][0-9smhdwy]*)\s*(?::[^\]]*)?\]")


def traced_jobs(spec: ResolvedSpec) -> list[ResolvedJob]:
    """The jobs the generator can trace: cAdvisor series of kubernetes jobs (the example's process
    job, wrapped by `memprov run`, has other series and is left out)."""
    return [j for j in spec.jobs_using("prometheus") if j.runtime == "kubernetes"]


def job_shapes(spec: ResolvedSpec) -> list[JobShape]:
    out = []
    for job in traced_jobs(spec):
        b = job.baseline
        if b is None or b.peak_p50 is None or b.peak_p95 is None or b.velocity is None:
            raise SystemExit(f"job {job.id}: the benchmark needs memory.baseline peak_p50, peak_p95 and velocity")
        sel = job.selector
        if not sel.namespace or not sel.container:
            raise SystemExit(f"job {job.id}: the benchmark needs a kubernetes selector with namespace and container")
        out.append(
            JobShape(
                job.id,
                sel.namespace,
                sel.container,
                float(job.limit),
                float(b.peak_p50),
                float(b.peak_p95),
                b.velocity / 60,
            )
        )
    return out


def history_needed(groups: list[dict[str, Any]]) -> float:
    """How far back the alerts look, an upper bound: the largest offset plus all distinct ranges."""
    need = 0.0
    for group in groups:
        for rule in inline_group(group):
            expr = str(rule["expr"])
            offsets = [parse_duration(o) for o in _OFFSET.findall(expr)]
            ranges = {parse_duration(r) for r in _RANGE.findall(expr)}
            need = max(need, max(offsets, default=0.0) + sum(ranges) + duration(rule.get("for")))
    return need


def series_of(runs: list[Run], shapes: dict[str, JobShape]) -> list[Series]:
    out = []
    for run in runs:
        job = shapes[run.job]
        labels = {"namespace": job.namespace, "pod": run.pod, "container": job.container, "node": run.node}
        out.append(Series.of("container_memory_working_set_bytes", labels, run.samples))
        out.append(Series.of("container_spec_memory_limit_bytes", labels, [(t, job.limit) for t, _ in run.samples]))
    return out


def evaluate(prom: TempPrometheus, groups: list[dict[str, Any]], start: float, end: float) -> list[Episode]:
    """Every alert of every group, two queries at a time (two cores)."""
    tasks = [(rule, duration(g["interval"])) for g in groups for rule in inline_group(g)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda task: evaluate_alert(prom, task[0], start, end, task[1]), tasks)
        return [e for eps in results for e in eps]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=168, help="evaluated runs per job (default 168: six weeks)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-day", type=int, default=4, help="runs per job and day (default 4)")
    parser.add_argument(
        "--history-days",
        type=int,
        help="healthy history before the evaluated runs "
        "(default: as far back as the rules look, rounded up, plus a day)",
    )
    parser.add_argument("--spec", type=Path, default=ROOT / "memprov.yaml")
    parser.add_argument("--env", default="local")
    parser.add_argument("--json", type=Path, help="write every number and every incident to this file")
    args = parser.parse_args(argv)

    clock = time.monotonic()
    spec = load(args.spec, args.env)
    groups = [rule_group(spec, job) for job in traced_jobs(spec)]
    need = history_needed(groups)
    history_days = args.history_days if args.history_days is not None else math.ceil(need / DAY) + 1
    plan = Plan(
        seed=args.seed, runs=args.runs, history_days=history_days, per_day=args.per_day, scrape=spec.scrape_interval
    )
    shapes = {s.id: s for s in job_shapes(spec)}
    runs = Generator(plan).runs(list(shapes.values()))
    series = series_of(runs, shapes)
    log(
        f"{len(runs)} runs ({sum(r.scored for r in runs)} evaluated) over {history_days} + {plan.eval_days} days; "
        f"the rules look back {need / DAY:.1f} days"
    )
    lookback = f"{round(1.5 * spec.scrape_interval)}s"  # a killed container's series ends within a scrape
    with TempPrometheus(lookback_delta=lookback) as prom:
        samples = prom.backfill(series)
        prom.start()
        log(f"backfilled {samples} samples in {time.monotonic() - clock:.0f}s")
        memprov_eps = evaluate(prom, groups, plan.eval_start, plan.end)
        log(f"memprov's rules evaluated ({len(memprov_eps)} episodes) at {time.monotonic() - clock:.0f}s")
        static_eps = evaluate(prom, [STATIC_GROUP], plan.eval_start, plan.end)
        log(f"static rule evaluated ({len(static_eps)} episodes) at {time.monotonic() - clock:.0f}s")
    scores = [score("memprov", memprov_eps, runs), score("static 85 % for 2m", static_eps, runs)]
    severities = {
        r["alert"]: (r.get("labels", {}).get("severity", ""), r.get("labels", {}).get("memprov_kind", ""))
        for g in groups
        for r in g["rules"]
        if "alert" in r
    }
    print(f"## Alert quality: {args.spec.name} ({args.env}), seed {args.seed}, {args.runs} evaluated runs per job\n")
    print(
        f"{plan.per_day} runs per job and day; {history_days} days of healthy history, then {plan.eval_days} "
        f"evaluated days; scrape and evaluation every {spec.scrape_interval:g}s; look-back delta {lookback}.\n"
    )
    print(summary_table(scores) + "\n\n" + kind_table(scores) + "\n")
    print("### memprov, per job (caught, median lead / best)\n\n" + job_table(scores[0]) + "\n")
    print("### memprov's alerts\n\n" + alert_table(scores[0], severities) + "\n")
    for s in scores:
        print(f"### {s.name}: examples\n")
        print("\n".join(examples(s)) or "- nothing to report")
        print()
    print("### Targets (issue 3)\n\n" + "\n".join(f"- {verdict(s)}" for s in scores))
    if args.json:
        params = {
            "seed": args.seed,
            "runs": args.runs,
            "per_day": args.per_day,
            "history_days": history_days,
            "spec": str(args.spec),
            "env": args.env,
            "lookback_delta": lookback,
        }
        args.json.write_text(json.dumps(as_json(scores, params), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log(f"done in {time.monotonic() - clock:.0f}s")
    return 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
