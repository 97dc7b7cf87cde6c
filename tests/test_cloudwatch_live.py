"""The live cloudwatch target against a real moto server over HTTP, through real boto3.

Plans and applies go through the real loader, registry, backend, boto3 client and plan engine;
AWS is moto (``moto_server`` on 127.0.0.1), reached through :class:`tests.fakes.cloudwatch.FaultProxy`,
which forwards everything and injects CloudWatch's own ``Throttling`` (or another error) on chosen
requests. Retries use a recording ``sleep``, so backoff is checked without waiting for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from provisioner.backends.registry import build
from provisioner.plan import output
from provisioner.plan.engine import ApplyReport, Outcome, apply
from provisioner.plan.model import Action, Plan
from provisioner.plan.planner import Binding, make_plan
from provisioner.plan.retry import RetryPolicy
from provisioner.spec.loader import load
from tests.fakes.cloudwatch import FaultProxy, moto_server, reset
from tests.helpers import example_repo, memprov, targets_of

ENV = "aws"
OWN = [
    {"Key": "managed-by", "Value": "memprov"},
    {"Key": "memprov-env", "Value": ENV},
    {"Key": "memprov-spec", "Value": "batch-inference"},
]
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def proxy(moto: str) -> Iterator[FaultProxy]:
    reset(moto)
    p = FaultProxy(moto)
    yield p
    p.close()


class Live:
    """A repository whose ``aws`` environment points at the proxy, and helpers to plan and apply."""

    def __init__(self, repo: Path, proxy: FaultProxy) -> None:
        self.repo, self.proxy = repo, proxy
        self.sleeps: list[float] = []
        self.retry = RetryPolicy(attempts=4, sleep=self.sleeps.append)
        self.cw: Any = boto3.client(
            "cloudwatch",
            region_name="eu-west-1",
            endpoint_url=proxy.upstream,  # straight to moto: the test's own view, never throttled
            config=Config(retries={"total_max_attempts": 1}),
        )

    def backends(self) -> list[Binding]:
        return build(load(self.repo / "memprov.yaml", ENV), ["cloudwatch"])

    def plan(self) -> tuple[Plan, list[Binding]]:
        backends = self.backends()
        return make_plan(ENV, "batch-inference", backends, retry=self.retry), backends

    def apply(self, force: bool = False) -> tuple[Plan, ApplyReport]:
        plan, backends = self.plan()
        assert not plan.errors, plan.errors
        return plan, apply(plan, targets_of(backends), retry=self.retry, force=force)

    def alarms(self) -> dict[str, dict[str, Any]]:
        found = self.cw.describe_alarms(AlarmNamePrefix="memprov-")["MetricAlarms"]
        return {a["AlarmName"]: a for a in found}

    def tags(self, name: str) -> dict[str, str]:
        arn = self.alarms()[name]["AlarmArn"]
        return {t["Key"]: t["Value"] for t in self.cw.list_tags_for_resource(ResourceARN=arn)["Tags"]}

    def put(self, name: str, tags: list[dict[str, str]], threshold: float = 50.0) -> None:
        self.cw.put_metric_alarm(
            AlarmName=name,
            Namespace="CWAgent",
            MetricName="mem_used_percent",
            Dimensions=[{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
            Tags=tags,
        )

    def edit_spec(self, old: str, new: str) -> None:
        spec = self.repo / "memprov.yaml"
        text = spec.read_text(encoding="utf-8")
        assert old in text
        spec.write_text(text.replace(old, new, 1), encoding="utf-8")


def aws_repo(dest: Path, endpoint: str) -> Path:
    repo = example_repo(dest)
    env_file = repo / "environments" / f"{ENV}.yaml"
    text = env_file.read_text(encoding="utf-8")
    assert "    region: eu-west-1\n" in text
    env_file.write_text(
        text.replace("    region: eu-west-1\n", f"    region: eu-west-1\n    endpoint_url: {endpoint}\n")
    )
    return repo


@pytest.fixture
def live(tmp_path: Path, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> Live:
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return Live(aws_repo(tmp_path / "repo", proxy.url), proxy)


def actions(plan: Plan) -> dict[str, Action]:
    return {c.key: c.action for c in plan.changes}


def test_create_then_replan_is_empty(live: Live) -> None:
    plan, report = live.apply()
    assert plan.counts()["create"] == 24 and report.ok
    alarms = live.alarms()
    assert len(alarms) == 24 and len(report.of(Outcome.APPLIED)) == 24
    warning = alarms["memprov-aws-clv-daily-usage-warning"]
    assert warning["Threshold"] == 75.0 and warning["EvaluationPeriods"] == 5 and warning["DatapointsToAlarm"] == 5
    assert warning["AlarmActions"] == ["arn:aws:sns:eu-west-1:123456789012:ml-platform-warning"]
    assert warning["TreatMissingData"] == "notBreaching"
    band = alarms["memprov-aws-clv-daily-anomaly"]
    assert band["ThresholdMetricId"] == "band" and band["ComparisonOperator"] == "GreaterThanUpperThreshold"
    assert live.tags("memprov-aws-doc-embed-time-to-oom-critical") == {
        "managed-by": "memprov",
        "memprov-env": "aws",
        "memprov-spec": "batch-inference",
        "memprov-job": "doc-embed",
        "memprov-kind": "time_to_oom",
        "memprov-severity": "critical",
    }
    again, _ = live.plan()
    assert not again.has_changes and again.counts()["no-op"] == 24, output.text(again)
    pages = live.proxy.operations("DescribeAlarms")
    assert pages and all(s.protocol in ("json", "query", "cbor") for s in pages)


def test_update_changes_the_alarm_and_retags(live: Live) -> None:
    live.apply()
    live.edit_spec("thresholds: {warning: 75%, critical: 90%}", "thresholds: {warning: 70%, critical: 90%}")
    arn = live.alarms()["memprov-aws-clv-daily-growth"]["AlarmArn"]
    live.cw.untag_resource(ResourceARN=arn, TagKeys=["memprov-kind"])  # drift in memprov's own tags
    live.cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "cost-centre", "Value": "ml"}])  # someone else's: not drift
    plan, report = live.apply()
    changed = {k: a for k, a in actions(plan).items() if a is not Action.NOOP}
    assert changed == {
        "memprov-aws-image-embed-usage-warning": Action.UPDATE,
        "memprov-aws-clv-daily-growth": Action.UPDATE,
    }
    assert report.ok
    assert live.alarms()["memprov-aws-image-embed-usage-warning"]["Threshold"] == 70.0
    tags = live.tags("memprov-aws-clv-daily-growth")
    assert tags["memprov-kind"] == "growth" and tags["cost-centre"] == "ml"
    again, _ = live.plan()
    assert not again.has_changes, output.text(again)


def test_prune_deletes_owned_only_and_leaves_lookalikes_alone(live: Live) -> None:
    live.put("memprov-aws-old-job-usage-warning", [*OWN, {"Key": "memprov-job", "Value": "old-job"}])  # ours, stale
    live.put("memprov-aws-hand-made", [])  # our prefix, no tags: not ours, not wanted
    live.put("memprov-aws-eu-clv-daily-usage-warning", [*OWN[:1], {"Key": "memprov-env", "Value": "aws-eu"}])
    live.put("memprov-aws-clv-daily-baseline", [], threshold=12.5)  # a look-alike where memprov wants one
    plan, backends = live.plan()
    got = {k: a for k, a in actions(plan).items() if a is not Action.CREATE}
    assert got == {
        "memprov-aws-old-job-usage-warning": Action.DELETE,
        "memprov-aws-clv-daily-baseline": Action.CONFLICT,
    }
    assert any("not managed by memprov" in p for p in plan.safety_problems())
    report = apply(
        plan, {b.name: t for b, t in backends}, retry=live.retry
    )  # what apply does if nobody refused the conflict
    outcome = {r.change.key: (r.outcome, r.message) for r in report.results}
    assert outcome["memprov-aws-clv-daily-baseline"][0] is Outcome.FAILED
    assert "pass --force to take it over" in outcome["memprov-aws-clv-daily-baseline"][1]
    alarms = live.alarms()
    assert alarms["memprov-aws-clv-daily-baseline"]["Threshold"] == 12.5  # untouched
    assert live.tags("memprov-aws-clv-daily-baseline") == {}
    assert outcome["memprov-aws-old-job-usage-warning"][0] is Outcome.SKIPPED  # kept: another change failed
    live.cw.delete_alarms(AlarmNames=["memprov-aws-clv-daily-baseline"])  # its owner removes the look-alike
    plan, report = live.apply()
    assert {k: a for k, a in actions(plan).items() if a is not Action.NOOP} == {
        "memprov-aws-clv-daily-baseline": Action.CREATE,
        "memprov-aws-old-job-usage-warning": Action.DELETE,
    }
    assert report.ok
    alarms = live.alarms()
    assert "memprov-aws-old-job-usage-warning" not in alarms
    assert {"memprov-aws-hand-made", "memprov-aws-eu-clv-daily-usage-warning"} <= set(alarms)
    assert alarms["memprov-aws-hand-made"]["Threshold"] == 50.0
    assert live.tags("memprov-aws-clv-daily-baseline")["managed-by"] == "memprov"


def test_deletes_are_batched_by_at_most_100(live: Live) -> None:
    for i in range(130):
        live.put(f"memprov-aws-gone-{i:03d}-usage-warning", [*OWN, {"Key": "memprov-job", "Value": f"gone-{i:03d}"}])
    live.proxy.clear()
    plan, backends = live.plan()
    assert plan.counts()["delete"] == 130
    report = apply(plan, targets_of(backends), retry=live.retry, concurrency=64)
    assert report.ok, [r.message for r in report.of(Outcome.FAILED)][:3]
    batches = [len(s.names) for s in live.proxy.operations("DeleteAlarms")]
    assert sum(batches) == 130 and max(batches) <= 100 and len(batches) < 130, batches
    assert not [n for n in live.alarms() if "-gone-" in n]


def test_throttling_is_retried_with_backoff(live: Live) -> None:
    read = live.proxy.fail("DescribeAlarms", times=1)
    put = live.proxy.fail("PutMetricAlarm", name="memprov-aws-clv-daily-usage-critical", times=2)
    tag = live.proxy.fail("ListTagsForResource", code="ServiceUnavailable", status=503, times=0)
    _, report = live.apply()
    assert read.injected == 1 and put.injected == 2 and tag.injected == 0
    assert report.ok and len(report.of(Outcome.APPLIED)) == 24
    assert len(live.sleeps) == 3  # one for the plan's read, two for the put
    assert "memprov-aws-clv-daily-usage-critical" in live.alarms()
    live.proxy.fail("ListTagsForResource", code="ServiceUnavailable", status=503, times=1)
    again, _ = live.plan()
    assert not again.has_changes and len(live.sleeps) == 4


def test_failure_mid_apply_is_reported_clearly(live: Live) -> None:
    live.put("memprov-aws-old-job-usage-warning", [*OWN, {"Key": "memprov-job", "Value": "old-job"}])
    live.proxy.fail(
        "PutMetricAlarm",
        name="memprov-aws-image-embed-growth",
        code="LimitExceeded",
        message="The maximum number of alarms for this account has been reached.",
        times=1,
    )
    live.proxy.fail("PutMetricAlarm", name="memprov-aws-doc-embed-anomaly", times=10)  # throttled past the retries
    plan, report = live.apply()
    outcome = {r.change.key: r for r in report.results}
    failed = sorted(r.change.key for r in report.of(Outcome.FAILED))
    assert failed == ["memprov-aws-doc-embed-anomaly", "memprov-aws-image-embed-growth"]
    assert "LimitExceeded (The maximum number of alarms" in outcome["memprov-aws-image-embed-growth"].message
    assert "gave up after 4 attempts" in outcome["memprov-aws-doc-embed-anomaly"].message
    assert len(report.of(Outcome.APPLIED)) == 22
    assert outcome["memprov-aws-old-job-usage-warning"].outcome is Outcome.SKIPPED
    text = "\n".join(line for _, line in output.report_lines(report))
    assert "Apply incomplete: 22 of 25 changes applied, 2 failed, 1 not attempted." in text, text
    assert "LimitExceeded" in text and "kept because other cloudwatch changes failed" in text, text
    alarms = live.alarms()
    assert "memprov-aws-image-embed-growth" not in alarms and "memprov-aws-old-job-usage-warning" in alarms
    live.proxy.clear()
    plan, report = live.apply()
    assert {k for k, a in actions(plan).items() if a is not Action.NOOP} == {
        "memprov-aws-image-embed-growth",
        "memprov-aws-doc-embed-anomaly",
        "memprov-aws-old-job-usage-warning",
    }
    assert report.ok
    again, _ = live.plan()
    assert not again.has_changes


def test_an_alarm_changed_since_the_plan_is_not_overwritten(live: Live) -> None:
    live.apply()
    live.edit_spec("thresholds: {warning: 75%, critical: 90%}", "thresholds: {warning: 70%, critical: 90%}")
    plan, backends = live.plan()
    name = "memprov-aws-image-embed-usage-warning"
    have = next(c.have for c in plan.changes if c.key == name)
    assert have is not None
    body = json.loads(json.dumps(have.body, default=str))
    keep = ("AlarmName", "Namespace", "MetricName", "Dimensions", "Statistic", "Period", "EvaluationPeriods")
    live.cw.put_metric_alarm(**{k: body[k] for k in keep}, ComparisonOperator="GreaterThanThreshold", Threshold=60.0)
    report = apply(plan, targets_of(backends), retry=live.retry)
    [failed] = report.of(Outcome.FAILED)
    assert failed.change.key == name and "changed in CloudWatch since the plan" in failed.message
    assert live.alarms()[name]["Threshold"] == 60.0
    _, report = live.apply(force=False)
    assert report.ok and live.alarms()[name]["Threshold"] == 70.0


def test_cli_plan_and_apply_against_moto(live: Live) -> None:
    result = memprov("plan", "--env", ENV, "--backend", "cloudwatch", cwd=live.repo, env=AWS_ENV)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"cloudwatch → cloudwatch eu-west-1 via {live.proxy.url}" in out
    for job in ("clv-daily", "image-embed", "doc-embed"):
        assert (
            f"note: {job}: alert kinds on cloudwatch (eks) — native: usage, baseline · "
            "approximated: growth, time_to_oom, anomaly, oom_killed" in out
        ), out
        assert f"note: {job}: anomaly is approximated on cloudwatch (CloudWatch's anomaly model" in out
    assert "+ alarm memprov-aws-clv-daily-usage-warning" in out and "24 to create" in out
    applied = memprov("apply", "--env", ENV, "--backend", "cloudwatch", "--yes", cwd=live.repo, env=AWS_ENV)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = memprov("plan", "--env", ENV, "--backend", "cloudwatch", "--detailed-exitcode", cwd=live.repo, env=AWS_ENV)
    assert again.returncode == 0, again.stdout
    live.put("memprov-aws-clv-daily-anomaly-x", [])
    arn = live.alarms()["memprov-aws-clv-daily-oom-killed"]["AlarmArn"]
    live.cw.untag_resource(ResourceARN=arn, TagKeys=list(live.tags("memprov-aws-clv-daily-oom-killed")))
    live.put("memprov-aws-clv-daily-oom-killed", [])  # now someone else's alarm with memprov's name
    refused = memprov("apply", "--env", ENV, "--backend", "cloudwatch", "--yes", cwd=live.repo, env=AWS_ENV)
    assert refused.returncode != 0 and "not managed by memprov" in refused.stdout + refused.stderr
    assert live.alarms()["memprov-aws-clv-daily-oom-killed"]["Namespace"] == "CWAgent"  # untouched
    assert live.tags("memprov-aws-clv-daily-oom-killed") == {}


def test_no_credentials_is_a_clear_error(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k)
    plan, _ = live.plan()
    [error] = plan.errors
    assert "no AWS credentials found; set AWS_PROFILE" in error
