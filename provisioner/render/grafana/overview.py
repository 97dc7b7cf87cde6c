"""The overview dashboard of an environment: every job ranked by headroom, linking to its dashboard.

Layout only (see :mod:`provisioner.render.grafana.panels`): a bar per job, fullest first, with
each job's own thresholds and a link to its dashboard; a Markdown table of the jobs with their
limits, thresholds, dashboards and runbooks; and per-job trends of percent of the limit,
predicted time to OOM, growth as a share of the limit per hour and the anomaly z-score.
"""

from __future__ import annotations

from provisioner.core.promql import quote
from provisioner.core.units import format_duration
from provisioner.kinds import anomaly, time_to_oom
from provisioner.kinds import series as s
from provisioner.render.grafana.panels import (
    Layout,
    PanelBuilder,
    alerts_annotation,
    human,
    link,
    override,
    overview_title,
    overview_uid,
    prop,
    steps,
    tags,
)
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec


def overview_layout(b: PanelBuilder, spec: ResolvedSpec) -> Layout:
    """All jobs of the environment by headroom, with links to each job's dashboard."""
    env = quote(spec.env)
    jobs = spec.jobs_using("grafana")
    sel = f'{{memprov_job=~"$job", memprov_env={env}}}'
    node_labels = {j.sources.node_label for j in jobs}
    node_label = node_labels.pop() if len(node_labels) == 1 else None
    isel = sel[:-1] + f', {node_label}=~"$node"}}' if node_label else sel
    per_job = [
        override(
            j.id,
            prop("displayName", j.name),
            prop("links", [{"title": f"Open {j.name}", "url": f"{j.dashboard_url}?${{__url_time_range}}"}]),
        )
        for j in jobs
    ]
    bar_overrides = [
        {
            **o,
            "properties": [
                *o["properties"],
                prop(
                    "thresholds",
                    {"mode": "absolute", "steps": steps(("orange", j.warning_ratio), ("red", j.critical_ratio))},
                ),
            ],
        }
        for o, j in zip(per_job, jobs, strict=True)
    ]
    height = min(24, max(8, 2 + 2 * len(jobs)))

    def shared(values: set[float]) -> float | None:
        return values.pop() if len(values) == 1 else None

    horizon = shared({time_to_oom.KIND.of(j).horizon for j in jobs})
    zscore = shared({anomaly.KIND.of(j).zscore for j in jobs})
    window = shared({anomaly.KIND.of(j).window for j in jobs}) or 1800.0
    ratio = f"max by (memprov_job) ({s.WS}{isel}) / on (memprov_job) max by (memprov_job) ({s.LIMIT}{sel})"
    to_oom = f"({s.LIMIT}{sel} - ignoring (node) group_right {s.TROUGH}{isel}) / ({s.VELOCITY}{isel} > 0)"
    per_hour = f"max by (memprov_job) ({s.VELOCITY}{isel} / ignoring (node) group_left {s.LIMIT}{sel}) * 3600"
    y = 1 + height
    panels = [
        b.row("All jobs by headroom", 0),
        b.bars(
            "Percent of limit now, least headroom first",
            "Fullest instance of each job as a share of its limit, with each job's own thresholds. "
            "Click a bar to open the job's dashboard.",
            b.target(f"sort_desc({ratio})", "{{memprov_job}}", "A", instant=True),
            b.pos(0, 1, 12, height),
            steps(),
            bar_overrides,
        ),
        b.text("Jobs", _jobs_table(spec, jobs), b.pos(12, 1, 12, height)),
        b.row("Trends", y),
        b.timeseries(
            "Percent of limit by job",
            "Fullest instance of each job as a share of its limit.",
            [b.target(ratio, "{{memprov_job}}")],
            b.pos(0, y + 1, 12, 8),
            "percentunit",
            overrides=per_job,
            defaults={"min": 0, "max": 1},
        ),
        b.timeseries(
            "Predicted time to OOM (worst instance)",
            "Shortest time until an instance's troughs reach its limit at their current trend, per job."
            + (f" The critical alert fires below {format_duration(horizon)}." if horizon else ""),
            [b.target(f"min by (memprov_job) ({to_oom})", "{{memprov_job}}")],
            b.pos(12, y + 1, 12, 8),
            "s",
            [{"color": "red", "value": None}, {"color": "green", "value": horizon}] if horizon else None,
            "dashed+area" if horizon else "off",
            overrides=per_job,
            defaults={"min": 0},
            custom={"axisSoftMax": 4 * horizon} if horizon else None,
        ),
        b.timeseries(
            "Growth per hour, share of the limit",
            "Fastest trough velocity of each job, as the share of its limit it fills in an hour: how soon each "
            "job would fill its limit at its current pace.",
            [b.target(per_hour, "{{memprov_job}}")],
            b.pos(0, y + 9, 12, 8),
            "percentunit",
            overrides=per_job,
        ),
        b.timeseries(
            "Anomaly z-score by job",
            "How unusual each job's memory is against previous weeks."
            + (f" Alerts fire above {zscore:g}." if zscore else ""),
            [
                b.target(
                    f"(avg_over_time({s.JOB_WS}{sel}[{format_duration(window)}]) - last_over_time({s.HIST_MEAN}{sel}"
                    f"[10m])) / last_over_time({s.HIST_SD}{sel}[10m])",
                    "{{memprov_job}}",
                )
            ],
            b.pos(12, y + 9, 12, 8),
            "none",
            steps(("red", zscore)) if zscore else None,
            "dashed" if zscore else "off",
            overrides=per_job,
        ),
    ]
    return Layout(
        uid=overview_uid(spec),
        title=overview_title(spec),
        description=f"Every memprov job of environment {spec.env}, least headroom first. Generated by memprov; "
        "do not edit.",
        panels=panels,
        annotations=[alerts_annotation(env, '~"$job"')],
        links=[link("Job dashboards", kind="dashboards", tags=tags(spec)[:2], dropdown=True)],
        node_label=node_label,
    )


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _jobs_table(spec: ResolvedSpec, jobs: tuple[ResolvedJob, ...]) -> str:
    lines = [
        f"Jobs of environment `{spec.env}` (spec `{spec.name}`). Thresholds are each job's own.",
        "",
        "| Job | Owner | Limit | Warning | Critical | |",
        "|---|---|---:|---:|---:|---|",
    ]
    for j in jobs:
        lines.append(
            f"| [{_md(j.name)}]({j.dashboard_url}) | {_md(j.owner)} | {human(j.limit)} | {human(j.warning_bytes)} | "
            f"{human(j.critical_bytes)} | [runbook]({j.runbook_url}) |"
        )
    lines += ["", "_Generated by memprov; edit memprov.yaml, not this dashboard._"]
    return "\n".join(lines)
