"""The cloudwatch backend without AWS: request bodies (golden), kind mapping, normalisation, the
files target, spec errors with file:line, and boto3 staying out of commands that do not need it.

Goldens: ``tests/golden/cloudwatch/<env>/<alarm>.json`` for the example environments that enable
cloudwatch, and ``tests/golden/cloudwatch/platforms/`` for ECS, EC2 and SageMaker jobs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.backends.cloudwatch import CloudWatchBackend, normalise_alarm
from provisioner.backends.registry import build
from provisioner.plan.model import canonical
from provisioner.plan.planner import plan_backend
from provisioner.render.cloud import DESCRIPTION_MAX
from provisioner.render.cloudwatch import alarms, support
from provisioner.spec.loader import environments, load
from tests.helpers import ROOT, assert_golden, example_repo, memprov

ENVS = [e for e in environments(ROOT / "memprov.yaml") if load(ROOT / "memprov.yaml", e).jobs_using("cloudwatch")]

PLATFORMS = """\
version: 1
name: platforms
defaults:
  backends: [cloudwatch]
jobs:
  ecs-scorer:
    owner: risk
    model: {name: gbm, version: "7"}
    runtime: vm
    memory: {limit: 4Gi}
    aws: {platform: ecs, cluster: batch}
  ec2-nightly:
    owner: search
    model: {name: ranker, version: "1.2"}
    runtime: vm
    memory: {limit: 64Gi, baseline: {peak_p95: 40Gi, velocity: 64Mi}}
    aws: {instance_id: i-0123456789abcdef0}
  sm-transform:
    owner: vision
    model: {name: vit, version: "3"}
    runtime: process
    memory: {limit: 32Gi}
    aws: {platform: sagemaker, transform_job: vit-nightly-2026-11-30, instance_id: i-0a1b2c3d4e5f60718, period: 60s}
    anomaly: {enabled: false}
"""


def platforms_repo(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "memprov.yaml").write_text(PLATFORMS, encoding="utf-8")
    return dest


def serialised(backend: CloudWatchBackend) -> dict[str, str]:
    return {r.key: backend.serialise(r) for r in backend.desired}


@pytest.mark.parametrize("env", ENVS)
def test_golden_request_bodies(env: str) -> None:
    [(backend, _)] = build(load(ROOT / "memprov.yaml", env), ["cloudwatch"])
    assert isinstance(backend, CloudWatchBackend)
    for key, text in serialised(backend).items():
        assert_golden(f"cloudwatch/{env}/{key}.json", text)


def test_golden_platforms(tmp_path: Path) -> None:
    [(backend, _)] = build(load(platforms_repo(tmp_path) / "memprov.yaml", "local"), ["cloudwatch"])
    assert isinstance(backend, CloudWatchBackend)
    bodies = serialised(backend)
    for key, text in bodies.items():
        assert_golden(f"cloudwatch/platforms/{key}.json", text)
    ecs = json.loads(bodies["memprov-local-ecs-scorer-usage-critical"])
    assert [q["Id"] for q in ecs["Metrics"]] == ["pctused", "pct"]  # against the 4Gi hard limit, in MiB
    assert ecs["Metrics"][1]["Expression"] == "100 * pctused / 4096" and ecs["Metrics"][1]["ReturnData"]
    ec2 = json.loads(bodies["memprov-local-ec2-nightly-usage-warning"])
    assert (ec2["Namespace"], ec2["MetricName"]) == ("CWAgent", "mem_used_percent")
    assert ec2["Dimensions"] == [{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}]
    baseline = json.loads(bodies["memprov-local-ec2-nightly-baseline"])
    assert baseline["Threshold"] == 81.25  # 1.3 x 40Gi of 64Gi
    sm = json.loads(bodies["memprov-local-sm-transform-usage-critical"])
    assert sm["Namespace"] == "/aws/sagemaker/TransformJobs" and sm["MetricName"] == "MemoryUtilization"
    assert sm["Dimensions"] == [{"Name": "Host", "Value": "vit-nightly-2026-11-30/i-0a1b2c3d4e5f60718"}]
    assert "memprov-local-sm-transform-anomaly" not in bodies  # disabled in the spec
    assert not [k for k in bodies if k.endswith("-oom-killed")]  # no OOM metric off EKS
    assert all(not json.loads(t)["AlarmActions"] for t in bodies.values())  # no topics configured
    notes = "\n".join(plan_backend(backend, backend.target()).notes)
    assert "ecs-scorer: oom_killed is unsupported on cloudwatch (ECS publishes no OOM metric" in notes
    assert "sm-transform: SageMaker metrics are per transform job" in notes
    assert "no SNS topic for critical, warning: those alarms notify nobody" in notes


def test_each_kind_maps_as_the_issue_asks() -> None:
    spec = load(ROOT / "memprov.yaml", "aws")
    job = spec.jobs[0]
    by_name = {a["AlarmName"].removeprefix(f"memprov-aws-{job.id}-"): a for a in alarms(spec, job, {})}
    usage = by_name["usage-critical"]
    assert usage["EvaluationPeriods"] == usage["DatapointsToAlarm"] == 2  # critical_for 2m at 60s
    assert usage["Threshold"] == pytest.approx(93.75) and usage["TreatMissingData"] == "notBreaching"
    growth = by_name["growth"]["Metrics"]
    assert growth[0]["MetricStat"]["Stat"] == "Minimum" and growth[-1]["Expression"] == "RATE(tr)"
    tto = by_name["time-to-oom-critical"]
    assert "(100 - (2 * av - tr)) / RATE(tr)" in tto["Metrics"][-1]["Expression"]
    assert tto["ComparisonOperator"] == "LessThanThreshold" and tto["Threshold"] == 1800.0
    assert by_name["time-to-oom-warning"]["Threshold"] == 14400.0
    anomaly = by_name["anomaly"]
    assert anomaly["Metrics"][-1]["Expression"] == "ANOMALY_DETECTION_BAND(m, 3)" and "Threshold" not in anomaly
    assert {k.value: s.level.value for k, s in support(job)} == {
        "usage": "native",
        "baseline": "native",
        "growth": "approximated",
        "time_to_oom": "approximated",
        "anomaly": "approximated",
        "oom_killed": "approximated",
    }
    for a in by_name.values():
        assert a["AlarmName"].startswith("memprov-aws-") and len(a["AlarmDescription"]) <= DESCRIPTION_MAX
        assert {"Key": "managed-by", "Value": "memprov"} in a["Tags"]


def test_description_keeps_the_links_within_1024_characters(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    spec = repo / "memprov.yaml"
    long = "x" * 900
    spec.write_text(
        spec.read_text().replace("name: Customer lifetime value (daily)", f"name: Customer {long}"), encoding="utf-8"
    )
    resolved = load(spec, "aws")
    for alarm in alarms(resolved, resolved.jobs[0], {}):
        text = alarm["AlarmDescription"]
        assert len(text) == DESCRIPTION_MAX and text.endswith(
            "Managed by memprov: change memprov.yaml, not this alarm."
        )


def test_normalise_makes_a_moto_shaped_alarm_equal_to_its_request() -> None:
    spec = load(ROOT / "memprov.yaml", "aws")
    for desired in alarms(spec, spec.jobs[0], {"warning": "arn:aws:sns:eu-west-1:123456789012:t"}):
        live = {
            **desired,
            "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:" + desired["AlarmName"],
            "StateValue": "OK",
            "AlarmConfigurationUpdatedTimestamp": "2026-11-30T10:00:00Z",
            "Metrics": desired.get("Metrics", []),  # single-metric alarms come back with Metrics: []
            "Dimensions": list(reversed(desired.get("Dimensions", []))),  # math alarms with Dimensions: []
            "Tags": [*reversed(desired["Tags"]), {"Key": "cost-centre", "Value": "ml"}],
        }
        if "Threshold" in live:
            live["Threshold"] = int(live["Threshold"]) if float(live["Threshold"]).is_integer() else live["Threshold"]
        assert canonical(normalise_alarm(live)) == canonical(normalise_alarm(desired))


def test_files_target_apply_then_replan_and_lookalike(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    env = repo / "environments" / "aws.yaml"
    text = env.read_text().replace("    type: cloudwatch\n    region: eu-west-1\n", "    type: files\n")
    env.write_text(text, encoding="utf-8")
    applied = memprov("apply", "--env", "aws", "--backend", "cloudwatch", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    out = repo / "out" / "aws" / "cloudwatch"
    files = sorted(p.name for p in out.glob("*.json"))
    assert len(files) == 24
    body = json.loads((out / "memprov-aws-clv-daily-usage-warning.json").read_text())
    assert body["AlarmActions"] == ["arn:aws:sns:eu-west-1:123456789012:ml-platform-warning"]
    again = memprov("plan", "--env", "aws", "--backend", "cloudwatch", "--detailed-exitcode", cwd=repo)
    assert again.returncode == 0, again.stdout
    (out / "memprov-aws-clv-daily-growth.json").write_text(json.dumps({**body, "Tags": []}))  # not ours any more
    (out / "memprov-aws-old-usage-warning.json").write_text(json.dumps(body))  # ours, stale
    plan = memprov("plan", "--env", "aws", "--backend", "cloudwatch", cwd=repo)
    assert (
        "! alarm memprov-aws-clv-daily-growth" in plan.stdout and "- alarm memprov-aws-old-usage-warning" in plan.stdout
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    container_insights: enhanced",
            "    container_insights: enhanced\n    period: 45s",
            "environments/aws.yaml:14: defaults.aws.period: 45s is not a CloudWatch period; use 10s, 30s or a "
            "multiple of 1m",
        ),
        (
            "    cluster: ml-batch ",
            "    clutser: ml-batch ",
            "environments/aws.yaml:12: defaults.aws.clutser: unknown key 'clutser' (did you mean 'cluster'?)",
        ),
        (
            "      warning: arn:aws:sns:eu-west-1:123456789012:ml-platform-warning",
            "      warning: ml-platform-warning",
            'environments/aws.yaml:22: targets.cloudwatch.sns.warning: "ml-platform-warning" is not allowed here; '
            "use an SNS topic ARN",
        ),
    ],
)
def test_bad_aws_settings_are_located(tmp_path: Path, old: str, new: str, message: str) -> None:
    repo = example_repo(tmp_path)
    env = repo / "environments" / "aws.yaml"
    text = env.read_text()
    assert old in text
    env.write_text(text.replace(old, new), encoding="utf-8")
    result = memprov("validate", cwd=repo)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_job_without_its_cluster_is_an_error_at_the_job(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    env = repo / "environments" / "aws.yaml"
    env.write_text(env.read_text().replace("    cluster: ml-batch ", "    # no cluster     "), encoding="utf-8")
    result = memprov("plan", "--env", "aws", cwd=repo)
    assert result.returncode == 2, result.stderr
    assert "memprov.yaml:32: jobs.clv-daily: the cloudwatch backend needs aws.cluster" in result.stderr, result.stderr
    assert "environments/aws.yaml:16: jobs.doc-embed.aws: the cloudwatch backend needs aws.cluster" in result.stderr


def test_boto3_is_imported_only_when_a_live_target_is_used(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    for args in (["--help"], ["plan", "--env", "local"], ["validate"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "provisioner", *args], capture_output=True, text=True, cwd=repo
        )
        assert result.returncode == 0, result.stderr[-2000:]
        imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
        assert not imported & {"boto3", "botocore"}, args
