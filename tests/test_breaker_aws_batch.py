"""The breaker against AWS Batch on moto server (``batch.use_docker=false``), over HTTP with boto3.

moto 5.2.5's simple Batch backend marks a submitted job finished inside ``SubmitJob``; with
``MOTO_SIMPLE_BATCH_FAIL_AFTER=N`` that call blocks N seconds first, and meanwhile the job is listed
and described like a running one — the window this test acts in. moto's ``DescribeJobs`` echoes only
the deprecated ``memory`` override, not ``resourceRequirements`` (checked in moto's source), so the
override that arrived is read from moto's server-side request recorder (``/moto-api/recorder``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provisioner.breaker.orchestrators.aws_batch import AwsBatch
from provisioner.breaker.planner import Alert, Past, decide
from provisioner.spec.breaker import AwsBatchConnection, Breaker
from tests.breaker_helpers import free_port

pytestmark = pytest.mark.integration
FAIL_AFTER = 4
ALERT = Alert("BatchJobMemoryTimeToOOM", "firing", "fp02", "2026-12-02T10:00:00Z", {})


@pytest.fixture
def moto_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "MOTO_SIMPLE_BATCH_FAIL_AFTER": str(FAIL_AFTER),
        "MOTO_RECORDER_FILEPATH": str(tmp_path / "rec"),
    }
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "moto.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    assert httpx.post(f"{url}/moto-api/config", json={"batch": {"use_docker": False}}).status_code == 201
    # moto's state manager: a submitted job goes SUBMITTED -> ... -> RUNNING as it is read (default: stays SUBMITTED)
    transition = {"model_name": "batch::job", "transition": {"progression": "immediate"}}
    assert httpx.post(f"{url}/moto-api/state-manager/set-transition", json=transition).status_code == 201
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def setup_queue(url: str) -> object:
    import boto3

    iam = boto3.client("iam", region_name="eu-west-1", endpoint_url=url)
    role = iam.create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    batch = boto3.client("batch", region_name="eu-west-1", endpoint_url=url)
    env = batch.create_compute_environment(computeEnvironmentName="ml-batch-ce", type="UNMANAGED", serviceRole=role)
    batch.create_job_queue(
        jobQueueName="ml-batch",
        priority=1,
        state="ENABLED",
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
    )
    batch.register_job_definition(
        jobDefinitionName="clv-daily",
        type="container",
        containerProperties={
            "image": "example/scorer:1",
            "command": ["score"],
            "resourceRequirements": [{"type": "MEMORY", "value": "8192"}, {"type": "VCPU", "value": "2"}],
        },
    )
    return batch


def test_terminate_and_resubmit_with_a_memory_override(moto_batch: str) -> None:
    batch = setup_queue(moto_batch)
    first: dict[str, str] = {}
    submitting = threading.Thread(
        target=lambda: first.update(
            batch.submit_job(jobName="clv-daily", jobQueue="ml-batch", jobDefinition="clv-daily")
        )  # type: ignore[attr-defined]
    )
    submitting.start()
    breaker = Breaker.model_validate(
        {
            "orchestrator": "aws_batch",
            "max_memory": "32Gi",
            "dry_run": False,
            "aws_batch": {"job_queue": "ml-batch", "job_name": "clv-daily"},
        }
    )
    client = AwsBatch(AwsBatchConnection(region="eu-west-1", endpoint_url=moto_batch), breaker.aws_batch)  # type: ignore[arg-type]
    deadline = time.monotonic() + FAIL_AFTER - 1
    observed = client.observe()
    while not observed.running and time.monotonic() < deadline:
        time.sleep(0.1)
        observed = client.observe()
    assert observed.running and observed.memory == 8 * 2**30
    httpx.post(f"{moto_batch}/moto-api/recorder/start-recording")  # moto records what reaches it from here on
    decision = decide(breaker, ALERT, observed, Past(), 0.0, 8 * 2**30)
    calls = client.plan(decision, observed, ALERT.key)
    assert [c.op for c in calls] == ["TerminateJob", "SubmitJob"]
    results = client.execute(calls, 0, lambda i, r: None)
    submitting.join(timeout=30)
    new_id = results[1].note.removeprefix("new jobId ")
    [old] = batch.describe_jobs(jobs=[observed.details["job"]["jobId"]])["jobs"]  # type: ignore[attr-defined]
    assert old["status"] == "FAILED" and old["statusReason"].startswith(
        "memprov breaker: act: bump_and_resume 8Gi -> 12Gi"
    )
    [new] = batch.describe_jobs(jobs=[new_id])["jobs"]  # type: ignore[attr-defined]
    assert new["jobName"] == "clv-daily-mp1" and new["jobDefinition"].endswith(":job-definition/clv-daily:1")
    assert new["tags"] == {
        "memprov-breaker-root": old["jobId"],
        "memprov-breaker-bumps": "1",
        "memprov-breaker-alerts": ALERT.key,
    }
    recording = httpx.get(f"{moto_batch}/moto-api/recorder/download-recording", timeout=30).text
    entries = [json.loads(line) for line in recording.splitlines() if line.strip()]
    arrived = [json.loads(base64.b64decode(e["body"])) for e in entries if e["url"].endswith("/v1/submitjob")]
    assert [a["jobName"] for a in arrived] == ["clv-daily-mp1"]
    assert arrived[0]["containerOverrides"] == {"resourceRequirements": [{"type": "MEMORY", "value": "12288"}]}
    client.close()


def test_boto3_is_not_imported_until_a_batch_alert_needs_it() -> None:
    code = "import sys, provisioner.breaker.service, provisioner.breaker.server; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
