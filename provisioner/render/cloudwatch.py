"""CloudWatch alarms for each job: the exact ``PutMetricAlarm`` request bodies, and how faithfully
each alert kind maps onto CloudWatch.

Every platform is reduced to one series, the job's memory as a **percentage of its limit**:
Container Insights ``pod_memory_utilization_over_pod_limit`` (EKS), ``100 * MemoryUtilized /
MemoryReserved`` (ECS Container Insights, metric math), the CloudWatch agent's
``mem_used_percent`` (EC2) or SageMaker's ``MemoryUtilization`` (batch transform). The alert
kinds are then written against that series, as the Prometheus rules are written against the
normalised working set:

- usage: a static threshold, sustained ``for`` as ``EvaluationPeriods``/``DatapointsToAlarm``;
- growth and time to OOM: metric math over the per-period *minimum* (the sawtooth's trough, as the
  Prometheus rules use a rolling minimum): ``RATE(trough)`` against the usual velocity, and
  ``(100 - peak) / RATE(trough)`` seconds against the horizon;
- baseline: a static threshold at ``factor`` x the recorded p95 peak, or an
  ``ANOMALY_DETECTION_BAND`` when no baseline is recorded; anomaly: an ``ANOMALY_DETECTION_BAND``.

Missing data is *not breaching* on every alarm, deliberately: a batch job that is not running
sends no datapoints, and that is neither an incident (``breaching``) nor a reason to sit in
``INSUFFICIENT_DATA`` or to keep a fired alarm in ``ALARM`` after the run ended (``missing``,
``ignore``). How each kind is expressed (and whether natively) is one table, :data:`TABLE`, that
both renders the alarms and tells the plan (:func:`support`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from provisioner.core.names import ownership_tags, resource_name
from provisioner.core.units import format_duration, format_size
from provisioner.kinds import anomaly, baseline, growth, time_to_oom, usage
from provisioner.kinds.base import Kind, Support
from provisioner.render import cloud
from provisioner.render.cloud import Rendering, description, percent_per_second
from provisioner.render.cloudwatch_source import Source, platform, pod_name, source
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

__all__ = ["TABLE", "Source", "alarms", "caveats", "needs", "platform", "pod_name", "source", "support"]

NO_OOM = 1_000_000_000  # seconds: "no OOM predicted" (not growing), far beyond any horizon
MAX_EVALUATION = 86_400  # EvaluationPeriods x Period may not exceed a day
TREAT_MISSING = "notBreaching"  # batch jobs are not always running: no data is not an incident


def _period(seconds: float) -> int:
    """A CloudWatch period covering ``seconds``: a whole number of minutes, at least one."""
    return max(60, math.ceil(seconds / 60) * 60)


def _periods(hold: float, period: int, minimum: int = 1) -> int:
    return min(max(minimum, math.ceil(hold / period)), MAX_EVALUATION // period)


def _g(x: float) -> float:
    return float(f"{x:.6g}")


def _lit(x: float) -> str:
    """A metric-math number literal: six significant digits, never in exponent notation."""
    text = f"{_g(x):.12f}".rstrip("0").rstrip(".")
    return text or "0"


class Alarms:
    """One job's alarms: the job, its source, its topics, and the shapes every kind's alarms take."""

    def __init__(self, spec: ResolvedSpec, job: ResolvedJob, topics: Mapping[str, str], notify_ok: bool) -> None:
        self.spec, self.job, self.src = spec, job, source(job)
        self.topics, self.notify_ok = topics, notify_ok

    def alarm(self, kind: str, suffix: str, severity: str, summary: str, body: dict[str, Any]) -> dict[str, Any]:
        spec, job = self.spec, self.job
        topic = self.topics.get(severity)
        tags = {
            **ownership_tags(spec.env, spec.name),
            "memprov-job": job.id,
            "memprov-kind": kind,
            "memprov-severity": severity,
        }
        return {
            "AlarmName": resource_name(spec.env, job.id, suffix),
            "AlarmDescription": description(spec, job, summary),
            "ActionsEnabled": True,
            "AlarmActions": [topic] if topic else [],
            "OKActions": [topic] if topic and self.notify_ok else [],
            "InsufficientDataActions": [],
            **body,
            "TreatMissingData": TREAT_MISSING,
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        }

    def threshold(self, percent: float, hold: float, period: int) -> dict[str, Any]:
        """``percent`` of the limit exceeded for ``hold``: a plain metric alarm when the series is one metric."""
        n = _periods(hold, period)
        common = {
            "EvaluationPeriods": n,
            "DatapointsToAlarm": n,
            "Threshold": _g(percent),
            "ComparisonOperator": "GreaterThanThreshold",
        }
        if self.src.metric is not None:
            return {
                "Namespace": self.src.namespace,
                "MetricName": self.src.metric,
                "Dimensions": self.src.dims(),
                "Statistic": "Maximum",
                "Period": period,
                **common,
            }
        queries = self.src.percent("pct", "Maximum", period)
        queries[-1]["ReturnData"] = True
        return {"Metrics": queries, **common}

    def band(self, stat: str, period: int, width: float, hold: float) -> dict[str, Any]:
        queries = self.src.percent("m", stat, period)
        queries[-1]["ReturnData"] = True
        n = _periods(hold, period)
        band = {
            "Id": "band",
            "Expression": f"ANOMALY_DETECTION_BAND(m, {_lit(width)})",
            "Label": "expected range",
            "ReturnData": True,
        }
        return {
            "Metrics": [*queries, band],
            "EvaluationPeriods": n,
            "DatapointsToAlarm": n,
            "ThresholdMetricId": "band",
            "ComparisonOperator": "GreaterThanUpperThreshold",
        }

    def trend(self, window: float, expression: str, label: str) -> list[dict[str, Any]]:
        """Trough (Minimum), mean (Average) and the expression (id ``e``) over periods of ``window``."""
        p = _period(window)
        return [
            *self.src.percent("tr", "Minimum", p),
            *self.src.percent("av", "Average", p),
            {"Id": "e", "Expression": expression, "Label": label, "ReturnData": True},
        ]


# --- the kinds ------------------------------------------------------------------------------------
def _usage(a: Alarms) -> list[dict[str, Any]]:
    out, period = [], int(a.job.aws.period)
    for severity, ratio, hold in usage.KIND.of(a.job).tiers():
        summary = f"memory above {ratio:.0%} of the limit for {format_duration(hold)}"
        out.append(a.alarm("usage", f"usage-{severity}", severity, summary, a.threshold(ratio * 100, hold, period)))
    return out


def _growth(a: Alarms) -> list[dict[str, Any]]:
    g = growth.KIND.of(a.job)
    p = _period(g.window)
    metrics = [
        *a.src.percent("tr", "Minimum", p),
        {"Id": "e", "Expression": "RATE(tr)", "Label": "trough growth, % of limit per second", "ReturnData": True},
    ]
    n = _periods(g.hold, p, minimum=2)  # two periods: the model-load ramp of a run is one
    body = {
        "Metrics": metrics,
        "EvaluationPeriods": n,
        "DatapointsToAlarm": n,
        "Threshold": _g(percent_per_second(a.job, g.threshold)),
        "ComparisonOperator": "GreaterThanThreshold",
    }
    return [
        a.alarm("growth", "growth", "warning", f"memory troughs growing over {g.factor:g}x the usual velocity", body)
    ]


def _time_to_oom(a: Alarms) -> list[dict[str, Any]]:
    t = time_to_oom.KIND.of(a.job)
    tto = "(100 - (2 * av - tr)) / RATE(tr)"  # headroom from the sawtooth's estimated peak
    tiers = []
    if t.warning_horizon is not None:
        tiers.append(("warning", t.warning_horizon, t.warning_hold, _g(percent_per_second(a.job, t.warning_velocity))))
    tiers.append(("critical", t.horizon, t.hold, 0.0))
    out = []
    for severity, horizon, hold, floor in tiers:
        expr = f"IF(RATE(tr) > {_lit(floor)}, {tto}, {NO_OOM})"
        n = _periods(hold, _period(t.window))
        summary = f"at the current trend, memory reaches the limit within {format_duration(horizon)}"
        body = {
            "Metrics": a.trend(t.window, expr, "predicted seconds to OOM"),
            "EvaluationPeriods": n,
            "DatapointsToAlarm": n,
            "Threshold": float(horizon),
            "ComparisonOperator": "LessThanThreshold",
        }
        out.append(a.alarm("time_to_oom", f"time-to-oom-{severity}", severity, summary, body))
    return out


def _baseline(a: Alarms) -> list[dict[str, Any]]:
    b, job = baseline.KIND.of(a.job), a.job
    if b.p95:
        summary = f"memory above {b.factor:g}x the usual p95 peak ({format_size(b.p95)}B) for {format_duration(b.hold)}"
        body = a.threshold(100 * b.factor * b.p95 / job.limit, b.hold, int(job.aws.period))
    else:
        summary = "memory above the band CloudWatch expects from its history"
        body = a.band("Maximum", int(job.aws.period), 2, b.hold)
    return [a.alarm("baseline", "baseline", "warning", summary, body)]


def _anomaly(a: Alarms) -> list[dict[str, Any]]:
    z = anomaly.KIND.of(a.job)
    summary = f"memory over {z.zscore:g} standard deviations above what CloudWatch expects at this time"
    return [a.alarm("anomaly", "anomaly", "warning", summary, a.band("Average", _period(z.window), z.zscore, z.hold))]


def _oom_killed(a: Alarms) -> list[dict[str, Any]]:
    enhanced = a.job.aws.container_insights == "enhanced"
    metric = "pod_container_status_terminated_reason_oom_killed" if enhanced else "pod_number_of_container_restarts"
    body = {
        "Namespace": "ContainerInsights",
        "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in a.src.pod_dimensions],
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    what = "a container of the job was OOM-killed" if enhanced else "a container of the job restarted"
    return [a.alarm("oom_killed", "oom-killed", "warning", what, body)]


def _speed(job: ResolvedJob) -> str:
    return "" if job.usual_velocity else "; no memory.baseline.velocity, so the usual velocity is min_velocity"


def _baseline_support(job: ResolvedJob) -> Support:
    if baseline.KIND.of(job).p95:
        return Support.native()
    return Support.approximated("no recorded p95 peak: an ANOMALY_DETECTION_BAND learnt by CloudWatch instead")


def _oom_support(job: ResolvedJob) -> Support:
    plat = platform(job)
    if plat == "eks" and job.aws.dimensions is None:
        if job.aws.container_insights == "enhanced":
            shared = _shared_pod_name(job)
            return Support.approximated(shared) if shared else Support.native()
        return Support.approximated(
            "Container Insights (without enhanced observability) counts container restarts, not OOM kills as such; "
            "a Job pod with restartPolicy Never is replaced, not restarted, and is not seen"
        )
    why = {
        "ecs": "ECS publishes no OOM metric (a stopped task's exit code 137 is an EventBridge event)",
        "ec2": "the CloudWatch agent publishes no OOM-kill metric",
        "sagemaker": "a transform job killed for memory fails; that is an EventBridge event, not a metric",
    }
    return Support.unsupported(why.get(plat, "no OOM metric for overridden dimensions"))


def _shared_pod_name(job: ResolvedJob) -> str:
    """Why the pod series may mix in other workloads: the agent cut the Job's name (empty when it did not)."""
    aws = job.aws
    if aws.workload is not None and aws.workload.kind in ("deployment", "pod"):
        return ""
    name = aws.workload.name if aws.workload else job.id
    cut = pod_name(job)
    if cut == name:
        return ""
    return (
        f"PodName {cut} is every Job of namespace {job.selector.namespace or 'default'} whose name starts with "
        f"{cut}- or {cut}. (the agent cuts a Job's name there)"
    )


def _machine(job: ResolvedJob) -> str:
    """Why the series is the whole machine's, not the job's (a process on EC2); empty otherwise."""
    if job.runtime == "process" and platform(job) == "ec2" and job.aws.dimensions is None and not job.aws.metric:
        return "mem_used_percent is the whole instance's memory, not the process's"
    return ""


def _series(job: ResolvedJob) -> tuple[str, ...]:
    """The series the memory alarms read, and what must publish it."""
    src, aws = source(job), job.aws
    dims = ", ".join(f"{k}={v}" for k, v in src.dimensions)
    metric = src.metric or "MemoryUtilized (with the task's hard memory limit)"
    agent = {
        "eks": "Container Insights on the cluster (CloudWatch agent or ADOT)"
        + (", enhanced observability" if aws.container_insights == "enhanced" else "")
        + ("; prefer_full_pod_name: true" if aws.prefer_full_pod_name else ""),
        "ecs": "ECS Container Insights enabled on the cluster",
        "ec2": "the CloudWatch agent on the instance: mem_used_percent every "
        + format_duration(aws.collection_interval)
        + (f", append_dimensions {', '.join(aws.append_dimensions)}" if aws.append_dimensions else ""),
        "sagemaker": "SageMaker batch transform instance metrics (published every minute)",
    }.get(src.platform, "the metric named in aws.namespace / aws.metric")
    return (f"{src.namespace} {metric} [{dims}]", agent)


def _oom_needs(job: ResolvedJob) -> tuple[str, ...]:
    enhanced = job.aws.container_insights == "enhanced"
    metric = "pod_container_status_terminated_reason_oom_killed" if enhanced else "pod_number_of_container_restarts"
    return (f"ContainerInsights {metric}", "Container Insights" + (" with enhanced observability" if enhanced else ""))


TABLE: dict[Kind, Rendering[Alarms]] = {
    Kind.USAGE: Rendering(lambda job: Support.native(), _usage, _series),
    Kind.GROWTH: Rendering(
        lambda job: Support.approximated(
            "RATE() of per-period troughs; the model-load ramp is skipped by requiring two periods instead of the "
            f"warm-up{_speed(job)}"
        ),
        _growth,
        _series,
    ),
    Kind.TIME_TO_OOM: Rendering(
        lambda job: Support.approximated(
            "(100 - peak) / RATE(trough) between two periods instead of a fitted trend; no warm-up skip" + _speed(job)
        ),
        _time_to_oom,
        _series,
    ),
    Kind.BASELINE: Rendering(_baseline_support, _baseline, _series),
    Kind.ANOMALY: Rendering(
        lambda job: Support.approximated(
            "CloudWatch's anomaly model (up to two weeks, daily and weekly seasonality) instead of a z-score against "
            f"{anomaly.KIND.of(job).weeks} previous weeks; no min_stddev floor"
        ),
        _anomaly,
        _series,
    ),
    Kind.OOM_KILLED: Rendering(_oom_support, _oom_killed, _oom_needs),
}


def alarms(
    spec: ResolvedSpec, job: ResolvedJob, topics: Mapping[str, str], notify_ok: bool = True
) -> list[dict[str, Any]]:
    """The job's ``PutMetricAlarm`` request bodies; ``topics`` maps severity to an SNS topic ARN."""
    return cloud.render(TABLE, job, Alarms(spec, job, topics, notify_ok))


def needs(job: ResolvedJob) -> dict[Kind, tuple[str, ...]]:
    """Per enabled kind, the metrics and agent settings its CloudWatch alert needs (as the table states them)."""
    return cloud.needs(TABLE, job)


def support(job: ResolvedJob) -> list[tuple[Kind, Support]]:
    """Per enabled kind: native, approximated or unsupported on CloudWatch, and why."""
    return cloud.supports(TABLE, job, "CloudWatch", _machine)


def caveats(job: ResolvedJob) -> list[str]:
    """What the reader of a plan should know about where the job's alarms look."""
    src, out = source(job), []
    if job.aws.dimensions is None and src.platform == "eks":
        shared = _shared_pod_name(job)
        narrowed = src.metric == "container_memory_utilization_over_container_limit"
        text = f"{job.id}: " + (shared or f"Container Insights PodName {pod_name(job)}")
        if shared:
            text += (
                f"; ContainerName {job.selector.container} narrows it"
                if narrowed
                else "; aws.container_insights: enhanced with selector.container would narrow it"
            )
        if not narrowed:
            text += "; pod_memory_utilization_over_pod_limit exists only when every container has a memory limit"
        out.append(text)
    if job.aws.dimensions is None and src.platform == "sagemaker":
        out.append(
            f"{job.id}: SageMaker metrics are per transform job and instance (Host {job.aws.transform_job}/"
            f"{job.aws.instance_id}): a run under a new transform-job name or on another instance needs "
            "aws.transform_job and aws.instance_id set for it"
        )
    return out
