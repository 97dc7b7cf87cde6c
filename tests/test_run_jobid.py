"""``memprov run --job``: an id the spec does not have is refused where the spec is (exit 2, the
jobs listed, nothing run), warned about where it is not; the fast reader of the spec's job ids
agrees with the YAML parser; ``memprov baseline`` skips history runs of jobs it does not know."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.core import yamlio
from provisioner.run.launch import spec_job_ids
from tests.helpers import ROOT, example_repo, memprov

JOBS = "clv-daily, doc-embed, feature-batch, image-embed"


def test_an_unknown_job_is_refused_where_the_spec_is(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    for args, env in [
        (["run", "--job", "nosuch", "--history", "h", "--", "touch", "ran"], None),  # memprov.yaml in cwd
        (["--spec", "memprov.yaml", "run", "--job", "nosuch", "--history", "h", "--", "touch", "ran"], None),  # typer
    ]:
        done = memprov(*args, cwd=repo, env=env)
        assert done.returncode == 2, done.stderr
        assert f"--job nosuch: memprov.yaml has no such job; its jobs: {JOBS}" in done.stderr
        assert "Traceback" not in done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = memprov("run", "--job", "nosuch", "--", "touch", "ran", cwd=elsewhere,
                   env={"MEMPROV_SPEC": str(repo / "memprov.yaml")})  # fmt: skip
    assert done.returncode == 2 and "has no such job" in done.stderr
    assert not (repo / "h").exists() and not (repo / "ran").exists() and not (elsewhere / "ran").exists()
    done = memprov("run", "--job", "clv-daily", "--history", "h", "--", "touch", "ran", cwd=repo)
    assert done.returncode == 0 and (repo / "ran").exists() and "warning" not in done.stderr


def test_without_a_spec_the_job_is_run_with_a_warning(tmp_path: Path) -> None:
    done = memprov("run", "--job", "nosuch", "--history", "h", "--", "true", cwd=tmp_path)
    assert done.returncode == 0
    assert "warning: no spec at memprov.yaml, so --job nosuch is not checked" in done.stderr
    assert json.loads((tmp_path / "h" / "runs.jsonl").read_text())["job"] == "nosuch"


def test_a_spec_in_flow_style_is_read_by_the_yaml_parser(tmp_path: Path) -> None:
    (tmp_path / "memprov.yaml").write_text("version: 1\njobs: {a: {runtime: process}, 'b c': {runtime: process}}\n")
    done = memprov("run", "--job", "nosuch", "--", "true", cwd=tmp_path)
    assert done.returncode == 2 and "its jobs: a, b c" in done.stderr
    (tmp_path / "memprov.yaml").write_text("jobs: [unclosed\n")
    done = memprov("run", "--job", "nosuch", "--", "true", cwd=tmp_path)
    assert done.returncode == 0 and "does not parse" in done.stderr and "not checked" in done.stderr


SPECS = {
    "comments and blank lines": "version: 1\njobs:  # the jobs\n\n  # a comment\n  a:\n    x: 1\n\n  b: {}\nz: 2\n",
    "quoted keys": "jobs:\n  \"a-1\":\n    x: 1\n  'b.2': {}\n  c d: 1\n",
    "deeper values and block scalars": "jobs:\n    a:\n      note: |\n        b:\n        c: 1\n    d: 2\n",
    "anchors on values": "defaults: &d {x: 1}\njobs:\n  a: *d\n  b: &e\n    x: 2\n",
    "jobs last, then a document end": "version: 1\njobs:\n  a: 1\n...\n",
    "keys with colons": "jobs:\n  a:b: 1\n  c: 2\n",
    "merge keys": "base: &b {a: 1}\njobs:\n  <<: *b\n  c: 2\n",
    "flow style": "jobs: {a: 1, b: 2}\n",
    "a sequence": "jobs:\n  - a\n",
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_fast_job_id_reader_agrees_with_the_yaml_parser(tmp_path: Path, name: str) -> None:
    text = SPECS[name]
    (tmp_path / "spec.yaml").write_text(text)
    data = yamlio.load_file(tmp_path / "spec.yaml").data
    jobs = data.get("jobs")
    parsed = sorted(str(k) for k in jobs) if isinstance(jobs, dict) else None
    fast = spec_job_ids(text)
    assert fast is None or sorted(fast) == parsed, (fast, parsed)  # None: the parser decides
    if name in ("comments and blank lines", "quoted keys", "deeper values and block scalars", "anchors on values"):
        assert fast is not None  # plain block style is read without the YAML library


def test_the_fast_reader_on_the_example_and_a_generated_1000_job_spec(tmp_path: Path) -> None:
    for spec in (ROOT / "memprov.yaml",):
        assert spec_job_ids(spec.read_text()) == list(yamlio.load_file(spec).data["jobs"])
    subprocess.run([sys.executable, str(ROOT / "bench" / "specgen.py"), str(tmp_path / "gen")], check=True,
                   capture_output=True)  # fmt: skip
    spec = tmp_path / "gen" / "memprov.yaml"
    ids = spec_job_ids(spec.read_text())
    assert ids is not None and len(ids) == 1000 and ids == list(yamlio.load_file(spec).data["jobs"])


def test_baseline_skips_history_runs_of_unknown_jobs_with_a_warning(tmp_path: Path) -> None:
    """`memprov run --job nosuch` without a spec writes a record; baseline used to fail on it for every job."""
    repo = example_repo(tmp_path / "repo")
    hist = tmp_path / "h"
    for job in ("nosuch", "clv-daily", "nosuch", "clv-daily"):
        done = memprov("run", "--job", job, "--history", str(hist), "--cgroup", "none", "--", "true", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    done = memprov("baseline", "--runs", str(hist), "--job", "clv-daily", "--dry-run", "--format", "json", cwd=repo)
    assert done.returncode == 0, done.stderr
    (base,) = json.loads(done.stdout)
    assert base["runs"] == 2
    assert "skipped 2 run(s) of job(s) the spec does not have: 'nosuch' (2)" in " ".join(done.stderr.split())
