"""`memprov lint`: each common mistake is found, with its key path; the example spec is clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.analysis.lint import lint
from provisioner.spec.loader import load
from tests.helpers import example_repo, memprov


def _findings(tmp_path: Path, old: str, new: str, env: str = "local") -> list[str]:
    repo = example_repo(tmp_path / "repo")
    text = (repo / "memprov.yaml").read_text()
    assert old in text, old
    (repo / "memprov.yaml").write_text(text.replace(old, new, 1))
    return [f.render() for f in lint(load(repo / "memprov.yaml", env))]


def test_example_is_clean(tmp_path: Path) -> None:
    result = memprov("lint", cwd=example_repo(tmp_path / "repo"))
    assert result.returncode == 0, result.stdout
    assert "no errors" in result.stdout


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "thresholds: {warning: 75%, critical: 90%}",
            "thresholds: {warning: 92%, critical: 94%}",
            "error: [local] jobs.image-embed.memory.thresholds.warning: warning at 92% of the limit leaves no time",
        ),
        (
            "thresholds: {warning: 75%, critical: 90%}",
            "thresholds: {warning: 75%, critical: 98%}",
            "error: [local] jobs.image-embed.memory.thresholds.critical: critical at 98.0% of the limit fires too late",
        ),
        (
            "scrape_interval: 30s",
            "scrape_interval: 60s",
            "warning: [local] defaults.scrape_interval: 1m scrapes miss short spikes",
        ),
        (
            "growth: {factor: 3, window: 15m, for: 5m}",
            "growth: {factor: 3, window: 1m, for: 5m}",
            "error: [local] jobs.clv-daily.growth.window: a 1m window holds fewer than 4 samples",
        ),
        (
            "growth: {factor: 3, window: 15m, for: 5m}",
            "growth: {factor: 3, window: 15m, for: 30s}",
            "error: [local] jobs.clv-daily.growth.for: for: 30s is under 2 evaluations",
        ),
        (
            "  time_to_oom: {horizon: 30m}",
            "  time_to_oom: {horizon: 30m}\n  trough_window: 1m",
            "error: [local] jobs.clv-daily.trough_window: a 1m window holds fewer than 4 samples",
        ),
        (
            "    warning: ml-platform-slack        # warnings go to chat...",
            "    warning: ml-oncall-pagerduty",
            "error: [local] jobs.image-embed.route: warnings go to the pager 'ml-oncall-pagerduty'",
        ),
        (
            "      baseline: {runs: 21, peak_p50: 9Gi, peak_p95: 10.5Gi, peak_max: 11Gi, velocity: 8Mi}",
            "      baseline: {runs: 21, peak_p50: 11Gi, peak_p95: 12.5Gi, peak_max: 13Gi, velocity: 8Mi}",
            "warning: [local] jobs.image-embed.memory.thresholds.warning: healthy runs peak at 12.5Gi (p95)",
        ),
    ],
)
def test_common_mistakes(tmp_path: Path, old: str, new: str, expected: str) -> None:
    findings = _findings(tmp_path, old, new)
    assert any(f.startswith(expected) for f in findings), findings


def test_missing_context_from_a_template_override(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    override = repo / "templates" / "prometheus" / "annotations.yaml.j2"
    override.parent.mkdir(parents=True)
    override.write_text('BatchJobMemoryWarning:\n  summary: "Memory high"\n')  # no description: lint says so
    result = memprov("lint", "--env", "local", cwd=repo)
    assert result.returncode == 1
    assert "alert BatchJobMemoryWarning lacks context: description" in result.stdout


def test_the_server_the_rules_run_on_is_checked_when_the_environment_says_what_it_is(tmp_path: Path) -> None:
    """keep_firing_for needs Prometheus 2.42; the anomaly rule needs anomaly.min_weeks of retention."""
    repo = example_repo(tmp_path / "repo")
    (repo / "environments" / "old.yaml").write_text(
        "targets:\n  prometheus: {type: files, version: '2.41', retention: 10d}\n"
    )
    found = [f.render() for f in lint(load(repo / "memprov.yaml", "old"))]
    assert any(
        f.startswith("error: [old] targets.prometheus.version: Prometheus 2.41 does not know keep_firing_for")
        for f in found
    )
    assert "warning: [old] jobs.clv-daily.anomaly.min_weeks: the rules read 2w30m of history" in "\n".join(found)
    assert "warning: [old] jobs.clv-daily.anomaly.weeks: the rules read 3w30m of history" in "\n".join(found)
    (repo / "environments" / "old.yaml").write_text(
        "targets:\n  prometheus: {type: files, version: '2.45.0', retention: 30d}\n"
    )
    assert not [
        f for f in lint(load(repo / "memprov.yaml", "old")) if "targets.prometheus" in f.path or "anomaly" in f.path
    ]
    result = memprov("lint", "--env", "old", cwd=repo)
    assert result.returncode == 0, result.stdout
