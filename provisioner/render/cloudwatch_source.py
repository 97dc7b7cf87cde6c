"""Where a job's memory lives in CloudWatch, as a percentage of its limit: namespace, metric and the
dimensions the agents really publish (Container Insights' PodName rules, the CloudWatch agent's
``append_dimensions``, SageMaker's ``Host``), for :mod:`provisioner.render.cloudwatch` and the
CloudWatch history reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from provisioner.spec.resolved import ResolvedJob


def _lit(x: float) -> str:
    """A metric-math number literal: six significant digits, never in exponent notation."""
    text = f"{float(f'{x:.6g}'):.12f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class Source:
    """Where one job's memory lives in CloudWatch, as a percentage of its limit."""

    platform: str
    namespace: str
    metric: str | None  # a single percent metric; None for ECS (used / the limit, metric math)
    dimensions: tuple[tuple[str, str], ...]
    limit_mib: float = 0.0  # ECS: the job's hard limit in MiB (MemoryUtilized is in megabytes)
    pod_dimensions: tuple[tuple[str, str], ...] = ()  # EKS: the pod's series (ClusterName, Namespace, PodName)

    def dims(self) -> list[dict[str, str]]:
        return [{"Name": k, "Value": v} for k, v in self.dimensions]

    def stat(self, name: str, stat: str, period: int) -> dict[str, Any]:
        return {
            "Metric": {"Namespace": self.namespace, "MetricName": name, "Dimensions": self.dims()},
            "Period": period,
            "Stat": stat,
        }

    def percent(self, qid: str, stat: str, period: int) -> list[dict[str, Any]]:
        """Queries whose last one (id ``qid``) is the memory in percent of the limit (ReturnData false)."""
        if self.metric is not None:
            return [{"Id": qid, "MetricStat": self.stat(self.metric, stat, period), "ReturnData": False}]
        return [
            {"Id": f"{qid}used", "MetricStat": self.stat("MemoryUtilized", stat, period), "ReturnData": False},
            {
                "Id": qid,
                "Expression": f"100 * {qid}used / {_lit(self.limit_mib)}",
                "Label": "memory, % of the hard limit",
                "ReturnData": False,
            },
        ]


def platform(job: ResolvedJob) -> str:
    return job.aws.platform or ("eks" if job.runtime == "kubernetes" else "ec2")


CRONJOB_RUN = re.compile(r"-[0-9]{10}$")  # a Job whose name ends so is taken for its CronJob's


def pod_name(job: ResolvedJob) -> str:
    """The ``PodName`` Container Insights gives the job's pods, from the workload the spec declares.

    The CloudWatch agent (amazon-contributing/opentelemetry-collector-contrib, awscontainerinsightreceiver
    podstore.go ``addPodOwnersAndPodName``) names a Job's pods after the Job cut at its first ``-`` or
    ``.`` unless ``prefer_full_pod_name``; after the CronJob only when the Job's name ends in 10 digits,
    which the CronJob controller no longer writes (it appends the scheduled time in *minutes*, 8 digits);
    a Deployment's pods after the Deployment; a bare pod by its own name.
    """
    aws = job.aws
    kind, name = (aws.workload.kind, aws.workload.name) if aws.workload else ("pod", job.selector.pod or "")
    if aws.workload is None and not job.selector.pod:
        kind, name = "job", job.id
    if kind in ("deployment", "pod"):
        return name
    if kind == "job" and CRONJOB_RUN.search(name):
        return name[:-11]
    if kind == "job" and aws.prefer_full_pod_name:
        return name
    return re.split(r"[.-]", name, maxsplit=1)[0]


def source(job: ResolvedJob) -> Source:
    """The job's percent-of-limit series, from its platform and selectors, overridable under ``aws``."""
    aws, plat = job.aws, platform(job)
    dims: dict[str, str]
    pod: dict[str, str] = {}
    if plat == "eks":
        pod = {"ClusterName": aws.cluster or "", "Namespace": job.selector.namespace or "default",
               "PodName": pod_name(job)}  # fmt: skip
        if aws.container_insights == "enhanced" and job.selector.container:
            namespace, metric = "ContainerInsights", "container_memory_utilization_over_container_limit"
            dims = {**pod, "ContainerName": job.selector.container}
        else:
            namespace, metric, dims = "ContainerInsights", "pod_memory_utilization_over_pod_limit", dict(pod)
    elif plat == "ecs":
        namespace, metric = "ECS/ContainerInsights", None
        dims = {"ClusterName": aws.cluster or ""}
        if aws.service:
            dims["ServiceName"] = aws.service
        else:
            dims["TaskDefinitionFamily"] = aws.task_family or job.id
    elif plat == "ec2":
        namespace, metric = "CWAgent", "mem_used_percent"
        values = {"InstanceId": aws.instance_id, "ImageId": aws.image_id, "InstanceType": aws.instance_type,
                  "AutoScalingGroupName": aws.autoscaling_group}  # fmt: skip
        dims = {k: values[k] or "" for k in aws.append_dimensions}
    else:
        namespace, metric = "/aws/sagemaker/TransformJobs", "MemoryUtilization"
        dims = {"Host": f"{aws.transform_job}/{aws.instance_id}"}
    if aws.dimensions is not None:
        dims, pod = dict(aws.dimensions), {}
    if aws.metric:
        metric = aws.metric
    return Source(
        plat, aws.namespace or namespace, metric, tuple(sorted(dims.items())), job.limit / 2**20,
        tuple(sorted(pod.items())),
    )  # fmt: skip
