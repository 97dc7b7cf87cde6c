"""Environment overlays and baselines: the merge rule of each field, and where merged values point."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.core.errors import SpecError
from provisioner.core.units import parse_size
from provisioner.kinds import growth
from provisioner.spec.loader import environments, load
from provisioner.spec.model import Slack
from tests.helpers import example_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_repo(tmp_path / "repo")


def overlay(repo: Path, text: str, env: str = "prod") -> Path:
    (repo / "environments" / f"{env}.yaml").write_text(text)
    return repo / "memprov.yaml"


def test_environments_are_local_plus_the_files(repo: Path) -> None:
    assert environments(repo / "memprov.yaml") == ["aws", "azure", "dev", "gcp", "local", "prod", "staging"]
    (repo / "environments" / "local.yaml").unlink()
    assert "local" in environments(repo / "memprov.yaml")  # the embedded default
    assert load(repo / "memprov.yaml", "local").environment.description == ""


def test_mappings_merge_key_by_key_and_lists_are_replaced(repo: Path) -> None:
    spec = load(
        overlay(
            repo,
            "defaults:\n  growth: {factor: 4}\n  backends: [prometheus]\n"
            "jobs:\n  clv-daily:\n    memory: {limit: 10Gi}\n",
        ),
        "prod",
    )
    clv = next(j for j in spec.jobs if j.id == "clv-daily")
    assert (
        growth.KIND.of(clv).factor == 4 and growth.KIND.of(clv).window == 900
    )  # window from the spec, factor from the overlay
    assert clv.limit == parse_size("10Gi")
    assert clv.baseline is not None and clv.baseline.peak_p95 == parse_size("4Gi")  # siblings of limit kept
    assert clv.backends == ("prometheus",)  # a list is replaced, not appended to


def test_a_notification_channel_merges_when_its_type_stays(repo: Path) -> None:
    text = (
        'notifications:\n  ml-platform-slack: {channel: "#ml-prod"}\n'
        "  ml-oncall-pagerduty: {type: opsgenie, api_key: {env: OG_KEY}}\n"
    )
    spec = load(overlay(repo, text), "prod")
    slack = spec.notifications["ml-platform-slack"]
    assert isinstance(slack, Slack) and slack.channel == "#ml-prod" and slack.webhook_url.env == "SLACK_WEBHOOK_URL"
    assert spec.notifications["ml-oncall-pagerduty"].type == "opsgenie"  # another type replaces the channel whole


def test_errors_in_merged_values_point_at_the_overlay(repo: Path) -> None:
    with pytest.raises(SpecError) as info:
        load(overlay(repo, "description: x\ndefaults:\n  growth: {factor: 0.5}\n"), "prod")
    assert info.value.render() == "environments/prod.yaml:3: defaults.growth.factor: must be greater than 1, got 0.5"


def test_errors_in_unchanged_values_still_point_at_the_spec(repo: Path) -> None:
    text = (repo / "memprov.yaml").read_text().replace("limit: 8Gi", "limit: 8GB")
    (repo / "memprov.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        load(overlay(repo, "jobs:\n  image-embed:\n    memory: {limit: 20Gi}\n"), "prod")
    assert info.value.render() == (
        'memprov.yaml:40: jobs.clv-daily.memory.limit: "8GB" is not a size; use 8Gi or 8589934592'
    )


def test_an_overlay_may_restate_the_spec_name_but_not_change_it(repo: Path) -> None:
    assert load(overlay(repo, "version: 1\nname: batch-inference\n"), "prod").name == "batch-inference"
    with pytest.raises(SpecError, match="name: cannot be changed by an environment overlay"):
        load(overlay(repo, "name: other\n"), "prod")


def test_baselines_file_supplies_the_baseline(repo: Path) -> None:
    (repo / "baselines").mkdir()
    (repo / "baselines" / "prod.yaml").write_text("jobs:\n  clv-daily: {peak_p95: 4.5Gi, runs: 40}\n")
    clv = next(j for j in load(repo / "memprov.yaml", "prod").jobs if j.id == "clv-daily")
    assert clv.baseline is not None and clv.baseline.peak_p95 == parse_size("4.5Gi") and clv.baseline.runs == 40
    assert clv.baseline.peak_p50 == parse_size("3.6Gi")  # merged into the spec's baseline
    assert clv.warning_bytes == round(1.5 * parse_size("4.5Gi"))  # "1.5x p95" follows the new baseline
    local = next(j for j in load(repo / "memprov.yaml", "local").jobs if j.id == "clv-daily")
    assert local.baseline is not None and local.baseline.peak_p95 == parse_size("4Gi")  # other environments unchanged


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- 1\n", "baselines/prod.yaml:1: a baselines file must be a mapping: jobs: {<job id>: {peak_p95: ...}}"),
        ("jobs: [1]\n", "baselines/prod.yaml:1: jobs: expected a mapping of job id to baseline, got a list"),
        ("jobz: {}\n", "baselines/prod.yaml:1: jobz: unknown key 'jobz' (did you mean 'jobs'?)"),
        (
            "jobs:\n  clv-daily: 4Gi\n",
            'baselines/prod.yaml:2: jobs.clv-daily.memory.baseline: expected a mapping (key: value), got "4Gi"',
        ),
    ],
)
def test_bad_baselines_files_are_located(repo: Path, text: str, message: str) -> None:
    (repo / "baselines").mkdir()
    (repo / "baselines" / "prod.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        load(repo / "memprov.yaml", "prod")
    assert info.value.render() == message
