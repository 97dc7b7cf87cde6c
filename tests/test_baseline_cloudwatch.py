"""`memprov baseline --cloudwatch`: peaks from CloudWatch's GetMetricData, with real boto3 against
moto_server over HTTP, reading the metric the job's alarms watch (Container Insights on EKS)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from provisioner.core.units import parse_size
from tests.fakes.cloudwatch import moto_server
from tests.helpers import example_repo, memprov

pytestmark = pytest.mark.integration
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}
DIMS = [  # what Container Insights with enhanced observability publishes for Job clv-daily's container
    {"Name": "ClusterName", "Value": "ml-batch"},
    {"Name": "ContainerName", "Value": "clv-scorer"},
    {"Name": "Namespace", "Value": "batch"},
    {"Name": "PodName", "Value": "clv"},
]


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


def runs(now: float) -> list[tuple[float, list[float], bool]]:
    """Six daily runs ending in the last week: (start, percent per minute, OOM-killed)."""
    out = []
    for day in range(6):
        start = (now // 86_400 - 6 + day) * 86_400 + 2 * 3600
        top = 48 + 2 * day if day != 4 else 99.5  # the fifth run climbs to its limit: the OOM kill
        minutes = 80 if day != 4 else 50
        out.append((start, [30 + (top - 30) * m / (minutes - 1) for m in range(minutes)], day == 4))
    return out


def test_baseline_from_cloudwatch(moto: str, tmp_path: Path) -> None:
    cw = boto3.client("cloudwatch", region_name="eu-west-1", endpoint_url=moto, **{
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing"})  # fmt: skip
    now = time.time()
    history = runs(now)
    for start, values, _ in history:
        data = [
            {
                "MetricName": "container_memory_utilization_over_container_limit",
                "Dimensions": DIMS,
                "Timestamp": datetime.fromtimestamp(start + 60 * m, UTC),
                "Value": v,
            }
            for m, v in enumerate(values)
        ]
        for i in range(0, len(data), 20):
            cw.put_metric_data(Namespace="ContainerInsights", MetricData=data[i : i + 20])
    repo = example_repo(tmp_path)
    env_file = repo / "environments" / "aws.yaml"
    env_file.write_text(
        env_file.read_text().replace("    region: eu-west-1\n", f"    region: eu-west-1\n    endpoint_url: {moto}\n")
    )
    result = memprov(
        "baseline", "--env", "aws", "--cloudwatch", "--since", "7d", "-j", "clv-daily", "--dry-run", "-f", "json",
        cwd=repo, env=AWS_ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [b] = json.loads(result.stdout)
    ok_peaks = [max(values) for _, values, oom in history if not oom]
    assert (b["runs"], b["failed"]) == (5, 1)
    assert b["peak_max"] == pytest.approx(max(ok_peaks) / 100 * parse_size("8Gi"))
    assert b["velocity_per_minute"] is None  # no troughs at five-minute maxima: the spec's own stays

    no_target = memprov("baseline", "--env", "local", "--cloudwatch", "--dry-run", cwd=repo, env=AWS_ENV)
    assert no_target.returncode == 2
    assert "no job uses the cloudwatch backend in local" in no_target.stderr


def test_an_environment_without_a_cloudwatch_target_is_a_clear_error(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    env_file = repo / "environments" / "aws.yaml"
    text = env_file.read_text()
    env_file.write_text(text[: text.index("targets:")])  # the jobs use cloudwatch; no live target to read from
    result = memprov("baseline", "--env", "aws", "--cloudwatch", "--dry-run", cwd=repo, env=AWS_ENV)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--cloudwatch reads through the environment's cloudwatch target; environments/aws.yaml has none" in (
        result.stderr
    )
