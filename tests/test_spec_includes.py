"""Jobs split across files (``jobs/*.yaml`` or ``include:`` globs): read, overlaid and located like the
spec's own jobs; the per-file size limit and the advice it gives (split the jobs) hold. The error
cases (a job id twice, a bad jobs file, a glob that matches nothing) are in the invalid corpus."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from provisioner.core.errors import SpecError
from provisioner.core.yamlio import MAX_BYTES
from provisioner.spec import loader
from provisioner.spec.loader import load
from tests.helpers import ROOT, example_repo, memprov

sys.path.insert(0, str(ROOT / "bench"))
from specgen import generate


def _move_job(repo: Path, job: str, to: str) -> None:
    """Cut ``jobs.<job>`` out of memprov.yaml into ``to`` (as ``jobs: {<job>: ...}``)."""
    lines = (repo / "memprov.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    start = lines.index(f"  {job}:\n")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("    ")), len(lines))
    (repo / to).parent.mkdir(parents=True, exist_ok=True)
    (repo / to).write_text("# moved\njobs:\n" + "".join(lines[start:end]), encoding="utf-8")
    (repo / "memprov.yaml").write_text("".join(lines[:start] + lines[end:]), encoding="utf-8")


def test_jobs_in_jobs_files_are_read_overlaid_and_located(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    prod = repo / "environments" / "prod.yaml"
    prod.write_text(
        prod.read_text(encoding="utf-8").replace("jobs:\n", "jobs:\n  feature-batch:\n    memory: {limit: 8Gi}\n")
    )
    before = load(repo / "memprov.yaml", "prod")
    _move_job(repo, "feature-batch", "jobs/features.yaml")  # the last job: the job order stays the same
    assert "feature-batch:" not in (repo / "memprov.yaml").read_text(encoding="utf-8")
    after = load(repo / "memprov.yaml", "prod")
    assert [j.id for j in after.jobs] == [j.id for j in before.jobs]
    assert after.jobs == before.jobs
    moved = next(j for j in after.jobs if j.id == "feature-batch")
    assert moved.limit == 8 * 2**30  # prod's overlay applies to a job of a jobs file
    assert after.where[("jobs", "feature-batch", "owner")][0] == "jobs/features.yaml"
    assert after.where[("jobs", "feature-batch", "memory", "limit")][0] == "environments/prod.yaml"
    assert "jobs/features.yaml" in after.sources
    # the rendered artefacts are the same whichever file a job is written in
    done = memprov("render", "--env", "local", "--out", str(tmp_path / "split"), cwd=repo)
    assert done.returncode == 0, done.stderr
    example = example_repo(tmp_path / "whole")
    done = memprov("render", "--env", "local", "--out", str(tmp_path / "one"), cwd=example)
    assert done.returncode == 0, done.stderr
    split = {p.relative_to(tmp_path / "split"): p.read_bytes() for p in (tmp_path / "split").rglob("*") if p.is_file()}
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()}
    assert split.keys() == one.keys() and len(split) > 5
    assert all(split[k] == one[k] for k in split if "provisioning" not in str(k))  # the provider holds the path
    # memprov run --job knows the moved job, and still refuses an unknown one
    done = memprov("run", "--job", "feature-batch", "--history", "h", "--", "true", cwd=repo)
    assert done.returncode == 0, done.stderr
    done = memprov("run", "--job", "nosuch", "--history", "h", "--", "true", cwd=repo)
    assert done.returncode == 2 and "clv-daily, doc-embed, feature-batch, image-embed" in done.stderr


def test_an_error_in_a_jobs_file_names_that_file_and_line(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    _move_job(repo, "doc-embed", "jobs/embeddings.yaml")
    path = repo / "jobs" / "embeddings.yaml"
    text = path.read_text(encoding="utf-8")
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "limit:" in t)
    path.write_text(text.replace("limit: 24Gi", "limit: 24GB"), encoding="utf-8")
    done = memprov("validate", cwd=repo)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f'jobs/embeddings.yaml:{line}: jobs.doc-embed.memory.limit: "24GB" is not a size' in done.stderr


def test_explicit_include_globs_replace_the_default(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    _move_job(repo, "doc-embed", "teams/embeddings.yaml")
    _move_job(repo, "image-embed", "jobs/vision.yaml")  # not read: include: names teams/ only
    spec = repo / "memprov.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("jobs:\n", "include: [teams/*.yaml]\njobs:\n", 1))
    ids = [j.id for j in load(spec).jobs]
    assert "doc-embed" in ids and "image-embed" not in ids
    spec.write_text(spec.read_text(encoding="utf-8").replace("[teams/*.yaml]", "[teams/*.yaml, jobs/*.yaml]"))
    assert {"doc-embed", "image-embed"} <= {j.id for j in load(spec).jobs}
    done = memprov("run", "--job", "doc-embed", "--history", "h", "--", "true", cwd=repo)  # include: read by run too
    assert done.returncode == 0, done.stderr


def test_a_spec_past_the_size_limit_loads_when_its_jobs_are_split_as_the_error_advises(tmp_path: Path) -> None:
    per_job = generate(tmp_path / "probe", jobs=100).files["memprov.yaml"] / 100
    jobs = int(MAX_BYTES * 1.3 / per_job)  # 1.3 MiB of jobs
    split = generate(tmp_path / "split", jobs=jobs, per_file=jobs // 2 + 1)
    parts = {k: v for k, v in split.files.items() if k.startswith("jobs/")}
    assert len(parts) == 2 and all(v < MAX_BYTES for v in parts.values()) and sum(parts.values()) > MAX_BYTES
    # the same jobs in one file: refused, with the advice to split them
    one = tmp_path / "one"
    shutil.copytree(tmp_path / "split", one, ignore=shutil.ignore_patterns("jobs"))
    job_lines = [
        line
        for part in sorted(parts)
        for line in (tmp_path / "split" / part).read_text(encoding="utf-8").splitlines(keepends=True)
        if line.startswith("  ")
    ]
    with (one / "memprov.yaml").open("a", encoding="utf-8") as fh:
        fh.write("jobs:\n" + "".join(job_lines))
    assert (one / "memprov.yaml").stat().st_size > MAX_BYTES
    done = memprov("validate", "--env", "prod", cwd=one)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "more than the 1 MiB limit per file; move jobs into jobs/*.yaml files next to the spec" in done.stderr
    # split as advised: valid
    done = memprov("validate", "--env", "prod", cwd=tmp_path / "split", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"({jobs} jobs)" in done.stdout


def test_a_file_changed_since_it_was_read_is_read_again(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    _move_job(repo, "doc-embed", "jobs/embeddings.yaml")
    path = repo / "jobs" / "embeddings.yaml"
    first = load(repo / "memprov.yaml")
    text = path.read_text(encoding="utf-8")
    changed = text.replace("limit: 24Gi", "limit: 25Gi")
    assert len(changed) == len(text)
    path.write_text(changed, encoding="utf-8")  # same size, maybe the same mtime: the bytes tell
    second = load(repo / "memprov.yaml")
    limits = [next(j.limit for j in s.jobs if j.id == "doc-embed") for s in (first, second)]
    assert limits == [24 * 2**30, 25 * 2**30]
    path.write_text(text.replace("limit: 24Gi", "limit: 24GB"), encoding="utf-8")
    with pytest.raises(SpecError, match="not a size"):
        load(repo / "memprov.yaml")
    assert loader._DOCS  # the cache is in use (and bounded, see loader._DOCS_MAX)
