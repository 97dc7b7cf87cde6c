"""The raw series a job's rules read, per runtime (cAdvisor, node_exporter, process-exporter or
``memprov run``), from its selector and metric overrides."""

from __future__ import annotations

from provisioner.core.promql import WRAPPER_RSS, Sources, matchers
from provisioner.spec.model import Metrics, Runtime, Selector


def sources(runtime: Runtime, selector: Selector, metrics: Metrics, job: str = "", env: str = "") -> Sources:
    """The series of a job; a ``process`` job without a process-exporter ``groupname`` (or its own
    ``metrics.working_set``) reads what ``memprov run --job <job>`` exports, of its environment
    only (``memprov_env``: one Prometheus may scrape the wrappers of several environments)."""
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
        ws = f"{metrics.working_set or 'container_memory_working_set_bytes'}{m}"
        limit = f"{metrics.limit or 'container_spec_memory_limit_bytes'}{m}"
        return Sources(
            working_set=ws,
            ws_selectors=(ws,),
            limit=f"{limit} > 0",
            limit_selector=limit,
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
        parts: tuple[str, ...]
        if metrics.working_set:
            parts, template = (f"{metrics.working_set}{m}",), "{0}"
        else:
            parts, template = (f"node_memory_MemTotal_bytes{m}", f"node_memory_MemAvailable_bytes{m}"), "{0} - {1}"
        limit = f"{metrics.limit or 'node_memory_MemTotal_bytes'}{m}"
        return Sources(
            working_set=template.format(*parts),
            ws_selectors=parts,
            ws_template=template,
            limit=limit,
            limit_selector=limit,
            oom_events=f"{metrics.oom_events or 'node_vmstat_oom_kill'}{m}",
            group_by=("instance",),
            node_label="instance",
        )
    if job and not selector.groupname and not metrics.working_set:
        m = matchers({"memprov_job": job, **({"memprov_env": env} if env else {})}, regex)
        ws = f"{WRAPPER_RSS}{m}"
        wrapper_limit = f"{metrics.limit}{m}" if metrics.limit else None
        return Sources(
            working_set=ws,
            ws_selectors=(ws,),
            limit=wrapper_limit,
            limit_selector=wrapper_limit,
            oom_events=f"{metrics.oom_events}{m}" if metrics.oom_events else None,
            group_by=("instance", "memprov_job"),
            node_label="instance",
        )
    m = matchers(
        {"groupname": selector.groupname} if selector.groupname else {},
        regex,
        'memtype="resident"' if not metrics.working_set else "",
    )
    ws = f"{metrics.working_set or 'namedprocess_namegroup_memory_bytes'}{m}"
    exporter_limit = f"{metrics.limit}{m}" if metrics.limit else None
    return Sources(
        working_set=ws,
        ws_selectors=(ws,),
        limit=exporter_limit,
        limit_selector=exporter_limit,
        oom_events=f"{metrics.oom_events}{m}" if metrics.oom_events else None,
        group_by=("instance", "groupname") if not metrics.working_set else ("instance",),
        node_label="instance",
    )
