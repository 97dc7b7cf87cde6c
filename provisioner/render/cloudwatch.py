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
``ignore``). What CloudWatch cannot express is returned by :func:`support` so the plan says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioner.core.names import ownership_tags, resource_name
from provisioner.core.units import format_duration, format_size
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

DESCRIPTION_MAX = 1024
NO_OOM = 1_000_000_000  # seconds: "no OOM predicted" (not growing), far beyond any horizon
MAX_EVALUATION = 86_400  # EvaluationPeriods x Period may not exceed a day
TREAT_MISSING = "notBreaching"  # batch jobs are not always running: no data is not an incident

NATIVE, APPROXIMATED, UNSUPPORTED = "native", "approximated", "unsupported"


@dataclass(frozen=True)
class Source:
    """Where one job's memory lives in CloudWatch, as a percentage of its limit."""

    platform: str
    namespace: str
    metric: str | None  # a single percent metric; None for ECS (used / reserved, metric math)
    dimensions: tuple[tuple[str, str], ...]

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
            {"Id": f"{qid}reserved", "MetricStat": self.stat("MemoryReserved", "Maximum", period), "ReturnData": False},
            {
                "Id": qid,
                "Expression": f"100 * {qid}used / {qid}reserved",
                "Label": "memory, % of reserved",
                "ReturnData": False,
            },
        ]


def platform(job: ResolvedJob) -> str:
    return job.aws.platform or ("eks" if job.runtime == "kubernetes" else "ec2")


def source(job: ResolvedJob) -> Source:
    """The job's percent-of-limit series, from its platform and selectors, overridable under ``aws``."""
    aws, plat = job.aws, platform(job)
    dims: dict[str, str]
    if plat == "eks":
        namespace, metric = "ContainerInsights", "pod_memory_utilization_over_pod_limit"
        dims = {
            "ClusterName": aws.cluster or "",
            "Namespace": job.selector.namespace or "default",
            "PodName": job.selector.pod or job.id,
        }
    elif plat == "ecs":
        namespace, metric = "ECS/ContainerInsights", None
        dims = {"ClusterName": aws.cluster or ""}
        if aws.service:
            dims["ServiceName"] = aws.service
        else:
            dims["TaskDefinitionFamily"] = aws.task_family or job.id
    elif plat == "ec2":
        namespace, metric = "CWAgent", "mem_used_percent"
        dims = {"InstanceId": aws.instance_id or ""}
    else:
        namespace, metric = "/aws/sagemaker/TransformJobs", "MemoryUtilization"
        dims = {"Host": f"{aws.transform_job}/algo-1"}
    if aws.dimensions is not None:
        dims = dict(aws.dimensions)
    if aws.metric:
        metric = aws.metric
    return Source(plat, aws.namespace or namespace, metric, tuple(sorted(dims.items())))


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


def velocity_pct(job: ResolvedJob, bytes_per_minute: float) -> float:
    """A velocity in bytes per minute as percent of the limit per second (what ``RATE`` returns)."""
    return bytes_per_minute / 60 / job.limit * 100


def growth_floor_pct(job: ResolvedJob) -> float:
    g = job.growth
    return velocity_pct(job, g.min_velocity if g.min_velocity is not None else job.limit / 360)


def usual_velocity(job: ResolvedJob) -> float | None:
    b = job.baseline
    return float(b.velocity) if b is not None and b.velocity is not None else None


class _Alarms:
    """One job's alarms; a class only to share the job, its source and its context."""

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

    def all(self) -> list[dict[str, Any]]:
        job, out = self.job, []
        period = int(job.aws.period)
        if job.usage.enabled:
            for severity, ratio, hold in (
                ("warning", job.warning_ratio, job.usage.warning_for),
                ("critical", job.critical_ratio, job.usage.critical_for),
            ):
                summary = f"memory above {ratio:.0%} of the limit for {format_duration(hold)}"
                out.append(
                    self.alarm(
                        "usage", f"usage-{severity}", severity, summary, self.threshold(ratio * 100, hold, period)
                    )
                )
        usual = usual_velocity(job)
        if job.growth.enabled:
            g = job.growth
            limit = max(g.factor * velocity_pct(job, usual), growth_floor_pct(job)) if usual else growth_floor_pct(job)
            p = _period(g.window)
            metrics = [
                *self.src.percent("tr", "Minimum", p),
                {
                    "Id": "e",
                    "Expression": "RATE(tr)",
                    "Label": "trough growth, % of limit per second",
                    "ReturnData": True,
                },
            ]
            n = _periods(g.for_, p, minimum=2)  # two periods: the model-load ramp of a run is one
            summary = f"memory troughs growing over {g.factor:g}x the usual velocity"
            out.append(
                self.alarm(
                    "growth",
                    "growth",
                    "warning",
                    summary,
                    {
                        "Metrics": metrics,
                        "EvaluationPeriods": n,
                        "DatapointsToAlarm": n,
                        "Threshold": _g(limit),
                        "ComparisonOperator": "GreaterThanThreshold",
                    },
                )
            )
        if job.time_to_oom.enabled:
            t = job.time_to_oom
            tto = "(100 - (2 * av - tr)) / RATE(tr)"  # headroom from the sawtooth's estimated peak
            tiers = []
            if t.warning_horizon is not None:
                floor = t.warning_factor * velocity_pct(job, usual) if usual else growth_floor_pct(job)
                tiers.append(("warning", t.warning_horizon, t.warning_for, _g(floor)))
            tiers.append(("critical", t.horizon, t.for_, 0.0))
            for severity, horizon, hold, floor in tiers:
                expr = f"IF(RATE(tr) > {_lit(floor)}, {tto}, {NO_OOM})"
                n = _periods(hold, _period(t.window))
                summary = f"at the current trend, memory reaches the limit within {format_duration(horizon)}"
                body = {
                    "Metrics": self.trend(t.window, expr, "predicted seconds to OOM"),
                    "EvaluationPeriods": n,
                    "DatapointsToAlarm": n,
                    "Threshold": float(horizon),
                    "ComparisonOperator": "LessThanThreshold",
                }
                out.append(self.alarm("time_to_oom", f"time-to-oom-{severity}", severity, summary, body))
        if job.baseline_alert.enabled:
            b = job.baseline_alert
            p95 = job.baseline.peak_p95 if job.baseline else None
            if p95:
                summary = (
                    f"memory above {b.factor:g}x the usual p95 peak ({format_size(p95)}B) for {format_duration(b.for_)}"
                )
                body = self.threshold(100 * b.factor * p95 / job.limit, b.for_, period)
            else:
                summary = "memory above the band CloudWatch expects from its history"
                body = self.band("Maximum", period, 2, b.for_)
            out.append(self.alarm("baseline", "baseline", "warning", summary, body))
        if job.anomaly.enabled:
            a = job.anomaly
            summary = f"memory over {a.zscore:g} standard deviations above what CloudWatch expects at this time"
            out.append(
                self.alarm(
                    "anomaly", "anomaly", "warning", summary, self.band("Average", _period(a.window), a.zscore, a.for_)
                )
            )
        if self.src.platform == "eks" and job.aws.dimensions is None:
            dims = [{"Name": k, "Value": v} for k, v in self.src.dimensions]
            body = {
                "Namespace": "ContainerInsights",
                "MetricName": "pod_number_of_container_restarts",
                "Dimensions": dims,
                "Statistic": "Maximum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "DatapointsToAlarm": 1,
                "Threshold": 0.0,
                "ComparisonOperator": "GreaterThanThreshold",
            }
            out.append(self.alarm("oom_killed", "oom-killed", "warning", "a container of the job restarted", body))
        return out


def alarms(
    spec: ResolvedSpec, job: ResolvedJob, topics: Mapping[str, str], notify_ok: bool = True
) -> list[dict[str, Any]]:
    """The job's ``PutMetricAlarm`` request bodies; ``topics`` maps severity to an SNS topic ARN."""
    return _Alarms(spec, job, topics, notify_ok).all()


def description(spec: ResolvedSpec, job: ResolvedJob, summary: str, what: str = "alarm") -> str:
    """Job context within CloudWatch's 1024 characters: the links are kept whole, the summary and
    the job's display name are shortened when they do not fit."""
    # Grafana finds a dashboard by uid alone: the slug (from the display name) is left out to save room
    dashboard = f"{spec.environment.grafana_url}/d/{job.dashboard_uid}?var-job={job.id}&from=now-6h&to=now"
    links = (
        f" Runbook: {job.runbook_url} Dashboard: {dashboard} Managed by memprov: change memprov.yaml, not this {what}."
    )

    def context(name: str) -> str:
        return (
            f" Job {name} ({job.id}), environment {spec.env}; model {job.model_name} {job.model_version}; "
            f"owner {job.owner}, team {job.team}; limit {format_size(job.limit)}B."
        )

    head = f"{summary[:1].upper()}{summary[1:]}."
    name = job.name
    over = len(head) + len(context(name)) + len(links) - DESCRIPTION_MAX
    if over > 0 and len(name) > 40:  # a long display name goes first: the id stays
        name = name[: max(len(name) - over - 1, 40)] + "…"
    room = DESCRIPTION_MAX - len(context(name)) - len(links)
    if len(head) > room:
        head = head[: max(room - 1, 0)] + "…"
    return (head + context(name) + links)[:DESCRIPTION_MAX]


def support(job: ResolvedJob) -> list[tuple[str, str, str]]:
    """(kind, level, why) for each enabled kind: native, approximated or unsupported on CloudWatch."""
    plat, out = platform(job), []
    if job.usage.enabled:
        out.append(("usage", NATIVE, ""))
    usual = usual_velocity(job)
    speed = "" if usual else "; no memory.baseline.velocity, so the usual velocity is min_velocity"
    if job.growth.enabled:
        out.append(
            (
                "growth",
                APPROXIMATED,
                "RATE() of per-period troughs; the model-load ramp is skipped by "
                f"requiring two periods instead of the warm-up{speed}",
            )
        )
    if job.time_to_oom.enabled:
        out.append(
            (
                "time_to_oom",
                APPROXIMATED,
                f"(100 - peak) / RATE(trough) between two periods instead of a fitted trend; no warm-up skip{speed}",
            )
        )
    if job.baseline_alert.enabled:
        if job.baseline and job.baseline.peak_p95:
            out.append(("baseline", NATIVE, ""))
        else:
            out.append(
                (
                    "baseline",
                    APPROXIMATED,
                    "no recorded p95 peak: an ANOMALY_DETECTION_BAND learnt by CloudWatch instead",
                )
            )
    if job.anomaly.enabled:
        out.append(
            (
                "anomaly",
                APPROXIMATED,
                "CloudWatch's anomaly model (up to two weeks, daily and weekly "
                f"seasonality) instead of a z-score against {job.anomaly.weeks} previous weeks; no min_stddev floor",
            )
        )
    if plat == "eks" and job.aws.dimensions is None:
        out.append(
            (
                "oom_killed",
                APPROXIMATED,
                "Container Insights counts container restarts, not OOM kills as "
                "such; a Job pod with restartPolicy Never is replaced, not restarted, and is not seen",
            )
        )
    else:
        why = {
            "ecs": "ECS publishes no OOM metric (a stopped task's exit code 137 is an EventBridge event)",
            "ec2": "the CloudWatch agent publishes no OOM-kill metric",
            "sagemaker": "a transform job killed for memory fails; that is an EventBridge event, not a metric",
        }
        out.append(("oom_killed", UNSUPPORTED, why.get(plat, "no OOM metric for overridden dimensions")))
    return out


def caveats(job: ResolvedJob) -> list[str]:
    """What the reader of a plan should know about where the job's alarms look."""
    src, out = source(job), []
    if job.aws.dimensions is None and src.platform == "eks" and not job.selector.pod:
        out.append(
            f"{job.id}: PodName is the job id (Container Insights names a Job's pods after the Job); "
            "set selector.pod or aws.dimensions if the workload is named otherwise"
        )
    if job.aws.dimensions is None and src.platform == "sagemaker":
        out.append(
            f"{job.id}: SageMaker metrics are per transform job (Host {job.aws.transform_job}/algo-1): a run "
            "under a new transform-job name needs aws.transform_job set for it"
        )
    return out
