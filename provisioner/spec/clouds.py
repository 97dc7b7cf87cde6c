"""Where a job's memory lives in each cloud: the ``gcp``, ``aws`` and ``azure`` blocks of a job (or of
``defaults``), checked against what each cloud's agents publish (see the README's per-platform tables).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from provisioner.core.types import Duration, Strict
from provisioner.core.units import format_duration

AwsPlatform = Literal["eks", "ecs", "ec2", "sagemaker"]
AzurePlatform = Literal["aks", "vm", "aml"]
PATTERN_HELP: dict[str, str] = {}
"""How to write a value that must match one of these patterns (merged into the spec model's)."""

GCP_PROJECT = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
PATTERN_HELP[GCP_PROJECT] = "use a Google Cloud project id, e.g. ml-batch-prod (6-30 lowercase letters, digits, '-')"
GCP_NAME = r"^[A-Za-z0-9_.:/-]{1,128}$"
PATTERN_HELP[GCP_NAME] = "use letters, digits and . : / _ - (a Cloud Monitoring label value or metric type)"
GcpName = Annotated[str, Field(pattern=GCP_NAME)]
GCP_CHANNEL = r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+$"
PATTERN_HELP[GCP_CHANNEL] = (
    "use a notification channel name, e.g. projects/ml-batch-prod/notificationChannels/1234567890"
)


class Gcp(Strict):
    """Where the job's memory metrics live in Cloud Monitoring (the ``gcp`` backend).

    ``platform`` defaults from the runtime (kubernetes: gke, vm and process: gce). GKE system
    metrics are selected by ``cluster`` (and optionally ``location``) plus the job's namespace,
    pod and container selectors; Compute Engine Ops Agent metrics by ``instance_id``.
    ``managed_prometheus`` says that Managed Service for Prometheus also collects the job's
    Prometheus series, so the kinds Cloud Monitoring cannot express (anomaly, a baseline learnt
    from history) become PromQL conditions. ``metric`` and ``filter`` override the defaults.
    """

    platform: Literal["gke", "gce"] | None = Field(
        default=None, description="gke | gce; default from runtime (kubernetes: gke, else gce)"
    )
    project: str | None = Field(
        default=None, pattern=GCP_PROJECT, description="the project the job runs in, when the metrics scope has several"
    )
    cluster: GcpName | None = Field(default=None, description="GKE cluster_name")
    location: GcpName | None = Field(default=None, description="GKE cluster location (zone or region)")
    namespace: GcpName | None = Field(default=None, description="GKE namespace_name; default selector.namespace")
    instance_id: str | None = Field(default=None, pattern=r"^\d{1,20}$", description="GCE numeric instance_id")
    managed_prometheus: bool = Field(
        default=False, description="Managed Service for Prometheus collects the job's series: PromQL conditions"
    )
    metric: GcpName | None = Field(default=None, description="override the usage metric type (fraction of the limit)")
    filter: str | None = Field(
        default=None, min_length=1, max_length=2048, description="override the resource part of the metric filters"
    )
    period: Duration = Field(default=60.0, description="alignment period of the usage conditions: n x 60s")

    @field_validator("period")
    @classmethod
    def _period(cls, v: float) -> float:
        if v < 60 or v % 60 or v > 86400:
            raise ValueError(
                f"{format_duration(v)} is not an alignment period for alerting; use 1m to 1d in whole minutes"
            )
        return v

    def missing(self, runtime: str) -> str | None:
        """What the job's platform needs and this block lacks, as a message; None when complete."""
        if self.filter is not None:
            return None
        platform = self.platform or ("gke" if runtime == "kubernetes" else "gce")
        key, need = {
            "gke": ("cluster", "the GKE cluster (resource label cluster_name)"),
            "gce": ("instance_id", "the Compute Engine instance the Ops Agent runs on (instance_id)"),
        }[platform]
        if getattr(self, key) is None:
            return (
                f"the gcp backend needs gcp.{key}: {need} for platform {platform}; "
                "set it (or gcp.filter) under the job or defaults.gcp"
            )
        return None


AWS_NAME = r"^[A-Za-z0-9_.:/@+=-]+$"
PATTERN_HELP[AWS_NAME] = "use at most 255 letters, digits and . : / @ + = _ - (a CloudWatch name or dimension value)"
AWS_DIMENSION_NAME = r"^[A-Za-z0-9_.-]+$"
PATTERN_HELP[AWS_DIMENSION_NAME] = "use a CloudWatch dimension name (letters, digits, '_', '.', '-')"
AwsDimensionName = Annotated[str, Field(pattern=AWS_DIMENSION_NAME, max_length=255)]
AwsName = Annotated[str, Field(pattern=AWS_NAME, max_length=255)]


AwsAppend = Literal["AutoScalingGroupName", "ImageId", "InstanceId", "InstanceType"]
AWS_RESOLUTION = {"eks": 60.0, "ecs": 60.0, "sagemaker": 60.0}  # seconds between datapoints; ec2: the agent's
AWS_PUBLISHER = {"eks": "Container Insights", "ecs": "ECS Container Insights", "sagemaker": "SageMaker"}


class AwsWorkload(Strict):
    """The Kubernetes controller that owns the job's pods: Container Insights names pods after it."""

    kind: Literal["job", "cronjob", "deployment", "pod"] = Field(
        default="job", description="job | cronjob | deployment | pod (a bare pod, named as is)"
    )
    name: AwsName = Field(description="the Job, CronJob, Deployment or pod name")


class Aws(Strict):
    """Where the job's memory metrics live in CloudWatch (the ``cloudwatch`` backend).

    ``platform`` defaults from the runtime (kubernetes: eks, vm and process: ec2); each platform
    needs the names that its metrics are dimensioned by. ``namespace``, ``metric`` and
    ``dimensions`` override the defaults (the metric must be a percentage of the limit). The
    agent settings (``container_insights``, ``prefer_full_pod_name``, ``append_dimensions``,
    ``collection_interval``) must say what the CloudWatch agent is configured to do: they decide
    which series exist.
    """

    platform: AwsPlatform | None = Field(
        default=None, description="eks | ecs | ec2 | sagemaker; default from runtime (kubernetes: eks, else ec2)"
    )
    cluster: AwsName | None = Field(default=None, description="EKS or ECS ClusterName")
    workload: AwsWorkload | None = Field(
        default=None, description="EKS: the controller of the job's pods (default: a Job named after the job id)"
    )
    container_insights: Literal["standard", "enhanced"] = Field(
        default="standard", description="EKS: Container Insights with enhanced observability publishes per container"
    )
    prefer_full_pod_name: bool = Field(default=False, description="EKS: the agent's prefer_full_pod_name setting")
    service: AwsName | None = Field(default=None, description="ECS ServiceName (default: TaskDefinitionFamily)")
    task_family: AwsName | None = Field(default=None, description="ECS TaskDefinitionFamily; default the job id")
    instance_id: AwsName | None = Field(
        default=None, description="EC2 InstanceId the CloudWatch agent reports; SageMaker: the transform instance"
    )
    append_dimensions: list[AwsAppend] = Field(
        default=["InstanceId"], description="EC2: the keys of the CloudWatch agent's metrics.append_dimensions"
    )
    image_id: AwsName | None = Field(default=None, description="EC2 ImageId (when append_dimensions has it)")
    instance_type: AwsName | None = Field(default=None, description="EC2 InstanceType (when append_dimensions has it)")
    autoscaling_group: AwsName | None = Field(default=None, description="EC2 AutoScalingGroupName (idem)")
    collection_interval: Duration = Field(
        default=60.0, description="EC2: the agent's metrics_collection_interval (below 60s: high resolution)"
    )
    transform_job: AwsName | None = Field(default=None, description="SageMaker batch transform job name")
    namespace: AwsName | None = Field(default=None, description="override the CloudWatch namespace")
    metric: AwsName | None = Field(default=None, description="override the metric (percent of the limit)")
    dimensions: dict[AwsDimensionName, AwsName] | None = Field(
        default=None, description="override the metric's dimensions (at most 30)"
    )
    period: Duration = Field(default=60.0, description="CloudWatch period of the usage alarms: 10s, 30s or n x 60s")

    @field_validator("period")
    @classmethod
    def _period(cls, v: float) -> float:
        if v not in (10.0, 20.0, 30.0) and (v < 60 or v % 60):
            raise ValueError(f"{format_duration(v)} is not a CloudWatch period; use 10s, 30s or a multiple of 1m")
        return v

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None and len(v) > 30:
            raise ValueError(f"{len(v)} dimensions; CloudWatch allows at most 30")
        return v

    def resolution(self, platform: str) -> float:
        """Seconds between the datapoints of the job's metric (60 unless the EC2 agent collects faster)."""
        return self.collection_interval if platform == "ec2" else AWS_RESOLUTION[platform]

    def missing(self, runtime: str) -> str | None:
        """What the job's platform needs and this block lacks (or gets wrong), as a message; None when complete."""
        platform = self.platform or ("eks" if runtime == "kubernetes" else "ec2")
        if self.period < self.resolution(platform) and self.dimensions is None:
            who = AWS_PUBLISHER.get(platform, "the CloudWatch agent (metrics_collection_interval)")
            return (
                f"aws.period {format_duration(self.period)} is shorter than the "
                f"{format_duration(self.resolution(platform))} at which {who} publishes the job's memory: such an "
                "alarm never has a datapoint in every period and never fires; use 1m or more"
            )
        if self.dimensions is not None:
            return None
        need = {
            "eks": ("cluster", "the EKS cluster (Container Insights ClusterName)"),
            "ecs": ("cluster", "the ECS cluster (ClusterName)"),
            "ec2": ("instance_id", "the EC2 instance the CloudWatch agent runs on (InstanceId)"),
            "sagemaker": ("transform_job", "the SageMaker batch transform job name (dimension Host)"),
        }[platform]
        if getattr(self, need[0]) is None:
            return (
                f"the cloudwatch backend needs aws.{need[0]}: {need[1]} for platform {platform}; "
                "set it (or aws.dimensions) under the job or defaults.aws"
            )
        if platform == "sagemaker" and self.instance_id is None:
            return (
                "the cloudwatch backend needs aws.instance_id for platform sagemaker: batch transform metrics are "
                "per Host = <transform-job-name>/<instance-id>; set it (or aws.dimensions)"
            )
        if platform == "ec2":
            values = {"ImageId": self.image_id, "InstanceType": self.instance_type,
                      "AutoScalingGroupName": self.autoscaling_group, "InstanceId": self.instance_id}  # fmt: skip
            keys = {"ImageId": "image_id", "InstanceType": "instance_type", "AutoScalingGroupName": "autoscaling_group"}
            for dim in self.append_dimensions:
                if values[dim] is None:
                    return (
                        f"aws.append_dimensions lists {dim}, so the agent's mem_used_percent carries it: "
                        f"set aws.{keys[dim]}"
                    )
        if platform == "eks" and self.prefer_full_pod_name and self.workload and self.workload.kind == "cronjob":
            return (
                "with prefer_full_pod_name the agent names a CronJob's pods after each run's Job "
                f"({self.workload.name}-<minutes>): no alarm can name that series in advance; use the default "
                "prefer_full_pod_name: false"
            )
        return None


AZURE_RESOURCE_ID = (
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-A-Za-z0-9_.()]{1,90}/providers/[A-Za-z.]+/[A-Za-z]+/"
    r"[-A-Za-z0-9_.]{1,80}$"
)
PATTERN_HELP[AZURE_RESOURCE_ID] = (
    "use an Azure resource id, e.g. /subscriptions/<uuid>/resourceGroups/rg-batch/providers/"
    "Microsoft.ContainerService/managedClusters/ml-batch"
)
AZURE_REGION = r"^[a-z][a-z0-9]{1,30}$"
PATTERN_HELP[AZURE_REGION] = "use an Azure region name, e.g. westeurope"
AZURE_NAME = r"^[A-Za-z0-9_.:/ -]{1,255}$"
PATTERN_HELP[AZURE_NAME] = "use letters, digits, spaces and . : / _ - (an Azure Monitor metric or dimension)"
AzureName = Annotated[str, Field(pattern=AZURE_NAME)]
AZURE_RESOURCE_TYPES = {
    "aks": "Microsoft.ContainerService/managedClusters",
    "vm": "Microsoft.Compute/virtualMachines",
    "aml": "Microsoft.MachineLearningServices/workspaces",
}
AZURE_FREQUENCIES = (60.0, 300.0, 900.0, 1800.0, 3600.0)


class Azure(Strict):
    """Where the job's memory metrics live in Azure Monitor (the ``azure`` backend).

    ``platform`` defaults from the runtime (kubernetes: aks, vm and process: vm); ``scope`` is the
    resource the alert rules watch (the AKS cluster, the VM, or the Azure ML workspace) and
    ``region`` its region. ``namespace``, ``metric`` and ``dimensions`` override the defaults
    (the metric must be a percentage of the limit).
    """

    platform: AzurePlatform | None = Field(
        default=None, description="aks | vm | aml; default from runtime (kubernetes: aks, else vm)"
    )
    scope: str | None = Field(default=None, pattern=AZURE_RESOURCE_ID, description="resource id the rules watch")
    region: str | None = Field(default=None, pattern=AZURE_REGION, description="the scope's region, e.g. westeurope")
    node_pool: AzureName | None = Field(default=None, description="AKS: only the nodes of this pool (nodepool)")
    compute: AzureName | None = Field(default=None, description="Azure ML: the compute cluster (ComputeName)")
    namespace: AzureName | None = Field(default=None, description="override the metric namespace")
    metric: AzureName | None = Field(default=None, description="override the metric (percent of the limit)")
    dimensions: dict[AzureName, AzureName] | None = Field(default=None, description="override the dimensions")
    frequency: Duration = Field(default=60.0, description="evaluation frequency: 1m, 5m, 15m, 30m or 1h")

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, v: float) -> float:
        if v not in AZURE_FREQUENCIES:
            raise ValueError(
                f"{format_duration(v)} is not an Azure Monitor evaluation frequency; use 1m, 5m, 15m, 30m or 1h"
            )
        return v

    def missing(self, runtime: str) -> str | None:
        """What the job's platform needs and this block lacks (or gets wrong), as a message; None when complete."""
        platform = self.platform or ("aks" if runtime == "kubernetes" else "vm")
        kind = AZURE_RESOURCE_TYPES[platform]
        what = {"aks": "AKS cluster", "vm": "virtual machine", "aml": "Azure ML workspace"}[platform]
        for key, need in (("scope", f"the resource id of the {what} ({kind})"), ("region", "its region")):
            if getattr(self, key) is None:
                return (
                    f"the azure backend needs azure.{key}: {need} for platform {platform}; "
                    "set it under the job or defaults.azure"
                )
        if self.namespace is None and f"/providers/{kind.lower()}/" not in (self.scope or "").lower():
            return f"azure.scope is not a {kind} resource id, as platform {platform} needs; fix the id or the platform"
        if platform == "aml" and self.compute is None and self.dimensions is None:
            return "the azure backend needs azure.compute (the compute cluster, ComputeName) for platform aml"
        return None
