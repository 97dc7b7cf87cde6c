"""What CloudWatch checks in a ``PutMetricAlarm`` request, and what makes an accepted alarm one that can never fire.

moto stores any alarm it is given, so the tests put these rules in front of it (the fault proxy of
:mod:`tests.fakes.cloudwatch` calls them on every ``PutMetricAlarm``):

- :func:`refusals`: what the real API answers with a 400 (``ValidationError``,
  ``InvalidParameterCombination``, ``InvalidParameterValue``). Each rule cites the documentation it
  encodes (PutMetricAlarm API reference, MetricDataQuery, botocore's service model).
- :func:`never_fires`: alarms CloudWatch accepts but that stay ``OK`` forever, given a :class:`World`:
  the series the agents really publish for the test's workloads (a port of the CloudWatch agent's
  naming rules, cited per rule), and each metric's resolution. With ``TreatMissingData:
  notBreaching`` an alarm on a series nobody publishes, or one that needs more breaching datapoints
  than the metric can deliver, never leaves ``OK``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Series = tuple[str, str, frozenset[tuple[str, str]]]  # namespace, metric, dimensions

# PutMetricAlarm, ComparisonOperator: "LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold, and
# GreaterThanUpperThreshold are used only for alarms based on anomaly detection models."
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
BAND_OPERATORS = {"LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold"}
STATIC_OPERATORS = {
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
}
STATISTICS = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"}  # botocore: Statistic enum
TREAT_MISSING = {"breaching", "notBreaching", "ignore", "missing"}  # PutMetricAlarm, TreatMissingData
QUERY_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")  # MetricDataQuery.Id: "The first character must be a lowercase letter"
MAX_QUERIES = 10  # CloudWatch quotas: "up to 10 metrics" in a metric math alarm
SINGLE_METRIC_FIELDS = ("MetricName", "Namespace", "Dimensions", "Period", "Statistic", "ExtendedStatistic")


def valid_period(period: int) -> bool:
    """PutMetricAlarm, Period: "Valid values are 10, 20, 30, and any multiple of 60"."""
    return period in (10, 20, 30) or (period >= 60 and period % 60 == 0)


def refusals(p: Mapping[str, Any]) -> list[str]:
    """Why PutMetricAlarm would answer 400 to these parameters (empty: accepted)."""
    out: list[str] = []
    name, description = str(p.get("AlarmName", "")), p.get("AlarmDescription") or ""
    if not 1 <= len(name) <= 255:  # botocore: AlarmName min 1, max 255
        out.append("AlarmName must be 1 to 255 characters")
    if len(description) > 1024:  # botocore: AlarmDescription max 1024
        out.append("AlarmDescription must be at most 1024 characters")
    n = p.get("EvaluationPeriods")
    if not isinstance(n, int) or n < 1:  # PutMetricAlarm: EvaluationPeriods, required, minimum 1
        out.append("EvaluationPeriods must be at least 1")
        n = 1
    m = p.get("DatapointsToAlarm", n)
    if not isinstance(m, int) or not 1 <= m <= n:  # "DatapointsToAlarm ... is the M" of M out of N: M <= N
        out.append("DatapointsToAlarm must be between 1 and EvaluationPeriods")
    if p.get("TreatMissingData", "missing") not in TREAT_MISSING:
        out.append("TreatMissingData must be breaching, notBreaching, ignore or missing")
    if len(p.get("Dimensions") or []) > 30:  # Dimensions: "Array Members: Maximum number of 30 items"
        out.append("at most 30 dimensions")
    op = p.get("ComparisonOperator")
    metrics = p.get("Metrics") or []
    if metrics:
        # PutMetricAlarm, Metrics: "If you use the Metrics parameter, you cannot include the Namespace,
        # MetricName, Dimensions, Period, Unit, Statistic, or ExtendedStatistic parameters"
        if both := [f for f in SINGLE_METRIC_FIELDS if p.get(f) not in (None, [], "")]:
            out.append(f"InvalidParameterCombination: Metrics cannot be combined with {', '.join(both)}")
        out += _queries(metrics, p, n)
    else:
        if not p.get("MetricName") or not p.get("Namespace"):
            out.append("MetricName and Namespace are required without Metrics")
        stat, ext = p.get("Statistic"), p.get("ExtendedStatistic")
        if (stat is None) == (ext is None):  # "specify either Statistic or ExtendedStatistic, but not both"
            out.append("InvalidParameterCombination: exactly one of Statistic and ExtendedStatistic")
        elif stat is not None and stat not in STATISTICS:
            out.append(f"Statistic {stat!r} is not one of {sorted(STATISTICS)}")
        period = p.get("Period")
        if not isinstance(period, int) or not valid_period(period):
            out.append(f"Period {period!r} must be 10, 20, 30 or a multiple of 60")
        else:
            out += _evaluation_range(period, n)
        if p.get("ThresholdMetricId"):
            out.append("ThresholdMetricId needs Metrics with an ANOMALY_DETECTION_BAND")
    if p.get("ThresholdMetricId"):
        if op not in BAND_OPERATORS:
            out.append(f"ComparisonOperator {op} cannot be used with ThresholdMetricId")
        if p.get("Threshold") is not None:  # Threshold: "required for alarms based on static thresholds, but
            out.append("InvalidParameterCombination: Threshold and ThresholdMetricId")  # not ... anomaly models"
    else:
        if op not in STATIC_OPERATORS:
            out.append(f"ComparisonOperator {op} is only for anomaly detection alarms (ThresholdMetricId)")
        if p.get("Threshold") is None:
            out.append("Threshold is required for a static threshold alarm")
    return out


def _evaluation_range(period: int, n: int) -> list[str]:
    # PutMetricAlarm, Period: "Period multiplied by EvaluationPeriods can't be more than 604,800 seconds. For
    # alarms with a period of less than one hour (3,600 seconds), the total evaluation period can't be longer
    # than one day (86,400 seconds)."
    limit = 86_400 if period < 3600 else 604_800
    return [f"Period x EvaluationPeriods = {period * n}s is over {limit}s"] if period * n > limit else []


def _queries(metrics: list[Mapping[str, Any]], p: Mapping[str, Any], n: int) -> list[str]:
    out: list[str] = []
    if len(metrics) > MAX_QUERIES:
        out.append(f"{len(metrics)} queries; a metric math alarm takes at most {MAX_QUERIES}")
    ids = [str(q.get("Id", "")) for q in metrics]
    for qid in ids:
        if not QUERY_ID.match(qid):
            out.append(f"query Id {qid!r} must start with a lowercase letter (letters, digits, _)")
    if len(set(ids)) != len(ids):
        out.append("query Ids must be unique")
    returned = [q for q in metrics if q.get("ReturnData", True)]
    band = p.get("ThresholdMetricId")
    for q in metrics:
        has_stat, expr = "MetricStat" in q, q.get("Expression")
        if has_stat == bool(expr):  # MetricDataQuery: "specify either Expression or MetricStat but not both"
            out.append(f"query {q.get('Id')} needs exactly one of MetricStat and Expression")
        if has_stat:
            period = q["MetricStat"].get("Period")
            if not isinstance(period, int) or not valid_period(period):
                out.append(f"query {q.get('Id')}: Period {period!r} must be 10, 20, 30 or a multiple of 60")
            else:
                out += _evaluation_range(period, n)
        if expr:
            unknown = {w for w in re.findall(r"\b([a-z][a-zA-Z0-9_]*)\b", str(expr)) if w not in ids} - MATH_WORDS
            if unknown:
                out.append(f"query {q.get('Id')}: expression names unknown ids {sorted(unknown)}")
    # MetricDataQuery.ReturnData: "When used in PutMetricAlarm, specify True for the one expression result to use
    # as the alarm" (an anomaly detection alarm returns the metric and its band)
    want = 2 if band else 1
    if len(returned) != want:
        out.append(f"{len(returned)} queries return data; the alarm needs exactly {want}")
    if band:
        found = next((q for q in metrics if q.get("Id") == band), None)
        if found is None or "ANOMALY_DETECTION_BAND" not in str(found.get("Expression", "")):
            out.append(f"ThresholdMetricId {band} is not an ANOMALY_DETECTION_BAND expression of Metrics")
    return out


MATH_WORDS = {"if", "and", "or", "not"}  # metric math keywords that look like ids (functions are upper case)


# --- what the agents publish --------------------------------------------------------------------
@dataclass(frozen=True)
class Pod:
    """A pod as the Kubernetes API describes it: its owner and its containers (name, whether it has a limit)."""

    namespace: str
    name: str
    owner_kind: str | None  # Job | ReplicaSet | StatefulSet | DaemonSet | None (a bare pod)
    owner_name: str | None
    containers: tuple[tuple[str, bool], ...]


CRONJOB_SUFFIX = re.compile(r"^[0-9]{10}$")  # utils.go: cronJobAllowedString, len(suffix) == 10
REPLICASET_SUFFIX = re.compile(r"^[bcdfghjklmnpqrstvwxz2456789]{3,}$")  # utils.go: kubeAllowedStringAlphaNums


def container_insights_pod_name(pod: Pod, prefer_full_pod_name: bool = False) -> str:
    """The ``PodName`` dimension the CloudWatch agent gives ``pod``.

    amazon-contributing/opentelemetry-collector-contrib,
    receiver/awscontainerinsightreceiver/internal/stores/podstore.go ``addPodOwnersAndPodName``: a Job's
    pods are named after the Job's CronJob when the Job's name ends in ``-`` and 10 digits
    (utils.go ``parseCronJobFromJob``), otherwise after the Job's name cut at its first ``-`` or ``.``
    (``getJobNamePrefix``, ``splitRegexStr = "\\.|-"``) unless ``prefer_full_pod_name``; a ReplicaSet's
    after its Deployment (``parseDeploymentFromReplicaSet``); a StatefulSet's and a bare pod's own name.
    """
    kind, owner = pod.owner_kind, pod.owner_name or ""
    if kind == "Job":
        head, _, suffix = owner.rpartition("-")
        if head and CRONJOB_SUFFIX.match(suffix):
            return head
        return owner if prefer_full_pod_name else re.split(r"\.|-", owner, maxsplit=1)[0]
    if kind == "ReplicaSet":
        head, _, suffix = owner.rpartition("-")
        return head if head and REPLICASET_SUFFIX.match(suffix) else owner
    if kind in ("DaemonSet", "ReplicationController"):
        return owner
    return pod.name


@dataclass
class World:
    """The series the agents publish for the test's workloads, and each metric's resolution in seconds."""

    series: set[Series] = field(default_factory=set)
    resolution: dict[tuple[str, str], int] = field(default_factory=dict)
    modelled: set[str] = field(default_factory=set)  # namespaces whose every series is listed in ``series``

    def add(self, namespace: str, metric: str, dims: Mapping[str, str], resolution: int = 60) -> None:
        self.series.add((namespace, metric, frozenset(dims.items())))
        self.resolution[(namespace, metric)] = resolution
        self.modelled.add(namespace)

    def eks(self, cluster: str, pods: Iterable[Pod], enhanced: bool = False, prefer_full: bool = False) -> None:
        """Container Insights on EKS, as the agent declares its EMF metrics.

        aws/amazon-cloudwatch-agent, translator/translate/otel/exporter/awsemf/kubernetes.go
        (``getPodMetricDeclarations``, ``getContainerMetricDeclarations``): pod_memory_utilization_over_pod_limit
        per [PodName, Namespace, ClusterName] (+ FullPodName with enhanced observability);
        pod_number_of_container_restarts per [PodName, Namespace, ClusterName]; with enhanced observability only,
        container_memory_utilization_over_container_limit per [ContainerName, PodName, Namespace, ClusterName]
        (+ FullPodName) and pod_container_status_terminated_reason_oom_killed per pod. The agent publishes every
        60 s. pod_memory_utilization_over_pod_limit exists only when every container has a memory limit
        (Container Insights metrics reference: "If the pod doesn't have a memory limit defined, this metric
        doesn't appear"); the container metric only for a container with a limit.
        """
        ns = "ContainerInsights"
        for pod in pods:
            name = container_insights_pod_name(pod, prefer_full)
            base = {"ClusterName": cluster, "Namespace": pod.namespace, "PodName": name}
            sets = [base, {**base, "FullPodName": pod.name}] if enhanced else [base]
            for dims in sets:
                if all(limit for _, limit in pod.containers):
                    self.add(ns, "pod_memory_utilization_over_pod_limit", dims)
                self.add(ns, "pod_number_of_container_restarts", dims)
                if enhanced:
                    self.add(ns, "pod_container_status_terminated_reason_oom_killed", dims)
                    for container, limit in pod.containers:
                        if limit:
                            self.add(ns, "container_memory_utilization_over_container_limit",
                                     {**dims, "ContainerName": container})  # fmt: skip

    def ec2(
        self,
        instance: Mapping[str, str],
        append: Iterable[str] | None,
        aggregation: Iterable[Iterable[str]] = (),
        interval: int = 60,
    ) -> None:
        """The CloudWatch agent's ``mem_used_percent`` on an instance (namespace CWAgent).

        CloudWatch agent configuration file, ``metrics`` section: ``append_dimensions`` adds the listed EC2
        dimensions (ImageId, InstanceId, InstanceType, AutoScalingGroupName, the last only in an Auto Scaling
        group) to every metric and "also causes the agent to not publish the hostname as a dimension";
        without it the metric carries ``host``; ``aggregation_dimensions`` publishes roll-ups on the listed
        dimension sets. ``metrics_collection_interval`` below 60 s makes the metrics high resolution.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Agent-Configuration-File-Details.html
        """
        if append:
            dims = {k: instance[k] for k in append if k in instance}
        else:
            dims = {"host": instance["host"]}
        self.add("CWAgent", "mem_used_percent", dims, interval)
        for keys in aggregation:
            self.add("CWAgent", "mem_used_percent", {k: dims[k] for k in keys if k in dims}, interval)

    def ecs(self, cluster: str, service: str | None, family: str) -> None:
        """ECS Container Insights: MemoryUtilized / MemoryReserved per [ClusterName], [ClusterName, ServiceName],
        [ClusterName, TaskDefinitionFamily], every 60 s (Amazon ECS Container Insights metrics reference)."""
        for metric in ("MemoryUtilized", "MemoryReserved"):
            self.add("ECS/ContainerInsights", metric, {"ClusterName": cluster})
            self.add("ECS/ContainerInsights", metric, {"ClusterName": cluster, "TaskDefinitionFamily": family})
            if service:
                self.add("ECS/ContainerInsights", metric, {"ClusterName": cluster, "ServiceName": service})

    def sagemaker_transform(self, job: str, instances: Iterable[str]) -> None:
        """SageMaker batch transform: ``MemoryUtilization`` per ``Host`` = ``[transform-job-name]/[instance-id]``,
        every minute (Monitor SageMaker with CloudWatch, "Dimensions for batch transform job instance metrics")."""
        for instance in instances:
            self.add("/aws/sagemaker/TransformJobs", "MemoryUtilization", {"Host": f"{job}/{instance}"})


def _watched(p: Mapping[str, Any]) -> list[tuple[Series, int]]:
    """The series an alarm reads, with the period it reads them at."""
    if p.get("MetricName"):
        dims = frozenset((d["Name"], d["Value"]) for d in p.get("Dimensions") or [])
        return [((str(p.get("Namespace")), str(p["MetricName"]), dims), int(p.get("Period") or 60))]
    out = []
    for q in p.get("Metrics") or []:
        if "MetricStat" in q:
            metric = q["MetricStat"]["Metric"]
            dims = frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions") or [])
            out.append(((metric["Namespace"], metric["MetricName"], dims), int(q["MetricStat"]["Period"])))
    return out


def never_fires(p: Mapping[str, Any], world: World) -> list[str]:
    """Why an alarm CloudWatch accepted can never leave OK in ``world`` (empty: it can fire)."""
    out = []
    for (ns, metric, dims), period in _watched(p):
        if ns in world.modelled and (ns, metric, dims) not in world.series:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(dims))
            out.append(f"{ns} {metric} [{shown}] is not a series the agent publishes")
            continue
        # PutMetricAlarm, Period: a 10/20/30 s period on a metric without sub-minute resolution "does not
        # receive data for the attempts that do not correspond to a one-minute data resolution"; missing
        # datapoints are not breaching, so M out of N needs M periods that can hold data.
        resolution = world.resolution.get((ns, metric), 60)
        if period < resolution:
            n = int(p.get("EvaluationPeriods") or 1)
            m = int(p.get("DatapointsToAlarm") or n)
            with_data = -(-n * period // resolution)
            if m > with_data:
                out.append(
                    f"{metric} is published every {resolution}s: a {period}s period has data in at most "
                    f"{with_data} of {n} periods, fewer than the {m} datapoints to alarm"
                )
    return out
