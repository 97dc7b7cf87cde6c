"""Azure Monitor metric alert rules for each job: the exact ARM request bodies
(``PUT .../providers/Microsoft.Insights/metricAlerts/<name>?api-version=2018-03-01``), and how
faithfully each alert kind maps onto Azure Monitor.

Every platform is reduced to one platform metric in percent: AKS's
``node_memory_working_set_percentage`` per node (of ``azure.node_pool``), a VM's ``Available
Memory Percentage`` (watched from below: used above X % is available below 100 − X %), or Azure
ML's ``CpuMemoryUtilizationPercentage`` of the compute cluster. The alert kinds are then:

- usage: a static ``MetricCriteria`` on the *minimum* over a window of ``for`` (rounded up to a
  window Azure allows): above the threshold for the whole window is what ``for`` means;
- baseline: a static threshold at ``factor`` x the recorded p95 peak, or a
  ``DynamicMetricCriteria`` (sensitivity Low) when no baseline is recorded;
- anomaly: a ``DynamicMetricCriteria``, sensitivity from the z-score, failing periods from
  ``window`` and ``for``; dynamic criteria only exist in the *Multiple*ResourceMultipleMetricCriteria
  container, which also needs the target's resource type and region;
- time to OOM: a static headroom threshold on the troughs (approximated; Azure has no rate);
- growth and OOM kills: unsupported (no rate or slope of a metric; no OOM metric).

Severity: critical → Sev0, warning → Sev2, info → Sev3 (Azure's own names for them). How each
kind is expressed (and whether natively) is one table, :data:`TABLE`, that both renders the rules
and tells the plan (:func:`support`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioner.core.names import ownership_tags, resource_name
from provisioner.core.units import format_duration, format_size
from provisioner.kinds import anomaly, baseline, growth, time_to_oom, usage
from provisioner.kinds.base import Kind, Support
from provisioner.render import cloud
from provisioner.render.cloud import Rendering, description, percent_per_second
from provisioner.spec.clouds import AZURE_RESOURCE_TYPES
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

SEVERITY = {"critical": 0, "warning": 2, "info": 3}
WINDOWS = (60, 300, 900, 1800, 3600, 21600, 43200, 86400)  # window sizes Azure allows, seconds
DYNAMIC_WINDOWS = (300, 900, 1800, 3600)
MAX_FAILING_PERIODS = 6
STATIC = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
DYNAMIC = "Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria"


@dataclass(frozen=True)
class Source:
    """Where one job's memory lives in Azure Monitor, in percent."""

    platform: str
    scope: str
    region: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    available: bool  # the metric is *available* memory: used above X % is this below 100 - X %

    def dims(self) -> list[dict[str, Any]]:
        return [{"name": k, "operator": "Include", "values": [v]} for k, v in self.dimensions]


def platform(job: ResolvedJob) -> str:
    return job.azure.platform or ("aks" if job.runtime == "kubernetes" else "vm")


def source(job: ResolvedJob) -> Source:
    """The job's memory series, from its platform, overridable under ``azure``."""
    az, plat = job.azure, platform(job)
    dims: dict[str, str]
    if plat == "aks":
        metric, available = "node_memory_working_set_percentage", False
        dims = {"node": "*"}
        if az.node_pool:
            dims["nodepool"] = az.node_pool
    elif plat == "vm":
        metric, available, dims = "Available Memory Percentage", True, {}
    else:
        metric, available, dims = "CpuMemoryUtilizationPercentage", False, {"ComputeName": az.compute or ""}
    if az.dimensions is not None:
        dims = dict(az.dimensions)
    if az.metric:
        metric, available = az.metric, False
    namespace = az.namespace or AZURE_RESOURCE_TYPES[plat]
    return Source(plat, az.scope or "", az.region or "", namespace, metric, tuple(sorted(dims.items())), available)


def window(seconds: float, allowed: tuple[int, ...] = WINDOWS) -> int:
    """The smallest window Azure allows that covers ``seconds``."""
    return next((w for w in allowed if w >= seconds), allowed[-1])


def iso(seconds: int) -> str:
    """ISO-8601 duration as ARM writes it: PT1M, PT15M, PT1H, PT6H, P1D."""
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    if seconds % 3600 == 0:
        return f"PT{seconds // 3600}H"
    return f"PT{seconds // 60}M"


def _g(x: float) -> float:
    return float(f"{x:.6g}")


def sensitivity(zscore: float) -> str:
    """Azure's dynamic-threshold sensitivity closest to a z-score (High is the narrowest band)."""
    return "High" if zscore < 2.5 else "Medium" if zscore <= 3.5 else "Low"


class Rules:
    """One job's alert rules: the job, its source, its action groups, and the shapes every kind's rules take."""

    def __init__(self, spec: ResolvedSpec, job: ResolvedJob, groups: Mapping[str, str]) -> None:
        self.spec, self.job, self.src, self.groups = spec, job, source(job), groups
        self.frequency = int(job.azure.frequency)

    def rule(self, kind: str, suffix: str, severity: str, summary: str, props: dict[str, Any]) -> dict[str, Any]:
        spec, job = self.spec, self.job
        group = self.groups.get(severity)
        tags = {
            **ownership_tags(spec.env, spec.name),
            "memprov-job": job.id,
            "memprov-kind": kind,
            "memprov-severity": severity,
        }
        hook = {"memprov-job": job.id, "memprov-env": spec.env, "memprov-kind": kind}
        name = resource_name(spec.env, job.id, suffix)
        return {
            "name": name,
            "body": {
                "location": "global",
                "tags": dict(sorted(tags.items())),
                "properties": {
                    "description": description(spec, job, summary, "alert rule"),
                    "severity": SEVERITY[severity],
                    "enabled": True,
                    "scopes": [self.src.scope],
                    "autoMitigate": True,
                    "actions": [{"actionGroupId": group, "webHookProperties": hook}] if group else [],
                    **props,
                },
            },
        }

    def static(self, percent: float, hold: float, name: str, aggregation: str = "Minimum") -> dict[str, Any]:
        """Above ``percent`` throughout a window covering ``hold`` (the minimum over it is above)."""
        src, size = self.src, window(max(hold, self.frequency))
        if src.available:  # used above X % throughout = available below 100 - X % throughout
            op, threshold = "LessThan", 100 - percent
            aggregation = "Maximum" if aggregation == "Minimum" else aggregation
        else:
            op, threshold = "GreaterThan", percent
        criterion = {
            "criterionType": "StaticThresholdCriterion",
            "name": name,
            "metricNamespace": src.namespace,
            "metricName": src.metric,
            "dimensions": src.dims(),
            "timeAggregation": aggregation,
            "operator": op,
            "threshold": _g(threshold),
        }
        return {
            "evaluationFrequency": iso(self.frequency),
            "windowSize": iso(size),
            "criteria": {"odata.type": STATIC, "allOf": [criterion]},
        }

    def dynamic(self, name: str, aggregation: str, level: str, span: float, hold: float) -> dict[str, Any]:
        """Above what Azure's model expects, in ``hold`` of the periods covering ``span``."""
        src, size = self.src, window(self.frequency, DYNAMIC_WINDOWS)
        periods = min(max(1, math.ceil(span / size)), MAX_FAILING_PERIODS)
        failing = min(periods, max(1, math.ceil(hold / size)))
        criterion = {
            "criterionType": "DynamicThresholdCriterion",
            "name": name,
            "metricNamespace": src.namespace,
            "metricName": src.metric,
            "dimensions": src.dims(),
            "timeAggregation": aggregation,
            "operator": "LessThan" if src.available else "GreaterThan",
            "alertSensitivity": level,
            "failingPeriods": {"numberOfEvaluationPeriods": periods, "minFailingPeriodsToAlert": failing},
        }
        return {
            "evaluationFrequency": iso(min(self.frequency, size)),
            "windowSize": iso(size),
            "targetResourceType": AZURE_RESOURCE_TYPES[src.platform],
            "targetResourceRegion": src.region,
            "criteria": {"odata.type": DYNAMIC, "allOf": [criterion]},
        }


# --- the kinds ------------------------------------------------------------------------------------
def _usage(r: Rules) -> list[dict[str, Any]]:
    out = []
    for severity, ratio, hold in usage.KIND.of(r.job).tiers():
        summary = f"memory above {ratio:.0%} of the limit for {format_duration(hold)}"
        props = r.static(ratio * 100, hold, f"usage-{severity}")
        out.append(r.rule("usage", f"usage-{severity}", severity, summary, props))
    return out


def _time_to_oom(r: Rules) -> list[dict[str, Any]]:
    t, job = time_to_oom.KIND.of(r.job), r.job
    percent = max(100 - headroom_pct(job), job.warning_ratio * 100)
    summary = (
        f"memory troughs above {percent:.0f}% of the limit: at {growth.KIND.of(job).factor:g}x the usual growth "
        f"the limit is reached within {format_duration(t.horizon)}"
    )
    props = r.static(percent, t.window, "time-to-oom")
    return [r.rule("time_to_oom", "time-to-oom-critical", "critical", summary, props)]


def _baseline(r: Rules) -> list[dict[str, Any]]:
    b, job = baseline.KIND.of(r.job), r.job
    if b.p95:
        summary = f"memory above {b.factor:g}x the usual p95 peak ({format_size(b.p95)}B) for {format_duration(b.hold)}"
        props = r.static(100 * b.factor * b.p95 / job.limit, b.hold, "baseline")
    else:
        summary = "memory far above what Azure Monitor expects from its history"
        props = r.dynamic("baseline", "Maximum", "Low", b.hold, b.hold)
    return [r.rule("baseline", "baseline", "warning", summary, props)]


def _anomaly(r: Rules) -> list[dict[str, Any]]:
    a = anomaly.KIND.of(r.job)
    summary = f"memory over {a.zscore:g} standard deviations above what Azure Monitor expects"
    props = r.dynamic("anomaly", "Average", sensitivity(a.zscore), a.window, a.hold)
    return [r.rule("anomaly", "anomaly", "warning", summary, props)]


def headroom_pct(job: ResolvedJob) -> float:
    """Percent of the limit that growth at ``growth.factor`` x the usual velocity fills within the horizon."""
    t = time_to_oom.KIND.of(job)
    return percent_per_second(job, t.surge_velocity) * t.horizon


def _on_node(job: ResolvedJob) -> str:
    """Why a kind is approximated on AKS's node metric (empty when the job watches its own metric)."""
    if source(job).platform != "aks" or job.azure.metric:
        return ""
    return (
        "node_memory_working_set_percentage of each node"
        + (f" of pool {job.azure.node_pool}" if job.azure.node_pool else "")
        + " against the thresholds as a percentage of the limit: AKS platform metrics have no pod-vs-limit "
        "ratio (that needs Container insights or managed Prometheus)"
    )


def _usage_support(job: ResolvedJob) -> Support:
    u, freq = usage.KIND.of(job), job.azure.frequency
    rounded = [
        f"{name} {format_duration(hold)} → window {iso(w)}"
        for name, hold in (("warning_for", u.warning_for), ("critical_for", u.critical_for))
        if (w := window(max(hold, freq))) != hold
    ]
    node = _on_node(job)
    if not (node or rounded):
        return Support.native()
    why = "; ".join(p for p in (node, ", ".join(rounded)) if p)
    return Support.approximated(why + (" (rounded up to a window Azure allows)" if rounded else ""))


def _time_to_oom_support(job: ResolvedJob) -> Support:
    return Support.approximated(
        f"a static threshold on the troughs ({100 - headroom_pct(job):.0f}% of the limit or the warning "
        f"level): the headroom that {growth.KIND.of(job).factor:g}x the usual growth fills within the horizon, not "
        "a fitted trend; critical tier only"
    )


def _baseline_support(job: ResolvedJob) -> Support:
    if baseline.KIND.of(job).p95:
        node = _on_node(job)
        return Support.approximated(node) if node else Support.native()
    return Support.approximated("no recorded p95 peak: dynamic thresholds (sensitivity Low)")


def _anomaly_support(job: ResolvedJob) -> Support:
    a = anomaly.KIND.of(job)
    return Support.approximated(
        f"dynamic thresholds (sensitivity {sensitivity(a.zscore)}, Azure's own seasonal model "
        f"over up to 10 days) instead of a z-score against {a.weeks} previous weeks"
    )


def _series(job: ResolvedJob) -> tuple[str, ...]:
    """The metric the rules read, and what must publish it."""
    src = source(job)
    dims = ", ".join(f"{k}={v}" for k, v in src.dimensions)
    agent = {
        "aks": "AKS platform metrics (no agent; per node)",
        "vm": "VM platform metrics (Azure Monitor agent not needed for Available Memory Percentage)",
        "aml": "Azure ML compute metrics",
    }.get(src.platform, "the metric named in azure.namespace / azure.metric")
    return (f"{src.namespace} {src.metric}" + (f" [{dims}]" if dims else "") + f" on {src.scope}", agent)


GROWTH_WHY = (
    "Azure metric alerts compare one aggregate per window with a threshold: no rate or slope of a "
    "metric; the prometheus backend's rule (e.g. on Azure Monitor managed Prometheus) expresses it"
)
OOM_WHY = {
    "aks": "AKS platform metrics have no OOM-kill count (Container insights records it in logs: a log alert)",
    "vm": "VM platform metrics have no OOM-kill count",
    "aml": "an Azure ML job killed for memory fails; that is a run status, not a metric",
}

TABLE: dict[Kind, Rendering[Rules]] = {
    Kind.USAGE: Rendering(_usage_support, _usage, _series),
    Kind.GROWTH: Rendering(lambda job: Support.unsupported(GROWTH_WHY)),
    Kind.TIME_TO_OOM: Rendering(_time_to_oom_support, _time_to_oom, _series),
    Kind.BASELINE: Rendering(_baseline_support, _baseline, _series),
    Kind.ANOMALY: Rendering(_anomaly_support, _anomaly, _series),
    Kind.OOM_KILLED: Rendering(lambda job: Support.unsupported(OOM_WHY[source(job).platform])),
}


def rules(spec: ResolvedSpec, job: ResolvedJob, groups: Mapping[str, str]) -> list[dict[str, Any]]:
    """The job's alert rules as ``{"name", "body"}``: ``body`` is the ARM request body; ``groups``
    maps severity to an action group resource id."""
    return cloud.render(TABLE, job, Rules(spec, job, groups))


def _machine(job: ResolvedJob) -> str:
    """Why the series is the whole VM's, not the job's (a process on a VM); empty otherwise."""
    if job.runtime == "process" and platform(job) == "vm" and not job.azure.metric:
        return "Available Memory Percentage is the whole VM's memory, not the process's"
    return ""


def needs(job: ResolvedJob) -> dict[Kind, tuple[str, ...]]:
    """Per enabled kind, the metrics and agent settings its Azure Monitor alert needs (as the table states them)."""
    return cloud.needs(TABLE, job)


def support(job: ResolvedJob) -> list[tuple[Kind, Support]]:
    """Per enabled kind: native, approximated or unsupported on Azure Monitor, and why."""
    return cloud.supports(TABLE, job, "Azure Monitor", _machine)


def caveats(job: ResolvedJob) -> list[str]:
    """What the reader of a plan should know about where the job's rules look."""
    src = source(job)
    if src.platform == "aks" and not job.azure.node_pool and job.azure.dimensions is None:
        return [
            f"{job.id}: the rules watch every node of {src.scope.rsplit('/', 1)[-1]}; set azure.node_pool to the "
            "job's node pool so that other workloads do not fire them"
        ]
    return []
