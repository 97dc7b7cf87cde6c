"""End to end: memprov's rendered rules evaluated over a surge, a step and a healthy run on a real Prometheus.

The traces are built here (a model-load ramp, then a sawtooth whose troughs climb; the surge's
troughs climb three times faster until the working set reaches the limit and the series stops,
as a killed container's does; the step holds one huge input near the limit for twenty minutes).
The expected first firing of ``BatchJobMemoryCritical`` is computed from the samples and the
spec's numbers alone: the working set's floor (the lowest sample of the last ``trough_window``, ends included)
must stay above the critical ratio for ``critical_for``; the first evaluation at which it has is
when the alert fires. The page that must come before the surge's OOM kill is the time-to-OOM one.
"""

from __future__ import annotations

import pytest

from provisioner.analysis.evaluate.alerts import evaluate_group
from provisioner.history.promapi import Series, TempPrometheus
from provisioner.kinds import usage
from provisioner.render.prometheus.rules import rule_groups
from provisioner.spec.loader import load
from tests.helpers import ROOT
from tests.promserver import T0, StartPrometheus

GI, MI = 2.0**30, 2.0**20
STEP = 30.0


def trace(
    start: float, limit: float, velocity: float, surge_at: float | None, step_at: float | None = None
) -> list[tuple[float, float]]:
    """Samples every 30 s: ramp for 3 min, then a 150 s sawtooth of 200 MiB over climbing troughs."""
    samples, t = [], start
    while t < start + 4 * 3600:
        u = t - start
        trough = 2.5 * GI + velocity * u
        if surge_at is not None and u > surge_at:
            trough += 2 * velocity * (u - surge_at)  # three times the usual velocity from here on
        value = 1 * GI + (trough - 1 * GI) * u / 180 if u < 180 else trough + 200 * MI * ((u - 180) % 150) / 150
        if step_at is not None and step_at <= u < step_at + 20 * 60:
            value = 0.96 * limit + 50 * MI * ((u - 180) % 150) / 150  # one huge input, near the limit
        if value >= limit:
            break  # the OOM kill: the container's series ends
        if surge_at is None and u > 90 * 60:
            break  # a healthy run finishes after 90 minutes
        samples.append((t, value))
        t += STEP
    return samples


def series_for(pod: str, samples: list[tuple[float, float]], limit: float) -> list[Series]:
    labels = {"namespace": "batch", "container": "clv-scorer", "pod": pod, "node": "node-1"}
    return [
        Series.of("container_memory_working_set_bytes", labels, samples),
        Series.of("container_spec_memory_limit_bytes", labels, [(t, limit) for t, _ in samples]),
    ]


def expected_first_firing(
    samples: list[tuple[float, float]], limit: float, ratio: float, hold: float, window: float
) -> float:
    run_start = None
    for t, _ in samples:
        floor = min(v for ts, v in samples if t - window <= ts <= t)  # Prometheus 2: both ends included
        if floor / limit > ratio:
            run_start = t if run_start is None else run_start
            if t - run_start >= hold:
                return t
        else:
            run_start = None
    raise AssertionError("the trace never stays above the critical ratio long enough")


@pytest.mark.integration
def test_pages_before_the_oom_on_a_surge_and_a_step_and_never_on_a_healthy_run(
    prometheus_with: StartPrometheus,
) -> None:
    spec = load(ROOT / "memprov.yaml", "local")
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    limit, velocity = float(job.limit), 18 * MI / 60  # the example's usual velocity, 18 MiB/min
    healthy = trace(T0, limit, velocity, None)
    surge = trace(T0 + 2 * 3600, limit, velocity, surge_at=20 * 60)
    step = trace(T0 + 8 * 3600, limit, velocity, None, step_at=40 * 60)
    oom = surge[-1][0] + STEP  # the first scrape that would have seen the working set at the limit
    assert max(v for _, v in healthy) < 0.7 * limit and 1800 < oom - surge[0][0] < 4 * 3600
    u = usage.KIND.of(job)
    expected = expected_first_firing(step, limit, u.critical_ratio, u.critical_for, job.trough_window)

    prom: TempPrometheus = prometheus_with(
        series_for("clv-healthy", healthy, limit)
        + series_for("clv-surge", surge, limit)
        + series_for("clv-step", step, limit),
        lookback_delta="45s",
    )
    group = rule_groups(spec, job)[0]  # the fast group: every alert but the anomaly and the OOM report
    pages = ["BatchJobMemoryCritical", "BatchJobMemoryTimeToOOM"]
    episodes = evaluate_group(prom, group, T0, step[-1][0] + 1800, only=pages)

    by_pod: dict[tuple[str, str], list[float]] = {}
    for e in episodes:
        assert e.severity == "critical" and e.label["memprov_job"] == "clv-daily"
        by_pod.setdefault((e.label["pod"], e.alert), []).append(e.start)
    assert not [k for k in by_pod if k[0] == "clv-healthy"]
    assert by_pod[("clv-step", "BatchJobMemoryCritical")][0] == expected  # held near the limit: the usage page
    first_page = min(t for (pod, _), starts in by_pod.items() if pod == "clv-surge" for t in starts)
    assert oom - first_page >= 10 * 60  # the surge is paged for at least ten minutes before the kill
    assert ("clv-surge", "BatchJobMemoryTimeToOOM") in by_pod
