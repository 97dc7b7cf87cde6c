"""The live azure target against a fake ARM server over HTTPS, through the real azure-mgmt-monitor SDK.

Plans and applies go through the real loader, registry, backend, azure-mgmt-monitor client
(azure-core pipeline, bearer-token policy, TLS verification against the fake's self-signed
certificate) and plan engine; Azure is :class:`tests.fakes.azure.FakeArm` on 127.0.0.1, which
implements the metric-alert endpoints and injects ARM's own errors (429 with ``Retry-After``,
409, 403...) on chosen requests. Retries use a recording ``sleep``, so backoff (and that it
honours ``Retry-After``) is checked without waiting for it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.backends.registry import build
from provisioner.plan import output
from provisioner.plan.engine import ApplyReport, Outcome, apply
from provisioner.plan.model import Action, Plan
from provisioner.plan.planner import Binding, make_plan
from provisioner.plan.retry import RetryPolicy
from provisioner.spec.loader import load
from tests.fakes.azure import ArmServer, FakeArm
from tests.helpers import example_repo, memprov, targets_of

ENV = "azure"
SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-ml-monitoring"
TOKEN_VAR = "MEMPROV_TEST_ARM_TOKEN"
OWN = {"managed-by": "memprov", "memprov-env": ENV, "memprov-spec": "batch-inference"}
TOTAL = 15  # 3 jobs x (2 usage, time to OOM, baseline, anomaly)


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmServer]:
    server = ArmServer(tmp_path_factory.mktemp("arm"))
    yield server
    server.close()


@pytest.fixture
def fake(arm: ArmServer) -> FakeArm:
    f = arm.fake
    with f.lock:
        f.rules.clear()
        f.faults.clear()
        f.seen.clear()
    return f


def azure_repo(dest: Path, arm: ArmServer) -> Path:
    repo = example_repo(dest)
    env_file = repo / "environments" / f"{ENV}.yaml"
    text = env_file.read_text(encoding="utf-8")
    old = "  azure:\n    type: azure"
    assert old in text
    extra = f"\n    endpoint: {arm.url}\n    ca_bundle: {arm.cert}\n    token: {{env: {TOKEN_VAR}}}"
    env_file.write_text(text.replace(old, old + extra), encoding="utf-8")
    return repo


class Live:
    """A repository whose ``azure`` environment points at the fake ARM, and helpers to plan and apply."""

    def __init__(self, repo: Path, fake: FakeArm) -> None:
        self.repo, self.fake = repo, fake
        self.sleeps: list[float] = []
        self.retry = RetryPolicy(attempts=4, sleep=self.sleeps.append)

    def backends(self) -> list[Binding]:
        return build(load(self.repo / "memprov.yaml", ENV), ["azure"])

    def plan(self) -> tuple[Plan, list[Binding]]:
        backends = self.backends()
        return make_plan(ENV, "batch-inference", backends, retry=self.retry), backends

    def apply(self, force: bool = False) -> tuple[Plan, ApplyReport]:
        plan, backends = self.plan()
        assert not plan.errors, plan.errors
        return plan, apply(plan, targets_of(backends), retry=self.retry, force=force)

    def rules(self) -> dict[str, dict[str, Any]]:
        with self.fake.lock:
            return {k[2]: copy.deepcopy(v) for k, v in self.fake.rules.items() if k[:2] == (SUB, RG.lower())}

    def put(self, name: str, tags: dict[str, str], threshold: float = 50.0) -> None:
        """Someone else's rule (or an old one of memprov's), written straight into the fake."""
        scope = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
        with self.fake.lock:
            self.fake.rules[(SUB, RG.lower(), name.lower())] = {
                "id": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Insights/metricAlerts/{name}",
                "name": name,
                "type": "Microsoft.Insights/metricAlerts",
                "location": "global",
                "tags": tags,
                "properties": {
                    "severity": 3,
                    "enabled": True,
                    "scopes": [scope],
                    "evaluationFrequency": "PT1M",
                    "windowSize": "PT5M",
                    "criteria": {
                        "odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                        "allOf": [
                            {
                                "criterionType": "StaticThresholdCriterion",
                                "name": "c1",
                                "metricName": "Percentage CPU",
                                "timeAggregation": "Average",
                                "operator": "GreaterThan",
                                "threshold": threshold,
                            }
                        ],
                    },
                    "lastUpdatedTime": self.fake.now(),
                },
            }

    def edit_spec(self, old: str, new: str) -> None:
        spec = self.repo / "memprov.yaml"
        text = spec.read_text(encoding="utf-8")
        assert old in text
        spec.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def live(tmp_path: Path, arm: ArmServer, fake: FakeArm, monkeypatch: pytest.MonkeyPatch) -> Live:
    monkeypatch.setenv(TOKEN_VAR, fake.token)
    return Live(azure_repo(tmp_path / "repo", arm), fake)


def actions(plan: Plan) -> dict[str, Action]:
    return {c.key: c.action for c in plan.changes}


def test_create_then_replan_is_empty(live: Live) -> None:
    plan, report = live.apply()
    assert plan.counts()["create"] == TOTAL and report.ok
    rules = live.rules()
    assert len(rules) == TOTAL and len(report.of(Outcome.APPLIED)) == TOTAL
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
    again, _ = live.plan()
    assert not again.has_changes and again.counts()["no-op"] == TOTAL, output.text(again)
    assert [s.status for s in live.fake.requests("PUT")] == [200] * TOTAL


def test_update_changes_the_rule_and_keeps_foreign_tags(live: Live) -> None:
    live.apply()
    live.edit_spec("thresholds: {warning: 75%, critical: 90%}", "thresholds: {warning: 70%, critical: 90%}")
    with live.fake.lock:
        rule = live.fake.rules[(SUB, RG.lower(), "memprov-azure-clv-daily-anomaly")]
        del rule["tags"]["memprov-kind"]  # drift in memprov's own tags
        rule["tags"]["cost-centre"] = "ml"  # someone else's: not drift
        rule["properties"]["lastUpdatedTime"] = live.fake.now()
    plan, report = live.apply()
    changed = {k: a for k, a in actions(plan).items() if a is not Action.NOOP}
    assert changed == {
        "memprov-azure-image-embed-usage-warning": Action.UPDATE,
        "memprov-azure-clv-daily-anomaly": Action.UPDATE,
    }
    assert report.ok
    rules = live.rules()
    assert rules["memprov-azure-image-embed-usage-warning"]["properties"]["criteria"]["allOf"][0]["threshold"] == 70.0
    tags = rules["memprov-azure-clv-daily-anomaly"]["tags"]
    assert tags["memprov-kind"] == "anomaly" and tags["cost-centre"] == "ml"
    again, _ = live.plan()
    assert not again.has_changes, output.text(again)


def test_prune_deletes_owned_only_and_leaves_lookalikes_alone(live: Live) -> None:
    live.put("memprov-azure-old-job-usage-warning", {**OWN, "memprov-job": "old-job"})  # ours, stale
    live.put("memprov-azure-hand-made", {})  # our prefix, no tags: not ours, not wanted
    live.put("memprov-azure-eu-clv-daily-usage-warning", {**OWN, "memprov-env": "azure-eu"})  # another env's
    live.put("memprov-azure-clv-daily-baseline", {}, threshold=12.5)  # a look-alike where memprov wants one
    plan, backends = live.plan()
    got = {k: a for k, a in actions(plan).items() if a is not Action.CREATE}
    assert got == {
        "memprov-azure-old-job-usage-warning": Action.DELETE,
        "memprov-azure-clv-daily-baseline": Action.CONFLICT,
    }
    assert any("not managed by memprov" in p for p in plan.safety_problems())
    report = apply(
        plan, {b.name: t for b, t in backends}, retry=live.retry
    )  # what apply does if nobody refused the conflict
    outcome = {r.change.key: (r.outcome, r.message) for r in report.results}
    assert outcome["memprov-azure-clv-daily-baseline"][0] is Outcome.FAILED
    assert "pass --force to take it over" in outcome["memprov-azure-clv-daily-baseline"][1]
    assert outcome["memprov-azure-old-job-usage-warning"][0] is Outcome.SKIPPED  # kept: another change failed
    rules = live.rules()
    assert rules["memprov-azure-clv-daily-baseline"]["properties"]["criteria"]["allOf"][0]["threshold"] == 12.5
    assert rules["memprov-azure-clv-daily-baseline"]["tags"] == {}  # untouched
    with live.fake.lock:  # its owner removes the look-alike
        del live.fake.rules[(SUB, RG.lower(), "memprov-azure-clv-daily-baseline")]
    plan, report = live.apply()
    assert {k: a for k, a in actions(plan).items() if a is not Action.NOOP} == {
        "memprov-azure-clv-daily-baseline": Action.CREATE,
        "memprov-azure-old-job-usage-warning": Action.DELETE,
    }
    assert report.ok
    rules = live.rules()
    assert "memprov-azure-old-job-usage-warning" not in rules
    assert {"memprov-azure-hand-made", "memprov-azure-eu-clv-daily-usage-warning"} <= set(rules)
    assert rules["memprov-azure-hand-made"]["properties"]["criteria"]["allOf"][0]["threshold"] == 50.0
    assert rules["memprov-azure-clv-daily-baseline"]["tags"]["managed-by"] == "memprov"
    assert [s.name for s in live.fake.requests("DELETE")] == ["memprov-azure-old-job-usage-warning"]


def test_throttling_is_retried_honouring_retry_after(live: Live) -> None:
    read = live.fake.fail("GET", name=None, times=1, retry_after="7")  # the plan's list
    put = live.fake.fail("PUT", name="memprov-azure-clv-daily-usage-critical", times=2, retry_after="2")
    _, report = live.apply()
    assert read.injected == 1 and put.injected == 2
    assert report.ok and len(report.of(Outcome.APPLIED)) == TOTAL
    assert sorted(live.sleeps) == [2.0, 2.0, 7.0]  # Retry-After, not the engine's own backoff
    assert "memprov-azure-clv-daily-usage-critical" in live.rules()
    live.fake.fail("GET", status=503, code="ServiceUnavailable", message="try later", retry_after=None, times=1)
    again, _ = live.plan()
    assert not again.has_changes and len(live.sleeps) == 4


def test_failure_mid_apply_is_reported_clearly(live: Live) -> None:
    live.put("memprov-azure-old-job-usage-warning", {**OWN, "memprov-job": "old-job"})
    live.fake.fail(
        "PUT",
        name="memprov-azure-image-embed-anomaly",
        status=409,
        code="Conflict",
        message="Another operation on this resource is in progress.",
        retry_after=None,
    )
    live.fake.fail("PUT", name="memprov-azure-doc-embed-baseline", times=10)  # throttled past the retries
    plan, report = live.apply()
    outcome = {r.change.key: r for r in report.results}
    failed = sorted(r.change.key for r in report.of(Outcome.FAILED))
    assert failed == ["memprov-azure-doc-embed-baseline", "memprov-azure-image-embed-anomaly"]
    assert "HTTP 409 Conflict (Another operation" in outcome["memprov-azure-image-embed-anomaly"].message
    assert "HTTP 429 TooManyRequests" in outcome["memprov-azure-doc-embed-baseline"].message
    assert "gave up after 4 attempts" in outcome["memprov-azure-doc-embed-baseline"].message
    assert len(report.of(Outcome.APPLIED)) == TOTAL - 2
    assert outcome["memprov-azure-old-job-usage-warning"].outcome is Outcome.SKIPPED
    text = "\n".join(line for _, line in output.report_lines(report))
    assert f"Apply incomplete: {TOTAL - 2} of {TOTAL + 1} changes applied, 2 failed, 1 not attempted." in text, text
    assert "kept because other azure changes failed" in text, text
    rules = live.rules()
    assert "memprov-azure-image-embed-anomaly" not in rules and "memprov-azure-old-job-usage-warning" in rules
    with live.fake.lock:
        live.fake.faults.clear()
    plan, report = live.apply()
    assert {k for k, a in actions(plan).items() if a is not Action.NOOP} == {
        "memprov-azure-image-embed-anomaly",
        "memprov-azure-doc-embed-baseline",
        "memprov-azure-old-job-usage-warning",
    }
    assert report.ok
    again, _ = live.plan()
    assert not again.has_changes


def test_a_rule_changed_since_the_plan_is_not_overwritten(live: Live) -> None:
    live.apply()
    live.edit_spec("thresholds: {warning: 75%, critical: 90%}", "thresholds: {warning: 70%, critical: 90%}")
    plan, backends = live.plan()
    name = "memprov-azure-image-embed-usage-warning"
    with live.fake.lock:
        rule = live.fake.rules[(SUB, RG.lower(), name)]
        rule["properties"]["criteria"]["allOf"][0]["threshold"] = 60.0  # edited in the portal
        rule["properties"]["lastUpdatedTime"] = live.fake.now()
    report = apply(plan, targets_of(backends), retry=live.retry)
    [failed] = report.of(Outcome.FAILED)
    assert failed.change.key == name and "changed in Azure since the plan" in failed.message
    assert live.rules()[name]["properties"]["criteria"]["allOf"][0]["threshold"] == 60.0
    _, report = live.apply()
    assert report.ok and live.rules()[name]["properties"]["criteria"]["allOf"][0]["threshold"] == 70.0


def test_401_and_403_are_clear_errors(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VAR, "expired-token")
    plan, _ = live.plan()
    [error] = plan.errors
    assert "HTTP 401 AuthenticationFailed" in error and "Azure rejected the credentials" in error, error
    monkeypatch.setenv(TOKEN_VAR, live.fake.token)
    live.fake.fail("GET", status=403, code="AuthorizationFailed", message="no access", retry_after=None)
    plan, _ = live.plan()
    [error] = plan.errors
    assert "HTTP 403 AuthorizationFailed" in error and "grant Monitoring Contributor" in error, error
    assert not live.sleeps  # neither is retried


def test_cli_plan_and_apply_against_the_fake(live: Live) -> None:
    env = {TOKEN_VAR: live.fake.token}
    result = memprov("plan", "--env", ENV, "--backend", "azure", cwd=live.repo, env=env)
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
    applied = memprov("apply", "--env", ENV, "--backend", "azure", "--yes", cwd=live.repo, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = memprov("plan", "--env", ENV, "--backend", "azure", "--detailed-exitcode", cwd=live.repo, env=env)
    assert again.returncode == 0, again.stdout
    live.put("memprov-azure-clv-daily-anomaly", {})  # now someone else's rule with memprov's name
    refused = memprov("apply", "--env", ENV, "--backend", "azure", "--yes", cwd=live.repo, env=env)
    assert refused.returncode != 0 and "not managed by memprov" in refused.stdout + refused.stderr
    assert live.rules()["memprov-azure-clv-daily-anomaly"]["tags"] == {}  # untouched
    bad = memprov("plan", "--env", ENV, "--backend", "azure", cwd=live.repo, env={TOKEN_VAR: "wrong"})
    assert bad.returncode == 1 and "Azure rejected the credentials" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr
