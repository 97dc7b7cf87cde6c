"""Small, pure PromQL helpers: label-value escaping, matchers and per-runtime source series.

Values from the spec never reach PromQL unescaped: every label value passes through
:func:`quote`, and metric/label names are validated by the spec model.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.spec.model import Metrics, Runtime, Selector


def quote(value: str) -> str:
    """A PromQL string literal: ``"batch"``, with backslashes, quotes and newlines escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def matchers(exact: dict[str, str], regex: dict[str, str] | None = None, extra: str = "") -> str:
    parts = [f"{k}={quote(v)}" for k, v in exact.items()]
    parts += [f"{k}=~{quote(v)}" for k, v in (regex or {}).items()]
    if extra:
        parts.append(extra)
    return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True)
class Sources:
    """The raw series of one job for its runtime: working set, limit, OOM events."""

    working_set: str
    limit: str | None
    oom_events: str | None
    group_by: tuple[str, ...]
    node_label: str
    oom_terminated: tuple[str, ...] = ()  # kube-state-metrics selectors: 1 when the container was OOM-killed


WRAPPER_RSS = "memprov_job_rss_bytes"  # what `memprov run` exports (provisioner/run/metrics.py)


def sources(runtime: Runtime, selector: Selector, metrics: Metrics, job: str = "") -> Sources:
    """The series of a job; a ``process`` job without a process-exporter ``groupname`` (or its own
    ``metrics.working_set``) reads what ``memprov run --job <job>`` exports."""
    regex = dict(selector.regex)
    if runtime == "kubernetes":
        exact = {
            k: v
            for k, v in (("namespace", selector.namespace), ("pod", selector.pod), ("container", selector.container))
            if v
        }
        guard = "" if selector.container else 'container!="", container!="POD"'
        m = matchers(exact, regex, guard)
        oom = matchers(exact, regex, 'reason="OOMKilled"')
        return Sources(
            working_set=f"{metrics.working_set or 'container_memory_working_set_bytes'}{m}",
            limit=f"{metrics.limit or 'container_spec_memory_limit_bytes'}{m} > 0",
            oom_events=f"{metrics.oom_events or 'container_oom_events_total'}{m}",
            group_by=("namespace", "pod", "container"),
            node_label="node",
            oom_terminated=(
                f"kube_pod_container_status_terminated_reason{oom}",
                f"kube_pod_container_status_last_terminated_reason{oom}",
            ),
        )
    if runtime == "vm":
        m = matchers({"instance": selector.instance} if selector.instance else {}, regex)
        used = (
            f"{metrics.working_set}{m}"
            if metrics.working_set
            else f"node_memory_MemTotal_bytes{m} - node_memory_MemAvailable_bytes{m}"
        )
        return Sources(
            working_set=used,
            limit=f"{metrics.limit or 'node_memory_MemTotal_bytes'}{m}",
            oom_events=f"{metrics.oom_events or 'node_vmstat_oom_kill'}{m}",
            group_by=("instance",),
            node_label="instance",
        )
    if job and not selector.groupname and not metrics.working_set:
        m = matchers({"memprov_job": job}, regex)
        return Sources(
            working_set=f"{WRAPPER_RSS}{m}",
            limit=f"{metrics.limit}{m}" if metrics.limit else None,
            oom_events=f"{metrics.oom_events}{m}" if metrics.oom_events else None,
            group_by=("instance", "memprov_job"),
            node_label="instance",
        )
    m = matchers(
        {"groupname": selector.groupname} if selector.groupname else {},
        regex,
        'memtype="resident"' if not metrics.working_set else "",
    )
    return Sources(
        working_set=f"{metrics.working_set or 'namedprocess_namegroup_memory_bytes'}{m}",
        limit=f"{metrics.limit}{m}" if metrics.limit else None,
        oom_events=f"{metrics.oom_events}{m}" if metrics.oom_events else None,
        group_by=("instance", "groupname") if not metrics.working_set else ("instance",),
        node_label="instance",
    )
