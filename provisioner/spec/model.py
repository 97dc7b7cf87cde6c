"""The spec model (``memprov.yaml``): pydantic v2 models, ``extra="forbid"`` everywhere.

These models check structure and types only; rules that span fields (warning below critical,
thresholds under the limit, routes naming known channels) live in :mod:`provisioner.spec.resolve`,
which can point at the exact key that is wrong. Overlay merge rules are declared per field with
:class:`~provisioner.spec.merge.Merge` markers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema, field_validator

from provisioner.core.types import Duration, SecretRef, Size, Strict, ThresholdValue
from provisioner.core.units import format_duration
from provisioner.kinds.anomaly import Anomaly
from provisioner.kinds.baseline import BaselineAlert
from provisioner.kinds.growth import Growth
from provisioner.kinds.time_to_oom import TimeToOom
from provisioner.kinds.usage import Usage
from provisioner.spec.breaker import PATTERN_HELP as BREAKER_PATTERN_HELP
from provisioner.spec.breaker import Breaker
from provisioner.spec.labels import AlertLabelName, LabelName, Regex
from provisioner.spec.merge import Merge

BACKEND_PATTERN = r"^[a-z][a-z0-9_]{0,30}$"
BackendName = Annotated[str, Field(pattern=BACKEND_PATTERN)]
"""A backend's name; which names exist is the registry's to say (provisioner.backends.registry.configure)."""
Runtime = Literal["kubernetes", "vm", "process"]
Severity = Literal["info", "warning", "critical"]
AwsPlatform = Literal["eks", "ecs", "ec2", "sagemaker"]
AzurePlatform = Literal["aks", "vm", "aml"]


NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"
CHANNEL_PATTERN = r"^[#@]?[\w.-]+$"
URL_PATTERN = r"^https?://[^\s]+$"
METRIC_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
PATTERN_HELP = {
    NAME_PATTERN: "use lowercase letters, digits and '-', starting with a letter, at most 31 characters",
    CHANNEL_PATTERN: "use a channel name such as #ml-platform or @someone (letters, digits, '-', '_', '.')",
    URL_PATTERN: "use an http:// or https:// URL without spaces",
    METRIC_PATTERN: "use a Prometheus metric name (letters, digits, '_' and ':', not starting with a digit)",
    BACKEND_PATTERN: "use a backend name such as prometheus, grafana or cloudwatch (lowercase letters)",
}
"""How to write a value that must match a pattern; the loader says this instead of the regex."""
PATTERN_HELP.update(BREAKER_PATTERN_HELP)


# --- notifications -------------------------------------------------------------------------
class Slack(Strict):
    type: Literal["slack"]
    channel: str = Field(pattern=CHANNEL_PATTERN, description="Slack channel, e.g. #ml-platform")
    webhook_url: SecretRef
    send_resolved: bool = True


class PagerDuty(Strict):
    type: Literal["pagerduty"]
    routing_key: SecretRef
    send_resolved: bool = True


class Opsgenie(Strict):
    type: Literal["opsgenie"]
    api_key: SecretRef
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P2"
    team: str | None = None


class Webhook(Strict):
    type: Literal["webhook"]
    url: str = Field(pattern=URL_PATTERN, description="endpoint URL (not a secret)")
    bearer_token: SecretRef | None = None
    max_alerts: int = Field(default=0, ge=0)
    send_resolved: bool = True


Notification = Annotated[Slack | PagerDuty | Opsgenie | Webhook, Field(discriminator="type")]


ChannelNames = Annotated[
    list[str],
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            "description": "a notification channel name, or a list of them",
        }
    ),
]


class Route(Strict):
    """Which notification channels receive each severity."""

    info: ChannelNames = []
    warning: ChannelNames = []
    critical: ChannelNames = []

    @field_validator("info", "warning", "critical", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


# --- alert settings: each kind's own model lives in its module under provisioner.kinds -----------
class Thresholds(Strict):
    warning: ThresholdValue
    critical: ThresholdValue


class Baseline(Strict):
    """Peaks of past successful runs (written by ``memprov baseline`` or by hand)."""

    runs: int | None = Field(default=None, ge=0)
    peak_p50: Size | None = None
    peak_p95: Size | None = None
    peak_p99: Size | None = None
    peak_max: Size | None = None
    velocity: Size | None = Field(default=None, description="usual growth of the troughs, bytes per minute")


class Metrics(Strict):
    """PromQL metric names; defaults depend on the runtime."""

    working_set: str | None = Field(default=None, pattern=METRIC_PATTERN)
    limit: str | None = Field(default=None, pattern=METRIC_PATTERN)
    oom_events: str | None = Field(default=None, pattern=METRIC_PATTERN)


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


class Aws(Strict):
    """Where the job's memory metrics live in CloudWatch (the ``cloudwatch`` backend).

    ``platform`` defaults from the runtime (kubernetes: eks, vm and process: ec2); each platform
    needs the names that its metrics are dimensioned by. ``namespace``, ``metric`` and
    ``dimensions`` override the defaults (the metric must be a percentage of the limit).
    """

    platform: AwsPlatform | None = Field(
        default=None, description="eks | ecs | ec2 | sagemaker; default from runtime (kubernetes: eks, else ec2)"
    )
    cluster: AwsName | None = Field(default=None, description="EKS or ECS ClusterName")
    service: AwsName | None = Field(default=None, description="ECS ServiceName (default: TaskDefinitionFamily)")
    task_family: AwsName | None = Field(default=None, description="ECS TaskDefinitionFamily; default the job id")
    instance_id: AwsName | None = Field(default=None, description="EC2 InstanceId the CloudWatch agent reports")
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
        if v not in (10.0, 30.0) and (v < 60 or v % 60):
            raise ValueError(f"{format_duration(v)} is not a CloudWatch period; use 10s, 30s or a multiple of 1m")
        return v

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None and len(v) > 30:
            raise ValueError(f"{len(v)} dimensions; CloudWatch allows at most 30")
        return v

    def missing(self, runtime: str) -> str | None:
        """What the job's platform needs and this block lacks, as a message; None when complete."""
        if self.dimensions is not None:
            return None
        platform = self.platform or ("eks" if runtime == "kubernetes" else "ec2")
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


TROUGH_HELP = "rolling-minimum window that removes the sawtooth of chunked loading and GC (>= one period)"


class Defaults(Strict):
    scrape_interval: Duration = 30.0
    evaluation_interval: Duration | None = None
    trough_window: Duration = Field(default=300.0, description=TROUGH_HELP)
    thresholds: Thresholds = Thresholds(warning="80%", critical="90%")
    usage: Usage = Usage()
    growth: Growth = Growth()
    time_to_oom: TimeToOom = TimeToOom()
    anomaly: Anomaly = Anomaly()
    baseline_alert: BaselineAlert = BaselineAlert()
    route: Route = Route()
    backends: Annotated[list[BackendName], Merge.REPLACE] = ["prometheus", "alertmanager", "grafana"]
    runbook_url: str = Field(
        default="https://runbooks.example.com/memprov/{job}",
        pattern=URL_PATTERN,
        description="runbook link; {job} and {env} are filled in",
    )
    labels: dict[AlertLabelName, str] = {}
    gcp: Gcp = Gcp()
    aws: Aws = Aws()
    azure: Azure = Azure()


class Model(Strict):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


class Memory(Strict):
    limit: Size
    baseline: Baseline | None = None
    thresholds: Thresholds | None = None


LabelMatch = Annotated[Regex, Field(min_length=1)]


class Selector(Strict):
    """Label matchers that pick the job's series; values are exact unless given as ``{regex: ...}``."""

    namespace: str | None = None
    container: str | None = None
    pod: str | None = None
    instance: str | None = None
    groupname: str | None = Field(default=None, description="process-exporter group (process runtime)")
    regex: dict[LabelName, LabelMatch] = {}


class Job(Strict):
    name: str | None = None
    description: str = ""
    owner: str = Field(min_length=1)
    team: str | None = None
    model: Model
    runtime: Runtime = "kubernetes"
    selector: Selector = Selector()
    memory: Memory
    trough_window: Duration | None = Field(default=None, description=TROUGH_HELP)
    usage: Usage | None = None
    growth: Growth | None = None
    time_to_oom: TimeToOom | None = None
    anomaly: Anomaly | None = None
    baseline_alert: BaselineAlert | None = None
    route: Route | None = None
    backends: Annotated[list[BackendName] | None, Merge.REPLACE] = None
    runbook_url: str | None = Field(default=None, pattern=URL_PATTERN)
    metrics: Metrics = Metrics()
    labels: dict[AlertLabelName, str] = {}
    gcp: Gcp | None = None
    aws: Aws | None = None
    azure: Azure | None = None
    breaker: Breaker | None = Field(default=None, description="act on the orchestrator when an OOM is coming")


class Spec(Strict):
    """The whole ``memprov.yaml``."""

    version: Annotated[Literal[1], Merge.IMMUTABLE]
    name: Annotated[str, Merge.IMMUTABLE] = Field(
        default="memprov", pattern=NAME_PATTERN, description="spec name, part of ownership markers"
    )
    include: Annotated[list[str], Merge.IMMUTABLE] = Field(
        default=["jobs/*.yaml"],
        description="files of more jobs (globs relative to the spec), each holding jobs: {<id>: ...}",
    )
    defaults: Defaults = Defaults()
    notifications: dict[str, Notification] = {}
    jobs: Annotated[dict[str, Job], Merge.KEYS_EXISTING] = {}
