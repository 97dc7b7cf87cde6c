"""The alert-quality benchmark: its traces keep their promises, its scoring counts what it says, the
evaluator agrees with a direct computation of the static rule from the samples, and the whole
benchmark (the real `memprov baseline` included) runs end to end on a small instance."""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from provisioner.analysis.evaluate.alerts import eval_times, run_state_machine
from tests.helpers import ROOT
from tests.promserver import StartPrometheus

BENCH = ROOT / "bench" / "alert_quality"
sys.path.insert(0, str(BENCH))


def _load(name: str, path: Path) -> ModuleType:
    """The benchmark's run.py under a name of its own (bench/run.py is another ``run``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load("alert_quality_run", BENCH / "run.py")
from score import Ep, tally  # noqa: E402
from tracegen import MIN, SCRAPE, Generator, Pod, Run  # noqa: E402


def test_traces_are_deterministic_and_keep_their_promises() -> None:
    gen = Generator(7)
    runs, again = gen.runs(), Generator(7).runs()
    assert [[(p.name, p.samples) for p in r.pods] for r in runs] == [
        [(p.name, p.samples) for p in r.pods] for r in again
    ]
    jobs = {j.id: j for j in gen.jobs}
    assert len(jobs) == 32 and len(runs) == 32 * 14
    assert {j.regime for j in jobs.values()} == {"tight", "normal", "loose"}
    for r in runs:
        limit = jobs[r.job].limit
        assert all(t % SCRAPE == 0 for p in r.pods for t, _ in p.samples)
        assert r.peak < limit
        if r.incident:
            assert r.onset is not None and r.oom is not None and r.start < r.onset < r.oom
            assert r.end < r.oom <= r.end + SCRAPE + 6 * SCRAPE  # the series stops at the kill (or a missed scrape)
            assert r.peak > 0.9 * limit
        else:
            assert r.oom is None and r.peak < 0.995 * limit
        if r.kind == "drift":
            assert r.regime != "tight" and r.peak <= 0.93 * limit
    tight = [r.peak / jobs[r.job].limit for r in runs if r.regime == "tight" and r.kind == "healthy"]
    assert 0.80 < statistics.median(tight) < 0.95  # tightly sized: healthy peaks at 85-95 % of the limit
    notes = " ".join(n for r in runs for n in r.notes)
    assert "restarted" in notes and "evicted" in notes and "heavy day" in notes
    assert any(len(r.pods) == 2 and r.pods[0].node != r.pods[1].node for r in runs)  # a job that moved node
    grid = [t for r in runs for p in r.pods for t, _ in p.samples]
    assert len(grid) < sum(int((p.samples[-1][0] - p.samples[0][0]) / SCRAPE) + 1 for r in runs for p in r.pods)


def _run(kind: str, start: float, pod: str = "p", onset: float | None = None, oom: float | None = None) -> Run:
    run = Run("job-01", "tight", kind, 7, start, [Pod(pod, "n", [(start, 1.0), (start + 60 * MIN, 1.0)])])
    run.onset, run.oom = onset, oom
    return run


def test_scoring_counts_catches_false_alarms_flaps_and_outside_episodes() -> None:
    healthy = _run("healthy", 0.0, "a")
    surge = _run("surge", 10_000.0, "b", onset=10_600.0, oom=10_000.0 + 60 * MIN)
    drift = _run("drift", 20_000.0, "c")
    runs = [healthy, surge, drift]

    def ep(alert: str, sev: str, pod: str, start: float, end: float | None) -> Ep:
        return Ep(alert, sev, pod, "job-01", f"{alert}/{pod}", start, end)

    eps = [
        ep("W", "warning", "a", 600, 900),
        ep("W", "warning", "a", 1200, 1500),  # a flap: 5 minutes after the previous one resolved
        ep("C", "critical", "a", 700, 800),  # overlaps the first warning: one notification in "any alert"
        ep("W", "warning", "a", 3800, None),  # over 2 minutes after the pod's last sample (3600 s): outside
        ep("W", "warning", "b", 11_200, 11_500),  # caught: 2400 s before the OOM, best 3000 s
        ep("W", "warning", "c", 21_000, 21_100),  # drift warned, not paged
    ]
    single = tally([e for e in eps if e.alert == "W"], runs, runs, merged=False)
    assert single.false_alarms == 3 and single.healthy == 1 and single.healthy_alerted == 1
    assert single.flaps == 1 and single.outside == 1
    assert single.surge_leak == (1, 1) and single.leads == [40.0] and single.fractions == [0.8]
    assert (single.drift_warned, single.drift_paged) == (1, 0)
    merged = tally(eps, runs, runs, merged=True)
    assert merged.false_alarms == 3  # 600-900 with the critical inside it, 1200-1500, 3800-
    assert merged.flaps == 1


@pytest.mark.integration
def test_the_static_rule_evaluated_by_prometheus_matches_a_direct_computation(
    prometheus_with: StartPrometheus,
) -> None:
    gen = Generator(14, jobs=4, days=3)  # a draw whose runs cross 85 % of the limit a few times
    runs = gen.runs()
    series = bench.series_of(runs, {j.id: j for j in gen.jobs})
    prom = prometheus_with(series, lookback_delta="45s")
    t0, t1 = min(r.start for r in runs), max(r.end for r in runs) + 600
    got = bench.evaluate(prom, [[bench.STATIC_GROUP]], t0, t1)
    times = eval_times(t0, t1, 30)  # a group evaluates at the multiples of its interval
    limits = {s.labels: v for s in series if s.name == "container_spec_memory_limit_bytes" for _, v in s.samples[:1]}
    active = {}
    for s in series:  # true where the latest sample within the 45 s look-back is above 85 % of the limit
        if s.name != "container_memory_working_set_bytes":
            continue
        stamps = [t for t, _ in s.samples]
        when = []
        for t in times:
            recent = [v for ts, v in s.samples if t - 45 < ts <= t]
            if stamps[0] <= t and recent and recent[-1] / limits[s.labels] > 0.85:
                when.append(t)
        active[tuple(sorted({**dict(s.labels), "severity": "warning"}.items()))] = when
    expected = run_state_machine("StaticMemoryAbove85Percent", active, times, 300, 0)
    assert sorted(got, key=lambda e: (e.start, e.labels)) == expected
    assert len(expected) >= 3


@pytest.mark.integration
def test_the_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    """A small instance, the real `memprov baseline` included: 4 jobs, 2 days of history, 2 scored."""
    out = tmp_path / "totals.json"
    cmd = [sys.executable, str(BENCH / "run.py"), "--seeds", "101", "--jobs", "4", "--days", "4"]
    cmd += ["--history-days", "2", "--json", str(out), "--out", str(tmp_path / "seeds")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| any warning |" in result.stdout and "| static 85 % for 5m |" in result.stdout
    assert "### Per regime" in result.stdout and "### Targets (issue 14)" in result.stdout
    totals = json.loads(out.read_text(encoding="utf-8"))["totals"]
    memprov = totals["memprov"]["any alert"]["all"]
    assert memprov["runs"] == 4 * 2
    assert set(totals["memprov"]) >= {"any alert", "any warning", "any critical", "BatchJobMemoryAboveBaseline"}
    seed = json.loads((tmp_path / "seeds" / "seed-101.json").read_text(encoding="utf-8"))
    assert "floor:" in seed["baselines"] and "floor_velocity:" in seed["baselines"]  # learnt by memprov baseline
