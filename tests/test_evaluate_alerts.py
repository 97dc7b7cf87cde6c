"""The alert evaluator: Prometheus' for/keep_firing_for state machine, by hand and against promtool.

The reference is ``promtool test rules``: a rule file is loaded into a real Prometheus, the
evaluator computes the episodes over backfilled series with query_range, and a generated
``alert_rule_test`` asserts, at every evaluation, exactly the alerts the evaluator says fire.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.analysis.evaluate.alerts import (
    Episode,
    eval_times,
    evaluate_alert,
    evaluate_group,
    firing_at,
    run_state_machine,
)
from provisioner.history.promapi import Series, TempPrometheus
from tests.promserver import T0, StartPrometheus

A: tuple[tuple[str, str], ...] = (("pod", "a"),)
B: tuple[tuple[str, str], ...] = (("pod", "b"),)


def episodes(pattern: str, hold: float, keep: float = 0, step: float = 30) -> list[tuple[float, float | None]]:
    """Episodes as (start, end) offsets for a pattern of 1 (expression true) and . (not returned)."""
    times = [i * step for i in range(len(pattern))]
    active = {A: [t for t, c in zip(times, pattern, strict=True) if c == "1"]}
    return [(e.start, e.end) for e in run_state_machine("X", active, times, hold, keep)]


def test_for_zero_fires_at_once_and_resolves_at_the_first_evaluation_without_it() -> None:
    assert episodes("..11.1", 0) == [(60, 120), (150, None)]


def test_for_fires_once_active_for_the_whole_duration() -> None:
    # active since 30; for 60s -> fires at 90 (t - active_since >= for), resolved at 150
    assert episodes(".1111.", 60) == [(90, 150)]
    # a gap resets the pending state: 1 1 . 1 1 1 never lasts 90s until the last one
    assert episodes("11.111", 90) == []
    assert episodes("11.1111", 90) == [(180, None)]


def test_keep_firing_for_bridges_gaps_and_delays_the_resolution() -> None:
    # fires at 30 (for 30s); stops at 90: still firing at 90 and 120, resolved at 150 (= 90 + 60)
    assert episodes("111....", 30, keep=60) == [(30, 150)]
    # back before keep_firing_for ran out: the same episode continues
    assert episodes("111.11...", 30, keep=60) == [(30, 240)]
    # pending alerts are not kept: never fired
    assert episodes("1.1.1.", 30, keep=60) == []


def test_label_sets_are_independent_and_episodes_sorted() -> None:
    times = [i * 30.0 for i in range(6)]
    got = run_state_machine("X", {B: [0, 30, 60], A: [60, 90, 120, 150]}, times, 30, 0)
    assert [(e.labels, e.active_since, e.start, e.end) for e in got] == [(B, 0, 30, 90), (A, 60, 90, None)]
    assert firing_at(got, 60) == [got[0]] and firing_at(got, 90) == [got[1]]


def test_a_failed_evaluation_changes_no_state() -> None:
    times = [i * 30.0 for i in range(6)]
    # pending since 0, the evaluation at 30 fails, fires at 60 (for 60s); the failure at 120 does not resolve it
    got = run_state_machine("X", {A: [0, 60, 90]}, times, 60, 0, failed=[30, 120])
    assert [(e.start, e.end) for e in got] == [(60, 150)]


class Fixed:
    """A RangeQuerier answering the same result to every query."""

    def __init__(self, result: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]) -> None:
        self.result = result

    def query_range(self, expr: str, start: float, end: float, step: float) -> Any:
        return self.result


def test_samples_that_collide_once_the_rule_labels_apply_fail_the_evaluation() -> None:
    result = {(("__name__", "x"), ("pod", "a")): [(0.0, 1.0), (30.0, 1.0), (60.0, 1.0)], B: [(30.0, 1.0)]}
    rule = {"alert": "X", "expr": "x", "for": "30s", "labels": {"pod": "z", "severity": "info"}}
    got = evaluate_alert(Fixed(result), rule, 0, 90, 30)
    # pending at 0; at 30 pods a and b both become pod="z": that evaluation fails; fires at 60, resolved at 90
    assert [(e.labels, e.start, e.end) for e in got] == [((("pod", "z"), ("severity", "info")), 60, 90)]
    assert got[0].severity == "info"


def test_eval_times_are_the_multiples_of_the_step() -> None:
    assert eval_times(10, 100, 30) == [30, 60, 90]
    assert eval_times(30, 90, 30) == [30, 60, 90]
    assert eval_times(31, 59, 30) == []


# --- against promtool test rules and a real Prometheus ------------------------------------------
STEP = 30
#          the pattern of x{pod="a"}: 1 = above the thresholds below, 0 = below; pod b is offset
VALUES_A = "0 0 1 1 1 1 1 0 0 1 1 1 0 1 0 0 0 0 1 1 1 1 1 1 0 0 0 0 0 0 1 0 1 0 1 1 1 0 0 0"
VALUES_B = "1 1 1 0 1 1 1 1 1 1 0 0 0 0 1 1 0 0 0 1 1 1 1 1 1 1 1 0 0 0 0 0 1 1 1 0 0 0 0 0"
GROUP: dict[str, Any] = {
    "name": "semantics",
    "interval": f"{STEP}s",
    "rules": [
        {"alert": "ForZero", "expr": "x > 0.5", "labels": {"severity": "warning"}},
        {"alert": "For1m", "expr": "x > 0.5", "for": "1m", "labels": {"severity": "critical"}},
        {"alert": "For2mKeep1m", "expr": "x > 0.5", "for": "2m", "keep_firing_for": "1m"},
        {"alert": "ForZeroKeep90s", "expr": "x > 0.5", "for": "0s", "keep_firing_for": "90s"},
        {"alert": "Below", "expr": "x < 0.5", "for": "1m30s", "keep_firing_for": "30s", "labels": {"tier": "any"}},
    ],
}


def series() -> list[Series]:
    out = []
    for pod, tier, values in (("a", "gpu", VALUES_A), ("b", "cpu", VALUES_B)):
        samples = [(T0 + i * STEP, float(v)) for i, v in enumerate(values.split())]
        out.append(Series.of("x", {"pod": pod, "tier": tier}, samples))
    return out


def promtool_test(eps: list[Episode], n: int, rule_file: Path) -> dict[str, Any]:
    """An alert_rule_test asserting, at every evaluation, exactly the episodes firing then."""
    cases = []
    for i in range(n):
        at = T0 + i * STEP
        for rule in GROUP["rules"]:
            firing = [e for e in firing_at(eps, at) if e.alert == rule["alert"]]
            exp = [{"exp_labels": dict(e.labels)} for e in sorted(firing, key=lambda e: e.labels)]
            cases.append({"eval_time": f"{i * STEP}s", "alertname": rule["alert"], "exp_alerts": exp})
    return {
        "rule_files": [str(rule_file)],
        "evaluation_interval": f"{STEP}s",
        "tests": [
            {
                "interval": f"{STEP}s",
                "input_series": [
                    {"series": 'x{pod="a", tier="gpu"}', "values": VALUES_A},
                    {"series": 'x{pod="b", tier="cpu"}', "values": VALUES_B},
                ],
                "alert_rule_test": cases,
            }
        ],
    }


@pytest.mark.integration
def test_the_evaluator_agrees_with_promtool_test_rules(tmp_path: Path, prometheus_with: StartPrometheus) -> None:
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [GROUP]}), encoding="utf-8")
    # promtool's test engine uses the default 5m look-back: the same here
    prom: TempPrometheus = prometheus_with(series(), rule_files=[rule_file], lookback_delta="5m")
    loaded = {r["name"]: r for g in prom.rule_groups() for r in g["rules"]}
    assert set(loaded) == {r["alert"] for r in GROUP["rules"]}
    assert all(r["health"] != "err" for r in loaded.values())
    assert (loaded["For2mKeep1m"]["duration"], loaded["For2mKeep1m"]["keepFiringFor"]) == (120, 60)

    n = len(VALUES_A.split())
    eps = evaluate_group(prom, GROUP, T0, T0 + (n - 1) * STEP)
    by_alert = {
        name: [(e.label["pod"], e.start - T0, e.end and e.end - T0) for e in eps if e.alert == name]
        for name in ("For1m", "For2mKeep1m", "Below")
    }
    # by hand: pod a is above at 60-180s, 270-330s, 390s, …; pod b at 0-60s, 120-270s, …
    assert by_alert["For1m"][:3] == [("b", 60, 90), ("a", 120, 210), ("b", 180, 300)]
    # pod a fires at 180s; keep_firing_for bridges the gaps at 210-240s and 360s; resolved 60s after 420s
    assert by_alert["For2mKeep1m"][:2] == [("a", 180, 480), ("b", 240, 360)]
    assert {e.label["tier"] for e in eps if e.alert == "Below"} == {"any"}  # the rule's labels win
    assert len(eps) > 15

    test_file = tmp_path / "test.yml"
    test_file.write_text(yaml.safe_dump(promtool_test(eps, n, rule_file)), encoding="utf-8")
    result = subprocess.run(["promtool", "test", "rules", str(test_file)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


@pytest.mark.integration
def test_a_mistaken_expectation_fails_promtool(tmp_path: Path, prometheus_with: StartPrometheus) -> None:
    """The promtool comparison has teeth: shift one episode by one evaluation and promtool objects."""
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [GROUP]}), encoding="utf-8")
    prom: TempPrometheus = prometheus_with(series(), lookback_delta="5m")
    n = len(VALUES_A.split())
    eps = evaluate_group(prom, GROUP, T0, T0 + (n - 1) * STEP, only=["For1m"])
    first = eps[0]
    wrong = [Episode(first.alert, first.labels, first.active_since, first.start + STEP, first.end), *eps[1:]]
    test_file = tmp_path / "test.yml"
    test_file.write_text(yaml.safe_dump(promtool_test(wrong, n, rule_file)), encoding="utf-8")
    result = subprocess.run(["promtool", "test", "rules", str(test_file)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
