"""``memprov explain``: per job and backend, how each alert kind maps and what it needs, read from the
same tables rendering uses (so it agrees with the plan's notes), without reading anything live."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provisioner.kinds import ALL
from provisioner.kinds.base import Kind, Support
from provisioner.render import cloud
from provisioner.render.cloud import Rendering
from provisioner.spec.loader import load
from tests.helpers import ROOT, example_repo, memprov


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_repo(tmp_path_factory.mktemp("explain") / "repo")


def test_every_job_and_kind_on_prometheus_with_the_series_the_rules_read(repo: Path) -> None:
    result = memprov("explain", cwd=repo)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for job in ("clv-daily", "image-embed", "doc-embed", "feature-batch"):
        assert f"\n{job} — " in out
    for kind in ALL:
        assert f"  {kind.kind.value} — {kind.explain}" in out
    rules = (ROOT / "dashboards").exists() and memprov("render", "--env", "local", "--out", str(repo / "r"), cwd=repo)
    assert rules and rules.returncode == 0
    clv_rules = (repo / "r" / "prometheus" / "memprov-local-clv-daily.rules.yaml").read_text()
    series = 'container_memory_working_set_bytes{namespace="batch", container="clv-scorer"}'
    assert series in clv_rules and f"needs {series} from cAdvisor" in out
    # the process job reads what `memprov run` exports, and has no OOM-kill series: said, not hidden
    assert (
        'needs memprov_job_rss_bytes{memprov_job="feature-batch", memprov_env="local"} '
        "from memprov run --job feature-batch" in out
    )
    feature = out[out.index("\nfeature-batch — ") :]
    assert "prometheus  unsupported: no OOM-kill series for the process runtime" in feature
    assert "BatchJobOOMKilled" not in (repo / "r" / "prometheus" / "memprov-local-feature-batch.rules.yaml").read_text()
    assert "routing (alertmanager): critical → ml-oncall-pagerduty, ml-platform-slack; warning → data-eng-slack" in out
    assert "needs Prometheus retention of at least 3w30m" in out


def test_cloud_levels_agree_with_the_plans_notes(repo: Path) -> None:
    """The plan's note per job lists native / approximated / unsupported kinds; explain says the same per kind
    (environment aws with CloudWatch's files target: nothing is read from AWS)."""
    aws = (repo / "environments" / "aws.yaml").read_text()
    (repo / "environments" / "awsfiles.yaml").write_text(
        re.sub(r"\n *region: .*", "", aws.replace("type: cloudwatch", "type: files"))
    )
    plan = memprov("plan", "--env", "awsfiles", "--backend", "cloudwatch", "--format", "json", cwd=repo)
    assert plan.returncode == 0, plan.stderr
    notes = [n for b in json.loads(plan.stdout)["backends"] for n in b["notes"]]
    data = json.loads(memprov("explain", "--env", "awsfiles", "--format", "json", cwd=repo).stdout)
    checked = 0
    for job in data["jobs"]:
        if "cloudwatch" not in job["backends"]:
            continue
        note = next(n for n in notes if n.startswith(f"{job['job']}: alert kinds on cloudwatch"))
        for part in note.split(" — ", 1)[1].split(" · "):
            level, kinds = part.split(": ", 1)
            for kind in kinds.split(", "):
                entry = next(k for k in job["kinds"] if k["kind"] == kind)
                assert entry["backends"]["cloudwatch"]["level"] == level, (job["job"], kind)
                checked += 1
        assert job["notes"]["cloudwatch"][0] == "platform eks"
    assert checked == 3 * len(ALL)  # three jobs on CloudWatch, every kind enabled


def test_one_job_markdown_and_unknown_job(repo: Path) -> None:
    md = memprov("explain", "--env", "azure", "--job", "doc-embed", "--format", "markdown", cwd=repo)
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("### memprov explain for `azure`")
    assert "| kind | fires when | prometheus | azure |" in md.stdout
    assert re.search(r"\| growth \| .* \| \*\*unsupported\*\*: ", md.stdout)
    assert "clv-daily" not in md.stdout
    unknown = memprov("explain", "--job", "nope", cwd=repo)
    assert unknown.returncode == 2 and "unknown job(s) nope" in unknown.stderr


def test_nothing_live_is_read(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prod's Grafana is an API target whose token is not set: plan cannot read it, explain does not need to."""
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    result = memprov("explain", "--env", "prod", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "dashboard (grafana): https://grafana.example.com/d/memprov-prod-clv-daily/" in result.stdout


def test_a_table_entrys_needs_reach_explain(repo: Path) -> None:
    """What a cloud table's entry says a kind needs is what ``needs`` returns, for enabled kinds only."""
    spec = load(repo / "memprov.yaml", "aws")
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    table: dict[Kind, Rendering[None]] = {
        Kind.USAGE: Rendering(lambda j: Support.native(), needs=lambda j: (f"metric for {j.id}",)),
        Kind.GROWTH: Rendering(lambda j: Support.unsupported("no")),
    }
    assert cloud.needs(table, job) == {Kind.USAGE: ("metric for clv-daily",)}
