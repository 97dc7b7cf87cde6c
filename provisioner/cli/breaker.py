"""``memprov breaker serve | plan | history``: the circuit breaker's receiver, a dry look, and its audit.

``serve`` loads the spec for one environment, reads the bearer token from the environment's
``breaker.token`` reference, and serves Alertmanager's webhook until SIGTERM or Ctrl-C (exit 0).
``plan`` runs one alert payload through the same screen and planner against the live orchestrator
with reads only, and prints the decision and the exact calls it would send. ``history`` renders
the audit log. No orchestrator module (and so no cloud SDK) is imported before an alert needs it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provisioner.cli.root import EnvOpt, Format, app, run_verb
from provisioner.core.errors import EXIT_FAILED, EXIT_OK, OperationError, UsageError

if TYPE_CHECKING:
    from provisioner.spec.resolved import ResolvedSpec


breaker_app = typer.Typer(
    help="The circuit breaker: when an OOM is coming, pause the job, give it more memory, resume it.",
    no_args_is_help=True,
)
app.add_typer(breaker_app, name="breaker")


@breaker_app.command("serve")
def breaker_serve(
    ctx: typer.Context,
    env: EnvOpt = "local",
    listen: Annotated[str | None, typer.Option("--listen", metavar="HOST:PORT", help="default: breaker.listen")] = None,
    state: Annotated[
        Path | None, typer.Option("--state-dir", metavar="DIR", help="ledger and audit (default: breaker.state_dir)")
    ] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="decide and audit, change nothing")] = False,
) -> None:
    """Receive Alertmanager's webhook and act on the orchestrators (until SIGTERM)."""
    run_verb(
        ctx, lambda spec, color: serve(spec=spec, color=color, env=env, listen=listen, state=state, read_only=read_only)
    )


@breaker_app.command("plan")
def breaker_plan(
    ctx: typer.Context,
    alert: Annotated[Path, typer.Option("--alert", metavar="FILE", help="an Alertmanager webhook payload (JSON)")],
    env: EnvOpt = "local",
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
) -> None:
    """What the breaker would do with an alert: reads the orchestrator, changes nothing."""
    run_verb(ctx, lambda spec, color: plan(spec=spec, color=color, env=env, alert=alert, fmt=fmt.value))


@breaker_app.command("history")
def breaker_history(
    ctx: typer.Context,
    env: EnvOpt = "local",
    job: Annotated[str | None, typer.Option("--job", "-j", help="only this job")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
    state: Annotated[
        Path | None, typer.Option("--state-dir", metavar="DIR", help="where serve keeps its audit")
    ] = None,
    last: Annotated[int, typer.Option("--last", help="only the last N decisions (0: all)")] = 50,
) -> None:
    """The breaker's decisions from its audit log, as a table, Markdown or JSON."""
    run_verb(
        ctx,
        lambda spec, color: history(spec=spec, color=color, env=env, job=job, fmt=fmt.value, state=state, last=last),
    )


def state_dir(spec: ResolvedSpec, override: Path | None) -> Path:
    if override is not None:
        return override
    settings = spec.environment.breaker
    configured = settings.state_dir if settings is not None else None
    path = Path(configured) if configured else Path(".memprov") / "breaker" / spec.env
    return path if path.is_absolute() else spec.base_dir / path


def _load(spec: Path, env: str) -> ResolvedSpec:
    from provisioner.spec.loader import load

    resolved = load(spec, env)
    if resolved.environment.breaker is None:
        raise UsageError(
            f"environment {env} has no breaker: block; add one to environments/{env}.yaml "
            "(listen, token, and how to reach each orchestrator)"
        )
    return resolved


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--listen {text}: write HOST:PORT, e.g. 127.0.0.1:9095")
    return host.strip("[]") or "127.0.0.1", int(port)


def serve(*, spec: Path, color: bool | None, env: str, listen: str | None, state: Path | None, read_only: bool) -> int:
    from provisioner.breaker.server import BreakerServer
    from provisioner.breaker.service import Service
    from provisioner.core.secrets import resolve
    from provisioner.spec.breaker import active

    resolved = _load(spec, env)
    settings = resolved.environment.breaker
    assert settings is not None
    token = resolve(settings.token) or ""
    if len(token) < 16:
        raise UsageError(f"the breaker token ({settings.token.describe()}) must be at least 16 characters long")
    host, port = _listen(listen or settings.listen)
    service = Service(resolved, state_dir(resolved, state), read_only=read_only)
    try:
        server = BreakerServer((host, port), service, token)
    except OSError as e:
        service.close()
        raise OperationError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    jobs = [j for j in resolved.jobs if active(settings, j.breaker)]
    names = ", ".join(
        f"{j.id} ({j.breaker.orchestrator}{', dry run' if j.breaker.dry_run else ''})" for j in jobs if j.breaker
    )
    mode = " READ-ONLY" if service.read_only else ""
    server.say(
        f"memprov breaker{mode}: listening on http://{host}:{server.server_address[1]}/alerts for environment {env}; "
        f"jobs: {names or 'none'}; audit {service.audit.path}"
    )
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        service.close()
    server.say("memprov breaker: stopped")
    return EXIT_OK


def plan(*, spec: Path, color: bool | None, env: str, alert: Path, fmt: str) -> int:
    """One payload through screen and planner, reading the orchestrator (GETs only); nothing is changed."""
    from provisioner.breaker.planner import Alert, Past, decide, screen
    from provisioner.breaker.server import _shape
    from provisioner.breaker.service import expected_labels, make_client
    from provisioner.cli.console import out
    from provisioner.spec.breaker import active

    resolved = _load(spec, env)
    try:
        payload = json.loads(alert.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"--alert {alert}: not a readable JSON file ({e})") from None
    problem = _shape(payload)
    if problem:
        raise UsageError(f"--alert {alert}: {problem}")
    jobs = {j.id: j for j in resolved.jobs}
    rows: list[dict[str, Any]] = []
    code = EXIT_OK

    for raw in payload["alerts"]:
        a = Alert.from_payload(raw)
        job = jobs.get(a.labels.get("memprov_job", ""))
        breaker = job.breaker if job is not None and active(resolved.environment.breaker, job.breaker) else None
        row: dict[str, Any] = {"alert": a.name, "job": a.labels.get("memprov_job", ""), "status": a.status}
        if a.status != "firing":
            rows.append({**row, "outcome": "ignored", "reason": f"alert is {a.status}: no action"})
            continue
        reason = screen(a, env, job.id if job else None, breaker, expected_labels(job, breaker))
        if reason or job is None or breaker is None:
            rows.append({**row, "outcome": "refused", "reason": reason})
            continue
        try:
            client = make_client(resolved, job)
            try:
                observed = client.observe()
                decision = decide(breaker, a, observed, Past(), time.time(), job.limit)
                calls = client.plan(decision, observed, a.key) if decision.outcome == "act" else []
            finally:
                client.close()
        except OperationError as e:
            rows.append({**row, "outcome": "failed", "reason": e.render()})
            code = EXIT_FAILED
            continue
        rows.append(
            {
                **row,
                "outcome": decision.outcome,
                "reason": decision.describe(),
                "dry_run": breaker.dry_run,
                "calls": [{"call": c.name, "op": c.op, "body": c.body, "mutating": c.mutating} for c in calls],
            }
        )
    console = out()
    if fmt == "json":
        console.raw(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    else:
        for r in rows:
            console.line(f"{r['job']} {r['alert']}: {r['outcome']}: {r.get('reason') or ''}")
            for c in r.get("calls", []):
                console.line(f"  {c['op']}  {json.dumps(c['body'], sort_keys=True) if c['body'] is not None else ''}")
    return code


def history(
    *, spec: Path, color: bool | None, env: str, job: str | None, fmt: str, state: Path | None, last: int
) -> int:
    from provisioner.breaker.audit import read
    from provisioner.cli.console import out

    resolved = _load(spec, env)
    path = state_dir(resolved, state) / "audit.jsonl"
    records = list(read(path, job))[-last:] if last > 0 else list(read(path, job))
    console = out()
    if fmt == "json":
        console.raw(json.dumps(records, indent=2, sort_keys=True) + "\n")
        return EXIT_OK
    head = ["time", "job", "alert", "outcome", "memory", "calls", "reason"]
    rows = [
        [
            str(r.get("ts", "")),
            str(r.get("job", "")),
            str((r.get("alert") or {}).get("name", "")),
            str(r.get("outcome", "")) + (" (dry run)" if r.get("dry_run") and r.get("outcome") == "dry_run" else ""),
            _mem(r.get("memory") or {}),
            ", ".join(f"{s.get('call')} {s.get('status')}" for s in r.get("steps") or [])
            or f"{len(r.get('planned') or [])} planned",
            str(r.get("reason", "") or r.get("error", "")),
        ]
        for r in records
    ]
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        console.raw("\n".join(lines) + "\n")
        return EXIT_OK
    if not rows:
        console.line(f"no breaker decisions recorded in {path}" + (f" for job {job}" if job else ""))
        return EXIT_OK
    for row in rows:
        console.line("  ".join(row))
    return EXIT_OK


def _mem(m: dict[str, Any]) -> str:
    from provisioner.core.units import format_size

    before, after = m.get("before"), m.get("after")
    if before is None:
        return "-"
    return format_size(before) if after in (None, before) else f"{format_size(before)} -> {format_size(after)}"


def run(**kwargs: Any) -> int:
    verb = kwargs.pop("verb")
    verbs: dict[str, Any] = {"serve": serve, "plan": plan, "history": history}
    return int(verbs[verb](**kwargs))
