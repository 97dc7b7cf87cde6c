"""Grafana dashboards, built with grafanalib: one per job and one overview per environment.

grafanalib stays behind this module. Its public functions (:func:`dashboards`,
:func:`dashboard`, :func:`overview`, :func:`serialise`, :func:`tags`) return plain JSON data;
what the dashboards show lives in :mod:`~provisioner.render.grafana.panels` and
:mod:`~provisioner.render.grafana.overview`, which make panels through a small builder protocol
that :class:`_Builder` implements here. So the builder can be swapped without touching anything
else. Output is modern dashboard JSON (schemaVersion 39, timeseries/stat/gauge/bargauge panels,
fieldConfig thresholds), cleaned of legacy keys and nulls by
:mod:`~provisioner.render.grafana.serialise`, deterministic (stable uids from environment + job, no
volatile fields) and serialised with sorted keys.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from provisioner.core.gcpause import collector_paused
from provisioner.core.promql import quote
from provisioner.kinds import series as s
from provisioner.render.grafana.cloud import cloud_job_layout, cloud_of
from provisioner.render.grafana.cloud import datasource as cloud_datasource
from provisioner.render.grafana.overview import overview_layout
from provisioner.render.grafana.panels import (
    DS,
    Layout,
    job_layout,
    job_title,
    overview_title,
    overview_uid,
    tags,
)
from provisioner.render.grafana.panels import steps as no_steps
from provisioner.render.grafana.serialise import clean, dumps_sorted
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

SCHEMA_VERSION = 39
__all__ = ["Rendered", "dashboard", "dashboards", "iter_dashboards", "overview", "serialise", "tags"]


@dataclass(frozen=True)
class Rendered:
    """One rendered dashboard: its uid (the resource key), title, job (None for the overview) and JSON."""

    uid: str
    title: str
    job: str | None
    data: dict[str, Any]


def dashboards(spec: ResolvedSpec) -> list[Rendered]:
    """Every dashboard of the environment: the jobs' (spec order), then the overview; none without jobs."""
    with collector_paused():
        return list(iter_dashboards(spec))


def iter_dashboards(spec: ResolvedSpec) -> Iterator[Rendered]:
    """:func:`dashboards` one at a time, each built when asked for (what streams to a files target)."""
    jobs = spec.jobs_using("grafana")
    if not jobs:
        return
    for j in jobs:
        yield Rendered(j.dashboard_uid, job_title(spec, j), j.id, dashboard(spec, j))
    yield Rendered(overview_uid(spec), overview_title(spec), None, overview(spec))


def dashboard(spec: ResolvedSpec, job: ResolvedJob) -> dict[str, Any]:
    """The job's dashboard as plain JSON-compatible data (on its cloud's data source without Prometheus rules)."""
    cloud = cloud_of(job)
    if cloud is not None:
        b = _Builder(cloud_datasource(cloud))
        return b.assemble(spec, cloud_job_layout(b, spec, job, cloud))
    b = _Builder()
    return b.assemble(spec, job_layout(b, spec, job))


def overview(spec: ResolvedSpec) -> dict[str, Any]:
    """The environment's overview dashboard as plain JSON-compatible data."""
    b = _Builder()
    return b.assemble(spec, overview_layout(b, spec))


def serialise(data: dict[str, Any]) -> str:
    """The one serialiser for dashboards: sorted keys, two-space indent, trailing newline."""
    return dumps_sorted(data) + "\n"  # json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)


class _Builder:
    """The panel builder protocol of :mod:`~provisioner.render.grafana.panels` on grafanalib (loaded lazily)."""

    def __init__(self, datasource: dict[str, str] = DS) -> None:
        from grafanalib import core

        self.g = core
        self.ds = datasource

    def target(self, expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Any:
        return self.g.Target(expr=expr, legendFormat=legend, refId=ref, datasource=self.ds, instant=instant)

    def query(self, model: dict[str, Any], ref: str = "A") -> Any:
        """A query in the data source's own model (CloudWatch, …), as Grafana saves it."""
        return {**model, "refId": ref, "datasource": self.ds}

    def pos(self, x: int, y: int, w: int, h: int) -> Any:
        return self.g.GridPos(h=h, w=w, x=x, y=y)

    def row(self, title: str, y: int) -> Any:
        return self.g.RowPanel(title=title, gridPos=self.pos(0, y, 24, 1))

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
    ) -> Any:
        return self.g.TimeSeries(
            title=title,
            description=description,
            dataSource=self.ds,
            targets=targets,
            gridPos=pos,
            unit=unit,
            thresholds=steps or no_steps(),
            thresholdsStyleMode=style,
            legendDisplayMode="table",
            legendPlacement="bottom",
            legendCalcs=["max", "lastNotNull"],
            tooltipMode="multi",
            tooltipSort="desc",
            fillOpacity=5,
            overrides=overrides or [],
            extraJson={
                "fieldConfig": {"defaults": {**(defaults or {}), "custom": custom or {}}},
                "options": {"legend": {"showLegend": True}},
            },
        )

    def stat(self, title: str, description: str, expr: str, pos: Any, unit: str, steps: list[dict[str, Any]]) -> Any:
        return self.g.Stat(
            title=title,
            description=description,
            dataSource=self.ds,
            targets=[self.target(expr)],
            gridPos=pos,
            format=unit,
            reduceCalc="lastNotNull",
            thresholds=steps,
            graphMode="area",
            colorMode="value",
            noValue="no data",
            extraJson={
                "options": {"wideLayout": True, "showPercentChange": False, "percentChangeColorMode": "standard"}
            },
        )

    def gauge(
        self,
        title: str,
        description: str,
        expr: str | list[Any],
        pos: Any,
        steps: list[dict[str, Any]],
        unit: str = "percentunit",
        maximum: float = 1,
    ) -> Any:
        return self.g.GaugePanel(
            title=title,
            description=description,
            dataSource=self.ds,
            targets=[self.target(expr)] if isinstance(expr, str) else expr,
            gridPos=pos,
            format=unit,
            min=0,
            max=maximum,
            thresholds=steps,
            extraJson={
                "options": {
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "orientation": "auto",
                    "showThresholdLabels": False,
                    "showThresholdMarkers": True,
                    "sizing": "auto",
                    "minVizWidth": 75,
                    "minVizHeight": 75,
                }
            },
        )

    def bars(
        self,
        title: str,
        description: str,
        target: Any,
        pos: Any,
        steps: list[dict[str, Any]],
        overrides: list[dict[str, Any]] | None = None,
    ) -> Any:
        """Horizontal bar gauge of percent of the limit, one bar per series (instant query)."""
        return self.g.BarGauge(
            title=title,
            description=description,
            dataSource=self.ds,
            targets=[target],
            gridPos=pos,
            extraJson={
                "options": {
                    "displayMode": "gradient",
                    "valueMode": "color",
                    "namePlacement": "auto",
                    "showUnfilled": True,
                    "sizing": "auto",
                    "minVizWidth": 8,
                    "minVizHeight": 16,
                    "maxVizHeight": 300,
                    "orientation": "horizontal",
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                },
                "fieldConfig": {
                    "defaults": {
                        "unit": "percentunit",
                        "min": 0,
                        "max": 1,
                        "color": {"mode": "thresholds"},
                        "thresholds": {"mode": "absolute", "steps": steps},
                    },
                    "overrides": overrides or [],
                },
            },
        )

    def text(self, title: str, content: str, pos: Any) -> Any:
        return self.g.Text(title=title, content=content, mode="markdown", gridPos=pos)

    def variables(
        self, spec: ResolvedSpec, job: ResolvedJob | None, node_label: str | None, plugin: str = "prometheus"
    ) -> Any:
        """``datasource`` (the environment's, or the first of a cloud's plugin), ``job`` (this job, or all
        of the environment's), ``node``."""
        g, env = self.g, quote(spec.env)
        default = spec.environment.datasource.uid if plugin == "prometheus" else ""
        out = [g.Template(name="datasource", type="datasource", query=plugin, label="Data source", default=default)]
        if job is not None:
            out.append(g.Template(name="job", label="Job", type="custom", query=job.id, default=job.id))
        else:
            out.append(
                g.Template(
                    name="job",
                    label="Job",
                    dataSource=self.ds,
                    includeAll=True,
                    multi=True,
                    default="$__all",
                    query=f"label_values({s.WS}{{memprov_env={env}}}, memprov_job)",
                )
            )
        if node_label:
            jobs = '"$job"' if job is not None else '~"$job"'
            out.append(
                g.Template(
                    name="node",
                    label=node_label.capitalize(),
                    dataSource=self.ds,
                    includeAll=True,
                    multi=True,
                    default="$__all",
                    query=f"label_values({s.WS}{{memprov_job={jobs}, memprov_env={env}}}, {node_label})",
                )
            )
        return g.Templating(list=out)

    def assemble(self, spec: ResolvedSpec, layout: Layout) -> dict[str, Any]:
        dash = self.g.Dashboard(
            title=layout.title,
            uid=layout.uid,
            tags=tags(spec),
            description=layout.description,
            timezone="utc",
            refresh="1m",
            time=self.g.Time("now-6h", "now"),
            schemaVersion=SCHEMA_VERSION,
            editable=False,
            graphTooltip=1,
            templating=self.variables(spec, layout.job, layout.node_label, layout.datasource),
            annotations=self.g.Annotations(list=layout.annotations),
            links=layout.links,
            panels=layout.panels,
        )
        return clean(_number_panels(dash).to_json_data())  # builder objects become JSON data on the way (plain)


def _number_panels(dash: Any) -> Any:
    """grafanalib's ``Dashboard.auto_panel_ids()``, numbering the panels where they are: the same ids.

    ``auto_panel_ids`` copies the dashboard and every panel (``attr.evolve``) to set the ids. The
    panels of a layout are made for that dashboard alone, so they are numbered in place: every
    panel without an id gets the next number no panel has, in the order grafanalib walks them. A
    panel object that appears twice (grafanalib would number each copy) goes the grafanalib way.
    """
    panels = list(dash._iter_panels())
    if len({id(panel) for panel in panels}) != len(panels):
        return dash.auto_panel_ids()
    taken = {panel.id for panel in panels if panel.id}
    free = (i for i in itertools.count(1) if i not in taken)
    for panel in panels:
        if not panel.id:
            panel.id = next(free)
    return dash
