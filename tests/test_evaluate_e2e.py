"""End to end: memprov's rendered rules evaluated over a surge and a healthy run on a real Prometheus.

The traces are built here (a model-load ramp, then a sawtooth whose troughs climb; the surge's
troughs climb three times faster until the working set reaches the limit and the series stops,
as a killed container's does). The expected first firing of ``BatchJobMemoryCritical`` is
computed from the samples and the spec's numbers alone: the first evaluation that ends an
unbroken run of samples above the critical ratio lasting ``critical_for``.
"""

from __future__ import annotations

import pytest

from provisioner.analysis.evaluate.alerts import evaluate_group
from provisioner.history.promapi import Series, TempPrometheus
from provisioner.kinds import usage
from provisioner.render.prometheus.rules import rule_group
from provisioner.spec.loader import load
from tests.helpers import ROOT
from tests.promserver import T0, StartPrometheus

GI, MI = 2.0**30, 2.0**20
STEP = 30.0


def trace(start: float, limit: float, velocity: float, surge_at: float | None) -> list[tuple[float, float]]:
    """Samples every 30 s: ramp for 3 min, then a 150 s sawtooth of 200 MiB over climbing troughs."""
    samples, t = [], start
    while t < start + 4 * 3600:
        u = t - start
        trough = 2.5 * GI + velocity * u
        if surge_at is not None and u > surge_at:
            trough += 2 * velocity * (u - surge_at)  # three times the usual velocity from here on
        value = 1 * GI + (trough - 1 * GI) * u / 180 if u < 180 else trough + 200 * MI * ((u - 180) % 150) / 150
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


def expected_first_firing(samples: list[tuple[float, float]], limit: float, ratio: float, hold: float) -> float:
    run_start = None
    for t, v in samples:
        if v / limit > ratio:
            run_start = t if run_start is None else run_start
            if t - run_start >= hold:
                return t
        else:
            run_start = None
    raise AssertionError("the trace never stays above the critical ratio long enough")


@pytest.mark.integration
def test_critical_fires_before_the_oom_on_a_surge_and_never_on_a_healthy_run(
    prometheus_with: StartPrometheus,
) -> None:
    spec = load(ROOT / "memprov.yaml", "local")
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    limit, velocity = float(job.limit), 18 * MI / 60  # the example's usual velocity, 18 MiB/min
    healthy = trace(T0, limit, velocity, None)
    surge = trace(T0 + 2 * 3600, limit, velocity, surge_at=20 * 60)
    oom = surge[-1][0] + STEP  # the first scrape that would have seen the working set at the limit
    assert max(v for _, v in healthy) < 0.7 * limit and 1800 < oom - surge[0][0] < 4 * 3600
    expected = expected_first_firing(surge, limit, job.critical_ratio, usage.KIND.of(job).critical_for)

    prom: TempPrometheus = prometheus_with(
        series_for("clv-healthy", healthy, limit) + series_for("clv-surge", surge, limit), lookback_delta="45s"
    )
    group = rule_group(spec, job)
    episodes = evaluate_group(prom, group, T0, oom + 1800, only=["BatchJobMemoryCritical"])

    by_pod: dict[str, list[float]] = {}
    for e in episodes:
        assert e.alert == "BatchJobMemoryCritical" and e.severity == "critical"
        assert e.label["memprov_job"] == "clv-daily" and e.label["memprov_kind"] == "usage"
        by_pod.setdefault(e.label["pod"], []).append(e.start)
    assert "clv-healthy" not in by_pod
    assert by_pod["clv-surge"][0] == expected < oom
    assert oom - expected >= 60  # it fires with time to spare, if not much: this is the last line of defence
