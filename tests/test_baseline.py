"""`memprov baseline`: statistics of past runs, from a real Prometheus (backfilled), series files,
a runs file; proposed thresholds; baselines/<env>.yaml that the spec then reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.analysis import baseline as bl
from provisioner.analysis import baseline_stats as stats
from provisioner.core.units import parse_size
from provisioner.history.promapi import TempPrometheus, openmetrics
from provisioner.history.prometheus import Run, oom_source, read_runs, read_runs_file
from provisioner.spec.loader import load
from tests.helpers import ROOT, example_repo, memprov
from tests.history_traces import DAY, GI, LIMIT, MI, T0, V0, Trace, series_of, trace

pytestmark = pytest.mark.integration


def traces() -> list[Trace]:
    healthy = [trace(d, "healthy", scale=0.9 + 0.01 * d) for d in range(12)]
    return [*healthy, trace(12, "surge"), trace(13, "healthy", scale=1.0)]


@pytest.fixture(scope="module")
def prom() -> Iterator[TempPrometheus]:
    with TempPrometheus(lookback_delta="45s") as p:
        p.backfill(series_of(traces()))
        p.start()
        yield p


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_repo(tmp_path / "repo")


def test_quantile_is_numpy_linear() -> None:
    assert bl.quantile([1, 2, 3, 4], 0.5) == 2.5
    assert bl.quantile([10], 0.95) == 10
    assert bl.quantile([1, 2, 3, 4, 5], 0.95) == pytest.approx(4.8)


def test_runs_peaks_and_velocity_from_prometheus(prom: TempPrometheus, repo: Path) -> None:
    spec = load(repo / "memprov.yaml", "local", baselines=False)
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    runs = read_runs(prom, spec, job, T0 - 3600, T0 + 14 * DAY, chunk=DAY / 4)  # runs cross chunk edges
    expected = traces()
    assert [r.name for r in runs] == [f"batch/{t.pod}/clv-scorer" for t in expected]
    assert [r.peak for r in runs] == [t.peak for t in expected]  # exact: max_over_time sees every sample
    assert [r.start for r in runs] == [t.samples[0][0] for t in expected]
    assert [r.end for r in runs] == [t.end for t in expected]
    assert [r.oom for r in runs] == [t.oom for t in expected]
    for r in runs:
        if not r.oom:
            assert r.velocity == pytest.approx(V0, rel=0.05)  # the troughs' slope, not the sawtooth's edges
    b = bl.compute(job, runs)
    peaks = [t.peak for t in expected if not t.oom]
    assert (b.runs, b.failed) == (13, 1)
    assert b.p50 == bl.quantile(peaks, 0.5) and b.p95 == bl.quantile(peaks, 0.95) and b.max == max(peaks)
    assert b.start_hours is not None and [round(h, 2) for h in b.start_hours] == [2.0, 2.0]


def test_thresholds_follow_the_design_document() -> None:
    """p95 peak 4 GiB, 8 GiB limit: warning 6 GiB, critical 7.5 GiB."""
    b = bl.JobBaseline("clv-daily", LIMIT, runs=30, p50=3.6 * GI, p95=4 * GI, p99=4.2 * GI, max=4.3 * GI)
    bl._propose(b)
    assert (b.warning, b.critical, b.flags) == (6 * GI, 7.5 * GI, [])
    tight = bl.JobBaseline("x", LIMIT, runs=30, p50=5 * GI, p95=6.5 * GI, p99=6.8 * GI, max=7 * GI)
    bl._propose(tight)
    assert tight.warning == bl.round_size(0.8 * LIMIT)  # capped at 80 % of the limit
    assert any(f.startswith("limit too tight") for f in tight.flags)
    loose = bl.JobBaseline("y", 64 * GI, runs=30, p50=3 * GI, p95=4 * GI, p99=4.5 * GI, max=5 * GI)
    bl._propose(loose)
    assert any(f.startswith("limit too loose") for f in loose.flags)
    weak = bl.JobBaseline("z", LIMIT, runs=3, p50=3 * GI, p95=4 * GI, p99=4 * GI, max=4 * GI)
    bl._propose(weak)
    assert weak.flags == ["weak baseline: 3 successful run(s); collect at least 10"]


def test_cli_writes_a_baseline_the_spec_reads(prom: TempPrometheus, repo: Path, tmp_path: Path) -> None:
    series = tmp_path / "history.om"
    series.write_text(openmetrics(series_of(traces())))
    result = memprov("baseline", "--series", str(series), "--since", "30d", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "clv-daily" in result.stdout and "Wrote baselines/local.yaml" in result.stdout
    text = (repo / "baselines" / "local.yaml").read_text()
    assert "clv-daily:  # 13 successful run(s), 1 OOM-killed or failed, usually starting around 02:00 UTC" in text
    assert "# proposed thresholds: warning " in text
    again = memprov("baseline", "--series", str(series), "--since", "30d", cwd=repo)
    assert again.returncode == 0 and (repo / "baselines" / "local.yaml").read_text() == text  # deterministic
    spec = load(repo / "memprov.yaml", "local")
    clv = next(j for j in spec.jobs if j.id == "clv-daily")
    peaks = [t.peak for t in traces() if not t.oom]
    assert clv.baseline is not None and clv.baseline.runs == 13
    assert clv.baseline.peak_max == parse_size(bl.size_text(max(peaks)))
    assert clv.baseline.velocity == 18 * MI
    # the same from a live Prometheus URL, as JSON, without writing
    live = memprov(
        "baseline",
        "--prometheus",
        prom.url,
        "--since",
        "100w",
        "-j",
        "clv-daily",
        "--dry-run",
        "-f",
        "json",
        cwd=repo,
        timeout=300,
    )
    assert live.returncode == 0, live.stderr
    [data] = json.loads(live.stdout)
    assert data["runs"] == 13 and data["peak_max"] == max(peaks)


def test_runs_file_csv_and_json(repo: Path, tmp_path: Path) -> None:
    csv = tmp_path / "runs.csv"
    csv.write_text(
        "job,start,end,peak,outcome\n"
        + "".join(
            f"clv-daily,2026-11-{d:02d}T02:00:00Z,2026-11-{d:02d}T03:20:00Z,{3 + d / 10}Gi,ok\n" for d in range(1, 13)
        )
        + "clv-daily,2026-11-13T02:00:00Z,2026-11-13T02:40:00Z,8Gi,oom_killed\n"
    )
    runs = read_runs_file(csv, ["clv-daily"])
    assert len(runs) == 13 and sum(r.ok for r in runs) == 12
    result = memprov("baseline", "--runs", str(csv), "--dry-run", "-f", "json", cwd=repo)
    assert result.returncode == 0, result.stderr
    data = next(d for d in json.loads(result.stdout) if d["job"] == "clv-daily")
    assert data["runs"] == 12 and data["failed"] == 1 and data["peak_max"] == parse_size("4.2Gi")
    assert data["velocity_per_minute"] is None  # a runs file has no series
    js = tmp_path / "runs.json"
    js.write_text(json.dumps([{"job": "clv-daily", "start": 1764554400, "end": 1764559200, "peak": "3Gi"}]))
    assert memprov("baseline", "--runs", str(js), "--dry-run", cwd=repo).returncode == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("job,start,end\n", "runs.csv:1: missing column(s) peak"),
        ("job,start,end,peak\nnope,1,2,3Gi\n", "runs.csv:2: unknown job 'nope'"),
        ("job,start,end,peak\nclv-daily,yesterday,2,3Gi\n", "runs.csv:2: 'yesterday' is not a time"),
        ("job,start,end,peak\nclv-daily,1,2,3GB\n", 'runs.csv:2: "3GB" is not a size'),
        ("job,start,end,peak,outcome\nclv-daily,1,2,3Gi,boom\n", "runs.csv:2: outcome 'boom' is not one of"),
        ("job,start,end,peak\nclv-daily,5,2,3Gi\n", "runs.csv:2: end is before start"),
    ],
)
def test_a_bad_runs_file_names_the_line(repo: Path, content: str, message: str) -> None:
    (repo / "runs.csv").write_text(content)
    result = memprov("baseline", "--runs", "runs.csv", "--dry-run", cwd=repo)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_baseline_that_breaks_the_thresholds_is_written_and_said(repo: Path, tmp_path: Path) -> None:
    """clv-daily's warning is 1.5x p95: runs peaking near the limit put it above the limit."""
    csv = tmp_path / "runs.csv"
    csv.write_text(
        "job,start,end,peak\n"
        + "".join(f"clv-daily,2026-11-{d:02d}T02:00:00Z,2026-11-{d:02d}T03:20:00Z,7Gi\n" for d in range(1, 13))
    )
    result = memprov("baseline", "--runs", str(csv), cwd=repo)
    assert result.returncode == 1
    assert "limit too tight" in result.stdout
    assert "With the new baselines/local.yaml, the spec no longer validates for local" in result.stderr
    assert "memprov.yaml:" in result.stderr and "1.5x p95" in result.stderr
    # and baseline itself still runs with the broken file in place, to fix it
    fixed = memprov("baseline", "--runs", str(csv), "--dry-run", cwd=repo)
    assert fixed.returncode == 0, fixed.stderr


def test_the_shipped_example_history(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    result = memprov("baseline", "--series", str(ROOT / "examples" / "series"), "--dry-run", "-f", "json", cwd=repo)
    assert result.returncode == 0, result.stderr
    data = {d["job"]: d for d in json.loads(result.stdout)}
    truth = json.loads((ROOT / "examples" / "truth.json").read_text())
    for job, b in data.items():
        ok = [r for r in truth if r["job"] == job and r["oom"] is None]
        assert b["runs"] == len(ok) and b["failed"] == sum(1 for r in truth if r["job"] == job) - len(ok)
    assert data["clv-daily"]["velocity_per_minute"] == pytest.approx(18 * MI, rel=0.1)


def test_a_gap_in_one_instance_starts_a_new_run(prometheus_with: object, repo: Path) -> None:
    """The same pod name two days apart (a re-run under the same name) is two runs, not one."""
    first, second = trace(0, "healthy"), trace(2, "healthy", scale=1.1)
    second.pod = first.pod
    prom = prometheus_with(series_of([first, second]), lookback_delta="45s")  # type: ignore[operator]
    spec = load(repo / "memprov.yaml", "local", baselines=False)
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    runs = read_runs(prom, spec, job, T0 - 3600, T0 + 3 * DAY)
    assert [(r.name, r.start, r.end, r.peak) for r in runs] == [
        (f"batch/{first.pod}/clv-scorer", first.samples[0][0], first.end, first.peak),
        (f"batch/{first.pod}/clv-scorer", second.samples[0][0], second.end, second.peak),
    ]


def test_measuring_some_jobs_keeps_the_others_baselines(repo: Path, tmp_path: Path) -> None:
    (repo / "baselines").mkdir()
    (repo / "baselines" / "local.yaml").write_text(
        "jobs:\n  doc-embed:\n    runs: 14\n    peak_p50: 14Gi\n    peak_p95: 16Gi\n  retired-job:\n    runs: 3\n"
    )
    csv = tmp_path / "runs.csv"
    csv.write_text(
        "job,start,end,peak\n"
        + "".join(f"clv-daily,2026-11-{d:02d}T02:00Z,2026-11-{d:02d}T03:20Z,{3 + d / 10}Gi\n" for d in range(1, 13))
    )
    result = memprov("baseline", "--runs", str(csv), "-j", "clv-daily", cwd=repo)
    assert result.returncode == 0, result.stderr
    text = (repo / "baselines" / "local.yaml").read_text()
    assert "  clv-daily:  # 12 successful run(s)" in text
    assert "  doc-embed:  # kept from the previous baseline: not measured this time\n    runs: 14\n" in text
    assert "    peak_p95: 16Gi\n" in text
    assert "retired-job" not in text  # no longer in the spec
    spec = load(repo / "memprov.yaml", "local")
    doc = next(j for j in spec.jobs if j.id == "doc-embed")
    assert doc.baseline is not None and doc.baseline.peak_p95 == parse_size("16Gi")


def test_the_last_samples_of_the_data_are_read(prometheus_with: object, repo: Path) -> None:
    """An OOM kill 30 s after a five-minute boundary at the very end of the data is seen, at its time
    (history is read in five-minute steps; the last, partial one counts too)."""
    import math

    surge = trace(0, "surge")
    shift = math.floor(surge.end / 300) * 300 + 30 - surge.end
    surge.samples = [(t + shift, v) for t, v in surge.samples]
    assert surge.end % 300 == 30
    prom = prometheus_with(series_of([surge]), lookback_delta="45s")  # type: ignore[operator]
    spec = load(repo / "memprov.yaml", "local", baselines=False)
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    [run] = read_runs(prom, spec, job, surge.samples[0][0] - 3600, surge.end)
    assert run.oom and run.end == surge.end and run.peak == surge.peak


def test_a_runs_line_ignores_what_follows_a_restart() -> None:
    """A healthy run's troughs along a line; after a restart (a deep drop) the rest is left out."""
    start = T0
    troughs = [(start + 1800 + 300 * k, 2 * GI + 300 * k * V0) for k in range(10)]
    restarted = [*troughs, (start + 4800, 0.5 * GI), (start + 5100, 0.6 * GI)]
    run = Run("clv-daily", (("pod", "p"),), start, start + 5400, 3 * GI, troughs=restarted)
    run.peaks = [(start + 5400, 2.9 * GI)]
    run.spreads, run.bursts = [400 * MI, 380 * MI, 420 * MI], [V0, 1.4 * V0]
    shape = stats.shape_of(run, trough_window=480)
    assert shape.velocity == pytest.approx(V0) and shape.noise == pytest.approx(0, abs=1)
    assert shape.floor == pytest.approx(2 * GI - (1800 - 480) * V0)  # the line at the age of one trough window
    assert (shape.sawtooth, shape.burst, shape.end_peak) == (400 * MI, 1.4 * V0, 2.9 * GI)
    assert shape.weekday == 0 and shape.duration == 5400


def test_a_heavy_weekday_is_kept_apart_only_when_two_weeks_show_it() -> None:
    def shape(day: int, duration: float) -> stats.RunShape:
        return stats.RunShape(duration=duration, weekday=day % 7, end_peak=duration * MI)

    usual = [shape(d, 3600 + 60 * (d % 3)) for d in range(14) if d % 7 != 5]
    assert stats.heavy_days([*usual, shape(5, 6000)]) == set()  # one heavy Saturday: could be chance
    assert stats.heavy_days([*usual, shape(5, 6000), shape(12, 5800)]) == {5}
    assert stats.heavy_days([*usual, shape(5, 6000), shape(12, 3700)]) == set()  # not every Saturday


def test_baseline_learns_the_healthy_envelope(prom: TempPrometheus, repo: Path) -> None:
    spec = load(repo / "memprov.yaml", "local", baselines=False)
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    runs = read_runs(prom, spec, job, T0 - 3600, T0 + 14 * DAY, burst=bl.burst_query(spec, job))
    b = bl.compute(job, runs, oom_source(prom, job, T0 - 3600, T0 + 14 * DAY))
    healthy = [t for t in traces() if not t.oom]
    assert b.floor_velocity == pytest.approx(18 * MI, rel=0.05) and b.velocity == pytest.approx(18 * MI, rel=0.05)
    floors = [2.6 * GI * scale for scale in [0.9 + 0.01 * d for d in range(12)] + [1.0]]  # as traces() builds them
    assert min(floors) < (b.floor or 0) < max(floors)
    assert b.sawtooth is not None and 350 * MI < b.sawtooth < 650 * MI  # 400 MiB deep, plus the growth over 8 min
    assert b.durations is not None and b.durations[2] == max(t.end - t.samples[0][0] for t in healthy)
    assert b.end_peaks is not None and b.end_peaks[2] == max(t.peak for t in healthy)
    assert b.oom_source == "none" and b.weekdays == {}  # no OOM-kill series in these traces
    text = bl.yaml_text([b], ["test"])
    assert "    floor_velocity: " in text and "    sawtooth: " in text and "    oom_source: none" in text
    (repo / "baselines").mkdir()
    (repo / "baselines" / "local.yaml").write_text(text)
    loaded = next(j for j in load(repo / "memprov.yaml", "local").jobs if j.id == "clv-daily")
    assert loaded.baseline is not None and loaded.baseline.floor == parse_size(bl.size_text(b.floor or 0))
    assert loaded.baseline.oom_source == "none"
