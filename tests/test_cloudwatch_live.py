"""What is CloudWatch's own in the live cloudwatch target: the request bodies, re-tagging, batches of 100
names, error codes, the adaptive retry mode, the CLI and credentials (moto server over HTTP, real boto3).

The scenarios every live target shares (create, re-plan, update, prune, look-alikes, throttling, edits
since the plan, lost answers, failures mid-apply) are in tests/test_backend_contract.py, run through
the same harness (:class:`tests.contract.cloudwatch.CloudWatchHarness`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.plan import output
from provisioner.plan.engine import Outcome
from provisioner.plan.model import Action
from tests.contract.cloudwatch import OWN, CloudWatchHarness
from tests.helpers import example_repo, memprov

pytestmark = pytest.mark.integration  # a real moto_server
ENV = "aws"
AWS_ENV = CloudWatchHarness.variables  # credentials moto takes, and no AWS configuration of the machine's


def aws_repo(dest: Path, endpoint: str) -> Path:
    """The example repository with its ``aws`` environment pointing at ``endpoint`` (no fault proxy)."""
    repo = example_repo(dest)
    env_file = repo / "environments" / f"{ENV}.yaml"
    text = env_file.read_text(encoding="utf-8")
    assert "    region: eu-west-1\n" in text
    env_file.write_text(
        text.replace("    region: eu-west-1\n", f"    region: eu-west-1\n    endpoint_url: {endpoint}\n")
    )
    return repo


@pytest.fixture
def cw(tmp_path: Path) -> Iterator[CloudWatchHarness]:
    h = CloudWatchHarness(tmp_path)
    with h.running():
        yield h


def tags(cw: CloudWatchHarness, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in cw.view()[name].body["Tags"]}


def test_the_alarms_as_sent(cw: CloudWatchHarness) -> None:
    _, report = cw.apply()
    assert report.ok
    alarms = {k: v.body for k, v in cw.view().items()}
    warning = alarms["memprov-aws-clv-daily-usage-warning"]
    assert warning["Threshold"] == 75.0 and warning["EvaluationPeriods"] == 5 and warning["DatapointsToAlarm"] == 5
    assert warning["AlarmActions"] == ["arn:aws:sns:eu-west-1:123456789012:ml-platform-warning"]
    assert warning["TreatMissingData"] == "notBreaching"
    band = alarms["memprov-aws-clv-daily-anomaly"]
    assert band["ThresholdMetricId"] == "band" and band["ComparisonOperator"] == "GreaterThanUpperThreshold"
    assert tags(cw, "memprov-aws-doc-embed-time-to-oom-critical") == {
        **OWN,
        "memprov-job": "doc-embed",
        "memprov-kind": "time_to_oom",
        "memprov-severity": "critical",
    }
    pages = cw.faults.operations("DescribeAlarms")
    assert pages and all(s.protocol in ("json", "query", "cbor") for s in pages)


def test_an_update_retags_and_keeps_other_tags(cw: CloudWatchHarness) -> None:
    """CloudWatch ignores Tags on an update: memprov re-tags, drops its stale tags, keeps everyone else's."""
    cw.apply()
    cw.edit_spec(*cw.update)
    arn = cw.view()["memprov-aws-clv-daily-growth"].body["AlarmArn"]
    cw.cw.untag_resource(ResourceARN=arn, TagKeys=["memprov-kind"])  # drift in memprov's own tags
    cw.cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "cost-centre", "Value": "ml"}])  # someone else's: not drift
    plan, report = cw.apply()
    assert {c.key: c.action for c in plan.actionable} == {
        "memprov-aws-image-embed-usage-warning": Action.UPDATE,
        "memprov-aws-clv-daily-growth": Action.UPDATE,
    }
    assert report.ok
    assert cw.view()["memprov-aws-image-embed-usage-warning"].body["Threshold"] == 70.0
    got = tags(cw, "memprov-aws-clv-daily-growth")
    assert got["memprov-kind"] == "growth" and got["cost-centre"] == "ml"
    assert [s.operation for s in cw.faults.seen if s.operation in ("TagResource", "UntagResource")] == [
        "TagResource",
        "TagResource",
    ]
    assert not cw.plan()[0].has_changes


def test_deletes_are_batched_by_at_most_100(cw: CloudWatchHarness) -> None:
    for i in range(130):
        cw.plant(f"memprov-aws-gone-{i:03d}-usage-warning", owned=True)
    cw.faults.clear()
    plan, targets = cw.plan()
    assert plan.counts()["delete"] == 130
    from provisioner.plan.engine import apply

    report = apply(plan, targets, retry=cw.policy(), concurrency=64)
    assert report.ok, [r.message for r in report.of(Outcome.FAILED)][:3]
    batches = [len(s.names) for s in cw.faults.operations("DeleteAlarms")]
    assert sum(batches) == 130 and max(batches) <= 100 and len(batches) < 130, batches
    reads = len(cw.faults.operations("DescribeAlarms"))
    assert reads < 130 // 2, reads  # the changes' re-reads are batched too (DescribeAlarms of up to 100 names)
    assert not [n for n in cw.view() if "-gone-" in n]


def test_limit_exceeded_is_a_refusal_not_throttling(cw: CloudWatchHarness) -> None:
    """``LimitExceeded`` (the account's alarm quota) is not botocore's throttling ``LimitExceededException``."""
    cw.faults.fail(
        "PutMetricAlarm",
        name="memprov-aws-image-embed-growth",
        code="LimitExceeded",
        message="The maximum number of alarms for this account has been reached.",
        times=9,
    )
    _, report = cw.apply()
    [failed] = report.of(Outcome.FAILED)
    assert "LimitExceeded (The maximum number of alarms" in failed.message
    assert len(cw.faults.operations("PutMetricAlarm")) == 24 and not cw.retries
    text = "\n".join(line for _, line in output.report_lines(report))
    assert "Apply incomplete: 23 of 24 changes applied, 1 failed" in text


def test_adaptive_retry_mode_keeps_botocores_rate_limiter(
    cw: CloudWatchHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``retry_mode: adaptive``: botocore's client-side rate limiter sees every send and every throttle,
    while the retries stay memprov's (one policy, one count)."""
    from botocore.retries.adaptive import ClientRateLimiter

    seen: list[str] = []
    original = ClientRateLimiter.on_receiving_response

    def spy(self: ClientRateLimiter, **kwargs: object) -> object:
        seen.append(str(kwargs.get("operation")))
        return original(self, **kwargs)

    monkeypatch.setattr(ClientRateLimiter, "on_receiving_response", spy)
    env_file = cw.repo / "environments" / "aws.yaml"
    env_file.write_text(env_file.read_text().replace("    timeout:", "    retry_mode: adaptive\n    timeout:"))
    cw.faults.fail("DescribeAlarms", times=1)  # a throttle: retried once by memprov, not by botocore
    plan, targets = cw.plan()
    assert not plan.errors and cw.retries == ["aws"]
    retries = targets["cloudwatch"].client.meta.config.retries  # type: ignore[attr-defined]
    assert retries == {"mode": "adaptive", "total_max_attempts": 1}
    assert len(seen) >= 2  # the throttled answer and the retried one both reached the rate limiter


def test_cli_plan_and_apply_against_moto(cw: CloudWatchHarness) -> None:
    env = dict(cw.variables)
    result = memprov("plan", "--env", ENV, "--backend", "cloudwatch", cwd=cw.repo, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"cloudwatch → cloudwatch eu-west-1 via {cw.proxy.url}" in out
    for job in ("clv-daily", "image-embed", "doc-embed"):
        assert (
            f"note: {job}: alert kinds on cloudwatch (eks) — native: usage, baseline · "
            "approximated: growth, time_to_oom, anomaly, oom_killed" in out
        ), out
        assert f"note: {job}: anomaly is approximated on cloudwatch (CloudWatch's anomaly model" in out
    assert "+ alarm memprov-aws-clv-daily-usage-warning" in out and "24 to create" in out
    applied = memprov("apply", "--env", ENV, "--backend", "cloudwatch", "--yes", cwd=cw.repo, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = memprov("plan", "--env", ENV, "--backend", "cloudwatch", "--detailed-exitcode", cwd=cw.repo, env=env)
    assert again.returncode == 0, again.stdout
    arn = cw.view()["memprov-aws-clv-daily-oom-killed"].body["AlarmArn"]
    cw.cw.untag_resource(ResourceARN=arn, TagKeys=list(tags(cw, "memprov-aws-clv-daily-oom-killed")))
    cw.plant("memprov-aws-clv-daily-oom-killed", owned=False)  # now someone else's alarm with memprov's name
    refused = memprov("apply", "--env", ENV, "--backend", "cloudwatch", "--yes", cwd=cw.repo, env=env)
    assert refused.returncode != 0 and "not managed by memprov" in refused.stdout + refused.stderr
    assert cw.view()["memprov-aws-clv-daily-oom-killed"].body["Namespace"] == "CWAgent"  # untouched
    assert tags(cw, "memprov-aws-clv-daily-oom-killed") == {}


def test_no_credentials_is_a_clear_error(cw: CloudWatchHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k)
    plan, _ = cw.plan()
    [error] = plan.errors
    assert "no AWS credentials found; set AWS_PROFILE" in error
