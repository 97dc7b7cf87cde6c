"""What is Azure's own in the live azure target: the rules as sent, tags on a PUT, ARM's error codes and
``Retry-After``, the CLI (the real azure-mgmt-monitor SDK over HTTPS, against the fake ARM of
tests/fakes/azure.py).

The scenarios every live target shares are in tests/test_backend_contract.py, run through the same
harness (:class:`tests.contract.azure.AzureHarness`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.plan.engine import Outcome
from provisioner.plan.model import Action
from tests.contract.azure import OWN, RG, SUB, TOKEN_VAR, AzureHarness
from tests.fakes.azure import ArmServer
from tests.helpers import example_repo, memprov

ENV = "azure"
TOTAL = 15  # 3 jobs x (2 usage, time to OOM, baseline, anomaly)


def azure_repo(dest: Path, arm: ArmServer) -> Path:
    """The example repository with its ``azure`` environment pointing at ``arm`` (no fault proxy)."""
    repo = example_repo(dest)
    env_file = repo / "environments" / f"{ENV}.yaml"
    text = env_file.read_text(encoding="utf-8")
    old = "  azure:\n    type: azure"
    assert old in text
    extra = f"\n    endpoint: {arm.url}\n    ca_bundle: {arm.cert}\n    token: {{env: {TOKEN_VAR}}}"
    env_file.write_text(text.replace(old, old + extra), encoding="utf-8")
    return repo


@pytest.fixture
def az(tmp_path: Path) -> Iterator[AzureHarness]:
    h = AzureHarness(tmp_path)
    with h.running():
        yield h


def test_the_rules_as_sent(az: AzureHarness) -> None:
    _, report = az.apply()
    assert report.ok
    rules = {k: v.body for k, v in az.view().items()}
    warning = rules["memprov-azure-clv-daily-usage-warning"]
    props = warning["properties"]
    assert props["severity"] == 2 and props["windowSize"] == "PT5M" and props["evaluationFrequency"] == "PT1M"
    assert props["criteria"]["allOf"][0]["threshold"] == 75.0
    assert props["actions"][0]["actionGroupId"].endswith("/actionGroups/ml-platform-warning")
    assert warning["tags"] == {
        **OWN,
        "memprov-job": "clv-daily",
        "memprov-kind": "usage",
        "memprov-severity": "warning",
    }
    anomaly = rules["memprov-azure-doc-embed-anomaly"]["properties"]
    assert anomaly["criteria"]["odata.type"].endswith("MultipleResourceMultipleMetricCriteria")
    assert anomaly["criteria"]["allOf"][0]["alertSensitivity"] == "Medium"
    assert rules["memprov-azure-doc-embed-usage-critical"]["properties"]["severity"] == 0
    assert [s.status for s in az.fake.requests("PUT")] == [200] * TOTAL  # the SDK accepts 200 only


def test_a_put_writes_memprovs_tags_anew_and_keeps_foreign_ones(az: AzureHarness) -> None:
    az.apply()
    az.edit_spec(*az.update)
    with az.fake.lock:
        rule = az.fake.rules[(SUB, RG.lower(), "memprov-azure-clv-daily-anomaly")]
        del rule["tags"]["memprov-kind"]  # drift in memprov's own tags
        rule["tags"]["cost-centre"] = "ml"  # someone else's: not drift
        rule["properties"]["lastUpdatedTime"] = az.fake.now()
    plan, report = az.apply()
    assert {c.key: c.action for c in plan.actionable} == {
        "memprov-azure-image-embed-usage-warning": Action.UPDATE,
        "memprov-azure-clv-daily-anomaly": Action.UPDATE,
    }
    assert report.ok
    tags = az.view()["memprov-azure-clv-daily-anomaly"].body["tags"]
    assert tags["memprov-kind"] == "anomaly" and tags["cost-centre"] == "ml"
    assert not az.plan()[0].has_changes


def test_arms_retry_after_and_error_codes(az: AzureHarness) -> None:
    az.fake.fail("GET", name=None, times=1, retry_after="7")  # the plan's list
    az.fake.fail("PUT", name="memprov-azure-clv-daily-usage-critical", times=2, retry_after="2")
    az.fake.fail(
        "PUT",
        name="memprov-azure-image-embed-anomaly",
        status=409,
        code="Conflict",
        message="Another operation on this resource is in progress.",
        retry_after=None,
    )
    _, report = az.apply()
    assert sorted(az.sleeps) == [2.0, 2.0, 7.0]  # Retry-After, exactly
    [failed] = report.of(Outcome.FAILED)
    assert "HTTP 409 Conflict (Another operation" in failed.message
    assert "another change to this rule is in progress: run memprov plan again" in failed.message


def test_401_and_403_are_clear_errors(az: AzureHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VAR, "expired-token")
    plan, _ = az.plan()
    [error] = plan.errors
    assert "HTTP 401 AuthenticationFailed" in error and "Azure rejected the credentials" in error, error
    monkeypatch.setenv(TOKEN_VAR, az.fake.token)
    az.fake.fail("GET", status=403, code="AuthorizationFailed", message="no access", retry_after=None)
    plan, _ = az.plan()
    [error] = plan.errors
    assert "HTTP 403 AuthorizationFailed" in error and "grant Monitoring Contributor" in error, error
    assert not az.sleeps  # neither is retried


def test_cli_plan_and_apply_against_the_fake(az: AzureHarness) -> None:
    env = dict(az.variables)
    result = memprov("plan", "--env", ENV, "--backend", "azure", cwd=az.repo, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"azure → azure {RG} via https://127.0.0.1:" in out, out
    for job in ("clv-daily", "image-embed", "doc-embed"):
        assert (
            f"note: {job}: alert kinds on azure (aks) — approximated: usage, time_to_oom, baseline, anomaly · "
            "unsupported: growth, oom_killed" in out
        ), out
        assert f"note: {job}: growth is unsupported on azure (Azure metric alerts compare" in out
    assert "+ metric-alert memprov-azure-clv-daily-usage-warning" in out and f"{TOTAL} to create" in out
    applied = memprov("apply", "--env", ENV, "--backend", "azure", "--yes", cwd=az.repo, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = memprov("plan", "--env", ENV, "--backend", "azure", "--detailed-exitcode", cwd=az.repo, env=env)
    assert again.returncode == 0, again.stdout
    az.plant("memprov-azure-clv-daily-anomaly", owned=False)  # now someone else's rule with memprov's name
    refused = memprov("apply", "--env", ENV, "--backend", "azure", "--yes", cwd=az.repo, env=env)
    assert refused.returncode != 0 and "not managed by memprov" in refused.stdout + refused.stderr
    assert az.view()["memprov-azure-clv-daily-anomaly"].body["tags"] == {}  # untouched
    bad = memprov("plan", "--env", ENV, "--backend", "azure", cwd=az.repo, env={TOKEN_VAR: "wrong"})
    assert bad.returncode == 1 and "Azure rejected the credentials" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr
