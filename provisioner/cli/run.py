"""``memprov run``: the typer command (``--help``, completion); its work, and the fast path that parses
the same flags without typer on a job's start-up, are in :mod:`provisioner.run.launch`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli.root import app, run_verb
from provisioner.run.launch import run


@app.command("run", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
def run_job(
    ctx: typer.Context,
    command: Annotated[list[str] | None, typer.Argument(help="the job's command, after --", show_default=False)] = None,
    job: Annotated[str, typer.Option("--job", "-j", help="the job's id in the spec")] = "",
    env: Annotated[str, typer.Option("--env", "-e", help="environment label", envvar="MEMPROV_ENV")] = "local",
    interval: Annotated[str, typer.Option("--interval", help="sampling interval (50ms to 60s)")] = "100ms",
    history: Annotated[
        Path | None, typer.Option("--history", metavar="DIR", help="append the run to DIR/runs.jsonl", file_okay=False)
    ] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", metavar="KEY=VALUE", help="recorded with the run")] = None,
    limit: Annotated[
        str | None, typer.Option("--limit", metavar="SIZE", help="limit for guards (default: cgroup)")
    ] = None,
    guard: Annotated[
        list[str] | None, typer.Option("--guard", metavar="95%:SIGTERM", help="act at a share of the limit (exit 75)")
    ] = None,
    textfile: Annotated[
        Path | None, typer.Option("--textfile", metavar="DIR", help="node_exporter textfile directory", file_okay=False)
    ] = None,
    pushgateway: Annotated[str | None, typer.Option("--pushgateway", metavar="URL", help="push metrics there")] = None,
    listen: Annotated[str | None, typer.Option("--listen", metavar="HOST:PORT", help="serve /metrics there")] = None,
    linger: Annotated[
        str | None,
        typer.Option("--linger", metavar="DURATION", help="--listen: serve final values so long (default: a scrape)"),
    ] = None,
    cgroup: Annotated[
        Path | None,
        typer.Option(
            "--cgroup", metavar="auto|none|DIR", help="auto: a memory cgroup of the job's own; none; DIR: the job's"
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", metavar="memray[,native]", help="Python job: record where memory is allocated"),
    ] = None,
) -> None:
    """Run a job, record its peak memory (and how exact it is) in the history, publish metrics, guard its limit."""
    if not job:
        from provisioner.cli.console import error

        error("--job is required: memprov run --job ID [options] -- COMMAND [ARGS…]")
        raise typer.Exit(2)
    run_verb(
        ctx,
        lambda spec, color: run(
            spec=spec,
            color=color,
            job=job,
            env=env,
            interval=interval,
            history=history,
            meta=meta or [],
            limit=limit,
            guard=guard or [],
            textfile=textfile,
            pushgateway=pushgateway,
            listen=listen,
            cgroup=cgroup,
            command=command or [],
            profile=profile,
            linger=linger,
        ),
    )
