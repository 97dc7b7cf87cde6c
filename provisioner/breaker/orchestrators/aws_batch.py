"""AWS Batch: ``TerminateJob``, then ``SubmitJob`` of the same definition with a MEMORY override.

AWS Batch has no pause and no resize (research note §A1; "Automated job retries" in the AWS Batch
guide): its own ``retryStrategy`` retries with the *same* memory and never retries a terminated
job, so the breaker terminates the attempt and submits the job again with
``containerOverrides.resourceRequirements = [{type: MEMORY, value: <MiB>}]`` (``memory`` itself is
deprecated in ``ContainerOverrides``). The job at risk is the newest active job of the queue whose
name is the target's ``job_name`` or starts with ``<job_name>-mp``; the resubmitted job is named
``<job_name>-mp<n>`` and carries tags with the chain's root job id, the bump count and the alerts
acted on — the orchestrator-side marker. boto3 is imported only here, when an alert needs it.
"""

from __future__ import annotations

import time
from typing import Any

from provisioner.breaker.orchestrators.base import Call, Client, Record, StepFailed, StepResult
from provisioner.breaker.planner import Decision, Observed
from provisioner.core.errors import OperationError
from provisioner.core.extras import AWS
from provisioner.spec.breaker import AwsBatchConnection, AwsBatchTarget

ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
TAG = "memprov-breaker-"
MI = 2**20


class AwsBatch(Client):
    name = "aws_batch"

    def __init__(self, conn: AwsBatchConnection, target: AwsBatchTarget) -> None:
        AWS.require("the aws_batch orchestrator")
        import boto3  # lazily: `breaker serve` must start without any cloud SDK
        from botocore.config import Config

        self.t = target
        self.batch = boto3.client(
            "batch",
            region_name=conn.region,
            endpoint_url=conn.endpoint_url,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=60),
        )

    def _api(self, op: str, **kw: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(getattr(self.batch, op)(**kw))
        except (ClientError, BotoCoreError) as e:
            raise OperationError(f"AWS Batch {op}: {e}") from None

    def observe(self) -> Observed:
        found = self._api(
            "list_jobs", jobQueue=self.t.job_queue, filters=[{"name": "JOB_NAME", "values": [f"{self.t.job_name}*"]}]
        )["jobSummaryList"]
        ours = [j for j in found if j["jobName"] == self.t.job_name or j["jobName"].startswith(f"{self.t.job_name}-mp")]
        active = sorted((j for j in ours if j.get("status") in ACTIVE), key=lambda j: j.get("createdAt", 0))
        if not active:
            return Observed(run_id=None, running=False, memory=None)
        job = self._api("describe_jobs", jobs=[active[-1]["jobId"]])["jobs"][0]
        tags = job.get("tags") or {}
        memory = _memory_mib(job)
        return Observed(
            run_id=tags.get(f"{TAG}root", job["jobId"]),
            running=job["status"] == "RUNNING",
            memory=memory * MI if memory else None,
            handled=frozenset(filter(None, tags.get(f"{TAG}alerts", "").split(" "))),
            remote_bumps=int(tags.get(f"{TAG}bumps", "0") or 0),
            details={"job": job},
        )

    def plan(self, decision: Decision, observed: Observed, marker: str) -> list[Call]:
        job = observed.details["job"]
        terminate = Call(
            "terminate job",
            "TerminateJob",
            {"jobId": job["jobId"], "reason": f"memprov breaker: {decision.describe()}"[:250]},
        )
        if decision.action != "bump_and_resume":
            return [terminate]
        assert decision.memory_after is not None
        n = observed.remote_bumps + 1
        alerts = " ".join(sorted({*observed.handled, marker})[-5:])
        submit = {
            "jobName": f"{self.t.job_name}-mp{n}",
            "jobQueue": self.t.job_queue,
            "jobDefinition": job["jobDefinition"],
            "containerOverrides": {
                "resourceRequirements": [{"type": "MEMORY", "value": str(decision.memory_after // MI)}]
            },
            "tags": {f"{TAG}root": str(observed.run_id), f"{TAG}bumps": str(n), f"{TAG}alerts": alerts[:256]},
        }
        if job.get("parameters"):
            submit["parameters"] = job["parameters"]
        return [terminate, Call(f"submit job {submit['jobName']}", "SubmitJob", submit)]

    def execute(self, calls: list[Call], start: int, record: Record) -> list[StepResult]:
        results = []
        for i in range(start, len(calls)):
            call, t0 = calls[i], time.monotonic()
            op = {"TerminateJob": "terminate_job", "SubmitJob": "submit_job"}[call.op]
            try:
                answer = self._api(op, **call.body)
            except OperationError as e:
                raise StepFailed(f"step {i + 1} ({call.name}): {e}", i) from None
            note = f"new jobId {answer['jobId']}" if "jobId" in answer else ""
            result = StepResult(
                call.name,
                answer.get("ResponseMetadata", {}).get("HTTPStatusCode", 200),
                round((time.monotonic() - t0) * 1000),
                note,
            )
            record(i, result)
            results.append(result)
        return results

    def close(self) -> None:
        self.batch.close()


def _memory_mib(job: dict[str, Any]) -> int | None:
    """MEMORY of the job as submitted: its override, else the container's requirement, else ``memory``."""
    container = job.get("container") or {}
    for req in container.get("resourceRequirements") or []:
        if req.get("type") == "MEMORY":
            return int(req["value"])
    value = container.get("memory")
    return int(value) if value else None
