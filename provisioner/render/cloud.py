"""What the cloud renderers (CloudWatch, Cloud Monitoring, Azure Monitor) share: the table that says,
per alert kind, how a cloud expresses it and renders it, and the job's context in words.

Each cloud module declares ``TABLE: dict[Kind, Rendering]``. An entry's ``support(job)`` says
whether the kind is native, approximated (and why) or unsupported (and why) for that job; its
``render(ctx)`` writes the request bodies; its ``needs(job)`` says what must exist for the alert
to see anything (the metrics, and the agent or its settings that publish them). The plan's notes,
``memprov explain`` and the rendered bodies come from the same entries, so they cannot drift; a
kind missing from a table is unsupported there, and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from provisioner.core.units import format_size
from provisioner.kinds import ALL as KINDS
from provisioner.kinds.base import Kind, Level, Support
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

C = TypeVar("C")  # a cloud's per-job context (its source, receivers, the job)
DESCRIPTION_MAX = 1024


@dataclass(frozen=True)
class Rendering(Generic[C]):
    """How one cloud expresses one kind: its support for a job, and the bodies it renders."""

    support: Callable[[ResolvedJob], Support]
    render: Callable[[C], list[dict[str, Any]]] | None = None  # None: never rendered (always unsupported)
    needs: Callable[[ResolvedJob], tuple[str, ...]] | None = None  # metrics, agents and their settings, in words


def supports(
    table: Mapping[Kind, Rendering[C]],
    job: ResolvedJob,
    service: str,
    machine: Callable[[ResolvedJob], str] | None = None,
) -> list[tuple[Kind, Support]]:
    """Per enabled kind of ``job``, in kind order, how this cloud expresses it.

    ``machine(job)`` says why the series is the whole machine's rather than the job's (a ``process`` job
    on a VM metric), or ``""``: every kind that reads it is then approximated, never native.
    """
    out = []
    whole = machine(job) if machine else ""
    for kind in KINDS:
        if not kind.of(job).enabled:
            continue
        entry = table.get(kind.kind)
        found = entry.support(job) if entry else Support.unsupported(f"{service} has no rendering of it")
        if whole and kind.kind is not Kind.OOM_KILLED and found.level is not Level.UNSUPPORTED:
            found = Support.approximated("; ".join(w for w in (whole, found.why) if w))
        out.append((kind.kind, found))
    return out


def needs(table: Mapping[Kind, Rendering[C]], job: ResolvedJob) -> dict[Kind, tuple[str, ...]]:
    """Per enabled kind of ``job`` that this cloud renders, what it needs there (as its entry states)."""
    out = {}
    for kind in KINDS:
        entry = table.get(kind.kind)
        if entry is not None and entry.needs is not None and kind.of(job).enabled:
            out[kind.kind] = entry.needs(job)
    return out


def render(table: Mapping[Kind, Rendering[C]], job: ResolvedJob, ctx: C) -> list[dict[str, Any]]:
    """The bodies of every enabled kind this cloud supports for ``job``, in kind order."""
    out: list[dict[str, Any]] = []
    for kind in KINDS:
        entry = table.get(kind.kind)
        if entry is None or entry.render is None or not kind.of(job).enabled:
            continue
        if entry.support(job).level is not Level.UNSUPPORTED:
            out += entry.render(ctx)
    return out


def percent_per_second(job: ResolvedJob, bytes_per_second: float) -> float:
    """A velocity in bytes per second as percent of the job's limit per second."""
    return bytes_per_second / job.limit * 100


def description(spec: ResolvedSpec, job: ResolvedJob, summary: str, what: str = "alarm") -> str:
    """Job context within 1024 characters (CloudWatch's and Azure's limit): the links are kept whole,
    the summary and the job's display name are shortened when they do not fit."""
    # Grafana finds a dashboard by uid alone: the slug (from the display name) is left out to save room
    dashboard = f"{spec.environment.grafana_url}/d/{job.dashboard_uid}?var-job={job.id}&from=now-6h&to=now"
    links = (
        f" Runbook: {job.runbook_url} Dashboard: {dashboard} Managed by memprov: change memprov.yaml, not this {what}."
    )

    def context(name: str) -> str:
        return (
            f" Job {name} ({job.id}), environment {spec.env}; model {job.model_name} {job.model_version}; "
            f"owner {job.owner}, team {job.team}; limit {format_size(job.limit)}B."
        )

    head = f"{summary[:1].upper()}{summary[1:]}."
    name = job.name
    over = len(head) + len(context(name)) + len(links) - DESCRIPTION_MAX
    if over > 0 and len(name) > 40:  # a long display name goes first: the id stays
        name = name[: max(len(name) - over - 1, 40)] + "…"
    room = DESCRIPTION_MAX - len(context(name)) - len(links)
    if len(head) > room:
        head = head[: max(room - 1, 0)] + "…"
    return (head + context(name) + links)[:DESCRIPTION_MAX]
