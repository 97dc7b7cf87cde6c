"""Dashboards for jobs watched by a cloud monitoring service (CloudWatch, Azure Monitor, Cloud
Monitoring) instead of Prometheus.

A job whose backends include a cloud (cloudwatch, …) but not ``prometheus`` has no memprov
recording rules to chart; its dashboard queries the cloud's own Grafana data source for the same
series its alarms watch: memory as a percentage of the limit, with the warning and critical
thresholds drawn, the peak and the latest value, and which alert kinds the cloud expresses
natively, approximately or not at all. The ``datasource`` variable lists the data sources of
that plugin type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioner.kinds.base import Kind, Support
from provisioner.render import azure, cloudwatch, gcp
from provisioner.render.grafana.panels import (
    Layout,
    PanelBuilder,
    human,
    job_title,
    link,
    overview_url,
    steps,
    tags,
)
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec


@dataclass(frozen=True)
class Cloud:
    """How one cloud backend is charted: its Grafana plugin and the job's memory-percent queries."""

    backend: str
    title: str
    plugin: str  # Grafana data source type
    queries: Callable[[ResolvedSpec, ResolvedJob], list[dict[str, Any]]]  # the last one is shown
    support: Callable[[ResolvedJob], list[tuple[Kind, Support]]]
    alarms: str  # what the cloud calls its alerts, for texts
    available: Callable[[ResolvedJob], bool] = lambda job: False  # the series is memory *available*, in %
    fraction: Callable[[ResolvedJob], bool] = lambda job: False  # the series is a fraction (0–1), not percent


def _cloudwatch_queries(spec: ResolvedSpec, job: ResolvedJob) -> list[dict[str, Any]]:
    src = cloudwatch.source(job)
    region = str(spec.targets.blocks.get("cloudwatch", {}).get("region") or "default")
    base = {
        "queryMode": "Metrics",
        "region": region,
        "namespace": src.namespace,
        "dimensions": dict(src.dimensions),
        "matchExact": True,
        "period": "60",
        "metricQueryType": 0,
        "metricEditorMode": 0,
        "statistic": "Maximum",
    }
    if src.metric is not None:
        return [{**base, "id": "m", "metricName": src.metric, "label": "memory, % of limit"}]
    return [  # ECS: used / reserved, as the alarms compute it
        {**base, "id": "used", "metricName": "MemoryUtilized", "hide": True},
        {**base, "id": "reserved", "metricName": "MemoryReserved", "hide": True},
        {
            **base,
            "id": "m",
            "metricEditorMode": 1,
            "expression": "100 * used / reserved",
            "label": "memory, % of reserved",
        },
    ]


def _azure_queries(spec: ResolvedSpec, job: ResolvedJob) -> list[dict[str, Any]]:
    src = azure.source(job)
    parts = src.scope.strip("/").split("/")  # subscriptions/S/resourceGroups/RG/providers/NS/TYPE/NAME
    ids = {
        parts[i].lower(): parts[i + 1]
        for i in range(0, len(parts) - 1, 2)
        if parts[i] in ("subscriptions", "resourceGroups")
    }
    resource = {
        "subscription": ids.get("subscriptions", ""),
        "resourceGroup": ids.get("resourcegroups", ""),
        "metricNamespace": src.namespace,
        "resourceName": parts[-1] if len(parts) >= 8 else "",
        "region": src.region,
    }
    return [
        {
            "queryType": "Azure Monitor",
            "subscription": resource["subscription"],
            "azureMonitor": {
                "resources": [resource],
                "metricNamespace": src.namespace,
                "metricName": src.metric,
                "aggregation": "Maximum",
                "timeGrain": "auto",
                "dimensionFilters": [
                    {"dimension": k, "operator": "eq", "filters": ["*"] if v == "*" else [v]} for k, v in src.dimensions
                ],
            },
        }
    ]


def _azure_available(job: ResolvedJob) -> bool:
    return azure.source(job).available


def _gcp_filters(clauses: str) -> list[str]:
    """A Cloud Monitoring filter (``a = "x" AND b = monitoring.regex.full_match("y")``) as the
    Grafana plugin's filter tokens: ``["a", "=", "x", "AND", "b", "=~", "y"]``."""
    import json
    import re

    out: list[str] = []
    for clause in clauses.split(" AND "):
        m = re.match(r"^\s*(\S+)\s*=\s*(.+?)\s*$", clause)
        if not m:
            continue
        key, value = m.group(1).replace(".labels.", ".label."), m.group(2)
        regex = re.match(r"^monitoring\.regex\.full_match\((.*)\)$", value)
        op, literal = ("=~", regex.group(1)) if regex else ("=", value)
        text = json.loads(literal) if literal.startswith('"') else literal
        out += [*(["AND"] if out else []), key, op, str(text)]
    return out


def _gcp_queries(spec: ResolvedSpec, job: ResolvedJob) -> list[dict[str, Any]]:
    src = gcp.source(job)
    project = job.gcp.project or str(spec.targets.blocks.get("gcp", {}).get("project") or "")
    return [
        {
            "queryType": "timeSeriesList",
            "timeSeriesList": {
                "projectName": project,
                "filters": _gcp_filters(f"{src.usage} AND {src.resource}"),
                "perSeriesAligner": "ALIGN_MAX",
                "crossSeriesReducer": "REDUCE_MAX",
                "alignmentPeriod": "cloud-monitoring-auto",
                "groupBys": [],
                "preprocessor": "none",
                "view": "FULL",
            },
        }
    ]


def _gcp_fraction(job: ResolvedJob) -> bool:
    return gcp.source(job).scale == 1.0


CLOUDS = {
    "cloudwatch": Cloud("cloudwatch", "CloudWatch", "cloudwatch", _cloudwatch_queries, cloudwatch.support, "alarms"),
    "azure": Cloud(
        "azure",
        "Azure Monitor",
        "grafana-azure-monitor-datasource",
        _azure_queries,
        azure.support,
        "metric alert rules",
        _azure_available,
    ),
    "gcp": Cloud(
        "gcp",
        "Cloud Monitoring",
        "stackdriver",
        _gcp_queries,
        gcp.support,
        "alert policies",
        fraction=_gcp_fraction,
    ),
}


def cloud_of(job: ResolvedJob) -> Cloud | None:
    """The cloud that charts ``job``: the first cloud backend of a job without Prometheus rules."""
    if "prometheus" in job.backends:
        return None
    return next((CLOUDS[b] for b in job.backends if b in CLOUDS), None)


def datasource(cloud: Cloud) -> dict[str, str]:
    return {"type": cloud.plugin, "uid": "${datasource}"}


def cloud_job_layout(b: PanelBuilder, spec: ResolvedSpec, job: ResolvedJob, cloud: Cloud) -> Layout:
    """The job's dashboard on ``cloud``'s data source (percent of the limit, 0–100)."""
    queries = cloud.queries(spec, job)
    refs = [chr(ord("A") + i) for i in range(len(queries))]
    targets = [b.query(q, ref) for q, ref in zip(queries, refs, strict=True)]
    warn, crit = 100 * job.warning_ratio, 100 * job.critical_ratio
    pct_steps = steps(("orange", warn), ("red", crit))
    what, lines = "Memory, % of limit", f"Dashed lines: warning at {warn:.0f} %, critical at {crit:.0f} %."
    unit, top = "percent", 100.0
    if cloud.fraction(job):  # e.g. GKE's limit_utilization: 0–1
        unit, top = "percentunit", 1.0
        pct_steps = steps(("orange", job.warning_ratio), ("red", job.critical_ratio))
    elif cloud.available(job):  # e.g. a VM's Available Memory Percentage: the alerts fire below 100 - X
        pct_steps = [
            {"color": "red", "value": None},
            {"color": "orange", "value": round(100 - crit, 4)},
            {"color": "green", "value": round(100 - warn, 4)},
        ]
        what = "Available memory, %"
        lines = f"The alerts fire below {100 - warn:.0f} % available (warning) and {100 - crit:.0f} % (critical)."
    rows = "\n".join(f"| {k.value} | {s.level.value} | {s.why or '—'} |" for k, s in cloud.support(job))
    support = (
        f"How memprov's alert kinds are expressed as {cloud.title} {cloud.alarms} for this job:\n\n"
        f"| kind | on {cloud.title} | how |\n|---|---|---|\n{rows}\n"
    )
    about = (
        f"**{job.name}** (`{job.id}`), model {job.model_name} {job.model_version}, owner {job.owner}. "
        f"{job.description}\n\nLimit {human(job.limit)}; warning at {human(job.warning_bytes)} ({warn:.0f} %), "
        f"critical at {human(job.critical_bytes)} ({crit:.0f} %). This job is watched by {cloud.title} "
        f"{cloud.alarms} (no Prometheus rules), so this dashboard reads {cloud.title} directly. "
        f"[Runbook]({job.runbook_url})"
    )
    panels = [
        b.row(f"Memory against the limit ({cloud.title})", 0),
        b.timeseries(
            what,
            f"The series the {cloud.title} {cloud.alarms} watch, as a percentage (limit {human(job.limit)}). {lines}",
            targets,
            b.pos(0, 1, 16, 9),
            unit,
            pct_steps,
            "dashed",
            defaults={"min": 0, "max": top},
        ),
        b.gauge(
            f"{what} (now)",
            "Latest value, with the same thresholds.",
            targets,
            b.pos(16, 1, 8, 9),
            pct_steps,
            unit=unit,
            maximum=top,
        ),
        b.row("Alert kinds", 10),
        b.text(f"On {cloud.title}", support, b.pos(0, 11, 12, 9)),
        b.text("About this job", about, b.pos(12, 11, 12, 9)),
    ]
    return Layout(
        uid=job.dashboard_uid,
        title=job_title(spec, job),
        description=f"Memory of batch job {job.id} against its limit, from {cloud.title}. Generated by memprov; "
        "do not edit.",
        panels=panels,
        annotations=[],
        links=[
            link("Runbook", job.runbook_url, icon="doc", blank=True),
            link(f"All jobs ({spec.env})", overview_url(spec), icon="dashboard"),
            link(f"memprov {spec.env}", kind="dashboards", tags=tags(spec)[:2], dropdown=True),
        ],
        job=job,
        node_label=None,
        datasource=cloud.plugin,
    )
