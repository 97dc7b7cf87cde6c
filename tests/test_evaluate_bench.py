"""The alert-quality benchmark: its traces keep their promises, the evaluator agrees at scale with a
direct computation of the static rule from the samples, and the command runs end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from provisioner.analysis.evaluate.alerts import run_state_machine
from provisioner.spec.loader import load
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
from tracegen import HEALTHY, INCIDENTS, Generator, Plan, Run  # noqa: E402


def small_runs(seed: int = 3, runs: int = 12) -> tuple[Plan, list[Run], dict[str, Any]]:
    spec = load(ROOT / "memprov.yaml", "local")
    shapes = {s.id: s for s in bench.job_shapes(spec)}
    plan = Plan(seed=seed, runs=runs, history_days=1)
    return plan, Generator(plan).runs(list(shapes.values())), shapes


def test_traces_are_deterministic_and_keep_their_ground_truth() -> None:
    plan, runs, shapes = small_runs()
    again = small_runs()[1]
    assert [(r.pod, r.kind, r.samples) for r in runs] == [(r.pod, r.kind, r.samples) for r in again]
    assert {r.kind for r in runs if r.scored} >= {*INCIDENTS, "drift", *HEALTHY}
    for r in runs:
        limit = shapes[r.job].limit
        assert all(t % plan.scrape == 0 for t, _ in r.samples)
        assert max(v for _, v in r.samples) < limit
        if r.incident:
            assert r.onset is not None and r.oom is not None and r.start < r.onset < r.oom
            assert r.samples[-1][0] < r.oom <= r.samples[-1][0] + plan.scrape  # the series stops at the OOM
            assert max(v for _, v in r.samples) > 0.9 * limit
        else:
            assert r.oom is None and max(v for _, v in r.samples) < (0.96 if r.kind == "spiky" else 0.81) * limit
    assert len({r.pod for r in runs}) == len(runs)


@pytest.mark.integration
def test_the_static_rule_evaluated_by_prometheus_matches_a_direct_computation(
    prometheus_with: StartPrometheus,
) -> None:
    plan, runs, shapes = small_runs()
    prom = prometheus_with(bench.series_of(runs, shapes), lookback_delta="45s")
    got = bench.evaluate(prom, [bench.STATIC_GROUP], plan.t0, plan.end)

    times = [plan.t0 + i * 30 for i in range(int((plan.end - plan.t0) // 30) + 1)]
    active = {}
    for r in runs:  # true where the latest sample within the 45 s look-back is above 85 % of the limit
        above = {t for t, v in r.samples if v / shapes[r.job].limit > 0.85}
        last = r.samples[-1][0]
        when = sorted(above | {t + 30 for t in above if t == last})
        labels = {
            "namespace": shapes[r.job].namespace,
            "pod": r.pod,
            "container": shapes[r.job].container,
            "node": r.node,
            "severity": "warning",
        }
        active[tuple(sorted(labels.items()))] = when
    expected = run_state_machine("StaticMemoryAbove85Percent", active, times, 120, 0)
    assert sorted(got, key=lambda e: (e.start, e.labels)) == expected
    assert len(expected) >= 5


@pytest.mark.integration
def test_the_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    cmd = [sys.executable, str(BENCH / "run.py"), "--runs", "8", "--history-days", "1", "--json", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| memprov |" in result.stdout and "| static 85 % for 2m |" in result.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert set(data["rule_sets"]) == {"memprov", "static 85 % for 2m"}
    memprov = data["rule_sets"]["memprov"]
    assert sum(memprov["caught"][k]["of"] for k in INCIDENTS) == 3 * 5  # 2 surges, 2 leaks, 1 step per job
    assert all(i["oom"] > i["onset"] for i in memprov["incidents"])
