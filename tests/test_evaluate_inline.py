"""Inlining recording rules into alert expressions: hand-written groups, the rendered example spec,
and (against a real Prometheus) equality with a staged replay of the recording rules."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.analysis.evaluate.alerts import eval_times
from provisioner.analysis.evaluate.inline import (
    InlineError,
    find_references,
    inline_expr,
    inline_group,
    inline_groups,
    recorded_expressions,
)
from provisioner.history.promapi import Labels, Series, TempPrometheus
from provisioner.render.prometheus.rules import rule_groups
from provisioner.spec.loader import load
from tests.helpers import ROOT
from tests.promserver import T0, StartPrometheus

J = 'j="a"'


def rec(name: str, expr: str, **labels: str) -> dict[str, Any]:
    return {"record": name, "expr": expr, "labels": labels or {"j": "a"}}


def group(*rules: dict[str, Any], interval: str = "30s") -> dict[str, Any]:
    return {"name": "g", "interval": interval, "rules": list(rules)}


def alert(expr: str, name: str = "A") -> dict[str, Any]:
    return {"alert": name, "expr": expr, "for": "1m", "labels": {"severity": "warning"}}


def only_alert(g: dict[str, Any]) -> str:
    (rule,) = inline_group(g)
    return str(rule["expr"])


def lr(expr: str, **labels: str) -> str:
    for k, v in sorted(labels.items()):
        expr = f'label_replace({expr}, "{k}", "{v}", "", "")'
    return expr


def test_instant_reference_becomes_the_expression_with_the_rules_labels() -> None:
    g = group(rec("r:ws", "max by (pod) (mem)"), alert(f"r:ws{{{J}}} > 5"))
    assert only_alert(g) == f"({lr('max by (pod) (mem)', j='a')}) > 5"


def test_range_reference_becomes_a_subquery_at_the_group_interval_keeping_the_offset() -> None:
    g = group(
        rec("r:ws", "max by (pod) (mem)"),
        alert(f"deriv(r:ws{{{J}}}[10m]) > 0 and avg_over_time(r:ws{{{J}}}[30m] offset 1w) > 1", "B"),
        interval="1m",
    )
    body = lr("max by (pod) (mem)", j="a")
    assert only_alert(g) == f"deriv(({body})[10m:1m]) > 0 and avg_over_time(({body})[30m:1m] offset 1w) > 1"


def test_instant_reference_with_offset_reads_the_last_recorded_value() -> None:
    g = group(rec("r:ws", "mem"), alert(f"r:ws{{{J}}} offset 5m < r:ws{{{J}}}"))
    body = lr("mem", j="a")
    assert only_alert(g) == f"last_over_time(({body})[29999ms:30s] offset 5m) < ({body})"


def test_an_existing_subquery_keeps_its_resolution() -> None:
    g = group(rec("r:ws", "mem"), alert(f"max_over_time(r:ws{{{J}}}[10m:1m]) > 1 or r:ws{{{J}}}[5m:] "))
    body = lr("mem", j="a")
    assert only_alert(g) == f"max_over_time(({body})[10m:1m]) > 1 or ({body})[5m:] "


def test_a_bare_group_modifier_gets_an_empty_label_list_before_the_parenthesis() -> None:
    g = group(rec("r:ws", "mem"), rec("r:lim", "lim"), alert(f"r:ws{{{J}}} / on (pod) group_left\nr:lim{{{J}}}"))
    assert only_alert(g) == f"({lr('mem', j='a')}) / on (pod) group_left\n() ({lr('lim', j='a')})"
    g = group(rec("r:lim", "lim"), alert(f"x / on (pod) group_right (node) r:lim{{{J}}}"))
    assert only_alert(g) == f"x / on (pod) group_right (node) ({lr('lim', j='a')})"


def test_recording_rules_are_inlined_recursively() -> None:
    g = group(
        rec("r:ws", "max by (pod) (mem)"),
        rec("r:trough", f"min_over_time(r:ws{{{J}}}[5m])"),
        rec("r:velocity", f"deriv(r:trough{{{J}}}[10m])"),
        alert(f"r:velocity{{{J}}} > 3"),
    )
    ws = lr("max by (pod) (mem)", j="a")
    trough = lr(f"min_over_time(({ws})[5m:30s])", j="a")
    velocity = lr(f"deriv(({trough})[10m:30s])", j="a")
    assert only_alert(g) == f"({velocity}) > 3"
    recorded = recorded_expressions(g)
    assert recorded[("r:trough", (("j", "a"),))] == f"min_over_time(({ws})[5m:30s])"


def test_rules_with_the_same_name_are_told_apart_by_their_labels() -> None:
    g = group(
        rec("r:peak", "vector(1)", j="a", quantile="0.5"),
        rec("r:peak", "vector(2)", j="a", quantile="0.95"),
        alert('x > r:peak{j="a", quantile="0.95"} and x > r:peak{quantile="0.5",j="a"}'),
    )
    assert only_alert(g) == (
        f"x > ({lr('vector(2)', j='a', quantile='0.95')}) and x > ({lr('vector(1)', j='a', quantile='0.5')})"
    )


def test_names_inside_strings_and_longer_names_are_left_alone() -> None:
    g = group(
        rec("r:ws", "mem"),
        alert(f'label_replace(r:ws_total{{{J}}}, "from", "r:ws{{j=\\"a\\"}}", "", "") > 1 unless r:ws{{{J}}}'),
    )
    expr = only_alert(g)
    assert expr.startswith('label_replace(r:ws_total{j="a"}, "from", "r:ws{j=\\"a\\"}", "", "") > 1 unless (')
    assert expr.endswith(f"({lr('mem', j='a')})")


def test_matchers_may_have_spaces_trailing_commas_and_escapes() -> None:
    g = group(rec("r:ws", "mem", j='a "b"', k="c"), alert('r:ws{ k = "c" , j="a \\"b\\"", } > 1'))
    assert only_alert(g) == '(label_replace(label_replace(mem, "j", "a \\"b\\"", "", ""), "k", "c", "", "")) > 1'


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("r:ws > 1", "without its labels"),
        ('r:ws{j=~"a"} > 1', "only exact label matchers"),
        ('r:ws{j="b"} > 1', "matches no recording rule"),
        ('r:ws{j="a"} @ 100 > 1', "@ modifier"),
        ("r:ws{j=a} > 1", "cannot read the matchers"),
    ],
)
def test_odd_references_are_refused(expr: str, message: str) -> None:
    with pytest.raises(InlineError, match=message):
        inline_group(group(rec("r:ws", "mem"), alert(expr)))


def test_a_reference_to_a_later_or_duplicate_record_is_refused() -> None:
    with pytest.raises(InlineError, match="defined before it"):
        recorded_expressions(group(rec("r:a", 'r:b{j="a"} * 2'), rec("r:b", "mem")))
    with pytest.raises(InlineError, match="recorded twice"):
        recorded_expressions(group(rec("r:a", "mem"), rec("r:a", "mem2")))


def test_find_references_reports_ranges_offsets_and_spans() -> None:
    expr = 'a + r:x{j="a"}[5m] offset 1w + r:x{j="a"} + r:x{j="a"} [1h:5m]offset -2d or r:x{j="a"}offset 1m'
    first, second, third, fourth = find_references(expr, ["r:x"])
    assert (first.range, first.offset, first.subquery) == ("5m", "1w", False)
    assert expr[first.start : first.end] == 'r:x{j="a"}[5m] offset 1w'
    assert (second.range, second.offset, expr[second.start : second.end]) == (None, None, 'r:x{j="a"}')
    assert (third.range, third.resolution, third.subquery, third.offset) == ("1h", "5m", True, "-2d")
    assert (fourth.range, fourth.offset, expr[fourth.end :]) == (None, "1m", "")


def example_groups() -> list[list[dict[str, Any]]]:
    """Each example job's groups: the fast one, and the slow one whose series its alerts read."""
    spec = load(ROOT / "memprov.yaml", "local")
    return [rule_groups(spec, job) for job in spec.jobs]


def test_every_alert_of_the_example_spec_inlines_to_raw_series_only() -> None:
    for groups in example_groups():
        records = {r["record"] for g in groups for r in g["rules"] if "record" in r}
        alerts = inline_groups(groups)
        assert [a["alert"] for a, _ in alerts] == [r["alert"] for g in groups for r in g["rules"] if "alert" in r]
        intervals = {str(r["alert"]): g["interval"] for g in groups for r in g["rules"] if "alert" in r}
        assert [i for _, i in alerts] == [intervals[str(a["alert"])] for a, _ in alerts]  # its group's interval
        for a, _ in alerts:
            assert not find_references(a["expr"], sorted(records)), a["alert"]
            assert not any(f"{name}{{" in a["expr"] for name in records), a["alert"]


def test_a_series_of_another_group_is_replayed_at_that_groups_interval() -> None:
    fast = group(rec("r:ws", "max by (pod) (mem)"), alert('last_over_time(r:slow{j="a"}[10m]) > 1'))
    slow = group(rec("r:slow", f"avg_over_time(r:ws{{{J}}}[1h] offset 1w)"), interval="5m")
    ((rule, interval),) = inline_groups([fast, slow])
    assert interval == fast["interval"]
    assert ")[10m:5m])" in rule["expr"] and "[1h:" in rule["expr"] and "offset 1w" in rule["expr"]


@pytest.mark.integration
def test_inlined_example_alerts_are_valid_promql(tmp_path: Path) -> None:
    groups = [
        {"name": f"inlined-{i}", "interval": "30s", "rules": [a for a, _ in inline_groups(gs)]}
        for i, gs in enumerate(example_groups())
    ]
    path = tmp_path / "inlined.yml"
    path.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def sawtooth(pod: str, start: float, end: float, base: float, slope: float) -> Series:
    samples = []
    t = start
    while t <= end:
        u = t - start
        samples.append((t, base + slope * u + 40 * ((u % 150) / 150) + (7 if u % 690 == 0 else 0)))
        t += 30
    return Series.of("mem", {"pod": pod, "node": "n1"}, samples)


def without_names(result: dict[Labels, list[tuple[float, float]]]) -> dict[Labels, list[tuple[float, float]]]:
    return {tuple(p for p in k if p[0] != "__name__"): v for k, v in result.items()}


REPLAYED = group(
    rec("r:ws", "max by (pod) (mem)"),
    rec("r:trough", f"min_over_time(r:ws{{{J}}}[2m])"),
    rec("r:velocity", f"deriv(r:trough{{{J}}}[5m])"),
    rec(
        "r:hist", f"avg_over_time(r:ws{{{J}}}[10m] offset 1h) + r:ws{{{J}}} offset 20m * 0 + on(pod) r:velocity{{{J}}}"
    ),
    rec("r:jobmax", f"max by (j) (r:ws{{{J}}})", j="a", scope="job"),
    rec("r:earlier", f"r:ws{{{J}}} offset 20m", j="a", scope="earlier"),
    alert(f'r:velocity{{{J}}} > 0.01 and on(pod) r:hist{{{J}}} > 0 unless r:jobmax{{j="a", scope="job"}} > 1e9'),
)


@pytest.mark.integration
def test_inlined_expressions_equal_a_staged_replay_of_the_recording_rules(prometheus_with: StartPrometheus) -> None:
    """Record level by level (query_range, backfill the results), then compare with the inlined forms."""
    raw = [sawtooth("p1", T0, T0 + 4 * 3600, 100, 0.02), sawtooth("p2", T0 + 1800, T0 + 3 * 3600, 300, 0.05)]
    # a look-back just under the step: a stored series is read only where it was recorded, as the
    # staleness markers of a recording Prometheus would have it
    prom: TempPrometheus = prometheus_with(raw, lookback_delta="29s")
    start, end = T0, T0 + 4 * 3600 + 300
    for rule in [r for r in REPLAYED["rules"] if "record" in r]:
        result = prom.query_range(rule["expr"], start, end, 30)
        assert result, rule["record"]
        recorded = [
            Series.of(rule["record"], {**{k: v for k, v in labels if k != "__name__"}, **rule["labels"]}, samples)
            for labels, samples in result.items()
        ]
        prom.backfill(recorded)  # restarts the server with the recorded series stored
    times = eval_times(T0 + 2 * 3600, end, 30)
    checked = 0
    for rule in REPLAYED["rules"]:
        matchers = ", ".join(f'{k}="{v}"' for k, v in rule["labels"].items())
        original = rule["expr"] if "alert" in rule else f"{rule['record']}{{{matchers}}}"
        stored = prom.query_range(original, times[0], times[-1], 30)
        inlined = prom.query_range(inline_expr(REPLAYED, original), times[0], times[-1], 30)
        stored, inlined = without_names(stored), without_names(inlined)
        assert stored.keys() == inlined.keys(), original
        for key, samples in stored.items():
            assert [t for t, _ in samples] == [t for t, _ in inlined[key]], (original, key)
            for (_, a), (_, b) in zip(samples, inlined[key], strict=True):
                assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (original, key, a, b)
                checked += 1
    assert checked > 1000
