"""CloudWatch alarms that the real service accepts and that can fire (issue 15, items 1-3 and 6).

The rendered ``PutMetricAlarm`` bodies go through :mod:`tests.fakes.cloudwatch_rules`: what the API
refuses, and, against a :class:`~tests.fakes.cloudwatch_rules.World` of the series the agents publish
for the example workloads, whether an alarm can ever leave ``OK``. The validator's own rules are
tested first, on bodies made to break one rule each, so that a rule that cannot fail is noticed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provisioner.render.cloudwatch import alarms, support
from provisioner.spec.loader import environments, load
from tests.fakes.cloudwatch_rules import Pod, World, container_insights_pod_name, never_fires, refusals
from tests.helpers import ROOT, example_repo, memprov

GOOD: dict[str, Any] = {
    "AlarmName": "a",
    "Namespace": "CWAgent",
    "MetricName": "mem_used_percent",
    "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}],
    "Statistic": "Maximum",
    "Period": 60,
    "EvaluationPeriods": 2,
    "DatapointsToAlarm": 2,
    "Threshold": 80.0,
    "ComparisonOperator": "GreaterThanThreshold",
    "TreatMissingData": "notBreaching",
}
BAND = {
    "AlarmName": "b",
    "Metrics": [
        {"Id": "m", "MetricStat": {"Metric": GOOD["Dimensions"] and {"Namespace": "CWAgent",
                                   "MetricName": "mem_used_percent", "Dimensions": GOOD["Dimensions"]},
                                   "Period": 300, "Stat": "Average"}, "ReturnData": True},
        {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(m, 3)", "ReturnData": True},
    ],
    "EvaluationPeriods": 2,
    "ThresholdMetricId": "band",
    "ComparisonOperator": "GreaterThanUpperThreshold",
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"Period": 45}, "Period 45 must be 10, 20, 30 or a multiple of 60"),
        ({"DatapointsToAlarm": 3}, "DatapointsToAlarm must be between 1 and EvaluationPeriods"),
        ({"EvaluationPeriods": 1441}, "Period x EvaluationPeriods = 86460s is over 86400s"),
        ({"Statistic": None}, "exactly one of Statistic and ExtendedStatistic"),
        ({"ComparisonOperator": "GreaterThanUpperThreshold"}, "is only for anomaly detection alarms"),
        ({"Metrics": BAND["Metrics"]}, "Metrics cannot be combined with MetricName"),
    ],
)
def test_the_validator_refuses_what_putmetricalarm_refuses(change: dict[str, Any], why: str) -> None:
    assert refusals(GOOD) == [] and refusals(BAND) == []
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    assert any(why in r for r in refusals(body)), refusals(body)


def test_the_validator_refuses_bad_metric_math() -> None:
    two = {**BAND, "ThresholdMetricId": None, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"}
    del two["ThresholdMetricId"]
    assert any("2 queries return data; the alarm needs exactly 1" in r for r in refusals(two))
    both = {**BAND, "Threshold": 3.0}
    assert any("Threshold and ThresholdMetricId" in r for r in refusals(both))
    typo = {**BAND, "Metrics": [BAND["Metrics"][0], {**BAND["Metrics"][1], "Expression": "ANOMALY_DETECTION_BAND(x)"}]}
    assert any("unknown ids ['x']" in r for r in refusals(typo))


@pytest.mark.parametrize(
    ("owner_kind", "owner", "prefer_full", "pod_name"),
    [
        ("Job", "clv-daily", False, "clv"),  # cut at the first '-'
        ("Job", "embed.v2-run", False, "embed"),  # ... or '.'
        ("Job", "clv-daily", True, "clv-daily"),  # prefer_full_pod_name
        ("Job", "clv-daily-29412345", False, "clv"),  # a CronJob's Job today: 8-digit minutes, not the CronJob
        ("Job", "clv-daily-1764547200", False, "clv-daily"),  # 10 digits: the CronJob's name
        ("ReplicaSet", "scorer-7d4b9c8f5", False, "scorer"),  # a Deployment's
        (None, None, False, "bare-pod"),
    ],
)
def test_pod_name_as_the_agent_derives_it(owner_kind: str | None, owner: str | None, prefer_full: bool,
                                          pod_name: str) -> None:  # fmt: skip
    pod = Pod("batch", "bare-pod", owner_kind, owner, (("c", True),))
    assert container_insights_pod_name(pod, prefer_full) == pod_name


def example_world(enhanced: bool) -> World:
    """The aws example's cluster: each job a CronJob of the same name, one container with a limit."""
    world = World()
    containers = {"clv-daily": "clv-scorer", "image-embed": "image-infer", "doc-embed": "doc-embedder"}
    pods = [
        Pod("batch", f"{job}-29412345-x7k2p", "Job", f"{job}-29412345", ((container, True),))
        for job, container in containers.items()
    ]
    world.eks("ml-batch", pods, enhanced=enhanced)
    return world


def test_the_aws_example_alarms_are_accepted_and_can_fire() -> None:
    spec = load(ROOT / "memprov.yaml", "aws")
    world = example_world(enhanced=getattr(spec.jobs[0].aws, "container_insights", "standard") == "enhanced")
    problems = {}
    for job in spec.jobs_using("cloudwatch"):
        for alarm in alarms(spec, job, {}):
            if why := refusals(alarm) + never_fires(alarm, world):
                problems[alarm["AlarmName"]] = why
    assert problems == {}


@pytest.mark.parametrize("env", [e for e in environments(ROOT / "memprov.yaml")])
def test_every_example_environment_renders_bodies_cloudwatch_accepts(env: str) -> None:
    spec = load(ROOT / "memprov.yaml", env)
    for job in spec.jobs_using("cloudwatch"):
        for alarm in alarms(spec, job, {}):
            assert refusals(alarm) == [], alarm["AlarmName"]


def test_a_sub_minute_period_on_a_one_minute_metric_is_refused_at_the_spec(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    env = repo / "environments" / "aws.yaml"
    text = env.read_text()
    env.write_text(text.replace("jobs:\n", "jobs:\n  clv-daily:\n    aws: {period: 30s}\n", 1), encoding="utf-8")
    result = memprov("validate", cwd=repo)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "aws.period 30s is shorter than the 1m at which Container Insights publishes" in result.stderr
    assert "Traceback" not in result.stderr


PLATFORMS = """\
version: 1
name: platforms
defaults:
  backends: [cloudwatch]
jobs:
  sm-transform:
    owner: vision
    model: {name: vit, version: "3"}
    runtime: process
    memory: {limit: 32Gi}
    aws: {platform: sagemaker, transform_job: vit-nightly-2026-11-30, instance_id: i-0a1b2c3d4e5f60718}
    anomaly: {enabled: false}
  ec2-process:
    owner: search
    model: {name: ranker, version: "1.2"}
    runtime: process
    memory: {limit: 8Gi}
    aws: {instance_id: i-0fedcba9876543210}
  ecs-scorer:
    owner: risk
    model: {name: gbm, version: "7"}
    runtime: vm
    memory: {limit: 4Gi}
    aws: {platform: ecs, cluster: batch, service: scorer}
"""


WIZARD = """\
version: 1
name: wizard
defaults:
  backends: [cloudwatch]
jobs:
  ec2-wizard:
    owner: search
    model: {name: ranker, version: "1.2"}
    runtime: vm
    memory: {limit: 64Gi, baseline: {peak_p95: 40Gi}}
    aws:
      instance_id: i-0123456789abcdef0
      append_dimensions: [AutoScalingGroupName, ImageId, InstanceId, InstanceType]
      image_id: ami-0abcdef1234567890
      instance_type: r6i.2xlarge
      autoscaling_group: batch-asg
"""


def platforms(tmp_path: Path, text: str = PLATFORMS) -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "memprov.yaml").write_text(text, encoding="utf-8")
    return load(tmp_path / "memprov.yaml", "local")


def test_sagemaker_ec2_and_ecs_alarms_watch_published_series(tmp_path: Path) -> None:
    spec = platforms(tmp_path)
    world = World()
    world.sagemaker_transform("vit-nightly-2026-11-30", ["i-0a1b2c3d4e5f60718"])
    world.ec2({"InstanceId": "i-0fedcba9876543210", "host": "ip-10-0-0-1"}, append=["InstanceId"])
    world.ecs("batch", "scorer", "scorer-task")
    problems = {}
    for job in spec.jobs:
        for alarm in alarms(spec, job, {}):
            if why := refusals(alarm) + never_fires(alarm, world):
                problems[alarm["AlarmName"]] = why
    assert problems == {}


def test_ec2_alarms_carry_the_agents_append_dimensions(tmp_path: Path) -> None:
    spec = platforms(tmp_path, WIZARD)
    world = World()
    wizard = {
        "AutoScalingGroupName": "batch-asg",
        "ImageId": "ami-0abcdef1234567890",
        "InstanceId": "i-0123456789abcdef0",
        "InstanceType": "r6i.2xlarge",
    }
    world.ec2(wizard, append=list(wizard))  # the agent wizard's append_dimensions
    problems = {}
    for job in spec.jobs:
        for alarm in alarms(spec, job, {}):
            if why := refusals(alarm) + never_fires(alarm, world):
                problems[alarm["AlarmName"]] = why
    assert problems == {}


def test_ecs_compares_with_the_hard_limit_not_the_reservation(tmp_path: Path) -> None:
    spec = platforms(tmp_path)
    job = next(j for j in spec.jobs if j.id == "ecs-scorer")
    usage = next(a for a in alarms(spec, job, {}) if a["AlarmName"].endswith("usage-critical"))
    metrics = {q["Id"]: q for q in usage["Metrics"]}
    assert "pctreserved" not in metrics
    assert metrics["pct"]["Expression"] == "100 * pctused / 4096"  # MemoryUtilized is in MiB; the limit 4Gi


def test_plan_notes_never_call_whole_machine_memory_native_for_a_process(tmp_path: Path) -> None:
    spec = platforms(tmp_path)
    job = next(j for j in spec.jobs if j.id == "ec2-process")
    found = {k.value: s for k, s in support(job)}
    assert found["usage"].level.value == "approximated" and "whole instance" in found["usage"].why
    assert found["baseline"].level.value == "approximated"


def test_no_alarm_needs_more_datapoints_than_its_metric_publishes() -> None:
    """Each alarm against a world that publishes exactly the series it watches, once a minute: only the
    period-versus-resolution rule is left to fail (environments/aws.yaml had doc-embed at 30s)."""
    from tests.fakes.cloudwatch_rules import _watched

    spec = load(ROOT / "memprov.yaml", "aws")
    problems = {}
    for job in spec.jobs_using("cloudwatch"):
        for alarm in alarms(spec, job, {}):
            world = World()
            for (ns, metric, dims), _ in _watched(alarm):
                world.add(ns, metric, dict(dims), resolution=60)
            if why := never_fires(alarm, world):
                problems[alarm["AlarmName"]] = why
    assert problems == {}


# --- over the wire: the fault proxy applies the same rules in front of moto -------------------------------
@pytest.fixture(scope="module")
def moto() -> Any:
    from tests.fakes.cloudwatch import moto_server

    with moto_server() as url:
        yield url


def test_the_proxy_refuses_what_cloudwatch_refuses_and_flags_what_never_fires(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from provisioner.backends.registry import build
    from provisioner.plan.engine import apply
    from provisioner.plan.planner import make_plan
    from tests.fakes.cloudwatch import FaultProxy, reset
    from tests.helpers import targets_of
    from tests.test_cloudwatch_live import AWS_ENV, aws_repo

    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    reset(moto)
    proxy = FaultProxy(moto, world=example_world(enhanced=True))
    try:
        cw = boto3.client("cloudwatch", region_name="eu-west-1", endpoint_url=proxy.url,
                          config=Config(retries={"total_max_attempts": 1}))  # fmt: skip
        with pytest.raises(ClientError) as refused:
            cw.put_metric_alarm(**{**GOOD, "AlarmName": "bad-period", "Period": 45})
        assert refused.value.response["Error"]["Code"] == "ValidationError"
        assert "Period 45 must be 10, 20, 30 or a multiple of 60" in refused.value.response["Error"]["Message"]
        direct = boto3.client("cloudwatch", region_name="eu-west-1", endpoint_url=moto)
        direct.put_metric_alarm(**{**GOOD, "AlarmName": "bad-period", "Period": 45})  # moto alone takes it
        main_did = [{"Name": "ClusterName", "Value": "ml-batch"}, {"Name": "Namespace", "Value": "batch"},
                    {"Name": "PodName", "Value": "clv-daily"}]  # fmt: skip
        pod_metric = "pod_memory_utilization_over_pod_limit"
        cw.put_metric_alarm(**{**GOOD, "AlarmName": "nobody-publishes", "Namespace": "ContainerInsights",
                               "MetricName": pod_metric, "Dimensions": main_did})  # fmt: skip
        assert "is not a series the agent publishes" in proxy.never_fire["nobody-publishes"][0]
        proxy.clear()
        repo = aws_repo(tmp_path / "repo", proxy.url)
        bindings = build(load(repo / "memprov.yaml", "aws"), ["cloudwatch"])
        plan = make_plan("aws", "batch-inference", bindings)
        report = apply(plan, targets_of(bindings))
        assert report.ok and plan.counts()["create"] == 24
        assert proxy.refused == {} and proxy.never_fire == {}
    finally:
        proxy.close()
