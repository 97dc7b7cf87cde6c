"""The shared fixture for tests that need a real Prometheus holding given series.

``prometheus_with(series, rule_files=..., lookback_delta=...)`` backfills the series with
promtool into a fresh temporary Prometheus on 127.0.0.1, starts it, waits until it is ready and
returns it; every server a test started is stopped and its directory deleted afterwards.
Import the fixture into ``conftest.py`` (done for this directory) or into a test module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from provisioner.history.promapi import Series, TempPrometheus

StartPrometheus = Callable[..., TempPrometheus]
T0 = 1_748_822_400.0  # 2025-06-02 00:00 UTC, a Monday: a fixed, deterministic origin for test series


def start_prometheus(
    series: Iterable[Series],
    rule_files: Sequence[Path] = (),
    lookback_delta: str = "1m",
    evaluation_interval: str = "30s",
) -> TempPrometheus:
    """A started Prometheus holding ``series``; the caller must ``close()`` it."""
    prom = TempPrometheus(rule_files=rule_files, lookback_delta=lookback_delta, evaluation_interval=evaluation_interval)
    try:
        prom.backfill(series)
        prom.start()
    except BaseException:
        prom.close()
        raise
    return prom


@pytest.fixture
def prometheus_with() -> Iterator[StartPrometheus]:
    """Factory fixture: ``prom = prometheus_with(series, rule_files=[...], lookback_delta="45s")``."""
    started: list[TempPrometheus] = []

    def start(series: Iterable[Series], **kwargs: object) -> TempPrometheus:
        prom = start_prometheus(series, **kwargs)  # type: ignore[arg-type]
        started.append(prom)
        return prom

    yield start
    for prom in started:
        prom.close()
