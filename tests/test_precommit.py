"""The pre-commit hooks this repository offers (.pre-commit-hooks.yaml), run as a user's repository would
run them: ``pre-commit try-repo`` installs memprov from this checkout into pre-commit's own virtualenv
and runs validate, lint and render --check on a spec repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT, example_repo

pytestmark = pytest.mark.integration

HOOKS = ("memprov validate", "memprov lint", "memprov render --check")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's cache for this module: the hook environment is built once per revision of this checkout."""
    return tmp_path_factory.mktemp("pre-commit-home")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=repo, check=True, capture_output=True
    )


def _spec_repo(path: Path) -> Path:
    repo = example_repo(path)
    shutil.copytree(ROOT / "dashboards", repo / "dashboards")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "spec")
    return repo


def _try_repo(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MEMPROV_SPEC")}
    env.update(PRE_COMMIT_HOME=str(home), NO_COLOR="1", PRE_COMMIT_COLOR="never")
    pre_commit = Path(shutil.which("pre-commit") or Path(os.sys.executable).with_name("pre-commit"))
    return subprocess.run(
        [str(pre_commit), "try-repo", str(ROOT), "--all-files", "--color", "never"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _status(output: str) -> dict[str, str]:
    """Each hook's result line: ``memprov lint....Passed``."""
    out = {}
    for line in output.splitlines():
        for hook in HOOKS:
            if line.startswith(hook + "."):
                out[hook] = line.rsplit(".", 1)[-1].strip()
    return out


def test_the_hooks_pass_on_the_example(tmp_path: Path, home: Path) -> None:
    result = _try_repo(_spec_repo(tmp_path / "repo"), home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _status(result.stdout) == dict.fromkeys(HOOKS, "Passed")


def test_stale_dashboards_fail_render_check(tmp_path: Path, home: Path) -> None:
    repo = _spec_repo(tmp_path / "repo")
    spec = repo / "memprov.yaml"
    spec.write_text(
        spec.read_text().replace(
            "thresholds: {warning: 75%, critical: 90%}", "thresholds: {warning: 70%, critical: 90%}"
        )
    )
    _git(repo, "add", ".")
    result = _try_repo(repo, home)
    assert result.returncode == 1
    assert _status(result.stdout) == {
        "memprov validate": "Passed",
        "memprov lint": "Passed",
        "memprov render --check": "Failed",
    }
    assert "dashboards/local/" in result.stdout and "memprov render" in result.stdout


def test_an_invalid_spec_fails_validate_with_file_and_line(tmp_path: Path, home: Path) -> None:
    repo = _spec_repo(tmp_path / "repo")
    spec = repo / "memprov.yaml"
    lines = spec.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "limit: 8Gi" in line)
    spec.write_text(spec.read_text().replace("limit: 8Gi", 'limit: "8GB"', 1))
    _git(repo, "add", ".")
    result = _try_repo(repo, home)
    assert result.returncode == 1
    assert _status(result.stdout)["memprov validate"] == "Failed"
    assert f'memprov.yaml:{number}: jobs.clv-daily.memory.limit: "8GB" is not a size' in result.stdout
