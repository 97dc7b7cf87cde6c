"""What the Grafana dashboards show: panels, queries, thresholds, annotations and links.

Pure layout over the recording-rule series of :mod:`provisioner.kinds.series`, with no
dashboard library in sight: panels are made through the :class:`PanelBuilder` protocol, which
:mod:`provisioner.render.grafana.dashboards` implements with grafanalib. A job dashboard shows the working
set against the limit with the warning/critical thresholds and the baseline p50–p95 band, percent
of the limit, headroom, growth against the usual velocity, the predicted time to OOM, the anomaly
z-score and a per-node / per-instance breakdown; the overview ranks every job by headroom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from provisioner.core import names
from provisioner.core.promql import quote
from provisioner.core.units import format_duration, format_size
from provisioner.kinds import anomaly, baseline, growth, time_to_oom
from provisioner.kinds import series as s
from provisioner.render.templating import overridden, render_data
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

DS = {"type": "prometheus", "uid": "${datasource}"}
OVERVIEW_TITLE = "memprov · all jobs ({env})"


class PanelBuilder(Protocol):
    """Makes panels (opaque objects) for a dashboard library."""

    def target(self, expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Any: ...
    def query(self, model: dict[str, Any], ref: str = "A") -> Any: ...
    def pos(self, x: int, y: int, w: int, h: int) -> Any: ...
    def row(self, title: str, y: int) -> Any: ...
    def timeseries(
        self,
        title: str,
        description: str,
        targets: list[Any],
        pos: Any,
        unit: str,
        steps: list[dict[str, Any]] | None = None,
        style: str = "off",
        overrides: list[dict[str, Any]] | None = None,
        defaults: dict[str, Any] | None = None,
        custom: dict[str, Any] | None = None,
    ) -> Any: ...
    def stat(
        self, title: str, description: str, expr: str, pos: Any, unit: str, steps: list[dict[str, Any]]
    ) -> Any: ...
    def gauge(
        self,
        title: str,
        description: str,
        expr: str | list[Any],
        pos: Any,
        steps: list[dict[str, Any]],
        unit: str = "percentunit",
        maximum: float = 1,
    ) -> Any: ...
    def bars(
        self,
        title: str,
        description: str,
        target: Any,
        pos: Any,
        steps: list[dict[str, Any]],
        overrides: list[dict[str, Any]] | None = None,
    ) -> Any: ...
    def text(self, title: str, content: str, pos: Any) -> Any: ...


@dataclass(frozen=True)
class Layout:
    """Everything a dashboard holds, for a builder to assemble."""

    uid: str
    title: str
    description: str
    panels: list[Any]
    annotations: list[dict[str, Any]]
    links: list[dict[str, Any]]
    job: ResolvedJob | None = None  # the job variable: this job, or all jobs of the environment
    node_label: str | None = None  # the node variable's label, if one label fits every job
    datasource: str = "prometheus"  # the plugin type of the datasource variable


def tags(spec: ResolvedSpec) -> list[str]:
    """The ownership marker, as dashboard tags."""
    return [f"{k}:{v}" for k, v in names.ownership_tags(spec.env, spec.name).items()]


def overview_uid(spec: ResolvedSpec) -> str:
    return names.dashboard_uid(spec.env)


def overview_title(spec: ResolvedSpec) -> str:
    return OVERVIEW_TITLE.format(env=spec.env)


def overview_url(spec: ResolvedSpec) -> str:
    return f"{spec.environment.grafana_url}/d/{overview_uid(spec)}/{names.slug(overview_title(spec))}"


def job_title(spec: ResolvedSpec, job: ResolvedJob) -> str:
    return f"memprov · {job.name} ({spec.env})"


def link(
    title: str,
    url: str = "",
    *,
    kind: str = "link",
    tags: list[str] | None = None,
    icon: str = "external link",
    blank: bool = False,
    dropdown: bool = False,
) -> dict[str, Any]:
    """A dashboard link with every field Grafana's schema requires."""
    out = {
        "title": title,
        "type": kind,
        "icon": icon,
        "tooltip": "",
        "tags": tags or [],
        "asDropdown": dropdown,
        "targetBlank": blank,
        "includeVars": False,
        "keepTime": True,
    }
    if url:
        out["url"] = url
    return out


# --- small helpers ---------------------------------------------------------------------------
def human(size: float) -> str:
    return format_size(size) + "B"


def steps(*levels: tuple[str, float]) -> list[dict[str, Any]]:
    """Threshold steps: green below the first level; the base step's null is Grafana's -Infinity."""
    return [{"color": "green", "value": None}, *({"color": c, "value": round(v, 4)} for c, v in levels)]


def color(name: str) -> dict[str, Any]:
    return {"id": "color", "value": {"mode": "fixed", "fixedColor": name}}


def override(name: str, *props: dict[str, Any]) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name}, "properties": list(props)}


def prop(key: str, value: Any) -> dict[str, Any]:
    return {"id": key, "value": value}


DASHED = prop("custom.lineStyle", {"fill": "dash", "dash": [10, 10]})


def _annotation(name: str, expr: str, color: str, title: str, text: str, tag_keys: str) -> dict[str, Any]:
    """A Prometheus annotation query in the form Grafana saves (and migrates to ``target`` on load)."""
    return {
        "name": name,
        "datasource": DS,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "expr": expr,
        "step": "60s",
        "titleFormat": title,
        "textFormat": text,
        "tagKeys": tag_keys,
        "useValueForTime": False,
    }


def alerts_annotation(env: str, jobs: str) -> dict[str, Any]:
    return _annotation(
        "memprov alerts",
        f'ALERTS{{memprov_job={jobs}, memprov_env={env}, alertstate="firing"}}',
        "orange",
        "{{alertname}} ({{severity}})",
        "{{memprov_job}}",
        "severity,alertname",
    )


# --- series the rules do not record: computed in the panel -------------------------------------
def ratio_expr(isel: str, jsel: str, by: str) -> str:
    """Each instance's working set as a share of its limit."""
    return f"{s.WS}{isel} / on ({by}) group_left {s.LIMIT}{jsel}"


def time_to_oom_expr(job: ResolvedJob, isel: str, jsel: str, by: str) -> str:
    """Seconds until each instance's peaks (troughs + the usual sawtooth) reach the limit at the troughs' trend."""
    b = job.baseline
    saw = f" + {b.sawtooth}" if b and b.sawtooth else ""
    return f"({s.LIMIT}{jsel} - on ({by}) group_right {s.TROUGH}{isel}{saw}) / ({s.VELOCITY}{isel} > 0)"


def zscore_expr(window: float, jsel: str) -> str:
    """The anomaly alert's z-score: the job's level against the slow group's reference of previous weeks."""
    ref, spread = f"last_over_time({s.HIST_MEAN}{jsel}[10m])", f"last_over_time({s.HIST_SD}{jsel}[10m])"
    return f"(avg_over_time({s.JOB_WS}{jsel}[{format_duration(window)}]) - {ref}) / {spread}"


def baseline_expr(job: ResolvedJob, env: str, stat: str) -> str | None:
    """A baseline peak (``p50``/``p95``) or the usual velocity (``velocity``, bytes/s): the spec's
    constant, or the slow group's record for a job without a baseline (p95 and velocity only)."""
    b = job.baseline
    value = {"p50": b.peak_p50, "p95": b.peak_p95, "velocity": b.velocity} if b else {}
    if value.get(stat) is not None:
        v = float(value[stat] or 0)
        return f"vector({v / 60 if stat == 'velocity' else v:.6g})"
    jsel = f'memprov_job="$job", memprov_env={env}'
    if stat == "p95":
        return f'{s.BASELINE_PEAK}{{{jsel}, quantile="0.95"}}'
    return f"{s.BASELINE_VELOCITY}{{{jsel}}}" if stat == "velocity" else None


# --- the job dashboard ------------------------------------------------------------------------
def job_layout(b: PanelBuilder, spec: ResolvedSpec, job: ResolvedJob) -> Layout:
    """The job's dashboard."""
    env, src = quote(spec.env), job.sources
    jsel = f'{{memprov_job="$job", memprov_env={env}}}'
    isel = f'{{memprov_job="$job", memprov_env={env}, {src.node_label}=~"$node"}}'
    by = ", ".join(src.group_by)
    legend = "{{" + "}} {{".join(src.group_by[1:] or src.group_by) + "}}"
    limit_steps = steps(("orange", job.warning_bytes), ("red", job.critical_bytes))
    ratio_steps = steps(("orange", job.warning_ratio), ("red", job.critical_ratio))
    tto, growth_p = time_to_oom.KIND.of(job), growth.KIND.of(job)
    base_p, anomaly_p = baseline.KIND.of(job), anomaly.KIND.of(job)
    horizon, warn_horizon = tto.horizon, tto.warning_horizon
    blue_band = [color("blue"), prop("custom.lineWidth", 1), DASHED]
    panels = [
        b.row("Memory against the limit", 0),
        b.timeseries(
            "Working set vs limit",
            f"Working set per instance against the limit ({human(job.limit)}). Dashed lines: warning at "
            f"{human(job.warning_bytes)}, critical at {human(job.critical_bytes)}. Blue band: the baseline "
            "p50–p95 peak of past successful runs.",
            [
                b.target(f"{s.WS}{isel}", legend, "A"),
                b.target(f"max({s.LIMIT}{jsel})", "limit", "B"),
                *[
                    b.target(expr, f"baseline {stat}", ref)
                    for stat, ref in (("p50", "C"), ("p95", "D"))
                    if (expr := baseline_expr(job, env, stat))
                ],
            ],
            b.pos(0, 1, 16, 9),
            "bytes",
            limit_steps,
            "dashed",
            overrides=[
                override("limit", color("dark-red"), prop("custom.lineWidth", 2), prop("custom.fillOpacity", 0)),
                override("baseline p50", *blue_band),
                override(
                    "baseline p95",
                    *blue_band,
                    prop("custom.fillBelowTo", "baseline p50"),
                    prop("custom.fillOpacity", 15),
                ),
            ],
            defaults={"min": 0},
        ),
        b.gauge(
            "Percent of limit (now)",
            "Highest instance's working set as a share of its limit, with the same thresholds.",
            f"max({ratio_expr(isel, jsel, by)})",
            b.pos(16, 1, 8, 9),
            ratio_steps,
        ),
        b.stat(
            "Peak in range",
            "Highest working set of the job in the selected time range.",
            f"max_over_time({s.JOB_WS}{jsel}[$__range])",
            b.pos(0, 10, 8, 4),
            "bytes",
            limit_steps,
        ),
        b.stat(
            "Headroom now",
            "Limit minus working set of the fullest instance; red once the critical threshold is crossed.",
            f"min({s.LIMIT}{jsel} - on ({by}) {s.WS}{isel})",
            b.pos(8, 10, 8, 4),
            "bytes",
            [
                {"color": "red", "value": None},
                {"color": "orange", "value": job.limit - job.critical_bytes},
                {"color": "green", "value": job.limit - job.warning_bytes},
            ],
        ),
        b.stat(
            "Peak vs baseline p95",
            "Peak in range as a share of the baseline p95 peak of past successful runs.",
            f"max_over_time({s.JOB_WS}{jsel}[$__range]) / on () {baseline_expr(job, env, 'p95')}",
            b.pos(16, 10, 8, 4),
            "percentunit",
            steps(("orange", 1.0), ("red", base_p.factor)),
        ),
        b.row("Growth, prediction and anomalies", 14),
        b.timeseries(
            "Growth rate vs baseline velocity",
            f"Velocity of the working set's troughs (the sawtooth's floor) per instance, against the usual "
            f"velocity of past runs; the growth alert fires above {growth_p.factor:g}x the usual velocity.",
            [
                b.target(f"{s.VELOCITY}{isel}", legend, "A"),
                b.target(f"{baseline_expr(job, env, 'velocity')}", "usual velocity", "B"),
                b.target(f"{growth_p.factor:g} * {baseline_expr(job, env, 'velocity')}", "alert threshold", "C"),
            ],
            b.pos(0, 15, 8, 8),
            "Bps",
            overrides=[
                override("usual velocity", color("blue"), DASHED),
                override("alert threshold", color("red"), DASHED, prop("custom.fillOpacity", 0)),
            ],
        ),
        b.timeseries(
            "Predicted time to OOM",
            f"Time until each instance's peaks reach its limit at the current trend of its troughs; for a run "
            f"off its healthy track, the critical alert fires below {format_duration(horizon)} (red)"
            + (
                f", the warning below {format_duration(warn_horizon)} (orange) when the troughs also grow over "
                f"{tto.warning_factor:g}x faster than usual."
                if warn_horizon
                else "."
            ),
            [b.target(time_to_oom_expr(job, isel, jsel, by), legend, "A")],
            b.pos(8, 15, 8, 8),
            "s",
            [{"color": "red", "value": None}, {"color": "green", "value": horizon}]
            if not warn_horizon
            else [
                {"color": "red", "value": None},
                {"color": "orange", "value": horizon},
                {"color": "green", "value": warn_horizon},
            ],
            "dashed+area",
            defaults={"min": 0},
            custom={"axisSoftMax": max(4 * horizon, 1.5 * (warn_horizon or 0))},
        ),
        b.timeseries(
            "Anomaly z-score",
            f"How unusual the job's memory is against the same time in the previous weeks that have data (up "
            f"to {anomaly_p.weeks}, at least {anomaly_p.min_weeks}); the anomaly alert fires above "
            f"{anomaly_p.zscore:g}.",
            [b.target(zscore_expr(anomaly_p.window, jsel), "z-score", "A")],
            b.pos(16, 15, 8, 8),
            "none",
            steps(("red", anomaly_p.zscore)),
            "dashed",
        ),
        b.row("Per node and per instance", 23),
        b.timeseries(
            f"Working set by {src.node_label}",
            f"Sum of the job's working set on each {src.node_label}.",
            [b.target(f"sum by ({src.node_label}) ({s.WS}{isel})", f"{{{{{src.node_label}}}}}", "A")],
            b.pos(0, 24, 12, 8),
            "bytes",
            limit_steps,
            "dashed",
            defaults={"min": 0},
        ),
        b.bars(
            "Percent of limit by instance (now)",
            "Each instance's working set as a share of its limit, fullest first.",
            b.target(
                f"sort_desc({ratio_expr(isel, jsel, by)})", f"{legend} on {{{{{src.node_label}}}}}", "A", instant=True
            ),
            b.pos(12, 24, 12, 8),
            ratio_steps,
        ),
        b.row("About", 32),
        b.text("About this job", _about(spec, job), b.pos(0, 33, 24, 7)),
    ]
    annotations = [alerts_annotation(env, '"$job"')]
    oom = _oom_expr(job)
    if oom:
        annotations.insert(0, _annotation("OOM kills", oom, "red", "OOM kill", legend, ",".join(src.group_by)))
    return Layout(
        uid=job.dashboard_uid,
        title=job_title(spec, job),
        description=f"Memory of batch job {job.id} against its limit. Generated by memprov; do not edit.",
        panels=panels,
        annotations=annotations,
        links=[
            link("Runbook", job.runbook_url, icon="doc", blank=True),
            link(f"All jobs ({spec.env})", overview_url(spec), icon="dashboard"),
            link(f"memprov {spec.env}", kind="dashboards", tags=tags(spec)[:2], dropdown=True),
        ],
        job=job,
        node_label=src.node_label,
    )


def _oom_expr(job: ResolvedJob) -> str | None:
    src = job.sources
    parts = [f"increase({src.oom_events}[2m]) > 0"] if src.oom_events else []
    parts += [f"{sel} == 1" for sel in src.oom_terminated[:1]]
    if not parts:
        return None
    return f"max by ({', '.join(src.group_by)}) ({' or '.join(parts)})"


ABOUT = "grafana/about.md.j2"


def _about(spec: ResolvedSpec, job: ResolvedJob) -> str:
    """The "About this job" text: the repository's template where it overrides it, else the default."""
    override = spec.base_dir / "templates"
    if not overridden(ABOUT, override):
        return about_text(job, spec.env)
    text: str = render_data(
        ABOUT,
        override,
        required=("text",),
        nested=False,
        job=job,
        env=spec.env,
        limit_h=human(job.limit),
        warning_h=human(job.warning_bytes),
        critical_h=human(job.critical_bytes),
    )["text"]
    return text


def about_text(job: ResolvedJob, env: str) -> str:
    """What the shipped ``templates/grafana/about.md.j2`` renders (tests/test_templates_fast.py holds them equal)."""
    description = f"{job.description}\n\n" if job.description else ""
    return (
        f"**{job.name}** (`{job.id}`, environment `{env}`)\n\n{description}"
        f"- Owner: {job.owner}\n- Model: {job.model_name} {job.model_version}\n"
        f"- Memory limit: {human(job.limit)}; warning at {human(job.warning_bytes)}, "
        f"critical at {human(job.critical_bytes)}\n- [Runbook]({job.runbook_url})\n\n"
        "_Generated by memprov; edit memprov.yaml, not this dashboard._"
    )


# --- the overview -----------------------------------------------------------------------------
