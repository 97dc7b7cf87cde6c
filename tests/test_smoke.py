"""End-to-end smoke test of the README's first command on a copy of the example."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import example_repo, memprov


def test_plan_apply_replan_is_empty(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    first = memprov("plan", "--env", "local", "--detailed-exitcode", cwd=repo)
    assert first.returncode == 3, first.stderr
    assert "15 to create" in first.stdout  # 8 rule files (2 per job), alertmanager.yml, 5 dashboards, 1 provider
    applied = memprov("apply", "--env", "local", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "15 of 15 changes applied" in applied.stdout
    again = memprov("plan", "--env", "local", "--detailed-exitcode", cwd=repo)
    assert again.returncode == 0, again.stdout
    assert "0 to create, 0 to update, 0 to delete, 15 unchanged" in again.stdout


def test_removing_every_job_of_a_backend_prunes_its_files(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    assert memprov("apply", "--env", "local", "--yes", cwd=repo).returncode == 0
    text = (repo / "memprov.yaml").read_text()
    (repo / "memprov.yaml").write_text(
        text.replace("backends: [prometheus, alertmanager, grafana]", "backends: [prometheus, alertmanager]")
    )
    plan = memprov("plan", "--env", "local", cwd=repo)
    assert "6 to delete" in plan.stdout, plan.stdout  # 5 dashboards and the provisioning file
    assert memprov("apply", "--env", "local", "--yes", cwd=repo).returncode == 0
    assert not list((repo / "out" / "local" / "grafana").rglob("*.json"))


def test_job_id_overview_is_reserved(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    text = (repo / "memprov.yaml").read_text().replace("  doc-embed:", "  overview:")
    (repo / "memprov.yaml").write_text(text)
    result = memprov("validate", cwd=repo)
    assert result.returncode == 2
    assert "memprov.yaml:58: jobs.overview: job id 'overview' is reserved" in result.stderr
