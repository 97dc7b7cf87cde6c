"""Cloud Monitoring alert policies for each job: the exact ``AlertPolicy`` bodies (REST JSON, as
``gcloud monitoring policies create --policy-from-file`` and ``MessageToDict`` write them), and
how faithfully each alert kind maps onto Cloud Monitoring.

Usage and the baseline threshold watch the job's memory **as a fraction of its limit**: GKE's
``kubernetes.io/container/memory/limit_utilization`` of the *non-evictable* memory (the working
set, what the OOM killer counts), or the Ops Agent's ``agent.googleapis.com/memory/percent_used``
(state ``used``) on Compute Engine, in percent. Then:

- usage: ``condition_threshold`` with ``duration`` for the sustained ``for``;
- time to OOM: the same series with ``forecast_options`` (Cloud Monitoring's own forecast crossing
  the limit within the horizon; the API takes horizons of 1h to 60h);
- growth: an ``ALIGN_RATE`` threshold on the used bytes (bytes per second, over ``growth.window``);
- baseline: a threshold at ``factor`` x the recorded p95 peak; without a recorded peak, and for
  anomaly, a ``condition_prometheus_query_language`` when the job says ``gcp.managed_prometheus``
  (the same z-score as memprov's Prometheus rules, written on the raw series because Managed
  Prometheus does not have memprov's recording rules);
- oom_killed: GKE's container ``restart_count`` increasing (restarts, not OOM kills as such).

Missing data evaluates as *inactive* on every condition, deliberately: a batch job that is not
running sends no points, which is neither an incident nor a reason to keep one open after the run
ended. What Cloud Monitoring cannot express is returned by :func:`support` so the plan says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.core.names import ownership_tags, resource_name
from provisioner.core.units import format_duration, format_size
from provisioner.render.prometheus.rules import _dur, _num, growth_floor
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

NATIVE, APPROXIMATED, UNSUPPORTED = "native", "approximated", "unsupported"
FORECAST_MIN, FORECAST_MAX = 3600.0, 216_000.0  # forecast_horizon: 1h to 60h
MISSING = "EVALUATION_MISSING_DATA_INACTIVE"  # batch jobs are not always running: no data is not an incident
SUBJECT_MAX = 255
CONTENT_MAX = 8192
HISTORY = "14d"  # as the Prometheus rules: history used when the spec gives no baseline
SEVERITY = {"warning": "WARNING", "critical": "CRITICAL"}
REGEX_LABELS = {"namespace": "namespace_name", "pod": "pod_name", "container": "container_name"}


def quote(value: str) -> str:
    """A Monitoring-filter string literal, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def seconds(value: float) -> str:
    """A protobuf Duration in JSON: ``"300s"``."""
    return f"{round(value)}s"


def _g(x: float) -> float:
    return float(f"{x:.6g}")


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
    return Source(plat, resource, usage, f"{used} AND {label}", scale)


def usual_velocity(job: ResolvedJob) -> float | None:
    """Bytes per second the job's troughs usually grow by, when recorded."""
    b = job.baseline
    return float(b.velocity) / 60 if b is not None and b.velocity is not None else None


def _period(value: float) -> int:
    """An alignment period covering ``value``: whole minutes, at least one."""
    return max(60, math.ceil(value / 60) * 60)


class _Policies:
    """One job's policies; a class only to share the job, its source and its context."""

    def __init__(
        self, spec: ResolvedSpec, job: ResolvedJob, channels: Mapping[str, Sequence[str]], strategy: dict[str, Any]
    ) -> None:
        self.spec, self.job, self.src = spec, job, source(job)
        self.channels, self.strategy = channels, strategy

    def policy(self, kind: str, suffix: str, severity: str, summary: str, condition: dict[str, Any]) -> dict[str, Any]:
        spec, job = self.spec, self.job
        labels = {
            **ownership_tags(spec.env, spec.name),
            "memprov-job": job.id,
            "memprov-kind": kind,
            "memprov-severity": severity,
        }
        name = resource_name(spec.env, job.id, suffix)
        body: dict[str, Any] = {
            "displayName": name,
            "documentation": documentation(spec, job, severity, summary, self.src.platform),
            "userLabels": dict(sorted(labels.items())),
            "conditions": [{"displayName": summary[:1].upper() + summary[1:], **condition}],
            "combiner": "OR",
            "enabled": True,
            "notificationChannels": list(self.channels.get(severity, ())),
            "alertStrategy": self.strategy,
        }
        if severity in SEVERITY:  # info: no severity (SEVERITY_UNSPECIFIED, which the API leaves out)
            body["severity"] = SEVERITY[severity]
        return body

    def threshold(
        self, metric: str, value: float, hold: float, period: float, aligner: str = "ALIGN_MAX"
    ) -> dict[str, Any]:
        return {
            "conditionThreshold": {
                "filter": self.src.filter(metric),
                "aggregations": [{"alignmentPeriod": seconds(_period(period)), "perSeriesAligner": aligner}],
                "comparison": "COMPARISON_GT",
                "thresholdValue": _g(value),
                "duration": seconds(hold),
                "trigger": {"count": 1},
                "evaluationMissingData": MISSING,
            }
        }

    def promql(self, query: str, hold: float, alert: str, severity: str) -> dict[str, Any]:
        return {
            "conditionPrometheusQueryLanguage": {
                "query": query,
                "duration": seconds(hold),
                "evaluationInterval": "60s",
                "labels": {"memprov_job": self.job.id, "severity": severity},
                "ruleGroup": f"memprov-{self.spec.env}-{self.job.id}",
                "alertRule": alert,
            }
        }

    # --- PromQL on the raw series (Managed Service for Prometheus) ---------------------------------
    @property
    def job_ws(self) -> str:
        return f"max({self.job.sources.working_set})"

    def baseline_query(self, factor: float) -> str:
        ws = self.job_ws
        return f"{ws}\n  > {_num(factor)} * quantile_over_time(0.95, ({ws})[{HISTORY}:5m])"

    def anomaly_query(self) -> str:
        """memprov's z-score: the window's mean against the same window in previous weeks."""
        a, ws = self.job.anomaly, self.job_ws
        w = _dur(a.window)
        offsets = [_dur(a.compare * k) for k in range(1, a.weeks + 1)]
        means = [f"avg_over_time(({ws})[{w}:1m] offset {o})" for o in offsets]
        sds = [f"stddev_over_time(({ws})[{w}:1m] offset {o})" for o in offsets]
        n = _num(a.weeks)
        mean = "(\n    " + "\n    + ".join(means) + f"\n  ) / {n}"
        within = " + ".join(f"{sd} ^ 2" for sd in sds)
        across = " + ".join(f"({m} - {mean}) ^ 2" for m in means)
        sd = f"sqrt(({within}) / {n} + ({across}) / {n})"
        floor = f"{_num(a.min_stddev)} * {mean}"
        return (
            f"(avg_over_time(({ws})[{w}:1m]) - {mean})\n/ (({sd} > {floor}) or {floor})\n  > {_num(a.zscore)}\nand {ws}"
        )

    # --- the kinds ---------------------------------------------------------------------------------
    def all(self) -> list[dict[str, Any]]:
        job, src, out = self.job, self.src, []
        scale, period = src.scale, job.gcp.period
        if job.usage.enabled:
            for severity, ratio, hold in (
                ("warning", job.warning_ratio, job.usage.warning_for),
                ("critical", job.critical_ratio, job.usage.critical_for),
            ):
                summary = f"memory above {ratio:.0%} of the limit for {format_duration(hold)}"
                cond = self.threshold(src.usage, ratio * scale, hold, period)
                out.append(self.policy("usage", f"usage-{severity}", severity, summary, cond))
        if job.growth.enabled:
            g = job.growth
            usual = usual_velocity(job)
            limit = max(g.factor * usual, growth_floor(job)) if usual else growth_floor(job)
            summary = f"memory growing over {g.factor:g}x the usual velocity ({format_size(limit * 60)}B/min)"
            cond = self.threshold(src.used, limit, g.for_, g.window, aligner="ALIGN_RATE")
            out.append(self.policy("growth", "growth", "warning", summary, cond))
        if job.time_to_oom.enabled:
            t = job.time_to_oom
            tiers = [("critical", t.horizon, t.for_)]
            if t.warning_horizon is not None:
                tiers.insert(0, ("warning", t.warning_horizon, t.warning_for))
            for severity, horizon, hold in tiers:
                forecast = min(max(horizon, FORECAST_MIN), FORECAST_MAX)
                summary = f"forecast to reach the memory limit within {format_duration(forecast)}"
                cond = self.threshold(src.usage, scale, hold, job.trough_window, aligner="ALIGN_MEAN")
                cond["conditionThreshold"]["forecastOptions"] = {"forecastHorizon": seconds(forecast)}
                out.append(self.policy("time_to_oom", f"time-to-oom-{severity}", severity, summary, cond))
        if job.baseline_alert.enabled:
            b = job.baseline_alert
            p95 = job.baseline.peak_p95 if job.baseline else None
            if p95:
                summary = (
                    f"memory above {b.factor:g}x the usual p95 peak ({format_size(p95)}B) for {format_duration(b.for_)}"
                )
                cond = self.threshold(src.usage, scale * b.factor * p95 / job.limit, b.for_, period)
                out.append(self.policy("baseline", "baseline", "warning", summary, cond))
            elif job.gcp.managed_prometheus:
                summary = f"memory above {b.factor:g}x the p95 of the last {HISTORY} for {format_duration(b.for_)}"
                cond = self.promql(self.baseline_query(b.factor), b.for_, "BatchJobMemoryAboveBaseline", "warning")
                out.append(self.policy("baseline", "baseline", "warning", summary, cond))
        if job.anomaly.enabled and job.gcp.managed_prometheus:
            a = job.anomaly
            summary = f"memory over {a.zscore:g} standard deviations above the same time in previous weeks"
            cond = self.promql(self.anomaly_query(), a.for_, "BatchJobMemoryAnomaly", "warning")
            out.append(self.policy("anomaly", "anomaly", "warning", summary, cond))
        if src.platform == "gke" and job.gcp.filter is None:
            metric = 'metric.type = "kubernetes.io/container/restart_count"'
            cond = self.threshold(metric, 0, 0, 300, aligner="ALIGN_DELTA")
            out.append(self.policy("oom_killed", "oom-killed", "warning", "a container of the job restarted", cond))
        return out


def policies(
    spec: ResolvedSpec,
    job: ResolvedJob,
    channels: Mapping[str, Sequence[str]],
    auto_close: float = 1800.0,
    rate_limit: float | None = None,
) -> list[dict[str, Any]]:
    """The job's ``AlertPolicy`` bodies; ``channels`` maps severity to notification channel names."""
    strategy: dict[str, Any] = {"autoClose": seconds(auto_close)}
    if rate_limit is not None:
        strategy["notificationRateLimit"] = {"period": seconds(rate_limit)}
    return _Policies(spec, job, channels, strategy).all()


def dashboard_link(spec: ResolvedSpec, job: ResolvedJob) -> str:
    return f"{spec.environment.grafana_url}/d/{job.dashboard_uid}?var-job={job.id}&from=now-6h&to=now"


def documentation(spec: ResolvedSpec, job: ResolvedJob, severity: str, summary: str, plat: str) -> dict[str, Any]:
    """Markdown with the job's context and links; the subject is what the notification's title says."""
    where = "Pod `${resource.label.pod_name}`" if plat == "gke" else "Instance `${resource.label.instance_id}`"
    content = "\n".join(
        [
            f"**{summary[:1].upper()}{summary[1:]}.** {where}.",
            "",
            f"- Job: {job.name} (`{job.id}`), environment `{spec.env}`",
            f"- Model: {job.model_name} {job.model_version}",
            f"- Owner: {job.owner}, team {job.team}",
            f"- Memory limit: {format_size(job.limit)}B",
            f"- [Dashboard]({dashboard_link(spec, job)}) · [Runbook]({job.runbook_url})",
            "",
            "Managed by memprov: change memprov.yaml, not this policy.",
        ]
    )
    subject = f"[{severity.upper()}] {job.name}: {summary}"
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    return {
        "content": content[:CONTENT_MAX],
        "mimeType": "text/markdown",
        "subject": subject,
        "links": [
            {"displayName": "Dashboard", "url": dashboard_link(spec, job)},
            {"displayName": "Runbook", "url": job.runbook_url},
        ],
    }


def support(job: ResolvedJob) -> list[tuple[str, str, str]]:
    """(kind, level, why) for each enabled kind: native, approximated or unsupported on Cloud Monitoring."""
    plat, mp, out = platform(job), job.gcp.managed_prometheus, []
    if job.usage.enabled:
        if job.runtime == "process" and plat == "gce":
            out.append(("usage", APPROXIMATED, "the Ops Agent's memory of the whole VM, not of the process"))
        else:
            out.append(("usage", NATIVE, ""))
    speed = "" if usual_velocity(job) else "; no memory.baseline.velocity, so the usual velocity is min_velocity"
    if job.growth.enabled:
        out.append(
            (
                "growth",
                APPROXIMATED,
                "ALIGN_RATE of the used bytes between the ends of each alignment period, not the troughs' "
                f"fitted slope; no warm-up skip{speed}",
            )
        )
    if job.time_to_oom.enabled:
        t = job.time_to_oom
        horizons = [h for h in (t.horizon, t.warning_horizon) if h is not None]
        extra = "".join(
            f"; horizon {format_duration(h)} {verb} Cloud Monitoring's {edge} of {format_duration(limit)}"
            for h in horizons
            for verb, edge, limit, off in (
                ("raised to", "minimum", FORECAST_MIN, h < FORECAST_MIN),
                ("capped at", "maximum", FORECAST_MAX, h > FORECAST_MAX),
            )
            if off
        )
        out.append(
            (
                "time_to_oom",
                APPROXIMATED,
                f"Cloud Monitoring's forecast of the mean usage instead of the troughs' trend{extra}",
            )
        )
    if job.baseline_alert.enabled:
        if job.baseline and job.baseline.peak_p95:
            out.append(("baseline", NATIVE, ""))
        elif mp:
            out.append(("baseline", NATIVE, "PromQL condition over Managed Service for Prometheus"))
        else:
            out.append(
                (
                    "baseline",
                    UNSUPPORTED,
                    "no recorded p95 peak and no PromQL: record memory.baseline or set gcp.managed_prometheus",
                )
            )
    if job.anomaly.enabled:
        if mp:
            out.append(("anomaly", NATIVE, "PromQL condition over Managed Service for Prometheus"))
        else:
            out.append(
                (
                    "anomaly",
                    UNSUPPORTED,
                    "Cloud Monitoring has no seasonal z-score outside PromQL; set gcp.managed_prometheus "
                    "if Managed Service for Prometheus collects the job's series",
                )
            )
    if plat == "gke" and job.gcp.filter is None:
        out.append(
            (
                "oom_killed",
                APPROXIMATED,
                "GKE counts container restarts, not OOM kills as such; a Job pod with restartPolicy Never "
                "is replaced, not restarted, and is not seen",
            )
        )
    else:
        why = (
            "the Ops Agent publishes no OOM-kill metric" if plat == "gce" else "no OOM metric for an overridden filter"
        )
        out.append(("oom_killed", UNSUPPORTED, why))
    return out


def caveats(job: ResolvedJob) -> list[str]:
    """What the reader of a plan should know about where the job's policies look."""
    out = []
    ignored = sorted(k for k in job.selector.regex if k not in REGEX_LABELS)
    if platform(job) == "gke" and job.gcp.filter is None and ignored:
        out.append(f"{job.id}: selector.regex on {', '.join(ignored)} has no GKE resource label; set gcp.filter")
    return out
