"""oom_killed: a container of the job was killed by the kernel for exceeding its limit.

Context and post-mortem rather than a warning: it fires after the fact, so that the team sees the
memory trend that led to it. There are no settings: it is on wherever an OOM source exists
(cAdvisor's ``container_oom_events_total``, kube-state-metrics' termination reason, node_exporter's
``node_vmstat_oom_kill``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from provisioner.core.promql import duration
from provisioner.kinds.base import Alert, Facts, Kind, KindDef, NoSettings, Params, RuleContext, Texts

KEEP = 900.0


@dataclass(frozen=True)
class OomKilledParams(Params):
    events: str | None  # the OOM event counter selector, if the runtime has one
    terminated: tuple[str, ...]  # kube-state-metrics selectors: 1 when the container was OOM-killed
    group_by: tuple[str, ...]
    found: str | None  # which OOM-kill series the baseline found: events | kube-state-metrics | both | none


class OomKilledKind(KindDef[NoSettings, OomKilledParams]):
    kind = Kind.OOM_KILLED
    key = None
    settings = NoSettings
    explain = (
        "a container was OOM-killed (cAdvisor `container_oom_events_total`, kube-state-metrics termination reason)"
    )
    names = ("BatchJobOOMKilled",)

    def derive(self, settings: NoSettings, facts: Facts, others: Mapping[str, BaseModel]) -> OomKilledParams:
        src, found = facts.sources, facts.history.oom_source
        return OomKilledParams(
            enabled=True,
            events=src.oom_events if found in (None, "events", "both") else None,
            terminated=src.oom_terminated if found in (None, "kube-state-metrics", "both") else (),
            group_by=src.group_by,
            found=found,
        )

    def alerts(self, ctx: RuleContext, params: OomKilledParams) -> list[Alert]:
        """In the slow group: a report after the fact needs no 30-second evaluation."""
        window = duration(2 * ctx.track.slow_interval)
        parts = []
        if params.events:
            parts.append(f"increase({params.events}[{window}]) > 0")
        if params.terminated:  # newly terminated by an OOM kill: 1 now, not 1 a window ago
            now = " or ".join(f"{sel} == 1" for sel in params.terminated)
            before = " or ".join(f"{sel} offset {window} == 1" for sel in params.terminated)
            parts.append(f"(({now}) unless ({before}))")
        if not parts:
            return []
        expr = f"max by ({ctx.by}) (\n  " + "\n  or ".join(parts) + "\n)"
        return [Alert("BatchJobOOMKilled", "warning", expr, 0, 3 * ctx.track.slow_interval, scope="dead", slow=True)]

    def unexpressed(self, params: OomKilledParams) -> str | None:
        if params.events or params.terminated:
            return None
        if params.found == "none":
            return "memprov baseline found no OOM-kill series for this job in its history (baseline.oom_source: none)"
        return "the runtime has no OOM-kill series for this job; set metrics.oom_events to one"

    def texts(self, t: Texts, params: OomKilledParams) -> dict[str, dict[str, str]]:
        return {
            "BatchJobOOMKilled": {
                "summary": f"{t.name}: a container was OOM-killed",
                "description": f"{t.who}: the kernel killed {t.instance} for exceeding its {t.limit} memory limit. "
                "Look at the dashboard for the memory trend that led to it before re-running.",
            }
        }


KIND = OomKilledKind()
