"""The temporary Prometheus: OpenMetrics text for promtool, backfill, start/stop, queries, errors."""

from __future__ import annotations

import itertools
import math
import socket
from pathlib import Path

import pytest

from provisioner.core.errors import OperationError
from provisioner.history import promapi as prom_module
from provisioner.history.promapi import (
    MAX_STEPS,
    PrometheusClient,
    Series,
    TempPrometheus,
    free_port,
    openmetrics,
    split_by_day,
    steps,
)
from tests.promserver import T0, StartPrometheus

DAY = 86_400


def test_openmetrics_groups_families_sorts_samples_and_ends_with_eof() -> None:
    text = openmetrics(
        [
            Series.of("b_bytes", {"pod": "p2"}, [(T0 + 30, 2.0), (T0, 1.0)]),
            Series.of("a_ratio", {"pod": 'say "hi"\\'}, [(T0 + 0.5, 0.25)]),
            Series.of("b_bytes", {"pod": "p1"}, [(T0, 5.0), (T0, 6.0)]),
            Series.of("up", {}, [(T0, math.inf)]),
        ]
    )
    assert text == (
        "# TYPE a_ratio gauge\n"
        'a_ratio{pod="say \\"hi\\"\\\\"} 0.25 1748822400.500\n'
        "# TYPE b_bytes gauge\n"
        'b_bytes{pod="p1"} 6.0 1748822400\n'  # the same timestamp twice: the last value wins
        'b_bytes{pod="p2"} 1.0 1748822400\n'
        'b_bytes{pod="p2"} 2.0 1748822430\n'
        "# TYPE up gauge\n"
        "up +Inf 1748822400\n"
        "# EOF\n"
    )


@pytest.mark.parametrize(("name", "labels"), [("2bad", {}), ("ok", {"bad-label": "x"}), ("ok", {"__name__": "x"})])
def test_openmetrics_refuses_invalid_names(name: str, labels: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="not a valid"):
        openmetrics([Series.of(name, labels, [(T0, 1.0)])])


def test_series_are_cut_at_utc_midnight() -> None:
    s = Series.of("m", {"pod": "p"}, [(T0 + DAY - 30, 1.0), (T0 + DAY, 2.0), (T0 + 2 * DAY + 5, 3.0)])
    days = split_by_day([s])
    first = int(T0 // DAY)
    assert sorted(days) == [first, first + 1, first + 2]
    assert [d[0].samples for _, d in sorted(days.items())] == [
        ((T0 + DAY - 30, 1.0),),
        ((T0 + DAY, 2.0),),
        ((T0 + 2 * DAY + 5, 3.0),),
    ]


def test_query_range_windows_cover_the_range_without_overlap() -> None:
    windows = list(steps(0, 30 * 25_000, 30))
    assert windows[0] == (0, 30 * (MAX_STEPS - 1)) and windows[-1][1] == 30 * 25_000
    assert all(b[0] - a[1] == 30 for a, b in itertools.pairwise(windows))
    assert list(steps(0, 0, 30)) == [(0, 0)]


def sawtooth(pod: str, start: float, minutes: int, step: float = 30) -> Series:
    samples = [(start + i * step, float(i % 7) + 0.5) for i in range(int(minutes * 60 / step))]
    return Series.of("mem", {"pod": pod}, samples)


@pytest.mark.integration
def test_backfilled_series_read_back_exactly_over_days_and_old_history(prometheus_with: StartPrometheus) -> None:
    old = T0 - 400 * DAY  # over a year before the newest data: retention must not drop it
    series = [sawtooth("p1", T0, 3 * 24 * 60), sawtooth("old", old, 30), Series.of("frac", {}, [(T0 + 0.25, 1.5)])]
    prom: TempPrometheus = prometheus_with(series, lookback_delta="45s")
    got = prom.query_range("mem", T0, T0 + 3 * DAY - 30, 30)  # 8,640 steps
    (key,) = got
    assert dict(key) == {"__name__": "mem", "pod": "p1"}
    assert got[key] == [(t, v) for t, v in series[0].samples]
    assert prom.query('mem{pod="old"}', old + 60) == {(("__name__", "mem"), ("pod", "old")): 2.5}
    assert prom.query("frac", T0 + 1) == {(("__name__", "frac"),): 1.5}
    assert prom.query("count(mem)", T0 + 3 * DAY + 30) == {}  # the series ended 30 s before + 45 s look-back
    assert prom.query("count(mem)", T0 + 3 * DAY + 10) == {(): 1.0}


@pytest.mark.integration
def test_query_range_beyond_the_step_limit_is_joined_from_windows(prometheus_with: StartPrometheus) -> None:
    prom: TempPrometheus = prometheus_with([sawtooth("p", T0, 4 * 24 * 60)])
    got = prom.query_range("sum(mem)", T0, T0 + 4 * DAY - 30, 30)  # 11,520 steps: two windows
    assert len(got[()]) == 4 * 24 * 120
    assert [t for t, _ in got[()]] == [T0 + i * 30 for i in range(4 * 24 * 120)]


@pytest.mark.integration
def test_start_stop_restart_and_backfill_while_running(tmp_path: Path) -> None:
    with TempPrometheus(lookback_delta="1m", workdir=tmp_path) as prom:
        prom.backfill([sawtooth("p1", T0, 60)])
        prom.start()
        assert prom.running and prom.query("count(mem)", T0 + 600) == {(): 1.0}
        port = int(prom.url.rsplit(":", 1)[1])
        prom.backfill([sawtooth("p2", T0, 60)])  # restarts the server, which then sees both
        assert prom.running and prom.query("count(mem)", T0 + 600) == {(): 2.0}
        remote = PrometheusClient(prom.url + "/")  # the same API, for a Prometheus running elsewhere
        assert remote.ready() and remote.query_range("count(mem)", T0, T0 + 60, 30) == {
            (): [(T0, 2.0), (T0 + 30, 2.0), (T0 + 60, 2.0)]
        }
        remote.close()
        directory = prom.dir
        process_port = int(prom.url.rsplit(":", 1)[1])
    assert not directory.exists()
    for p in {port, process_port}:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", p)) != 0  # nothing listens any more


@pytest.mark.integration
def test_a_port_taken_before_prometheus_binds_it_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = iter([busy.getsockname()[1], free_port()])
        monkeypatch.setattr(prom_module, "free_port", lambda: next(ports))
        with TempPrometheus(workdir=tmp_path) as prom:
            prom.start()
            assert prom.running and prom.url != f"http://127.0.0.1:{busy.getsockname()[1]}"
            assert prom.query("vector(1)", T0) == {(): 1.0}


@pytest.mark.integration
def test_errors_say_what_failed(tmp_path: Path, prometheus_with: StartPrometheus) -> None:
    prom: TempPrometheus = prometheus_with([sawtooth("p", T0, 10)])
    with pytest.raises(OperationError, match="parse error"):
        prom.query("sum(", T0)
    with TempPrometheus(workdir=tmp_path) as idle, pytest.raises(OperationError, match="not running"):
        idle.query("1", T0)
    gone = PrometheusClient(f"http://127.0.0.1:{free_port()}")
    assert not gone.ready()
    with pytest.raises(OperationError, match="did not answer"):
        gone.query("1", T0)
    gone.close()
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'sum('\n", encoding="utf-8")
    with TempPrometheus(rule_files=[bad], workdir=tmp_path) as broken, pytest.raises(OperationError, match="exited"):
        broken.start()


@pytest.mark.integration
def test_rule_files_are_loaded(tmp_path: Path, prometheus_with: StartPrometheus) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: g\n    interval: 15s\n    rules:\n"
        "      - record: r:mem\n        expr: max(mem)\n"
        "      - alert: High\n        expr: r:mem > 3\n        for: 1m\n        keep_firing_for: 2m\n",
        encoding="utf-8",
    )
    prom: TempPrometheus = prometheus_with([sawtooth("p", T0, 10)], rule_files=[rules])
    (group,) = prom.rule_groups()
    assert (group["name"], group["interval"]) == ("g", 15)
    assert [(r["name"], r["type"], r.get("duration"), r.get("keepFiringFor")) for r in group["rules"]] == [
        ("r:mem", "recording", None, None),
        ("High", "alerting", 60, 120),
    ]
