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
- growth: a PromQL condition, ``deriv()`` of the troughs (``min_over_time`` over the trough window) as
  memprov's own rule: on the job's Prometheus series with ``gcp.managed_prometheus``, else on the
  used-bytes system metric as Cloud Monitoring's PromQL names it (``kubernetes_io:container_memory_
  used_bytes``). Not ``ALIGN_RATE``: the memory metrics are GAUGEs, and the API refuses rate and delta
  aligners on gauges ("The aligner cannot be applied to metrics with kind GAUGE");
- baseline: a threshold at ``factor`` x the recorded p95 peak; without a recorded peak, and for
  anomaly, a ``condition_prometheus_query_language`` when the job says ``gcp.managed_prometheus``
  (the same z-score as memprov's Prometheus rules, written on the raw series because Managed
  Prometheus does not have memprov's recording rules);
- oom_killed: GKE's container ``restart_count`` increasing (restarts, not OOM kills as such).

Missing data evaluates as *inactive* on every condition, deliberately: a batch job that is not
running sends no points, which is neither an incident nor a reason to keep one open after the run
ended. How each kind is expressed (and whether natively) is one table, :data:`TABLE`, that both
renders the policies and tells the plan (:func:`support`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from provisioner.core.names import ownership_tags, resource_name
from provisioner.core.promql import duration, number
from provisioner.core.units import format_duration, format_size
from provisioner.kinds import anomaly, baseline, growth, time_to_oom, usage
from provisioner.kinds.base import Kind, Support
from provisioner.render import cloud
from provisioner.render.cloud import Rendering
from provisioner.render.gcp_source import REGEX_LABELS, Source, platform, quote, source, used_promql
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

__all__ = ["TABLE", "Source", "caveats", "needs", "platform", "policies", "quote", "source", "support", "used_promql"]

FORECAST_MIN, FORECAST_MAX = 3600.0, 216_000.0  # forecast_horizon: 1h to 60h
MISSING = "EVALUATION_MISSING_DATA_INACTIVE"  # batch jobs are not always running: no data is not an incident
SUBJECT_MAX = 255
CONTENT_MAX = 8192
HISTORY = "14d"  # as the Prometheus rules: history used when the spec gives no baseline
SEVERITY = {"warning": "WARNING", "critical": "CRITICAL"}


def seconds(value: float) -> str:
    """A protobuf Duration in JSON: ``"300s"``."""
    return f"{round(value)}s"


def _g(x: float) -> float:
    return float(f"{x:.6g}")


def _period(value: float) -> int:
    """An alignment period covering ``value``: whole minutes, at least one."""
    return max(60, math.ceil(value / 60) * 60)


class Policies:
    """One job's policies: the job, its source, its channels, and the shapes every kind's policies take."""

    def __init__(
        self, spec: ResolvedSpec, job: ResolvedJob, channels: Mapping[str, Sequence[str]], strategy: dict[str, Any]
    ) -> None:
        self.spec, self.job, self.src = spec, job, source(job)
        self.channels, self.strategy = channels, strategy

    def policy(self, kind: str, suffix: str, severity: str, summary: str, condition: dict[str, Any]) -> dict[str, Any]:
        where = self.src.platform if "conditionThreshold" in condition else "promql"
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
            "documentation": documentation(spec, job, severity, summary, where),
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
        return f"{ws}\n  > {number(factor)} * quantile_over_time(0.95, ({ws})[{HISTORY}:5m])"

    def anomaly_query(self) -> str:
        """memprov's z-score: the window's mean against the same window in previous weeks."""
        a, ws = anomaly.KIND.of(self.job), self.job_ws
        w = duration(a.window)
        offsets = [duration(o) for o in a.offsets]
        means = [f"avg_over_time(({ws})[{w}:1m] offset {o})" for o in offsets]
        sds = [f"stddev_over_time(({ws})[{w}:1m] offset {o})" for o in offsets]
        n = number(a.weeks)
        mean = "(\n    " + "\n    + ".join(means) + f"\n  ) / {n}"
        within = " + ".join(f"{sd} ^ 2" for sd in sds)
        across = " + ".join(f"({m} - {mean}) ^ 2" for m in means)
        sd = f"sqrt(({within}) / {n} + ({across}) / {n})"
        floor = f"{number(a.min_stddev)} * {mean}"
        z = number(a.zscore)
        return f"(avg_over_time(({ws})[{w}:1m]) - {mean})\n/ (({sd} > {floor}) or {floor})\n  > {z}\nand {ws}"


# --- the kinds ------------------------------------------------------------------------------------
def _usage(c: Policies) -> list[dict[str, Any]]:
    out = []
    for severity, ratio, hold in usage.KIND.of(c.job).tiers():
        summary = f"memory above {ratio:.0%} of the limit for {format_duration(hold)}"
        cond = c.threshold(c.src.usage, ratio * c.src.scale, hold, c.job.gcp.period)
        out.append(c.policy("usage", f"usage-{severity}", severity, summary, cond))
    return out


def _growth(c: Policies) -> list[dict[str, Any]]:
    g, job = growth.KIND.of(c.job), c.job
    series = job.sources.working_set if job.gcp.managed_prometheus else c.src.used_promql
    trough = duration(job.trough_window)
    query = f"deriv((min_over_time({series}[{trough}]))[{duration(g.window)}:1m])\n  > {number(g.threshold)}"
    summary = f"memory troughs growing over {g.factor:g}x the usual velocity ({format_size(g.threshold * 60)}B/min)"
    cond = c.promql(query, g.hold, "BatchJobMemoryGrowthFast", "warning")
    return [c.policy("growth", "growth", "warning", summary, cond)]


def _time_to_oom(c: Policies) -> list[dict[str, Any]]:
    t, out = time_to_oom.KIND.of(c.job), []
    tiers = [("critical", t.horizon, t.hold)]
    if t.warning_horizon is not None:
        tiers.insert(0, ("warning", t.warning_horizon, t.warning_hold))
    for severity, horizon, hold in tiers:
        forecast = min(max(horizon, FORECAST_MIN), FORECAST_MAX)
        summary = f"forecast to reach the memory limit within {format_duration(forecast)}"
        cond = c.threshold(c.src.usage, c.src.scale, hold, c.job.trough_window, aligner="ALIGN_MEAN")
        cond["conditionThreshold"]["forecastOptions"] = {"forecastHorizon": seconds(forecast)}
        out.append(c.policy("time_to_oom", f"time-to-oom-{severity}", severity, summary, cond))
    return out


def _baseline(c: Policies) -> list[dict[str, Any]]:
    b, job = baseline.KIND.of(c.job), c.job
    if b.p95:
        summary = f"memory above {b.factor:g}x the usual p95 peak ({format_size(b.p95)}B) for {format_duration(b.hold)}"
        cond = c.threshold(c.src.usage, c.src.scale * b.factor * b.p95 / job.limit, b.hold, job.gcp.period)
    else:
        summary = f"memory above {b.factor:g}x the p95 of the last {HISTORY} for {format_duration(b.hold)}"
        cond = c.promql(c.baseline_query(b.factor), b.hold, "BatchJobMemoryAboveBaseline", "warning")
    return [c.policy("baseline", "baseline", "warning", summary, cond)]


def _anomaly(c: Policies) -> list[dict[str, Any]]:
    a = anomaly.KIND.of(c.job)
    summary = f"memory over {a.zscore:g} standard deviations above the same time in previous weeks"
    cond = c.promql(c.anomaly_query(), a.hold, "BatchJobMemoryAnomaly", "warning")
    return [c.policy("anomaly", "anomaly", "warning", summary, cond)]


def _oom_killed(c: Policies) -> list[dict[str, Any]]:
    metric = 'metric.type = "kubernetes.io/container/restart_count"'
    cond = c.threshold(metric, 0, 0, 300, aligner="ALIGN_DELTA")
    return [c.policy("oom_killed", "oom-killed", "warning", "a container of the job restarted", cond)]


def _machine(job: ResolvedJob) -> str:
    """Why the series is the whole VM's, not the job's (a process on Compute Engine); empty otherwise."""
    if job.runtime == "process" and platform(job) == "gce" and job.gcp.filter is None and not job.gcp.metric:
        return "the Ops Agent's memory of the whole VM, not of the process"
    return ""


def _growth_support(job: ResolvedJob) -> Support:
    if not job.gcp.managed_prometheus and job.gcp.filter is not None:
        return Support.unsupported(
            "Cloud Monitoring's memory metrics are GAUGEs (no rate aligner) and an overridden gcp.filter has no "
            "PromQL equivalent: set gcp.managed_prometheus, or leave gcp.filter unset"
        )
    speed = "" if job.usual_velocity else "; no memory.baseline.velocity, so the usual velocity is min_velocity"
    on = "the job's Prometheus series" if job.gcp.managed_prometheus else "the used-bytes system metric"
    return Support.approximated(f"PromQL deriv() of the troughs on {on}, as memprov's rule; no warm-up skip{speed}")


def _time_to_oom_support(job: ResolvedJob) -> Support:
    t = time_to_oom.KIND.of(job)
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
    return Support.approximated(f"Cloud Monitoring's forecast of the mean usage instead of the troughs' trend{extra}")


def _baseline_support(job: ResolvedJob) -> Support:
    if baseline.KIND.of(job).p95:
        return Support.native()
    if job.gcp.managed_prometheus:
        return Support.native("PromQL condition over Managed Service for Prometheus")
    return Support.unsupported(
        "no recorded p95 peak and no PromQL: record memory.baseline or set gcp.managed_prometheus"
    )


def _anomaly_support(job: ResolvedJob) -> Support:
    if job.gcp.managed_prometheus:
        return Support.native("PromQL condition over Managed Service for Prometheus")
    return Support.unsupported(
        "Cloud Monitoring has no seasonal z-score outside PromQL; set gcp.managed_prometheus "
        "if Managed Service for Prometheus collects the job's series"
    )


def _oom_support(job: ResolvedJob) -> Support:
    plat = platform(job)
    if plat == "gke" and job.gcp.filter is None:
        return Support.approximated(
            "GKE counts container restarts, not OOM kills as such; a Job pod with restartPolicy Never "
            "is replaced, not restarted, and is not seen"
        )
    why = "the Ops Agent publishes no OOM-kill metric" if plat == "gce" else "no OOM metric for an overridden filter"
    return Support.unsupported(why)


def _series(job: ResolvedJob) -> tuple[str, ...]:
    """The series the policies read, and what must publish it."""
    src = source(job)
    agent = {
        "gke": "GKE system metrics (on by default in GKE clusters)",
        "gce": "the Ops Agent on the instance (memory metrics)",
    }.get(src.platform, "the metrics named in gcp.filter / gcp.metric")
    return (f"{src.usage} AND {src.resource}", agent)


def _promql_needs(job: ResolvedJob) -> tuple[str, ...]:
    if job.gcp.managed_prometheus:
        return ("the job's Prometheus series in Managed Service for Prometheus", "a PromQL condition")
    return (*_series(job), "a PromQL condition over the system metric (Cloud Monitoring's PromQL)")


def _oom_needs(job: ResolvedJob) -> tuple[str, ...]:
    return ("kubernetes.io/container/restart_count AND " + source(job).resource, "GKE system metrics")


TABLE: dict[Kind, Rendering[Policies]] = {
    Kind.USAGE: Rendering(lambda job: Support.native(), _usage, _series),
    Kind.GROWTH: Rendering(_growth_support, _growth, _promql_needs),
    Kind.TIME_TO_OOM: Rendering(_time_to_oom_support, _time_to_oom, _series),
    Kind.BASELINE: Rendering(_baseline_support, _baseline, _series),
    Kind.ANOMALY: Rendering(_anomaly_support, _anomaly, _promql_needs),
    Kind.OOM_KILLED: Rendering(_oom_support, _oom_killed, _oom_needs),
}


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
    return cloud.render(TABLE, job, Policies(spec, job, channels, strategy))


def dashboard_link(spec: ResolvedSpec, job: ResolvedJob) -> str:
    return f"{spec.environment.grafana_url}/d/{job.dashboard_uid}?var-job={job.id}&from=now-6h&to=now"


def documentation(spec: ResolvedSpec, job: ResolvedJob, severity: str, summary: str, plat: str) -> dict[str, Any]:
    """Markdown with the job's context and links; the subject is what the notification's title says."""
    # a PromQL condition's variables are the labels of its result (alert.proto), which max() drops: none used
    where = {
        "gke": "Pod `${resource.label.pod_name}`",
        "gce": "Instance `${resource.label.instance_id}`",
    }.get(plat, f"Job `{job.id}`, every pod or instance of it")
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


def needs(job: ResolvedJob) -> dict[Kind, tuple[str, ...]]:
    """Per enabled kind, the metrics and agent settings its Cloud Monitoring alert needs (as the table states them)."""
    return cloud.needs(TABLE, job)


def support(job: ResolvedJob) -> list[tuple[Kind, Support]]:
    """Per enabled kind: native, approximated or unsupported on Cloud Monitoring, and why."""
    return cloud.supports(TABLE, job, "Cloud Monitoring", _machine)


def caveats(job: ResolvedJob) -> list[str]:
    """What the reader of a plan should know about where the job's policies look."""
    out = []
    ignored = sorted(k for k in job.selector.regex if k not in REGEX_LABELS)
    if platform(job) == "gke" and job.gcp.filter is None and ignored:
        out.append(f"{job.id}: selector.regex on {', '.join(ignored)} has no GKE resource label; set gcp.filter")
    return out
