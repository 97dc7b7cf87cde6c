"""The annotations of memprov's alerts: the context every alert carries, and each alert's summary and
description.

The default texts come from each kind (:meth:`~provisioner.kinds.base.KindDef.texts`). A spec's
repository may override any of them with ``templates/prometheus/annotations.yaml.j2`` (sandboxed
jinja, ``[[ ]]`` for memprov's values, ``{{ }}`` passed through for Prometheus' alert templating):
it renders a mapping alert name -> {annotation: text}, and the alerts it names replace the
defaults; alerts it leaves out keep them.
"""

from __future__ import annotations

from typing import Any

from provisioner.core.units import format_duration, format_size
from provisioner.kinds import ALL as KINDS
from provisioner.kinds import anomaly, baseline, growth, time_to_oom, usage
from provisioner.kinds import series as s
from provisioner.kinds.base import Texts
from provisioner.render.gotext import literal
from provisioner.render.sandbox import plain
from provisioner.render.templating import render_data
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

OVERRIDE = "prometheus/annotations.yaml.j2"


def job_texts(job: ResolvedJob) -> Texts:
    """The job in words for alert texts; user text escaped, since Prometheus expands them as Go templates."""
    b, u = job.baseline, usage.KIND.of(job)
    name, model, version, owner = (literal(x) for x in (job.name, job.model_name, job.model_version, job.owner))
    return Texts(
        name=name,
        who=f"{name} ({job.id}, model {model} {version}, owner {owner})",
        node=f"{{{{ $labels.{job.sources.node_label} }}}}",
        instance=f"{{{{ $labels.{job.sources.group_by[-1]} }}}}",
        limit=format_size(job.limit) + "B",
        warning=format_size(u.warning_bytes) + "B",  # raised for a tightly sized job (kinds.usage)
        critical=format_size(u.critical_bytes) + "B",
        warning_pct=f"{u.warning_ratio:.0%}",
        critical_pct=f"{u.critical_ratio:.0%}",
        p95=format_size(b.peak_p95) + "B" if b and b.peak_p95 else "its usual p95 peak",
    )


def alert_texts(spec: ResolvedSpec, job: ResolvedJob) -> dict[str, dict[str, str]]:
    """Summary and description per alert name: the kinds' defaults, then the repository's override."""
    t = job_texts(job)
    out: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        out.update(kind.texts(t, kind.of(job)))
    override = spec.base_dir / "templates"
    if (override / OVERRIDE).is_file():
        found = render_data(OVERRIDE, override, **_template_context(job))
        if isinstance(found, dict):
            out.update({str(k): v for k, v in found.items() if isinstance(v, dict)})
    return out


def _template_context(job: ResolvedJob) -> dict[str, Any]:
    """What an override template sees (the names of memprov 0.1's shipped template)."""
    t = job_texts(job)
    tto, b = time_to_oom.KIND.of(job), baseline.KIND.of(job)
    return {
        "job": plain(job, text=literal),  # user text reaches Prometheus' templates: escaped
        "limit_h": t.limit,
        "warning_h": t.warning,
        "critical_h": t.critical,
        "warning_pct": t.warning_pct,
        "critical_pct": t.critical_pct,
        "p95_h": t.p95,
        "growth_factor": f"{growth.KIND.of(job).factor:g}",
        "horizon_h": format_duration(tto.horizon),
        "warning_horizon_h": format_duration(tto.warning_horizon or tto.horizon),
        "tto_factor": f"{tto.warning_factor:g}",
        "baseline_factor": f"{b.factor:g}",
        "envelope": b.floor is not None and b.envelope is not None,
        "zscore": f"{anomaly.KIND.of(job).zscore:g}",
        "weeks": anomaly.KIND.of(job).weeks,
    }


def _query(expr: str, args: str, fmt: str, none: str = "unknown", suffix: str = "") -> str:
    """A Prometheus template printing the first value of a query through ``fmt`` (+ suffix), or ``none``."""
    call = f'(printf "{expr}" {args})' if args else f'"{expr}"'
    return f"{{{{ with query {call} }}}}{{{{ . | first | value | {fmt} }}}}{suffix}{{{{ else }}}}{none}{{{{ end }}}}"


def context_annotations(spec: ResolvedSpec, job: ResolvedJob, scope: str = "instance") -> dict[str, str]:
    """Annotations every alert carries: node, current value and limit in human units, links.

    ``scope``: ``instance`` alerts carry the node label; ``job`` alerts (baseline, anomaly) are
    per job, so nodes and value are looked up over all its instances; ``dead`` (OOM killed) has
    no node label, so the node is looked up from the instance's last working-set series.
    """
    node = job.sources.node_label
    keys = ("memprov_job", "memprov_env") if scope == "job" else ("memprov_job", "memprov_env", *job.sources.group_by)
    fmt = ", ".join(f"{k}=%q" for k in keys)
    args = " ".join(f"$labels.{k}" for k in keys)
    if scope == "instance":
        node_text = f"{{{{ $labels.{node} }}}}"
    else:
        node_text = (
            f'{{{{ range query (printf "max by ({node}) ({s.WS}{{{fmt}}})" {args}) }}}}'
            f"{{{{ .Labels.{node} }}}} {{{{ end }}}}"
        )
    t0 = _query("(time() - 21600) * 1000", "", 'printf "%.0f"', "now-6h")
    t1 = _query("(time() + 1800) * 1000", "", 'printf "%.0f"', "now")
    return {
        "job_name": literal(job.name),
        "node": node_text,
        "current": _query(f"max({s.WS}{{{fmt}}})", args, "humanize1024", suffix="B"),
        "limit": format_size(job.limit) + "B",
        "runbook_url": literal(job.runbook_url),
        "dashboard": f"{literal(job.dashboard_url)}?var-job={job.id}&var-node=All&from={t0}&to={t1}",
    }
