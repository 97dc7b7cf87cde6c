"""The GitHub Actions workflow (examples/github/memprov.yml) run locally: its steps are
examples/github/memprov-pr's, run here on the example repository as the workflow runs them — a pull
request's comment (plan, backtest against the base branch, dashboard previews), the previews pushed to a
branch, the comment posted once and updated, then on merge the reviewed plan applied by its checksum.
GitHub's API is tests/fakes/gh.py; git, memprov, Prometheus and matplotlib are real."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, example_repo

pytestmark = pytest.mark.integration

SCRIPT = ROOT / "examples" / "github" / "memprov-pr"
REPO = "acme/monitoring"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """A spec repository with an origin, a pull-request branch that lowers a warning, a fake gh on PATH."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    repo = example_repo(tmp_path / "repo")
    shutil.copytree(ROOT / "examples" / "series", repo / "series")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "spec")
    git(repo, "push", "-q", "origin", "main")
    git(repo, "checkout", "-q", "-b", "lower-warning")
    spec = repo / "memprov.yaml"
    spec.write_text(spec.read_text().replace("{warning: 75%, critical: 90%}", "{warning: 70%, critical: 90%}"))
    git(repo, "commit", "-q", "-am", "image-embed: warn at 70 %")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\nexec {sys.executable} {ROOT / "tests" / "fakes" / "gh.py"} "$@"\n')
    gh.chmod(0o755)
    memprov = bin_dir / "memprov"
    memprov.write_text(f'#!/bin/sh\nexec {sys.executable} -m provisioner "$@"\n')
    memprov.chmod(0o755)
    state = tmp_path / "github.json"
    state.write_text("{}")
    return {"repo": repo, "origin": origin, "bin": bin_dir, "state": state, "out": tmp_path / "memprov-out"}


def step(world: dict[str, Path], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("MEMPROV_DEBUG", "MEMPROV_SPEC")}
    full.update(
        PATH=f"{world['bin']}:{full['PATH']}",
        GH_REPO=REPO,
        FAKE_GH_STATE=str(world["state"]),
        NO_COLOR="1",
        MEMPROV_BACKTEST_ARGS="--series series --since 8d --job image-embed",
        PREVIEW_URL="https://github.com/acme/monitoring/raw/memprov-previews/pr-7/abc",
    )
    full.update(env)
    return subprocess.run(
        [str(SCRIPT), *args], cwd=world["repo"], env=full, capture_output=True, text=True, timeout=900
    )


def test_the_workflow_runs_the_scripts_steps() -> None:
    """What this test runs is what the workflow runs: every step that calls the script, and nothing else of memprov."""
    workflow = yaml.safe_load((ROOT / "examples" / "github" / "memprov.yml").read_text())
    runs = [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]
    called = sorted({m for r in runs for m in re.findall(r"\$MEMPROV_PR (\S+)", r)})
    assert called == ["apply", "checksum", "comment", "post", "previews-push"]
    assert not [r for r in runs if re.search(r"(^|\s)memprov\s", r)]  # memprov itself only through the script
    assert workflow["jobs"]["plan"]["steps"][0]["with"]["fetch-depth"] == 0  # --against needs the base branch


def test_pull_request_comment_then_apply_on_merge(world: dict[str, Path]) -> None:
    repo, out = world["repo"], world["out"]
    made = step(world, "comment", "local", "main", str(out))
    assert made.returncode == 0, made.stderr
    comment = (out / "comment.md").read_text()
    assert comment.startswith("<!-- memprov-plan env=local -->\n### memprov plan for `local`")
    checksum = re.findall(r"--checksum ([0-9a-f]{64})", comment)[0]
    assert "### This tree against main" in comment
    assert re.search(r"\| BatchJobMemoryWarning before OOM kills \| .* \| [\d.]+ min earlier \|", comment)
    pictures = sorted(p.name for p in (out / "previews").glob("*.png"))
    assert "memprov-local-image-embed.png" in pictures
    for name in pictures:
        assert f"](https://github.com/acme/monitoring/raw/memprov-previews/pr-7/abc/{name})" in comment

    pushed = step(world, "previews-push", str(out / "previews"), "memprov-previews", "pr-7/abc")
    assert pushed.returncode == 0, pushed.stderr
    listed = (
        git(repo, "ls-tree", "-r", "--name-only", "origin/memprov-previews" if False else "FETCH_HEAD") if False else ""
    )
    del listed
    tree = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "memprov-previews"], cwd=world["origin"], capture_output=True, text=True
    ).stdout.split()
    assert tree == [f"pr-7/abc/{name}" for name in pictures]
    assert not git(repo, "status", "--porcelain")  # the checkout is left as it was

    for _ in range(2):  # a second push to the pull request updates the one comment
        posted = step(world, "post", "7", str(out / "comment.md"))
        assert posted.returncode == 0, posted.stderr
    state = json.loads(world["state"].read_text())
    assert [c["body"] for c in state["comments"]["7"]] == [comment]
    assert [m for m, _ in state["calls"]] == ["GET", "POST", "GET", "PATCH"]

    # merge: main now holds the reviewed tree; GitHub associates the merge commit with pull request 7
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge #7", "lower-warning")
    sha = git(repo, "rev-parse", "HEAD")
    state["pulls"] = {sha: [7]}
    world["state"].write_text(json.dumps(state))
    found = step(world, "checksum", "local", sha)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == checksum
    applied = step(world, "apply", "local", checksum)
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 15 of 15 changes applied" in applied.stdout
    assert (repo / "out" / "local" / "prometheus" / "memprov-local-image-embed.rules.yaml").is_file()


def test_apply_refuses_what_was_not_reviewed(world: dict[str, Path]) -> None:
    repo, out = world["repo"], world["out"]
    assert step(world, "comment", "local", "main", str(out), MEMPROV_BACKTEST_ARGS="").returncode == 0
    assert "This tree against" not in (out / "comment.md").read_text()  # no history configured: no backtest
    assert step(world, "post", "7", str(out / "comment.md")).returncode == 0
    checksum = re.findall(r"--checksum ([0-9a-f]{64})", (out / "comment.md").read_text())[0]
    # another change lands after the review: the reviewed plan is no longer what apply would do
    spec = repo / "memprov.yaml"
    spec.write_text(spec.read_text().replace("{warning: 70%, critical: 90%}", "{warning: 65%, critical: 90%}"))
    refused = step(world, "apply", "local", checksum)
    assert refused.returncode == 1 and "the plan changed since it was reviewed" in refused.stderr
    assert not (repo / "out").exists()
    # a merge commit no pull request is associated with: nothing was reviewed, nothing is applied
    none = step(world, "checksum", "local", "0" * 40)
    assert none.returncode == 1 and "no pull request merged" in none.stderr
