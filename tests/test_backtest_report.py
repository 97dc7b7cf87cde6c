"""The backtest report as a reviewer reads it: ``--against REV`` shows each alert's own lead before the
OOM kills (a threshold moved is seen even when another alert still fires first), and a Markdown or
JSON report on stdout holds nothing but the report. Real Prometheus, the shipped example history."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT, example_repo, memprov

pytestmark = pytest.mark.integration

SERIES = str(ROOT / "examples" / "series")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example in a git repository, then image-embed's warning lowered from 75 % to 70 % in the tree."""
    repo = example_repo(tmp_path_factory.mktemp("bt") / "repo")
    for args in (("init", "-q", "-b", "main"), ("add", "."), ("commit", "-q", "-m", "spec")):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=repo, check=True)
    spec = repo / "memprov.yaml"
    text = spec.read_text()
    assert "thresholds: {warning: 75%, critical: 90%}" in text
    spec.write_text(
        text.replace("thresholds: {warning: 75%, critical: 90%}", "thresholds: {warning: 70%, critical: 90%}")
    )
    return repo


def _leads(data: dict[str, object], alert: str) -> list[float]:
    """Independently of the report's own aggregation: per OOM-killed run, minutes from the alert's first
    episode within the run to the kill."""
    out = []
    for job in data["jobs"]:  # type: ignore[attr-defined]
        for run in job["runs"]:
            if not run["oom"]:
                continue
            starts = [
                e["start"] for e in job["episodes"] if e["alert"] == alert and run["start"] <= e["start"] <= run["end"]
            ]
            if starts:
                out.append((run["end"] - min(starts)) / 60)
    return out


@pytest.mark.skipif(shutil.which("git") is None, reason="git is part of the CI image")
def test_a_lowered_warning_shows_as_earlier_not_same(repo: Path) -> None:
    args = ("backtest", "--series", SERIES, "--since", "8d", "-j", "image-embed", "--against", "main")
    text = memprov(*args, cwd=repo, timeout=300)
    assert text.returncode == 0, text.stderr
    row = next(line for line in text.stdout.splitlines() if line.startswith("BatchJobMemoryWarning before OOM kills"))
    assert row.rstrip().endswith("min earlier"), row
    # the first alert before each OOM is another one: the summary's median lead alone would say "same"
    assert next(line for line in text.stdout.splitlines() if line.startswith("median lead")).rstrip().endswith("same")
    data = json.loads(memprov(*args, "-f", "json", cwd=repo, timeout=300).stdout)
    then, now = _leads(data["against_rev"], "BatchJobMemoryWarning"), _leads(data["this_tree"], "BatchJobMemoryWarning")
    assert len(then) == len(now) == 5
    assert all(b >= a for a, b in zip(sorted(then), sorted(now), strict=True))  # a lower threshold never fires later
    report = data["this_tree"]["alerts_before_ooms"]["BatchJobMemoryWarning"]
    assert report["ooms_fired_before"] == 5
    assert report["median_lead_minutes"] == pytest.approx(statistics.median(now))
    earlier = statistics.median(now) - statistics.median(then)
    assert earlier > 5 and f"{earlier:.1f} min earlier" in row


def test_markdown_with_plots_is_only_markdown(repo: Path, tmp_path: Path) -> None:
    args = ("backtest", "--series", SERIES, "--since", "8d", "-j", "clv-daily", "--plot", str(tmp_path / "p"))
    md = memprov(*args, "-f", "markdown", cwd=repo, timeout=300)
    assert md.returncode == 0, md.stderr
    assert "Plots:" not in md.stdout and md.stdout.startswith("### Backtest of local")
    assert f"Plots: {tmp_path / 'p' / 'clv-daily.png'}" in md.stderr
    js = memprov(*args, "-f", "json", cwd=repo, timeout=300)
    json.loads(js.stdout)  # nothing but JSON
    plain = memprov(*args, cwd=repo, timeout=300)
    assert "Plots: " in plain.stdout  # in a terminal it is part of the report
