"""Regenerate the example history under examples/: series files and a runs file.

    python examples/generate.py

Four weeks of one run a day of each job of the example spec (memprov.yaml), sampled every 30 s
like cAdvisor, from the alert-quality benchmark's trace generator (bench/alert_quality/
tracegen.py, seeded, so the files are the same on every machine): three weeks of healthy and
spiky runs, then a week with incidents, among them the design document's case study on
clv-daily (an upstream bug sends 10x the records: the troughs climb at several times the usual
velocity until the OOM kill). Writes:

- ``examples/series/<job>.om.gz``: OpenMetrics text of ``container_memory_working_set_bytes`` and
  ``container_spec_memory_limit_bytes`` (what ``memprov baseline --series`` and ``memprov
  backtest --series`` read);
- ``examples/runs.csv``: the same runs as a runs file (job, start, end, peak, outcome), for
  ``memprov baseline --runs``;
- ``examples/truth.json``: the ground truth (kind, onset, OOM of every run) the tests check
  the backtest against.
"""

from __future__ import annotations

import gzip
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "bench" / "alert_quality"), str(ROOT)]

from tracegen import Generator, JobShape, Plan  # noqa: E402

from provisioner.history.promapi import Series, openmetrics  # noqa: E402
from provisioner.spec.loader import load  # noqa: E402

SEED = 7
HISTORY_DAYS = 22
RUNS = 7  # evaluated runs per job, one a day: incidents among them


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    spec = load(ROOT / "memprov.yaml", "local")
    shapes = []
    for job in (j for j in spec.jobs if j.runtime == "kubernetes"):  # cAdvisor series: the kubernetes jobs
        b = job.baseline
        assert b and b.peak_p50 and b.peak_p95 and b.velocity and job.selector.namespace and job.selector.container
        shapes.append(
            JobShape(
                job.id,
                job.selector.namespace,
                job.selector.container,
                float(job.limit),
                float(b.peak_p50),
                float(b.peak_p95),
                b.velocity / 60,
            )
        )
    plan = Plan(seed=SEED, runs=RUNS, history_days=HISTORY_DAYS, per_day=1, scrape=spec.scrape_interval)
    runs = Generator(plan).runs(shapes)
    out = HERE / "series"
    out.mkdir(exist_ok=True)
    for shape in shapes:
        series = []
        for run in (r for r in runs if r.job == shape.id):
            labels = {"namespace": shape.namespace, "pod": run.pod, "container": shape.container, "node": run.node}
            series.append(
                Series.of("container_memory_working_set_bytes", labels, [(t, round(v)) for t, v in run.samples])
            )
            series.append(
                Series.of("container_spec_memory_limit_bytes", labels, [(t, shape.limit) for t, _ in run.samples])
            )
        text = openmetrics(series).encode()
        with (out / f"{shape.id}.om.gz").open("wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
            gz.write(text)
    lines = ["job,run,start,end,peak,outcome"]
    for r in runs:
        peak = max(v for _, v in r.samples)
        outcome = "oom_killed" if r.oom is not None else "ok"
        lines.append(f"{r.job},{r.pod},{iso(r.start)},{iso(r.end)},{round(peak)},{outcome}")
    (HERE / "runs.csv").write_text("\n".join(lines) + "\n")
    truth = [
        {
            "job": r.job,
            "pod": r.pod,
            "kind": r.kind,
            "start": r.start,
            "end": r.end,
            "onset": r.onset,
            "oom": r.oom,
            "note": r.note,
        }
        for r in runs
    ]
    (HERE / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"{len(runs)} runs written under {HERE}")


if __name__ == "__main__":
    main()
