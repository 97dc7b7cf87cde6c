"""What memprov's Prometheus rules cost a real Prometheus, per job, against the naive static rule.

    python bench/rule_cost.py [--jobs 200] [--minutes 5] [--history-days 15] [--legacy-baseline]

One Prometheus (Debian's 2.42) holds ``--history-days`` of backfilled cAdvisor series of
``--jobs`` batch jobs (one run a day), so that every window and ``offset`` of the rules finds
data, and scrapes a live target: a small exporter on 127.0.0.1 serving each job's running pod
(a sawtooth over a growing trough) every 30 s. That run is settled when the measure starts: its
recorded working set is backfilled for ``LIVE_AGE`` (40 minutes), as if Prometheus had been
evaluating the rules all along, so the run's age is past every settle age and every series a
running job has (the troughs' velocity, the own floor) exists while measuring. The rules are
those ``memprov render`` writes for a generated spec of these jobs, with a baseline per job
(``--legacy-baseline``: only the fields an older memprov knew, to measure an older revision: run
this script with that revision's ``provisioner`` on ``PYTHONPATH``). Next to them, in the same
Prometheus and the same run, each job gets the naive rule in a group of its own: ``working set /
limit > 0.85 for 5m`` on its series.

Measured over ``--minutes`` after a warm-up, from ``/api/v1/rules`` (each group's
``evaluationTime`` at each evaluation; a slow group's cost spread over its interval): the rules'
evaluation time per job and second, memprov's over the naive rule's (the ratio is the figure: the
same machine, load and data); the recorded series per job (``count({__name__=~"memprov:.*"})``
over the jobs, one running instance each); and Prometheus' own CPU seconds (``/proc``) over the
window in three runs (both rule sets, the naive rule only, no rules), as an independent measure:
memprov's rules cost the first minus the second, the naive rule the second minus the third.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.core.yamlio import dumps, loads  # noqa: E402
from provisioner.history.promapi import Series, TempPrometheus, free_port  # noqa: E402

GI, MI, DAY = float(2**30), float(2**20), 86400.0
NAIVE = "container_memory_working_set_bytes{sel} / container_spec_memory_limit_bytes{sel} > 0.85"


def jobs_of(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        limit = rng.choice([4, 8, 16, 24]) * GI
        base = limit * rng.uniform(0.3, 0.5)
        out.append({"id": f"job-{i:04d}", "limit": limit, "base": base, "v": limit * rng.uniform(0.001, 0.003) / 60})
    return out


def spec_text(jobs: list[dict[str, Any]]) -> str:
    lines = ["version: 1", "name: rule-cost", "jobs:"]
    for j in jobs:
        lines += [
            f"  {j['id']}:",
            "    owner: bench",
            "    model: {name: m, version: '1'}",
            f"    selector: {{namespace: batch, container: {j['id']}}}",
            f"    memory: {{limit: {round(j['limit'] / MI)}Mi}}",
        ]
    return "\n".join(lines) + "\n"


def baselines_text(jobs: list[dict[str, Any]], legacy: bool) -> str:
    lines = ["jobs:"]
    for j in jobs:
        b, v = j["base"], j["v"] * 60
        lines += [f"  {j['id']}:", "    runs: 14", f"    peak_p50: {round((b + 100 * v) / MI)}Mi"]
        lines += [f"    peak_p95: {round((b + 120 * v) / MI)}Mi", f"    peak_max: {round((b + 130 * v) / MI)}Mi"]
        lines.append(f"    velocity: {round(v)}")
        if not legacy:
            lines += [
                "    duration_p50: 2h",
                "    duration_max: 2h30m",
                f"    end_peak_max: {round((b + 130 * v) / MI)}Mi",
            ]
            lines += [
                f"    floor: {round((b + 8 * v) / MI)}Mi",  # the troughs' line at the age of one 8-minute trough window
                f"    floor_velocity: {round(1.05 * v)}",
                "    floor_noise: 30Mi",
            ]
            lines += [
                f"    burst: {round(2 * v)}",
                f"    sawtooth: {round(0.05 * j['limit'] / MI)}Mi",
                "    oom_source: none",
            ]
    return "\n".join(lines) + "\n"


def value(j: dict[str, Any], age: float) -> float:
    return j["base"] + j["v"] * age + 0.05 * j["limit"] * ((age % 120) / 120)


def history(jobs: list[dict[str, Any]], now: float, days: int) -> list[Series]:
    out = []
    for j in jobs:
        for d in range(days, 0, -1):
            start = math.floor((now - d * DAY) / 30) * 30
            labels = {"namespace": "batch", "pod": f"{j['id']}-d{d}", "container": j["id"], "node": "node-1"}
            samples = [(start + k * 30, value(j, k * 30.0)) for k in range(240)]
            out.append(Series.of("container_memory_working_set_bytes", labels, samples))
            out.append(Series.of("container_spec_memory_limit_bytes", labels, [(t, j["limit"]) for t, _ in samples]))
    return out


LIVE_AGE = 40 * 60.0  # the live run's age when Prometheus starts: past every settle age, all its series exist


def live_history(jobs: list[dict[str, Any]], t0: float, now: float) -> list[Series]:
    """The live pods' working set as memprov's rules would have recorded it from their start ``t0``
    until ``now``, as if Prometheus had been evaluating them all along: the run's age counts these
    samples, so the run is settled at once and every series of a running job exists while measuring."""
    out = []
    for j in jobs:
        labels = {"memprov_job": j["id"], "memprov_env": "local", "namespace": "batch", "pod": f"{j['id']}-live"}
        labels |= {"container": j["id"], "node": "node-1"}
        times = [t0 + k * 30 for k in range(int((now - t0) // 30))]
        out.append(Series.of("memprov:memory_working_set:bytes", labels, [(t, value(j, t - t0)) for t in times]))
    return out


class Exporter:
    """The live target: each job's running pod, its working set growing since ``t0`` (set to
    ``LIVE_AGE`` before Prometheus starts; like the history's runs, so that no alert fires: a firing
    alert's annotations run queries, and the measure is of the rules' steady cost)."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self.jobs, self.t0 = jobs, time.time()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def text(self) -> str:
        age = time.time() - self.t0  # a healthy run like the history's: no alert fires
        lines = []
        for j in self.jobs:
            lab = f'namespace="batch",pod="{j["id"]}-live",container="{j["id"]}",node="node-1"'
            lines.append(f"container_memory_working_set_bytes{{{lab}}} {value(j, age):.0f}")
            lines.append(f"container_spec_memory_limit_bytes{{{lab}}} {j['limit']:.0f}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()


def render(repo: Path, source: Path | None = None) -> list[Path]:
    """``memprov render`` of the generated spec, by this tree's ``provisioner`` or ``source``'s
    (another revision's tree, e.g. ``git archive abf81f6 | tar -x -C /tmp/before``)."""
    out = repo / "out"
    cmd = [sys.executable, "-m", "provisioner", "render", "--env", "local", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(source)} if source else None
    result = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=3600, check=False, env=env)
    if result.returncode != 0:
        raise SystemExit(f"memprov render failed:\n{result.stdout}\n{result.stderr}")
    return sorted((out / "prometheus").glob("*.rules.yaml"))


def naive_file(jobs: list[dict[str, Any]], path: Path) -> Path:
    groups = []
    for j in jobs:
        sel = f'{{namespace="batch", container="{j["id"]}"}}'
        rule = {"alert": "NaiveMemoryAbove85Percent", "expr": NAIVE.replace("{sel}", sel), "for": "5m"}
        groups.append({"name": f"naive-{j['id']}", "interval": "30s", "rules": [rule]})
    path.write_text(dumps({"groups": groups}), encoding="utf-8")
    return path


def merged(files: list[Path], path: Path) -> Path:
    groups = [g for f in files for g in loads(f.read_text(encoding="utf-8"), str(f)).data["groups"]]
    path.write_text(dumps({"groups": groups}), encoding="utf-8")
    return path


def cpu_seconds(prom: TempPrometheus) -> float:
    """User + system CPU seconds of the Prometheus process so far (``/proc/<pid>/stat``)."""
    assert prom._proc is not None
    fields = Path(f"/proc/{prom._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


RULE_TIMES: dict[str, list[float]] = {}  # rule name -> evaluation seconds seen (memprov's groups)


def measure(prom: TempPrometheus, minutes: float) -> dict[str, list[tuple[float, float, float]]]:
    """Per group: the (last evaluation, evaluation seconds, interval) seen while polling."""
    seen: dict[str, dict[str, tuple[float, float, float]]] = {}
    deadline = time.monotonic() + 60 * minutes
    while time.monotonic() < deadline:
        for g in prom.rule_groups():
            stamp = g.get("lastEvaluation", "")
            if stamp and not stamp.startswith("0001"):
                if stamp not in seen.get(g["name"], {}) and g["name"].startswith("memprov-"):
                    for r in g["rules"]:
                        RULE_TIMES.setdefault(r["name"], []).append(float(r.get("evaluationTime", 0.0)))
                seen.setdefault(g["name"], {})[stamp] = (0.0, float(g["evaluationTime"]), float(g["interval"]))
        time.sleep(5)
    return {name: list(v.values()) for name, v in seen.items()}


def per_second(samples: dict[str, list[tuple[float, float, float]]], prefix: str) -> float:
    """Sum over the groups named ``prefix*`` of (median evaluation time / interval)."""
    total = 0.0
    for name, values in samples.items():
        if name.startswith(prefix) and values:
            total += statistics.median(v for _, v, _ in values) / values[0][2]
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--history-days", type=int, default=15)
    parser.add_argument("--legacy-baseline", action="store_true", help="baselines an older memprov accepts")
    parser.add_argument("--render-with", type=Path, help="render the rules with this source tree's provisioner")
    args = parser.parse_args(argv)
    jobs = jobs_of(args.jobs)
    with tempfile.TemporaryDirectory(prefix="memprov-cost-") as tmp:
        repo = Path(tmp)
        (repo / "memprov.yaml").write_text(spec_text(jobs), encoding="utf-8")
        (repo / "baselines").mkdir()
        (repo / "baselines" / "local.yaml").write_text(baselines_text(jobs, args.legacy_baseline), encoding="utf-8")
        clock = time.monotonic()
        memprov = merged(render(repo, args.render_with), repo / "memprov.rules.yaml")
        naive = naive_file(jobs, repo / "naive.rules.yaml")
        print(f"rendered in {time.monotonic() - clock:.0f}s", file=sys.stderr)
        series = history(jobs, time.time(), args.history_days)
        exporter = Exporter(jobs)
        results = {}
        try:
            for name, files in (("both", [memprov, naive]), ("naive", [naive]), ("none", [])):
                scrape = "scrape_configs:\n  - job_name: cadvisor\n    scrape_interval: 30s\n"
                scrape += f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n"
                with TempPrometheus(rule_files=files, workdir=repo, lookback_delta="5m", scrape_configs=scrape) as prom:
                    now = time.time()  # the live run started LIVE_AGE ago (its recorded working set backfilled)
                    exporter.t0 = now - LIVE_AGE
                    prom.backfill(series + live_history(jobs, exporter.t0, now))
                    prom.start()
                    time.sleep(75)  # two evaluations of every fast group before measuring
                    cpu0, t0 = cpu_seconds(prom), time.monotonic()
                    samples = measure(prom, args.minutes)
                    cpu = (cpu_seconds(prom) - cpu0) / (time.monotonic() - t0)
                    recorded = prom.query('count({__name__=~"memprov:.*"})', time.time())
                    alerts = prom.query('count by (alertname) (ALERTS{managed_by="memprov"})', time.time())
                    if alerts:
                        print(f"{name}: alerts active: {alerts}", file=sys.stderr)
                    results[name] = (samples, cpu, next(iter(recorded.values()), 0.0), sum(alerts.values()))
        finally:
            exporter.close()
    both, cpu_both, recorded, firing = results["both"]
    _, cpu_naive, _, _ = results["naive"]
    _, cpu_none, _, _ = results["none"]
    n = args.jobs
    mine = per_second(both, "memprov-") / n
    ref = per_second(both, "naive-") / n
    print(f"| measure ({n} jobs, {args.minutes:g} min, {args.history_days} days of history) | figure |")
    print("|---|---|")
    print(f"| memprov's rules, evaluation time per job | {1000 * mine:.4f} ms/s ({30000 * mine:.2f} ms per 30 s) |")
    print(f"| the naive rule, same Prometheus, per job | {1000 * ref:.4f} ms/s ({30000 * ref:.2f} ms per 30 s) |")
    print(f"| ratio | **{mine / ref:.1f}x** |")
    print(f"| recorded series per job (one running instance) | {recorded / n:.1f} |")
    print(
        f"| Prometheus CPU, memprov + naive rules / naive rules only / no rules | {cpu_both:.4f} / {cpu_naive:.4f} / "
        f"{cpu_none:.4f} cores |"
    )
    mine_cpu, naive_cpu = (cpu_both - cpu_naive) / n, (cpu_naive - cpu_none) / n
    print(f"| CPU per job: memprov's rules / the naive rule | {1000 * mine_cpu:.4f} / {1000 * naive_cpu:.4f} ms/s |")
    print(f"| memprov alerts pending or firing at the end (should be 0: a healthy run) | {firing:.0f} |")
    print("\n| rule | median evaluation (ms) |\n|---|---|")
    for name, times in sorted(RULE_TIMES.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"| {name} | {1000 * statistics.median(times):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
