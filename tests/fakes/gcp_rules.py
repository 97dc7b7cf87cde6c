"""What Cloud Monitoring checks in an ``AlertPolicy``'s conditions, and what makes an accepted one never fire.

:class:`tests.fakes.gcp.FakeAlertPolicies` calls :func:`refusals` on every create and update and
answers ``INVALID_ARGUMENT`` with them, as the real API does; :func:`never_fires` lists policies the
API accepts but that cannot fire (a filter or PromQL selector naming a label the metric does not
have, a documentation variable that a PromQL result cannot fill) for the test to assert on. Each rule
cites its source: the ``google.monitoring.v3`` protos (as shipped in google-cloud-monitoring's
``types/common.py`` and ``types/alert.py``) and the Cloud Monitoring metric lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import promql_parser


@dataclass(frozen=True)
class Descriptor:
    kind: str  # GAUGE | DELTA | CUMULATIVE
    value: str  # DOUBLE | INT64
    labels: frozenset[str]
    resource: str


# Cloud Monitoring metric lists: https://cloud.google.com/monitoring/api/metrics_kubernetes (kubernetes.io/container/
# memory/limit_utilization GAUGE DOUBLE, used_bytes GAUGE INT64, both labelled memory_type; restart_count
# CUMULATIVE INT64) and https://cloud.google.com/monitoring/api/metrics_agent (memory/percent_used GAUGE DOUBLE,
# memory/bytes_used GAUGE DOUBLE, labelled state).
METRICS = {
    "kubernetes.io/container/memory/limit_utilization": Descriptor(
        "GAUGE", "DOUBLE", frozenset({"memory_type"}), "k8s_container"
    ),
    "kubernetes.io/container/memory/used_bytes": Descriptor(
        "GAUGE", "INT64", frozenset({"memory_type"}), "k8s_container"
    ),
    "kubernetes.io/container/restart_count": Descriptor("CUMULATIVE", "INT64", frozenset(), "k8s_container"),
    "agent.googleapis.com/memory/percent_used": Descriptor("GAUGE", "DOUBLE", frozenset({"state"}), "gce_instance"),
    "agent.googleapis.com/memory/bytes_used": Descriptor("GAUGE", "DOUBLE", frozenset({"state"}), "gce_instance"),
}
# Monitored resource types (https://cloud.google.com/monitoring/api/resources): their labels.
RESOURCES = {
    "k8s_container": frozenset({"project_id", "location", "cluster_name", "namespace_name", "pod_name",
                                "container_name"}),
    "gce_instance": frozenset({"project_id", "instance_id", "zone"}),
}  # fmt: skip
# common.proto, Aggregation.Aligner: which metric kinds each aligner "is valid for".
ALIGNERS = {
    "ALIGN_NONE": {"GAUGE", "DELTA", "CUMULATIVE"},
    "ALIGN_DELTA": {"CUMULATIVE", "DELTA"},
    "ALIGN_RATE": {"CUMULATIVE", "DELTA"},
    "ALIGN_INTERPOLATE": {"GAUGE"},
    "ALIGN_NEXT_OLDER": {"GAUGE"},
    "ALIGN_MIN": {"GAUGE", "DELTA"},
    "ALIGN_MAX": {"GAUGE", "DELTA"},
    "ALIGN_MEAN": {"GAUGE", "DELTA"},
    "ALIGN_COUNT": {"GAUGE", "DELTA"},
    "ALIGN_SUM": {"GAUGE", "DELTA"},
    "ALIGN_STDDEV": {"GAUGE", "DELTA"},
    "ALIGN_PERCENT_CHANGE": {"GAUGE", "DELTA"},
}


def promql_name(metric_type: str) -> str:
    """A Cloud Monitoring metric type as PromQL names it ("Mapping Cloud Monitoring metrics to PromQL": the first
    ``/`` becomes ``:``, every other special character ``_``)."""
    domain, _, path = metric_type.partition("/")
    return re.sub(r"[^a-zA-Z0-9_]", "_", domain) + ":" + re.sub(r"[^a-zA-Z0-9_]", "_", path)


PROMQL_METRICS = {promql_name(t): d for t, d in METRICS.items()}
SYSTEM_DOMAIN = re.compile(r"^[a-z_]+_(io|com):")


def _filter_parts(text: str) -> tuple[str | None, str | None, set[str], set[str]]:
    metric = re.search(r'metric\.type\s*=\s*"([^"]+)"', text)
    resource = re.search(r'resource\.type\s*=\s*"([^"]+)"', text)
    metric_labels = set(re.findall(r"metric\.labels?\.([a-zA-Z0-9_]+)", text))
    resource_labels = set(re.findall(r"resource\.labels?\.([a-zA-Z0-9_]+)", text))
    return (metric[1] if metric else None, resource[1] if resource else None, metric_labels, resource_labels)


def refusals(policy: dict[str, Any]) -> list[str]:
    """Why CreateAlertPolicy / UpdateAlertPolicy would answer INVALID_ARGUMENT (REST JSON field names)."""
    out: list[str] = []
    for c in policy.get("conditions", []):
        if t := c.get("conditionThreshold"):
            metric, _, _, _ = _filter_parts(t.get("filter", ""))
            desc = METRICS.get(metric or "")
            for agg in t.get("aggregations", []):
                aligner = agg.get("perSeriesAligner", "ALIGN_NONE")
                if desc and desc.kind not in ALIGNERS.get(aligner, set()):
                    out.append(
                        f"The aligner cannot be applied to metrics with kind {desc.kind} ({aligner} on {metric})"
                    )
            if "forecastOptions" in t:
                horizon = int(str(t["forecastOptions"].get("forecastHorizon", "0s")).rstrip("s"))
                if not 3600 <= horizon <= 216_000:  # ForecastOptions: "can range from 1 hour to 60 hours"
                    out.append("forecast_horizon must be between 1h and 60h")
        if q := c.get("conditionPrometheusQueryLanguage"):
            try:
                promql_parser.parse(q.get("query", ""))
            except Exception as e:  # the parser's own error class is not exported
                out.append(f"the PromQL query does not parse: {e}")
            interval = int(str(q.get("evaluationInterval", "30s")).rstrip("s"))
            if interval <= 0 or interval % 30:  # evaluation_interval: "a positive multiple of 30 seconds"
                out.append("evaluation_interval must be a positive multiple of 30 seconds")
    return out


def result_labels(e: Any) -> set[str] | None:
    """The label names a PromQL expression's result can carry; None: any (a selector's own labels)."""
    if isinstance(e, promql_parser.VectorSelector):
        return None
    if isinstance(e, promql_parser.AggregateExpr):
        mod = e.modifier
        if mod is None:
            return set()
        inner = result_labels(e.expr)
        if mod.type == promql_parser.AggModifierType.By:
            return set(mod.labels)
        return None if inner is None else inner - set(mod.labels)
    if isinstance(e, promql_parser.BinaryExpr):
        lhs, rhs = result_labels(e.lhs), result_labels(e.rhs)
        if isinstance(e.lhs, promql_parser.NumberLiteral):
            return rhs
        card = str(e.modifier.card) if e.modifier is not None else ""
        return rhs if "OneToMany" in card else lhs
    if isinstance(e, promql_parser.Call):
        vectors = [a for a in e.args if not isinstance(a, promql_parser.NumberLiteral | promql_parser.StringLiteral)]
        return result_labels(vectors[0]) if vectors else set()
    if isinstance(e, promql_parser.NumberLiteral | promql_parser.StringLiteral):
        return set()
    inner = getattr(e, "expr", None)
    return result_labels(inner) if inner is not None else None


def _selectors(e: Any) -> list[Any]:
    if isinstance(e, promql_parser.VectorSelector):
        return [e]
    out = []
    for attr in ("lhs", "rhs", "expr"):
        child = getattr(e, attr, None)
        if child is not None and not isinstance(child, str):
            out += _selectors(child)
    for arg in getattr(e, "args", None) or []:
        out += _selectors(arg)
    return out


def never_fires(policy: dict[str, Any]) -> list[str]:
    """Why a policy the API accepted can never open an incident, or its notification says nothing."""
    out: list[str] = []
    content = str(policy.get("documentation", {}).get("content", ""))
    variables = set(re.findall(r"\$\{(?:resource|metric)\.labels?\.([a-zA-Z0-9_]+)\}", content))
    for c in policy.get("conditions", []):
        if t := c.get("conditionThreshold"):
            metric, resource, mlabels, rlabels = _filter_parts(t.get("filter", ""))
            desc = METRICS.get(metric or "")
            if desc is None:
                continue
            if resource and resource != desc.resource:
                out.append(f"{metric} is written for resource {desc.resource}, not {resource}")
            if bad := (mlabels - desc.labels) | (rlabels - RESOURCES[desc.resource]):
                out.append(f"the filter names labels {sorted(bad)} that {metric} does not have")
        if q := c.get("conditionPrometheusQueryLanguage"):
            try:
                tree = promql_parser.parse(q.get("query", ""))
            except Exception:
                continue
            for sel in _selectors(tree):
                name = sel.name or ""
                desc = PROMQL_METRICS.get(name)
                if desc is None:
                    if SYSTEM_DOMAIN.match(name):
                        out.append(f"{name} maps to no Cloud Monitoring metric")
                    continue
                allowed = desc.labels | RESOURCES[desc.resource] | {"monitored_resource", "__name__"}
                if bad := {m.name for m in sel.matchers.matchers} - allowed:
                    out.append(f"the selector of {name} names labels {sorted(bad)} it does not have")
            # alert.proto, PrometheusQueryLanguageCondition.labels: "The only available variable names are the
            # names of the labels in the PromQL result"; a label aggregated away renders empty
            kept = result_labels(tree)
            if kept is not None and (lost := variables - kept):
                out.append(f"documentation variables {sorted(lost)} are not labels of the PromQL result")
    return out
