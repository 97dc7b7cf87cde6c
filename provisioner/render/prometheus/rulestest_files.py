"""The files ``memprov test`` hands to promtool: input series in promtool's notation, rule files
without annotations, test documents with the expected alerts (see :mod:`provisioner.rulestest`)."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from provisioner.core.promql import WRAPPER_RSS
from provisioner.core.units import format_duration
from provisioner.render import gotext
from provisioner.render.prometheus import rules as prom
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

if TYPE_CHECKING:
    from provisioner.render.prometheus.rulestest import Scenario


class Unsupported(Exception):
    """The job's selectors or metrics cannot be synthesised (e.g. regex matchers)."""


def _instance_labels(spec: ResolvedSpec, job: ResolvedJob, scenario: str) -> dict[str, str]:
    sel = job.selector
    if sel.regex:
        raise Unsupported(f"regex selectors ({', '.join(sel.regex)}) cannot be synthesised; test this job by hand")
    if job.runtime == "kubernetes":
        return {
            "namespace": sel.namespace or "default",
            "pod": sel.pod or f"{job.id}-{scenario}",
            "container": sel.container or "main",
            "node": "node-a",
        }
    if job.runtime == "vm":
        return {"instance": sel.instance or f"{job.id}-vm:9100"}
    if job.sources.working_set.startswith(WRAPPER_RSS + "{"):  # memprov run's own series
        return {"memprov_job": job.id, "memprov_env": spec.env, "instance": "host-a:9100"}
    return {"groupname": sel.groupname or job.id, "instance": "host-a:9256"}


def _fmt(v: float) -> str:
    return str(round(v))


def encode(values: list[float | None]) -> str:
    """promtool's expanding notation: runs of blanks and arithmetic progressions compressed."""
    out: list[str] = []
    i, n = 0, len(values)
    while i < n:
        v = values[i]
        if v is None:
            j = i
            while j < n and values[j] is None:
                j += 1
            out.append(f"_x{j - i}" if j - i > 1 else "_")
            i = j
            continue
        j = i + 1
        step: int | None = None
        while j < n:
            cur, prev = values[j], values[j - 1]
            if cur is None or prev is None:
                break
            d = round(cur) - round(prev)
            if step is None:
                step = d
            elif d != step:
                break
            j += 1
        count = j - i - 1
        if count >= 2 and step is not None:
            sign = "+" if step >= 0 else "-"
            out.append(f"{_fmt(v)}{sign}{abs(step)}x{count}")
        else:
            j = i + 1
            out.append(_fmt(v))
        i = j
    return " ".join(out)


def _series(spec: ResolvedSpec, job: ResolvedJob, sc: Scenario, step: float) -> list[dict[str, str]]:
    labels = _instance_labels(spec, job, sc.name)
    times = [i * step for i in range(int(sc.duration // step) + 1)]
    ws = [sc.wave(t) for t in times]
    present = [v is not None for v in ws]

    def sel(name: str, extra: dict[str, str] | None = None) -> str:
        lab = {**labels, **(extra or {})}
        return name + "{" + ", ".join(f'{k}="{v}"' for k, v in lab.items()) + "}"

    def flat(value: float) -> list[float | None]:
        return [value if p else None for p in present]

    m = job.sources
    if job.runtime == "kubernetes":
        ws_name = _metric(m.working_set)
        out = [
            {"series": sel(ws_name), "values": encode(ws)},
            {"series": sel(_metric(m.limit or "")), "values": encode(flat(job.limit))},
        ]
        if sc.oom_at is not None and m.oom_events:
            oom_at = sc.oom_at
            counter: list[float | None] = [
                (1.0 if t >= oom_at - step else 0.0) if p else None for t, p in zip(times, present, strict=True)
            ]
            tail: list[float | None] = [1.0] * 4  # the counter is scraped a few more times after the kill
            out.append({"series": sel(_metric(m.oom_events)), "values": encode(counter + tail)})
        return out
    if job.runtime == "vm":
        total = float(job.limit)
        return [
            {"series": sel("node_memory_MemTotal_bytes"), "values": encode(flat(total))},
            {
                "series": sel("node_memory_MemAvailable_bytes"),
                "values": encode([None if v is None else total - v for v in ws]),
            },
        ]
    memtype = {} if m.working_set.startswith(WRAPPER_RSS + "{") else {"memtype": "resident"}
    return [{"series": sel(_metric(m.working_set), memtype), "values": encode(ws)}]


def _metric(selector: str) -> str:
    return re.split(r"[{\s]", selector, maxsplit=1)[0]


def _expected_labels(spec: ResolvedSpec, job: ResolvedJob, alert: dict[str, Any], scenario: str) -> dict[str, str]:
    inst = _instance_labels(spec, job, scenario)
    kind = alert["labels"]["memprov_kind"]
    if kind == "anomaly":
        series_labels: dict[str, str] = {}
    elif kind == "oom_killed":
        series_labels = {k: inst[k] for k in job.sources.group_by}
    else:
        series_labels = {k: v for k, v in inst.items() if k in (*job.sources.group_by, job.sources.node_label)}
    rendered = {k: gotext.rendered(v) for k, v in alert["labels"].items()}  # as Prometheus expands them
    return {**series_labels, "memprov_job": job.id, "memprov_env": spec.env, **rendered}


def behaviour_rules(
    spec: ResolvedSpec, job: ResolvedJob, only: str | None = None, interval: float | None = None
) -> dict[str, Any]:
    """The job's rendered groups with annotations removed (see :mod:`provisioner.rulestest`).

    ``only``: keep just this alert and the recording rules it depends on; ``interval``: evaluate
    the groups at this interval instead (used for weeks of history: the drift scenario).
    """
    groups = []
    for group in prom.rule_groups(spec, job):
        rules = [{k: v for k, v in r.items() if k != "annotations"} for r in group["rules"]]
        groups.append({**group, "rules": rules, **({"interval": format_duration(interval)} if interval else {})})
    if only is not None:
        keep = _closure([r for g in groups for r in g["rules"]], only)
        groups = [{**g, "rules": [r for r in g["rules"] if _key(r) in keep]} for g in groups]
        groups = [g for g in groups if g["rules"]]
    return {"groups": groups}


def _key(rule: dict[str, Any]) -> str:
    return str(rule.get("record") or rule.get("alert"))


def _closure(rules: list[dict[str, Any]], alert: str) -> set[str]:
    """The alert and every recording rule it needs, directly or through others."""
    records = {r["record"] for r in rules if "record" in r}
    need: set[str] = set()
    todo = [next(r["expr"] for r in rules if r.get("alert") == alert)]
    while todo:
        expr = todo.pop()
        for name in records - need:
            if re.search(re.escape(name) + r"\{", expr):
                need.add(name)
                todo += [r["expr"] for r in rules if r.get("record") == name]
    return need | {alert}


def test_document(
    spec: ResolvedSpec, job: ResolvedJob, built: list[Scenario], rules_file: str, interval: float
) -> dict[str, Any]:
    """The promtool test file of ``built`` scenarios against ``rules_file``."""
    alerts = {r["alert"]: r for g in prom.rule_groups(spec, job) for r in g["rules"] if "alert" in r}
    tests = []
    for sc in built:
        cases = []
        for chk in sorted(sc.checks, key=lambda c: (c.at, c.alert)):
            exp = [{"exp_labels": _expected_labels(spec, job, alerts[chk.alert], sc.name)}] if chk.firing else []
            cases.append(
                {"eval_time": format_duration(_round_to(chk.at, interval)), "alertname": chk.alert, "exp_alerts": exp}
            )
        step = max(spec.scrape_interval, interval)
        tests.append(
            {
                "name": f"{job.id}: {sc.name}",
                "interval": format_duration(step),
                "input_series": _series(spec, job, sc, step),
                "alert_rule_test": cases,
            }
        )
    return {"rule_files": [rules_file], "evaluation_interval": format_duration(interval), "tests": tests}


def _round_to(t: float, step: float) -> float:
    return math.ceil(t / step) * step
