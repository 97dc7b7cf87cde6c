"""Prometheus alerting and recording rules for each job (one rule group per job).

Recording rules normalise every runtime to the same three series per running instance
(``memprov:memory_working_set:bytes``, ``memprov:memory_limit:bytes``,
``memprov:memory_usage:ratio``), labelled with ``memprov_job`` and ``memprov_env``; alerts are
written against those, so one set of alert expressions serves Kubernetes, VMs and processes.
"""

from __future__ import annotations

from typing import Any

from provisioner.names import MANAGED_BY
from provisioner.render.series import LIMIT, RATIO, WS
from provisioner.render.templating import render_data
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec
from provisioner.units import format_duration, format_size


def group_name(spec: ResolvedSpec, job: ResolvedJob) -> str:
    return f"memprov-{spec.env}-{job.id}"


def _labels(spec: ResolvedSpec, job: ResolvedJob) -> dict[str, str]:
    return {"memprov_job": job.id, "memprov_env": spec.env}


def _sel(spec: ResolvedSpec, job: ResolvedJob) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in _labels(spec, job).items()) + "}"


def recording_rules(spec: ResolvedSpec, job: ResolvedJob) -> list[dict[str, Any]]:
    src = job.sources
    by = ", ".join(src.group_by)
    keep = ", ".join(dict.fromkeys((*src.group_by, src.node_label)))
    ws = f"max by ({keep}) ({src.working_set})"
    if src.limit:
        limit = f"max by ({by}) ({src.limit})"
    else:  # no limit series for this runtime: the spec's limit, on the same label set as the working set
        limit = f"max by ({by}) ({src.working_set}) * 0 + {job.limit}"
    labels = _labels(spec, job)
    return [
        {"record": WS, "expr": ws, "labels": labels},
        {"record": LIMIT, "expr": limit, "labels": labels},
        {
            "record": RATIO,
            "expr": f"{WS}{_sel(spec, job)}\n  / on ({by}) group_left\n{LIMIT}{_sel(spec, job)}",
            "labels": labels,
        },
    ]


def context_labels(spec: ResolvedSpec, job: ResolvedJob, severity: str, kind: str) -> dict[str, str]:
    """Labels every alert carries: who, what, where; used for routing, grouping and inhibition."""
    return {
        "severity": severity,
        "memprov_kind": kind,
        "memprov_job": job.id,
        "memprov_env": spec.env,
        "team": job.team,
        "owner": job.owner,
        "model": job.model_name,
        "model_version": job.model_version,
        "managed_by": MANAGED_BY,
        **job.labels,
    }


def _current_bytes(job: ResolvedJob) -> str:
    """Prometheus template that prints this instance's working set in human units, e.g. ``6.2GiB``."""
    keys = ("memprov_job", "memprov_env", *job.sources.group_by)
    fmt = ", ".join(f"{k}=%q" for k in keys)
    args = " ".join(f"$labels.{k}" for k in keys)
    return (
        f'{{{{ with query (printf "max({WS}{{{fmt}}})" {args}) }}}}'
        "{{ . | first | value | humanize1024 }}B{{ else }}unknown{{ end }}"
    )


def context_annotations(spec: ResolvedSpec, job: ResolvedJob) -> dict[str, str]:
    node = job.sources.node_label
    return {
        "job_name": job.name,
        "node": f"{{{{ $labels.{node} }}}}",
        "limit": format_size(job.limit) + "B",
        "current": _current_bytes(job),
        "runbook_url": job.runbook_url,
        "dashboard": f"{job.dashboard_url}?var-job={job.id}&var-node={{{{ $labels.{node} }}}}&from=now-6h&to=now",
    }


def _template_context(job: ResolvedJob) -> dict[str, Any]:
    return {
        "job": job,
        "node_label": job.sources.node_label,
        "limit_h": format_size(job.limit),
        "warning_h": format_size(job.warning_bytes),
        "critical_h": format_size(job.critical_bytes),
        "warning_pct": f"{job.warning_ratio:.0%}",
        "critical_pct": f"{job.critical_ratio:.0%}",
    }


def _ratio(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".")


def usage_alerts(spec: ResolvedSpec, job: ResolvedJob, texts: dict[str, Any]) -> list[dict[str, Any]]:
    if not job.usage.enabled:
        return []
    sel = _sel(spec, job)
    out = []
    for severity, ratio, hold in (
        ("warning", job.warning_ratio, job.usage.warning_for),
        ("critical", job.critical_ratio, job.usage.critical_for),
    ):
        out.append(
            {
                "alert": f"BatchJobMemory{severity.title()}",
                "expr": f"{RATIO}{sel} > {_ratio(ratio)}",
                "for": format_duration(hold),
                "labels": context_labels(spec, job, severity, "usage"),
                "annotations": {**context_annotations(spec, job), **texts[f"usage_{severity}"]},
            }
        )
    return out


def rule_group(spec: ResolvedSpec, job: ResolvedJob) -> dict[str, Any]:
    texts = render_data("prometheus/annotations.yaml.j2", spec.base_dir / "templates", **_template_context(job))
    rules = recording_rules(spec, job) + usage_alerts(spec, job, texts)
    return {"name": group_name(spec, job), "interval": format_duration(spec.evaluation_interval), "rules": rules}
