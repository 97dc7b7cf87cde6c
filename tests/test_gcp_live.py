"""What is Cloud Monitoring's own in the live gcp target: the policies as sent, updates in place with an
update mask, duplicate display names, a non-idempotent create, error messages, the CLI (the real
google-cloud-monitoring client over gRPC, against the local AlertPolicyService of tests/fakes/gcp.py).

The scenarios every live target shares are in tests/test_backend_contract.py, run through the same
harness (:class:`tests.contract.gcp.GcpHarness`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.cloud.monitoring_v3.types import alert as alert_t

from provisioner.plan import output
from provisioner.plan.engine import Outcome
from provisioner.plan.model import Action
from tests.contract.gcp import OWN, PROJECT, TOKEN, GcpHarness
from tests.helpers import example_repo, memprov

ENV = "gcp"
GCP_ENV = {"MEMPROV_GCP_TOKEN": TOKEN}
Status = grpc.StatusCode


def gcp_repo(dest: Path, address: str) -> Path:
    """The example repository with its ``gcp`` environment pointing at ``address`` (no fault proxy)."""
    repo = example_repo(dest)
    env_file = repo / "environments" / f"{ENV}.yaml"
    text = env_file.read_text(encoding="utf-8")
    line = f"    project: {PROJECT}\n"
    assert line in text
    extra = f"    endpoint: {address}\n    insecure: true\n    access_token: {{env: MEMPROV_GCP_TOKEN}}\n"
    env_file.write_text(text.replace(line, line + extra), encoding="utf-8")
    return repo


@pytest.fixture
def gcp(tmp_path: Path) -> Iterator[GcpHarness]:
    h = GcpHarness(tmp_path)
    with h.running():
        yield h


def threshold(policy: Any) -> float:
    return float(policy.conditions[0].condition_threshold.threshold_value)


def test_the_policies_as_sent(gcp: GcpHarness) -> None:
    _, report = gcp.apply()
    assert report.ok
    found = gcp.fake.policies()
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
    assert gcp.fake.count("CreateAlertPolicy") == 24


def test_an_update_is_in_place_and_keeps_other_labels(gcp: GcpHarness) -> None:
    gcp.apply()
    gcp.edit_spec(*gcp.update)
    growth = gcp.fake.policies()["memprov-gcp-clv-daily-growth"]
    growth.user_labels.pop("memprov-kind")  # drift in memprov's own labels
    growth.user_labels["cost-centre"] = "ml"  # someone else's: not drift
    name = gcp.fake.policies()["memprov-gcp-image-embed-usage-warning"].name
    plan, report = gcp.apply()
    assert {c.key: c.action for c in plan.actionable} == {
        "memprov-gcp-image-embed-usage-warning": Action.UPDATE,
        "memprov-gcp-clv-daily-growth": Action.UPDATE,
    }
    assert report.ok, [r.message for r in report.of(Outcome.FAILED)]
    updated = gcp.fake.policies()["memprov-gcp-image-embed-usage-warning"]
    assert threshold(updated) == 0.7 and updated.name == name  # updated in place, not re-created
    labels = dict(gcp.fake.policies()["memprov-gcp-clv-daily-growth"].user_labels)
    assert labels["memprov-kind"] == "growth" and labels["cost-centre"] == "ml"
    assert gcp.fake.count("UpdateAlertPolicy") == 2 and gcp.fake.count("CreateAlertPolicy") == 24


def test_a_duplicate_display_name_of_ours_is_pruned(gcp: GcpHarness) -> None:
    gcp.apply()
    with gcp.fake.lock:
        original = next(p for p in gcp.fake.db.values() if p.display_name == "memprov-gcp-clv-daily-growth")
    extra = gcp.fake.put(PROJECT, original)  # a second policy of memprov's with the same display name
    plan, report = gcp.apply()
    [(key, action)] = [(c.key, c.action) for c in plan.actionable]
    assert action is Action.DELETE and key == f"memprov-gcp-clv-daily-growth#{extra.name.rsplit('/', 1)[-1]}"
    assert report.ok and extra.name not in gcp.fake.db and len(gcp.fake.db) == 24
    assert not gcp.duplicates()


def test_a_create_whose_answer_was_lost_is_looked_for_not_sent_again(gcp: GcpHarness) -> None:
    """CreateAlertPolicy is not idempotent (the server names each policy): after an answer that may have
    been lost, memprov lists the display name before sending it again."""
    key = "memprov-gcp-clv-daily-usage-warning"
    gcp.chaos.rule("lost", lambda r: gcp.is_write(r, key), times=1)
    gcp.chaos.rule("503", lambda r: r.op == "CreateAlertPolicy" and b"image-embed-growth" in r.body, times=1)
    _, report = gcp.apply()
    assert report.ok
    creates = [r for r in gcp.chaos.seen if r.op == "CreateAlertPolicy"]
    assert sum(key.encode() in r.body for r in creates) == 1  # found by display name: not sent again
    assert sum(b"image-embed-growth" in r.body for r in creates) == 2  # 503: not carried out, sent again
    lookups = [r for r in gcp.chaos.seen if r.op == "ListAlertPolicies" and b"display_name" in r.body]
    assert len(lookups) == 2 and not gcp.duplicates()


def test_quota_permission_and_credentials_errors_are_clear(gcp: GcpHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    gcp.fake.fail("ListAlertPolicies", Status.RESOURCE_EXHAUSTED, times=10, message="Quota exceeded for quota metric")
    plan, _ = gcp.plan()
    [error] = plan.errors
    assert "ResourceExhausted (Quota exceeded" in error and "check the Cloud Monitoring quotas of project" in error
    assert "gave up after 5 attempts" in error
    assert all(wait >= 30 for wait in gcp.sleeps)  # Google's guidance: at least 30 s after RESOURCE_EXHAUSTED
    gcp.fake.clear()
    gcp.fake.fail(
        "CreateAlertPolicy",
        Status.PERMISSION_DENIED,
        target="memprov-gcp-image-embed-growth",
        message="Permission monitoring.alertPolicies.create denied on resource projects/ml-batch-prod",
    )
    _, report = gcp.apply()
    [denied] = report.of(Outcome.FAILED)
    assert "PermissionDenied (Permission monitoring.alertPolicies.create denied" in denied.message
    assert "grant roles/monitoring.alertPolicyEditor on project ml-batch-prod" in denied.message
    monkeypatch.setenv("MEMPROV_GCP_TOKEN", "expired")
    plan, _ = gcp.plan()
    [error] = plan.errors
    assert "Unauthenticated" in error and "gcloud auth application-default login" in error
    assert "expired" not in output.text(plan)  # the token is redacted


def test_cli_plan_and_apply_against_the_server(gcp: GcpHarness) -> None:
    env = dict(gcp.variables)
    result = memprov("plan", "--env", ENV, "--backend", "gcp", cwd=gcp.repo, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"gcp → gcp project {PROJECT} via 127.0.0.1:" in out, out
    for job in ("clv-daily", "image-embed", "doc-embed"):
        assert (
            f"note: {job}: alert kinds on gcp (gke) — native: usage, baseline, anomaly · "
            "approximated: growth, time_to_oom, oom_killed" in out
        ), out
    assert "+ policy memprov-gcp-clv-daily-usage-warning" in out and "24 to create" in out
    applied = memprov("apply", "--env", ENV, "--backend", "gcp", "--yes", cwd=gcp.repo, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = memprov("plan", "--env", ENV, "--backend", "gcp", "--detailed-exitcode", cwd=gcp.repo, env=env)
    assert again.returncode == 0, again.stdout
    oom = gcp.fake.policies()["memprov-gcp-clv-daily-oom-killed"]
    gcp.fake.db.pop(oom.name)
    gcp.plant("memprov-gcp-clv-daily-oom-killed", owned=False)  # now someone else's policy with memprov's name
    refused = memprov("apply", "--env", ENV, "--backend", "gcp", "--yes", cwd=gcp.repo, env=env)
    assert refused.returncode != 0 and "not managed by memprov" in refused.stdout + refused.stderr
    assert not gcp.fake.policies()["memprov-gcp-clv-daily-oom-killed"].user_labels  # untouched
    assert "Traceback" not in refused.stderr
