"""What each alert kind's Prometheus rules need to see anything, per job: the series they read (and
which exporter publishes them), the numbers they take from the spec or else from Prometheus'
history, and how much history that is. ``memprov explain`` shows it next to how every other
backend expresses the kind.

It is read from what the rules are written from (the job's :class:`~provisioner.core.promql.Sources`
and each kind's derived values), so it names exactly the series the rendered rules query.
"""

from __future__ import annotations

from provisioner.core.promql import WRAPPER_RSS
from provisioner.core.units import format_duration, format_size
from provisioner.kinds import ALL as KINDS
from provisioner.kinds import anomaly, baseline
from provisioner.kinds.base import Kind, Support
from provisioner.render.prometheus.rules import HISTORY
from provisioner.spec.resolved import ResolvedJob

EXPORTERS = {
    "kubernetes": "cAdvisor (the kubelet's /metrics/cadvisor)",
    "vm": "node_exporter",
    "process": "process-exporter (memtype=resident)",
}


def exporter(job: ResolvedJob) -> str:
    """Who publishes the job's working set."""
    if WRAPPER_RSS in job.sources.working_set:
        return f"memprov run --job {job.id} (--textfile, --pushgateway or --listen)"
    return EXPORTERS[job.runtime]


def needs(job: ResolvedJob) -> dict[Kind, tuple[str, ...]]:
    """Per enabled kind of ``job``, what its rules need, in words."""
    src = job.sources
    working_set = f"{src.working_set} from {exporter(job)}"
    limit = f"{src.limit}" if src.limit else f"the spec's limit ({format_size(job.limit)}B): no limit series"
    velocity = (
        f"the usual trough growth from the baseline ({format_size(round(job.usual_velocity * 60))}B/min)"
        if job.usual_velocity
        else f"the usual trough growth from {HISTORY} of history in Prometheus (no baseline velocity)"
    )
    out: dict[Kind, tuple[str, ...]] = {}
    for kind in KINDS:
        params = kind.of(job)
        if not params.enabled:
            continue
        if kind.kind is Kind.USAGE:
            out[kind.kind] = (working_set, f"limit: {limit}")
        elif kind.kind is Kind.GROWTH:
            out[kind.kind] = (working_set, velocity)
        elif kind.kind is Kind.TIME_TO_OOM:
            out[kind.kind] = (working_set, f"limit: {limit}", velocity)
        elif kind.kind is Kind.BASELINE:
            p95 = baseline.KIND.of(job).p95
            peak = (
                f"the p95 peak from the baseline ({format_size(p95)}B)"
                if p95
                else f"the p95 peak from {HISTORY} of history in Prometheus (no baseline peak_p95)"
            )
            out[kind.kind] = (working_set, peak)
        elif kind.kind is Kind.ANOMALY:
            a = anomaly.KIND.of(job)
            back = a.compare * a.weeks + a.window
            out[kind.kind] = (
                working_set,
                f"Prometheus retention of at least {format_duration(back)} (the compared windows)",
            )
        elif kind.kind is Kind.OOM_KILLED:
            found = [f"{src.oom_events} from {exporter(job)}"] if src.oom_events else []
            found += [f"{t} from kube-state-metrics" for t in src.oom_terminated]
            out[kind.kind] = tuple(found)
    return out


def support(job: ResolvedJob) -> list[tuple[Kind, Support, tuple[str, ...]]]:
    """Per enabled kind: how the Prometheus rules express it (they are the reference: native, unless the
    runtime has no series for it), and what they need."""
    out: list[tuple[Kind, Support, tuple[str, ...]]] = []
    for kind, found in needs(job).items():
        if kind is Kind.OOM_KILLED and not found:
            why = f"no OOM-kill series for the {job.runtime} runtime: set metrics.oom_events; no rule is written"
            out.append((kind, Support.unsupported(why), found))
        else:
            out.append((kind, Support.native(), found))
    return out
