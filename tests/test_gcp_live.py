"""The live gcp target through the real google-cloud-monitoring client over gRPC, against a local
AlertPolicyService server (:mod:`tests.fakes.gcp`) on 127.0.0.1.

Plans and applies go through the real loader, registry, backend, ``AlertPolicyServiceClient``
(gRPC transport on a plaintext channel, an access token sent as ``authorization`` metadata) and
plan engine. Failures are injected in the server with the status codes Cloud Monitoring uses;
retries use a recording ``sleep``, so backoff is checked without waiting for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.cloud.monitoring_v3.types import alert as alert_t

from provisioner.backends.registry import build
from provisioner.plan import output
from provisioner.plan.engine import ApplyReport, Outcome, apply
from provisioner.plan.model import Action, Plan
from provisioner.plan.planner import Binding, make_plan
from provisioner.plan.retry import RetryPolicy
from provisioner.spec.loader import load
from tests.fakes.gcp import FakeAlertPolicies, serve
from tests.helpers import example_repo, memprov, targets_of

ENV = "gcp"
PROJECT = "ml-batch-prod"
TOKEN = "ya29.test-token"
OWN = {"managed-by": "memprov", "memprov-env": ENV, "memprov-spec": "batch-inference"}
GCP_ENV = {"MEMPROV_GCP_TOKEN": TOKEN}
Status = grpc.StatusCode


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeAlertPolicies, str]]:
    fake = FakeAlertPolicies(token=TOKEN)
    with serve(fake) as address:
        yield fake, address


class Live:
    """A repository whose ``gcp`` environment points at the fake server, and helpers to plan and apply."""

    def __init__(self, repo: Path, fake: FakeAlertPolicies) -> None:
        self.repo, self.fake = repo, fake
        self.sleeps: list[float] = []
        self.retry = RetryPolicy(attempts=4, sleep=self.sleeps.append)

    def backends(self) -> list[Binding]:
        return build(load(self.repo / "memprov.yaml", ENV), ["gcp"])

    def plan(self) -> tuple[Plan, list[Binding]]:
        backends = self.backends()
        return make_plan(ENV, "batch-inference", backends, retry=self.retry), backends

    def apply(self, force: bool = False) -> tuple[Plan, ApplyReport]:
        plan, backends = self.plan()
        assert not plan.errors, plan.errors
        return plan, apply(plan, targets_of(backends), retry=self.retry, force=force)

    def policies(self) -> dict[str, Any]:
        return self.fake.policies()

    def put(self, display_name: str, labels: dict[str, str], threshold: float = 0.5) -> Any:
        """A policy made by someone else (straight into the server)."""
        policy = alert_t.AlertPolicy(
            display_name=display_name,
            user_labels=labels,
            combiner="OR",
            conditions=[
                {
                    "display_name": "hand-made",
                    "condition_threshold": {
                        "filter": 'metric.type = "agent.googleapis.com/memory/percent_used"',
                        "comparison": "COMPARISON_GT",
                        "threshold_value": threshold,
                        "duration": {"seconds": 60},
                    },
                }
            ],
        )
        return self.fake.put(PROJECT, alert_t.AlertPolicy.pb(policy))

    def edit_spec(self, old: str, new: str) -> None:
        spec = self.repo / "memprov.yaml"
        text = spec.read_text(encoding="utf-8")
        assert old in text
        spec.write_text(text.replace(old, new, 1), encoding="utf-8")


def gcp_repo(dest: Path, address: str) -> Path:
    repo = example_repo(dest)
    env_file = repo / "environments" / f"{ENV}.yaml"
    text = env_file.read_text(encoding="utf-8")
    line = f"    project: {PROJECT}\n"
    assert line in text
    extra = f"    endpoint: {address}\n    insecure: true\n    access_token: {{env: MEMPROV_GCP_TOKEN}}\n"
    env_file.write_text(text.replace(line, line + extra), encoding="utf-8")
    return repo


@pytest.fixture
def live(tmp_path: Path, server: tuple[FakeAlertPolicies, str], monkeypatch: pytest.MonkeyPatch) -> Live:
    fake, address = server
    fake.reset()
    for k, v in GCP_ENV.items():
        monkeypatch.setenv(k, v)
    return Live(gcp_repo(tmp_path / "repo", address), fake)


def actions(plan: Plan) -> dict[str, Action]:
    return {c.key: c.action for c in plan.changes}


def threshold(policy: Any) -> float:
    return float(policy.conditions[0].condition_threshold.threshold_value)


def test_create_then_replan_is_empty(live: Live) -> None:
    plan, report = live.apply()
    assert plan.counts()["create"] == 24 and report.ok
    found = live.policies()
    assert len(found) == 24 and len(report.of(Outcome.APPLIED)) == 24
    warning = found["memprov-gcp-clv-daily-usage-warning"]
    assert warning.name.startswith(f"projects/{PROJECT}/alertPolicies/")  # assigned by the server
    assert threshold(warning) == 0.75 and warning.conditions[0].condition_threshold.duration.seconds == 300
    assert list(warning.notification_channels) == [f"projects/{PROJECT}/notificationChannels/1234567890"]
    assert warning.severity == alert_t.AlertPolicy.Severity.WARNING.value
    assert warning.alert_strategy.auto_close.seconds == 1800
    assert dict(warning.user_labels) == {
        **OWN,
        "memprov-job": "clv-daily",
        "memprov-kind": "usage",
        "memprov-severity": "warning",
    }
    tto = found["memprov-gcp-doc-embed-time-to-oom-critical"].conditions[0].condition_threshold
    assert tto.forecast_options.forecast_horizon.seconds == 3600
    anomaly = found["memprov-gcp-clv-daily-anomaly"].conditions[0].condition_prometheus_query_language
    assert "offset 1w" in anomaly.query and anomaly.duration.seconds == 600
    again, _ = live.plan()
    assert not again.has_changes and again.counts()["no-op"] == 24, output.text(again)
    assert live.fake.count("CreateAlertPolicy") == 24


def test_update_changes_the_policy_and_keeps_other_labels(live: Live) -> None:
    live.apply()
    live.edit_spec("thresholds: {warning: 75%, critical: 90%}", "thresholds: {warning: 70%, critical: 90%}")
    growth = live.policies()["memprov-gcp-clv-daily-growth"]
    growth.user_labels.pop("memprov-kind")  # drift in memprov's own labels
    growth.user_labels["cost-centre"] = "ml"  # someone else's: not drift
    name = live.policies()["memprov-gcp-image-embed-usage-warning"].name
    plan, report = live.apply()
    changed = {k: a for k, a in actions(plan).items() if a is not Action.NOOP}
    assert changed == {
        "memprov-gcp-image-embed-usage-warning": Action.UPDATE,
        "memprov-gcp-clv-daily-growth": Action.UPDATE,
    }
    assert report.ok, [r.message for r in report.of(Outcome.FAILED)]
    updated = live.policies()["memprov-gcp-image-embed-usage-warning"]
    assert threshold(updated) == 0.7 and updated.name == name  # updated in place, not re-created
    labels = dict(live.policies()["memprov-gcp-clv-daily-growth"].user_labels)
    assert labels["memprov-kind"] == "growth" and labels["cost-centre"] == "ml"
    assert live.fake.count("UpdateAlertPolicy") == 2 and live.fake.count("CreateAlertPolicy") == 24
    again, _ = live.plan()
    assert not again.has_changes, output.text(again)


def test_prune_deletes_owned_only_and_leaves_lookalikes_alone(live: Live) -> None:
    live.put("memprov-gcp-old-job-usage-warning", {**OWN, "memprov-job": "old-job"})  # ours, stale
    live.put("memprov-gcp-hand-made", {})  # our prefix, no labels: not ours, not wanted
    live.put("memprov-gcp-eu-clv-daily-usage-warning", {"managed-by": "memprov", "memprov-env": "gcp-eu"})
    live.put("memprov-gcp-clv-daily-baseline", {}, threshold=0.125)  # a look-alike where memprov wants one
    live.put("team-dashboards-alert", {"managed-by": "terraform"})
    plan, backends = live.plan()
    got = {k: a for k, a in actions(plan).items() if a is not Action.CREATE}
    assert got == {
        "memprov-gcp-old-job-usage-warning": Action.DELETE,
        "memprov-gcp-clv-daily-baseline": Action.CONFLICT,
    }
    assert any("not managed by memprov" in p for p in plan.safety_problems())
    report = apply(
        plan, {b.name: t for b, t in backends}, retry=live.retry
    )  # what apply does if nobody refused the conflict
    outcome = {r.change.key: (r.outcome, r.message) for r in report.results}
    assert outcome["memprov-gcp-clv-daily-baseline"][0] is Outcome.FAILED
    assert "pass --force to take it over" in outcome["memprov-gcp-clv-daily-baseline"][1]
    assert outcome["memprov-gcp-old-job-usage-warning"][0] is Outcome.SKIPPED  # kept: another change failed
    found = live.policies()
    assert (
        threshold(found["memprov-gcp-clv-daily-baseline"]) == 0.125
        and not found["memprov-gcp-clv-daily-baseline"].user_labels
    )  # untouched
    live.fake.db.pop(found["memprov-gcp-clv-daily-baseline"].name)  # its owner removes the look-alike
    plan, report = live.apply()
    assert {k: a for k, a in actions(plan).items() if a is not Action.NOOP} == {
        "memprov-gcp-clv-daily-baseline": Action.CREATE,
        "memprov-gcp-old-job-usage-warning": Action.DELETE,
    }
    assert report.ok
    found = live.policies()
    assert "memprov-gcp-old-job-usage-warning" not in found
    assert {"memprov-gcp-hand-made", "memprov-gcp-eu-clv-daily-usage-warning", "team-dashboards-alert"} <= set(found)
    assert threshold(found["memprov-gcp-hand-made"]) == 0.5
    assert found["memprov-gcp-clv-daily-baseline"].user_labels["managed-by"] == "memprov"


def test_a_duplicate_display_name_of_ours_is_pruned(live: Live) -> None:
    live.apply()
    extra = live.put("memprov-gcp-clv-daily-growth", {**OWN, "memprov-job": "clv-daily"})
    plan, report = live.apply()
    [(key, action)] = [(k, a) for k, a in actions(plan).items() if a is not Action.NOOP]
    assert action is Action.DELETE and key == f"memprov-gcp-clv-daily-growth#{extra.name.rsplit('/', 1)[-1]}"
    assert report.ok and extra.name not in live.fake.db and len(live.fake.db) == 24


def test_throttling_is_retried_with_backoff(live: Live) -> None:
    read = live.fake.fail("ListAlertPolicies", Status.UNAVAILABLE)
    create = live.fake.fail(
        "CreateAlertPolicy", Status.RESOURCE_EXHAUSTED, times=2, target="memprov-gcp-clv-daily-usage-critical"
    )
    _, report = live.apply()
    assert read.injected == 1 and create.injected == 2
    assert report.ok and len(report.of(Outcome.APPLIED)) == 24
    assert len(live.sleeps) == 3  # one for the plan's read, two for the create
    assert len(live.fake.db) == 24  # retried creates did not duplicate
    live.fake.fail("ListAlertPolicies", Status.UNAVAILABLE)
    again, _ = live.plan()
    assert not again.has_changes and len(live.sleeps) == 4


def test_failure_mid_apply_is_reported_clearly(live: Live) -> None:
    live.put("memprov-gcp-old-job-usage-warning", {**OWN, "memprov-job": "old-job"})
    live.fake.fail(
        "CreateAlertPolicy",
        Status.PERMISSION_DENIED,
        target="memprov-gcp-image-embed-growth",
        message="Permission monitoring.alertPolicies.create denied on resource projects/ml-batch-prod",
    )
    live.fake.fail("CreateAlertPolicy", Status.UNAVAILABLE, times=10, target="memprov-gcp-doc-embed-anomaly")
    plan, report = live.apply()
    outcome = {r.change.key: r for r in report.results}
    failed = sorted(r.change.key for r in report.of(Outcome.FAILED))
    assert failed == ["memprov-gcp-doc-embed-anomaly", "memprov-gcp-image-embed-growth"]
    denied = outcome["memprov-gcp-image-embed-growth"].message
    assert "PermissionDenied (Permission monitoring.alertPolicies.create denied" in denied
    assert "grant roles/monitoring.alertPolicyEditor on project ml-batch-prod" in denied
    assert "gave up after 4 attempts" in outcome["memprov-gcp-doc-embed-anomaly"].message
    assert len(report.of(Outcome.APPLIED)) == 22
    assert outcome["memprov-gcp-old-job-usage-warning"].outcome is Outcome.SKIPPED
    text = "\n".join(line for _, line in output.report_lines(report))
    assert "Apply incomplete: 22 of 25 changes applied, 2 failed, 1 not attempted." in text, text
    assert "PermissionDenied" in text and "kept because other gcp changes failed" in text, text
    found = live.policies()
    assert "memprov-gcp-image-embed-growth" not in found and "memprov-gcp-old-job-usage-warning" in found
    live.fake.clear()
    plan, report = live.apply()
    assert {k for k, a in actions(plan).items() if a is not Action.NOOP} == {
        "memprov-gcp-image-embed-growth",
        "memprov-gcp-doc-embed-anomaly",
        "memprov-gcp-old-job-usage-warning",
    }
    assert report.ok
    again, _ = live.plan()
    assert not again.has_changes


def test_a_policy_changed_since_the_plan_is_not_overwritten(live: Live) -> None:
    live.apply()
    live.edit_spec("thresholds: {warning: 75%, critical: 90%}", "thresholds: {warning: 70%, critical: 90%}")
    plan, backends = live.plan()
    key = "memprov-gcp-image-embed-usage-warning"
    stored = live.policies()[key]
    stored.conditions[0].condition_threshold.threshold_value = 0.6
    stored.mutation_record.mutate_time.FromNanoseconds(stored.mutation_record.mutate_time.ToNanoseconds() + 1)
    report = apply(plan, targets_of(backends), retry=live.retry)
    [failed] = report.of(Outcome.FAILED)
    assert failed.change.key == key and "changed in Cloud Monitoring since the plan" in failed.message
    assert threshold(live.policies()[key]) == 0.6
    _, report = live.apply()
    assert report.ok and threshold(live.policies()[key]) == 0.7


def test_quota_and_credentials_errors_are_clear(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    live.fake.fail("ListAlertPolicies", Status.RESOURCE_EXHAUSTED, times=10, message="Quota exceeded for quota metric")
    plan, _ = live.plan()
    [error] = plan.errors
    assert "ResourceExhausted (Quota exceeded" in error and "check the Cloud Monitoring quotas of project" in error
    assert "gave up after 4 attempts" in error
    live.fake.clear()
    monkeypatch.setenv("MEMPROV_GCP_TOKEN", "expired")
    plan, _ = live.plan()
    [error] = plan.errors
    assert "Unauthenticated" in error and "gcloud auth application-default login" in error
    assert "expired" not in output.text(plan)  # the token is redacted


def test_cli_plan_and_apply_against_the_server(live: Live) -> None:
    result = memprov("plan", "--env", ENV, "--backend", "gcp", cwd=live.repo, env=GCP_ENV)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"gcp → gcp project {PROJECT} via 127.0.0.1:" in out, out
    for job in ("clv-daily", "image-embed", "doc-embed"):
        assert (
            f"note: {job}: alert kinds on gcp (gke) — native: usage, baseline, anomaly · "
            "approximated: growth, time_to_oom, oom_killed" in out
        ), out
    assert "+ policy memprov-gcp-clv-daily-usage-warning" in out and "24 to create" in out
    applied = memprov("apply", "--env", ENV, "--backend", "gcp", "--yes", cwd=live.repo, env=GCP_ENV)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = memprov("plan", "--env", ENV, "--backend", "gcp", "--detailed-exitcode", cwd=live.repo, env=GCP_ENV)
    assert again.returncode == 0, again.stdout
    oom = live.policies()["memprov-gcp-clv-daily-oom-killed"]
    live.fake.db.pop(oom.name)
    live.put("memprov-gcp-clv-daily-oom-killed", {})  # now someone else's policy with memprov's name
    refused = memprov("apply", "--env", ENV, "--backend", "gcp", "--yes", cwd=live.repo, env=GCP_ENV)
    assert refused.returncode != 0 and "not managed by memprov" in refused.stdout + refused.stderr
    assert not live.policies()["memprov-gcp-clv-daily-oom-killed"].user_labels  # untouched
    assert "Traceback" not in refused.stderr
