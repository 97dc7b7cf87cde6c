"""Where a job's memory lives in Cloud Monitoring: the resource filter, the usage and used-bytes metrics, and
the used bytes as Cloud Monitoring's PromQL names the system metric, for :mod:`provisioner.render.gcp`.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.core.promql import matchers
from provisioner.spec.resolved import ResolvedJob

REGEX_LABELS = {"namespace": "namespace_name", "pod": "pod_name", "container": "container_name"}
USED_PROMQL = {  # the used-bytes metric as Cloud Monitoring's PromQL names it: first '/' -> ':', others '_'
    "gke": ("kubernetes_io:container_memory_used_bytes", "k8s_container", {"memory_type": "non-evictable"}),
    "gce": ("agent_googleapis_com:memory_bytes_used", "gce_instance", {"state": "used"}),
}


def quote(value: str) -> str:
    """A Monitoring-filter string literal, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def platform(job: ResolvedJob) -> str:
    return job.gcp.platform or ("gke" if job.runtime == "kubernetes" else "gce")


@dataclass(frozen=True)
class Source:
    """Where one job's memory lives in Cloud Monitoring."""

    platform: str
    resource: str  # the resource part of every filter
    usage: str  # metric part: memory as a fraction (gke) or percent (gce) of the limit
    used: str  # metric part: memory used, bytes
    scale: float  # 1.0 (fraction) or 100.0 (percent)

    used_promql: str | None = None  # the used bytes as a PromQL selector; None with an overridden gcp.filter

    def filter(self, metric: str) -> str:
        return f"{metric} AND {self.resource}"


def source(job: ResolvedJob) -> Source:
    """The job's series, from its platform and selectors, overridable under ``gcp``."""
    gcp, plat, sel = job.gcp, platform(job), job.selector
    clauses: list[str]
    if plat == "gke":
        clauses = ['resource.type = "k8s_container"', f"resource.labels.cluster_name = {quote(gcp.cluster or '')}"]
        if gcp.location:
            clauses.append(f"resource.labels.location = {quote(gcp.location)}")
        namespace = gcp.namespace or sel.namespace
        for label, value in (("namespace_name", namespace), ("pod_name", sel.pod), ("container_name", sel.container)):
            if value:
                clauses.append(f"resource.labels.{label} = {quote(value)}")
        for label, regex in sorted(sel.regex.items()):
            if label in REGEX_LABELS:
                clauses.append(f"resource.labels.{REGEX_LABELS[label]} = monitoring.regex.full_match({quote(regex)})")
        usage = 'metric.type = "kubernetes.io/container/memory/limit_utilization"'
        used = 'metric.type = "kubernetes.io/container/memory/used_bytes"'
        label, scale = 'metric.labels.memory_type = "non-evictable"', 1.0
    else:
        clauses = ['resource.type = "gce_instance"', f"resource.labels.instance_id = {quote(gcp.instance_id or '')}"]
        usage = 'metric.type = "agent.googleapis.com/memory/percent_used"'
        used = 'metric.type = "agent.googleapis.com/memory/bytes_used"'
        label, scale = 'metric.labels.state = "used"', 100.0
    if gcp.project:
        clauses.append(f"resource.labels.project_id = {quote(gcp.project)}")
    resource = gcp.filter if gcp.filter is not None else " AND ".join(clauses)
    if gcp.metric:
        usage = f"metric.type = {quote(gcp.metric)}"
    else:
        usage = f"{usage} AND {label}"
    return Source(plat, resource, usage, f"{used} AND {label}", scale, None if gcp.filter else used_promql(job))


def used_promql(job: ResolvedJob) -> str:
    """The job's used bytes as a PromQL selector of the system metric (resource and metric labels as labels)."""
    gcp, plat, sel = job.gcp, platform(job), job.selector
    name, resource, metric_labels = USED_PROMQL[plat]
    exact = {"monitored_resource": resource}
    regex: dict[str, str] = {}
    if plat == "gke":
        exact["cluster_name"] = gcp.cluster or ""
        if gcp.location:
            exact["location"] = gcp.location
        for label, value in (("namespace_name", gcp.namespace or sel.namespace), ("pod_name", sel.pod),
                             ("container_name", sel.container)):  # fmt: skip
            if value:
                exact[label] = value
        regex = {REGEX_LABELS[k]: v for k, v in sorted(sel.regex.items()) if k in REGEX_LABELS}
    else:
        exact["instance_id"] = gcp.instance_id or ""
    if gcp.project:
        exact["project_id"] = gcp.project
    return name + matchers(exact, regex, ", ".join(f'{k}="{v}"' for k, v in metric_labels.items()))
