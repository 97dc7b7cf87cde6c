"""Dashboards for jobs watched by a cloud monitoring service instead of Prometheus.

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

from provisioner.render.grafana_panels import (
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
    support: Callable[[ResolvedJob], list[tuple[str, str, str]]]
    alarms: str  # what the cloud calls its alerts, for texts
    available: Callable[[ResolvedJob], bool] = lambda job: False  # the series is memory *available*, in %


def _cloudwatch_queries(spec: ResolvedSpec, job: ResolvedJob) -> list[dict[str, Any]]:
    from provisioner.render.cloudwatch import source

    src = source(job)
    region = getattr(spec.targets.get("cloudwatch"), "region", None) or "default"
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


def _cloudwatch_support(job: ResolvedJob) -> list[tuple[str, str, str]]:
    from provisioner.render.cloudwatch import support

    return support(job)


def _azure_queries(spec: ResolvedSpec, job: ResolvedJob) -> list[dict[str, Any]]:
    from provisioner.render.azure import source

    src = source(job)
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
    from provisioner.render.azure import source

    return source(job).available


def _azure_support(job: ResolvedJob) -> list[tuple[str, str, str]]:
    from provisioner.render.azure import support

    return support(job)


CLOUDS = {
    "cloudwatch": Cloud("cloudwatch", "CloudWatch", "cloudwatch", _cloudwatch_queries, _cloudwatch_support, "alarms"),
    "azure": Cloud(
        "azure",
        "Azure Monitor",
        "grafana-azure-monitor-datasource",
        _azure_queries,
        _azure_support,
        "metric alert rules",
        _azure_available,
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
    if cloud.available(job):  # e.g. a VM's Available Memory Percentage: the alerts fire below 100 - X
        pct_steps = [
            {"color": "red", "value": None},
            {"color": "orange", "value": round(100 - crit, 4)},
            {"color": "green", "value": round(100 - warn, 4)},
        ]
        what = "Available memory, %"
        lines = f"The alerts fire below {100 - warn:.0f} % available (warning) and {100 - crit:.0f} % (critical)."
    rows = "\n".join(f"| {kind} | {level} | {why or '—'} |" for kind, level, why in cloud.support(job))
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
            "percent",
            pct_steps,
            "dashed",
            defaults={"min": 0, "max": 100},
        ),
        b.gauge(
            f"{what} (now)",
            "Latest value, with the same thresholds.",
            targets,
            b.pos(16, 1, 8, 9),
            pct_steps,
            unit="percent",
            maximum=100,
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
