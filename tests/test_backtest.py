"""`memprov backtest`: the rendered rules evaluated by a real Prometheus over backfilled history.

The lead times are computed here, from the samples (tests/history_traces.py), not by memprov.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.analysis.backtest import backtest
from provisioner.history.promapi import TempPrometheus, openmetrics
from provisioner.kinds import usage
from provisioner.spec.loader import load
from tests.helpers import ROOT, example_repo, memprov
from tests.history_traces import DAY, T0, Trace, series_of, threshold_alert_fires, trace

pytestmark = pytest.mark.integration

USAGE_ONLY = """\
jobs:
  clv-daily:
    growth: {enabled: false}
    time_to_oom: {enabled: false}
    baseline_alert: {enabled: false}
    anomaly: {enabled: false}
"""


def traces() -> list[Trace]:
    days = [trace(d, "healthy", scale=1 + 0.02 * (d % 5)) for d in range(6)]
    return [
        *days,
        trace(6, "surge", factor=3.0),
        trace(7, "healthy"),
        trace(8, "leak", factor=1.8),
        trace(9, "healthy"),
    ]


@pytest.fixture(scope="module")
def history() -> Iterator[tuple[TempPrometheus, list[Trace]]]:
    runs = traces()
    with TempPrometheus(lookback_delta="45s") as prom:
        prom.backfill(series_of(runs))
        prom.start()
        yield prom, runs


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = example_repo(tmp_path / "repo")
    (root / "environments" / "usage.yaml").write_text(USAGE_ONLY)
    return root


def test_lead_times_match_an_independent_computation(history: tuple[TempPrometheus, list[Trace]], repo: Path) -> None:
    prom, runs = history
    spec = load(repo / "memprov.yaml", "usage")
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    start, end = T0 - 600, T0 + 10 * DAY
    [result] = backtest(prom, spec, [job], start, end)
    assert [r.name for r in result.runs] == [f"batch/{t.pod}/clv-scorer" for t in runs]
    assert [r.oom for r in result.runs] == [t.oom for t in runs]
    assert [round(r.peak) for r in result.runs] == [round(t.peak) for t in runs]
    by_run = {o.run: o for o in result.ooms}
    for tr in (t for t in runs if t.oom):
        u = usage.KIND.of(job)
        warning = threshold_alert_fires(tr, u.warning_ratio, u.warning_for, window=job.trough_window)
        critical = threshold_alert_fires(tr, u.critical_ratio, u.critical_for, window=job.trough_window)
        assert warning is not None
        oom = by_run[f"batch/{tr.pod}/clv-scorer"]
        assert oom.at == tr.end  # the last sample: the kill
        assert oom.first_alert == "BatchJobMemoryWarning"
        assert oom.lead == tr.end - warning, tr.kind
        criticals = [
            e.start for e in result.episodes if e.alert == "BatchJobMemoryCritical" and e.label["pod"] == tr.pod
        ]
        assert criticals[:1] == ([critical] if critical is not None else []), tr.kind
    assert result.false_alarms == 0 and result.healthy_runs == 8


def test_every_alert_kind_warns_earlier_than_the_thresholds_alone(
    history: tuple[TempPrometheus, list[Trace]], repo: Path
) -> None:
    prom, _ = history
    start, end = T0 - 600, T0 + 10 * DAY
    full = load(repo / "memprov.yaml", "local")
    usage = load(repo / "memprov.yaml", "usage")
    [with_all] = backtest(prom, full, [j for j in full.jobs if j.id == "clv-daily"], start, end)
    [thresholds] = backtest(prom, usage, [j for j in usage.jobs if j.id == "clv-daily"], start, end)
    assert with_all.caught == thresholds.caught == 2
    for a, b in zip(with_all.ooms, thresholds.ooms, strict=True):
        assert a.lead is not None and b.lead is not None and a.lead >= b.lead
    surge = with_all.ooms[0]
    # the case study: troughs at 3x the usual velocity leave the healthy track well before the thresholds
    assert surge.first_alert in ("BatchJobMemoryGrowthFast", "BatchJobMemoryAboveBaseline")
    assert surge.lead is not None and thresholds.ooms[0].lead is not None
    assert surge.lead > thresholds.ooms[0].lead + 10 * 60
    assert with_all.false_alarms == 0


# --- the CLI ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def series_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("series") / "clv-daily.om"
    path.write_text(openmetrics(series_of(traces())))
    return path


def test_cli_text_markdown_json_and_plots(repo: Path, series_file: Path, tmp_path: Path) -> None:
    result = memprov(
        "backtest",
        "--env",
        "local",
        "--series",
        str(series_file),
        "-j",
        "clv-daily",
        "--plot",
        str(tmp_path / "p"),
        cwd=repo,
    )
    assert result.returncode == 0, result.stderr
    assert "clv-daily" in result.stdout and "2/2" in result.stdout  # both OOM kills caught
    assert "BatchJobMemoryGrowthFast" in result.stdout
    png = (tmp_path / "p" / "clv-daily.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    md = memprov("backtest", "--series", str(series_file), "-j", "clv-daily", "-f", "markdown", cwd=repo)
    assert md.returncode == 0 and "| job | runs | OOM kills |" in md.stdout
    js = memprov("backtest", "--series", str(series_file), "-j", "clv-daily", "-f", "json", cwd=repo)
    data = json.loads(js.stdout)
    assert data["this_tree"]["summary"]["ooms"] == 2 and data["this_tree"]["summary"]["caught"] == 2


def test_cli_against_a_live_prometheus_url(history: tuple[TempPrometheus, list[Trace]], repo: Path) -> None:
    prom, _ = history
    args = ("backtest", "--prometheus", prom.url, "-j", "clv-daily", "-f", "json")
    result = memprov(*args, "--since", "30d", cwd=repo)
    # a live Prometheus is read up to now: the backfilled runs of 2025 are far outside 30 days
    assert result.returncode == 0, result.stderr
    recent = json.loads(result.stdout)["this_tree"]["summary"]
    assert (recent["runs"], recent["ooms"]) == (0, 0)
    old = memprov(*args, "--since", "100w", cwd=repo)
    assert old.returncode == 0, old.stderr
    summary = json.loads(old.stdout)["this_tree"]["summary"]
    assert (summary["runs"], summary["ooms"], summary["caught"]) == (10, 2, 2)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is part of the CI image")
def test_against_another_revision_shows_better_and_worse(repo: Path, series_file: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@e", "add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "spec")
    spec = repo / "memprov.yaml"
    text = spec.read_text().replace("growth: {factor: 3, window: 15m, for: 5m}", "growth: {enabled: false}")
    text = text.replace("time_to_oom: {horizon: 30m}", "time_to_oom: {enabled: false}")
    spec.write_text(text.replace("  route:\n", "  baseline_alert: {enabled: false}\n  route:\n", 1))
    result = memprov("backtest", "--series", str(series_file), "-j", "clv-daily", "--against", "main", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "This tree against main" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("median lead"))
    assert line.rstrip().endswith("worse")  # without the growth, off-track and time-to-OOM alerts, OOMs are seen later
    bad = memprov("backtest", "--series", str(series_file), "--against", "no-such-rev", cwd=repo)
    assert bad.returncode == 2 and "no such revision" in bad.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no source of history"),
        (("--series", "a.om", "--prometheus", "http://x"), "--prometheus and --series together"),
        (("--series", "ok.om", "--header", "nocolon"), "--header 'nocolon': write NAME: VALUE"),
        (("--series", "missing.om"), "missing.om: no such file"),
        (("--series", "bad.om"), "bad.om:2: expected `name{label="),
        (("--series", "ok.om", "--since", "soon"), '--since: "soon" is not a duration'),
        (("--series", "ok.om", "-j", "nope"), "unknown job(s) nope"),
        (("--series", "ok.om", "--against", "HEAD"), "is not in a git repository"),
    ],
)
def test_bad_input_is_a_clear_usage_error(repo: Path, args: tuple[str, ...], message: str) -> None:
    (repo / "bad.om").write_text('# TYPE x gauge\nx{a="1"} 3\n')
    (repo / "ok.om").write_text('x{a="1"} 3 1748822400\n')
    result = memprov("backtest", *args, cwd=repo)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_prometheus_is_an_operation_failure(repo: Path) -> None:
    result = memprov("backtest", "--prometheus", "http://127.0.0.1:9", "-j", "clv-daily", cwd=repo)
    assert result.returncode == 1
    assert "prometheus at http://127.0.0.1:9 did not answer" in result.stderr


def test_the_shipped_example_history(tmp_path: Path) -> None:
    """examples/series: a week with incidents, among them the case study's surge, all caught."""
    repo = example_repo(tmp_path)
    result = memprov(
        "backtest", "--series", str(ROOT / "examples" / "series"), "--since", "8d", "-f", "json", cwd=repo, timeout=300
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["this_tree"]
    truth = json.loads((ROOT / "examples" / "truth.json").read_text())
    killed = {r["pod"] for r in truth if r["oom"] is not None and r["start"] >= data_start(data)}
    found = {o["run"].split("/")[1] for job in data["jobs"] for o in job["ooms"]}
    assert found == killed
    assert data["summary"]["caught"] == data["summary"]["ooms"] == len(killed)


def data_start(data: dict[str, object]) -> float:
    jobs = data["jobs"]
    assert isinstance(jobs, list)
    return min(run["start"] for job in jobs for run in job["runs"]) - 600
