"""End-to-end smoke test of the README's first command on a copy of the example."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import example_repo, memprov


def test_plan_apply_replan_is_empty(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    first = memprov("plan", "--env", "local", "--detailed-exitcode", cwd=repo)
    assert first.returncode == 3, first.stderr
    assert "8 to create" in first.stdout
    applied = memprov("apply", "--env", "local", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "8 of 8 changes applied" in applied.stdout
    again = memprov("plan", "--env", "local", "--detailed-exitcode", cwd=repo)
    assert again.returncode == 0, again.stdout
    assert "0 to create, 0 to update, 0 to delete, 8 unchanged" in again.stdout
