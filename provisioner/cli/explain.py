"""``memprov explain``: per job and backend, how each alert kind is expressed (native, approximated or
unsupported, and why) and what it needs there (metrics, exporters, agents and their settings, history).

Everything is read from where rendering reads it, so it cannot drift from what is rendered: the
kinds' own sentences (``KindDef.explain``), the Prometheus rules' sources
(:mod:`provisioner.render.prometheus.needs`), each backend's :meth:`Backend.support` (for the clouds,
their ``TABLE`` entries' ``support`` and ``needs``) and platform caveats, the Alertmanager routes and
the breaker's plan notes. Nothing live is read, and no cloud SDK is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import EnvOpt, Format, JobsOpt, app, run_verb
from provisioner.core.errors import EXIT_OK

if TYPE_CHECKING:
    from provisioner.spec.resolved import ResolvedJob, ResolvedSpec


@app.command()
def explain(
    ctx: typer.Context,
    env: EnvOpt = "local",
    job: JobsOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
) -> None:
    """How each alert kind maps on each backend of each job (native / approximated / unsupported) and what it needs."""
    run_verb(ctx, lambda spec, color: run(spec=spec, color=color, env=env, jobs=job or [], fmt=fmt.value))


def run(*, spec: Path, color: bool | None, env: str, jobs: list[str], fmt: str) -> int:
    from provisioner.cli.common import select_jobs
    from provisioner.spec.loader import load

    resolved = load(spec, env)
    selected = select_jobs(resolved.jobs, jobs, "the spec has")
    data = explanation(resolved, selected)
    console = Console(color=color)
    if fmt == "json":
        console.raw(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "markdown":
        console.raw(markdown(data))
    else:
        console.lines(text(data))
    return EXIT_OK


def explanation(spec: ResolvedSpec, jobs: list[ResolvedJob]) -> dict[str, Any]:
    """The whole explanation as data (what ``--format json`` prints)."""
    from provisioner.backends.cloud import CloudBackend
    from provisioner.backends.registry import BACKENDS, configure
    from provisioner.kinds import BY_KIND
    from provisioner.kinds.base import Kind
    from provisioner.render import breaker
    from provisioner.render.prometheus import needs as prometheus

    configs = configure(spec)
    backends = {name: BACKENDS[name](spec, configs.get(name)) for name in BACKENDS if spec.jobs_using(name)}
    support = {name: backend.support() for name, backend in backends.items()}
    breaker_notes = breaker.notes(spec)
    out = []
    for job in jobs:
        kinds: dict[str, dict[str, Any]] = {}

        def add(backend: str, kind: Kind, level: str, why: str, needs: tuple[str, ...], into: dict[str, Any]) -> None:
            entry = into.setdefault(
                kind.value, {"kind": kind.value, "fires_when": BY_KIND[kind].explain, "backends": {}}
            )
            entry["backends"][backend] = {"level": level, "why": why, "needs": list(needs)}

        notes: dict[str, list[str]] = {}
        for name in job.backends:
            if name == "prometheus":
                for kind, s, needs in prometheus.support(job):
                    add(name, kind, s.level.value, s.why, needs, kinds)
                continue
            for js in support.get(name, []):
                if js.job == job.id:
                    add(name, js.kind, js.support.level.value, js.support.why, js.needs, kinds)
            backend = backends.get(name)
            if isinstance(backend, CloudBackend):
                notes[name] = [f"platform {backend.RENDER.platform(job)}", *backend.RENDER.caveats(job)]
        out.append(
            {
                "job": job.id,
                "name": job.name,
                "runtime": job.runtime,
                "selector": {k: v for k, v in job.selector.model_dump().items() if v},
                "limit_bytes": job.limit,
                "warning_bytes": job.warning_bytes,
                "critical_bytes": job.critical_bytes,
                "backends": list(job.backends),
                "kinds": list(kinds.values()),
                "notes": notes,
                "routing": (
                    {sev: list(getattr(job.route, sev)) for sev in ("critical", "warning", "info")}
                    if "alertmanager" in job.backends
                    else None
                ),
                "breaker": [n for n in breaker_notes if n.startswith((f"breaker {job.id} ", f"breaker {job.id}:"))],
                "dashboard": (
                    {"uid": job.dashboard_uid, "url": job.dashboard_url} if "grafana" in job.backends else None
                ),
            }
        )
    return {"env": spec.env, "spec": spec.name, "jobs": out}


STYLE = {"native": "green", "approximated": "yellow", "unsupported": "red"}


def _headline(j: dict[str, Any]) -> str:
    from provisioner.core.units import format_size

    where = ", ".join(f"{k} {v}" for k, v in j["selector"].items() if not isinstance(v, dict))
    sizes = (
        f"limit {format_size(j['limit_bytes'])}B, warning {format_size(j['warning_bytes'])}B, "
        f"critical {format_size(j['critical_bytes'])}B"
    )
    return f"{j['runtime']}{f' ({where})' if where else ''}; {sizes}; backends {', '.join(j['backends'])}"


def _routing(routing: dict[str, list[str]]) -> str:
    return "; ".join(f"{sev} → {', '.join(names)}" for sev, names in routing.items() if names) or "nobody"


def text(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(style, line) pairs for a terminal."""
    out: list[tuple[str, str]] = [("bold", f"memprov explain · environment {data['env']} · spec {data['spec']}")]
    for j in data["jobs"]:
        out += [("", ""), ("bold cyan", f"{j['job']} — {j['name']}"), ("", f"  {_headline(j)}")]
        width = max((len(b) for k in j["kinds"] for b in k["backends"]), default=10)
        for k in j["kinds"]:
            out.append(("bold", f"  {k['kind']} — {k['fires_when']}"))
            for backend, s in k["backends"].items():
                why = f": {s['why']}" if s["why"] else ""
                out.append((STYLE[s["level"]], f"    {backend:<{width}}  {s['level']}{why}"))
                for need in s["needs"]:
                    out.append(("dim", f"    {'':<{width}}  needs {need}"))
        for backend, notes in j["notes"].items():
            out += [("dim", f"  {backend}: {note}") for note in notes]
        if j["routing"] is not None:
            out.append(("", f"  routing (alertmanager): {_routing(j['routing'])}"))
        out += [("", f"  {note}") for note in j["breaker"]]
        if j["dashboard"] is not None:
            out.append(("", f"  dashboard (grafana): {j['dashboard']['url']}"))
    return out


def markdown(data: dict[str, Any]) -> str:
    """A table per job: one row per kind, one column per backend."""
    lines = [f"### memprov explain for `{data['env']}`"]
    for j in data["jobs"]:
        backends = [b for b in j["backends"] if any(b in k["backends"] for k in j["kinds"])]
        lines += ["", f"#### `{j['job']}` — {j['name']}", "", _headline(j), ""]
        lines += ["| kind | fires when | " + " | ".join(backends) + " |", "|---|---|" + "---|" * len(backends)]
        for k in j["kinds"]:
            cells = []
            for b in backends:
                s = k["backends"].get(b)
                if s is None:
                    cells.append("—")
                    continue
                cell = f"**{s['level']}**" + (f": {s['why']}" if s["why"] else "")
                cell += "".join(f"<br>needs {n}" for n in s["needs"])
                cells.append(cell.replace("|", "\\|"))
            lines.append(f"| {k['kind']} | {k['fires_when']} | " + " | ".join(cells) + " |")
        extra = [f"{b}: {n}" for b, notes in j["notes"].items() for n in notes]
        if j["routing"] is not None:
            extra.append(f"routing (alertmanager): {_routing(j['routing'])}")
        extra += j["breaker"]
        if j["dashboard"] is not None:
            extra.append(f"dashboard (grafana): {j['dashboard']['url']}")
        if extra:
            lines += ["", *[f"- {e}" for e in extra]]
    return "\n".join(lines) + "\n"
