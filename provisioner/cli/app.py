"""The ``memprov`` command: verbs, options, exit codes. Imports only typer at start-up.

Each verb's work lives in its own module (``provisioner.cli.<verb>``), imported when the verb
runs, so that ``memprov --help`` stays fast and no cloud SDK is ever loaded for it. Every verb
returns an exit code; :func:`_run` turns library errors into ``error: file:line: ...`` lines.
"""

from __future__ import annotations

import importlib
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

EXIT_CODES = """Exit codes: 0 ok · 1 operation failed (or lint/check found problems) · 2 invalid input or usage ·
3 changes present (plan --detailed-exitcode) · 4 internal error (a bug: please report it) · 130 interrupted."""

app = typer.Typer(
    name="memprov",
    help="Memory alerts for batch inference jobs: one spec → Prometheus rules, Alertmanager routing, "
    "Grafana dashboards; plan the difference, apply it.",
    epilog=EXIT_CODES,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


def _complete_env(ctx: typer.Context, incomplete: str) -> list[str]:
    spec = Path((ctx.find_root().params or {}).get("spec") or "memprov.yaml")
    env_dir = spec.parent / "environments"
    names = {p.stem for p in env_dir.glob("*.yaml")} | {"local"} if env_dir.is_dir() else {"local"}
    return sorted(n for n in names if n.startswith(incomplete))


def _complete_backend(incomplete: str) -> list[str]:
    from provisioner.backends.registry import BACKENDS

    return [b for b in BACKENDS if b.startswith(incomplete)]


EnvOpt = Annotated[
    str, typer.Option("--env", "-e", help="environment (environments/<env>.yaml)", autocompletion=_complete_env)
]
OptEnvOpt = Annotated[
    str | None, typer.Option("--env", "-e", help="environment; default: all of them", autocompletion=_complete_env)
]


@app.callback()
def main_options(
    ctx: typer.Context,
    spec: Annotated[
        Path, typer.Option("--spec", "-s", help="the spec file", envvar="MEMPROV_SPEC", dir_okay=False)
    ] = Path("memprov.yaml"),
    color: Annotated[bool | None, typer.Option("--color/--no-color", help="force or disable colour")] = None,
) -> None:
    ctx.obj = {"spec": spec, "color": color}


def _run(ctx: typer.Context, module: str, **kwargs: Any) -> None:
    """Run ``provisioner.cli.<module>.run(**kwargs)`` and exit with its code; errors become messages."""
    from provisioner.core.errors import EXIT_BUG, EXIT_FAILED, EXIT_INTERRUPTED, MemprovError

    try:
        mod = importlib.import_module(f"provisioner.cli.{module}")
        code = mod.run(spec=ctx.obj["spec"], color=ctx.obj["color"], **kwargs)
    except MemprovError as e:
        from provisioner.cli.console import error

        error(e.render())
        code = e.exit_code
    except KeyboardInterrupt:
        from provisioner.cli.console import error

        error("interrupted")
        code = EXIT_INTERRUPTED
    except OSError as e:  # the file system or network said no: an operation failed, not a bug
        from provisioner.cli.console import error

        where = f"{e.filename}: " if e.filename else ""
        error(f"{where}{e.strerror or e}; check that path (a file where a directory belongs, permissions, space)")
        code = EXIT_FAILED
    except Exception as e:  # a bug: say so plainly, keep the traceback for whoever reports it
        if os.environ.get("MEMPROV_DEBUG"):
            raise
        from provisioner.cli.console import error

        error(
            f"internal error: {type(e).__name__}: {e}",
            "This is a bug in memprov. Re-run with MEMPROV_DEBUG=1 for the traceback and report it.",
        )
        code = EXIT_BUG
    raise typer.Exit(code)


@app.command()
def validate(ctx: typer.Context, env: OptEnvOpt = None) -> None:
    """Check the spec and its environment overlays; print every problem as file:line."""
    _run(ctx, "validate", env=env)


@app.command()
def render(
    ctx: typer.Context,
    env: OptEnvOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="write every artefact under DIR/<backend>/", file_okay=False)
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="write nothing; exit 1 with a diff if files are stale")
    ] = False,
) -> None:
    """Write the committed dashboards/<env>/ (or, with --out, every artefact); --check verifies them."""
    _run(ctx, "render", env=env, out=out, check=check)


@app.command()
def plan(
    ctx: typer.Context,
    env: EnvOpt = "local",
    backend: Annotated[
        list[str] | None, typer.Option("--backend", "-b", help="only these backends", autocompletion=_complete_backend)
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="exit 3 when there are changes, 0 when none")
    ] = False,
    show_unchanged: Annotated[bool, typer.Option("--show-unchanged", help="list up-to-date resources")] = False,
) -> None:
    """Show what apply would change, against what is live (files, servers, cloud APIs)."""
    _run(
        ctx,
        "plan",
        env=env,
        backends=backend or [],
        fmt=fmt.value,
        detailed_exitcode=detailed_exitcode,
        show_unchanged=show_unchanged,
    )


@app.command()
def apply(
    ctx: typer.Context,
    env: EnvOpt = "local",
    backend: Annotated[
        list[str] | None, typer.Option("--backend", "-b", help="only these backends", autocompletion=_complete_backend)
    ] = None,
    checksum: Annotated[str | None, typer.Option("--checksum", help="refuse unless the plan has this checksum")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="allow mass changes and taking over unowned resources")
    ] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="parallel API calls")] = 8,
) -> None:
    """Make it so: create, update and delete (owned only) what the plan shows."""
    _run(
        ctx, "apply", env=env, backends=backend or [], checksum=checksum, yes=yes, force=force, concurrency=concurrency
    )


@app.command("test")
def test_rules(
    ctx: typer.Context,
    env: EnvOpt = "local",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="keep the generated files in DIR", file_okay=False)
    ] = None,
    job: Annotated[list[str] | None, typer.Option("--job", "-j", help="only these jobs")] = None,
) -> None:
    """Prove the rules with promtool: each alert fires on a synthetic surge/leak/step, silent when healthy."""
    _run(ctx, "test", env=env, out=out, jobs=job or [])


PrometheusOpt = Annotated[
    str | None,
    typer.Option(
        "--prometheus",
        metavar="URL",
        help="a Prometheus-compatible API (Prometheus, Mimir, Thanos); token from MEMPROV_PROMETHEUS_TOKEN",
    ),
]
SeriesOpt = Annotated[
    list[Path] | None,
    typer.Option("--series", metavar="PATH", help="OpenMetrics files (or directories of them, .gz too) to backfill"),
]
HeaderOpt = Annotated[
    list[str] | None, typer.Option("--header", metavar="'NAME: VALUE'", help="extra HTTP header, e.g. X-Scope-OrgID")
]
SinceOpt = Annotated[str, typer.Option("--since", help="how far back: a duration such as 30d or 2w")]
JobsOpt = Annotated[list[str] | None, typer.Option("--job", "-j", help="only these jobs")]


@app.command()
def baseline(
    ctx: typer.Context,
    env: EnvOpt = "local",
    since: SinceOpt = "30d",
    prometheus: PrometheusOpt = None,
    series: SeriesOpt = None,
    runs: Annotated[
        Path | None,
        typer.Option(
            "--runs", metavar="FILE", help="CSV/JSON of runs (job,start,end,peak[,outcome]) or a memprov run --history"
        ),
    ] = None,
    cloudwatch: Annotated[
        bool, typer.Option("--cloudwatch", help="GetMetricData through the environment's cloudwatch target")
    ] = False,
    azure: Annotated[bool, typer.Option("--azure", help="Azure Monitor metrics through the azure target")] = False,
    gcp: Annotated[bool, typer.Option("--gcp", help="Cloud Monitoring time series through the gcp target")] = False,
    header: HeaderOpt = None,
    job: JobsOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print, do not write baselines/<env>.yaml")] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
) -> None:
    """Peaks (p50/p95/p99/max), usual growth and proposed thresholds from past runs; writes baselines/<env>.yaml."""
    _run(
        ctx,
        "baseline",
        env=env,
        since=since,
        prometheus=prometheus,
        series=series or [],
        runs=runs,
        clouds=[name for name, on in (("cloudwatch", cloudwatch), ("azure", azure), ("gcp", gcp)) if on],
        headers=header or [],
        jobs=job or [],
        dry_run=dry_run,
        fmt=fmt.value,
    )


@app.command()
def backtest(
    ctx: typer.Context,
    env: EnvOpt = "local",
    since: SinceOpt = "30d",
    prometheus: PrometheusOpt = None,
    series: SeriesOpt = None,
    header: HeaderOpt = None,
    job: JobsOpt = None,
    against: Annotated[
        str | None, typer.Option("--against", metavar="REV", help="compare with the rules at this git revision")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", metavar="DIR", help="write a PNG per job (needs matplotlib)", file_okay=False),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
) -> None:
    """When each alert would have fired on past runs, evaluated by Prometheus: lead before OOM kills, false alarms."""
    _run(
        ctx,
        "backtest",
        env=env,
        since=since,
        prometheus=prometheus,
        series=series or [],
        headers=header or [],
        jobs=job or [],
        against=against,
        plot=plot,
        fmt=fmt.value,
    )


@app.command()
def preview(
    ctx: typer.Context,
    env: EnvOpt = "local",
    out: Annotated[Path, typer.Option("--out", "-o", help="directory for the PNGs", file_okay=False)] = Path(
        "out/preview"
    ),
) -> None:
    """Draw a PNG of each dashboard (layout, thresholds, a synthetic run) for pull-request review."""
    _run(ctx, "preview", env=env, out=out)


@app.command()
def lint(ctx: typer.Context, env: OptEnvOpt = None) -> None:
    """Find common alerting mistakes (thresholds too high, windows too short, pagers for warnings...)."""
    _run(ctx, "lint", env=env)


@app.command()
def schema(
    ctx: typer.Context,
    environment: Annotated[bool, typer.Option("--environment", help="schema of environments/<env>.yaml")] = False,
) -> None:
    """Print the JSON Schema of memprov.yaml (or of an environment file), for editors."""
    _run(ctx, "schema", environment=environment)


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="where to create the monitoring repository", file_okay=False)],
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing memprov.yaml")] = False,
) -> None:
    """Scaffold a monitoring repository: memprov.yaml, environments/, templates/, dashboards/, Makefile."""
    _run(ctx, "init", directory=directory, force=force)


@app.command("run", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
def run_job(
    ctx: typer.Context,
    command: Annotated[list[str] | None, typer.Argument(help="the job's command, after --", show_default=False)] = None,
    job: Annotated[str, typer.Option("--job", "-j", help="the job's id in the spec")] = "",
    env: Annotated[str, typer.Option("--env", "-e", help="environment label", envvar="MEMPROV_ENV")] = "local",
    interval: Annotated[str, typer.Option("--interval", help="sampling interval (50ms to 60s)")] = "1s",
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
    cgroup: Annotated[
        Path | None, typer.Option("--cgroup", metavar="DIR", help="the job's own memory cgroup", hidden=True)
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", metavar="memray[,native]", help="Python job: record where memory is allocated"),
    ] = None,
) -> None:
    """Run a job, record its true peak memory in the history, publish metrics, guard its limit."""
    if not job:
        from provisioner.cli.console import error

        error("--job is required: memprov run --job ID [options] -- COMMAND [ARGS…]")
        raise typer.Exit(2)
    _run(
        ctx,
        "run",
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
    )


profile_app = typer.Typer(help="Hand a job to a memory profiler (memray).", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


@profile_app.command("attach")
def profile_attach(
    ctx: typer.Context,
    pid: Annotated[int, typer.Option("--pid", help="the running Python process")],
    duration: Annotated[str, typer.Option("--duration", help="how long to track (1s to 1h)")] = "30s",
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="keep the capture there", dir_okay=False)
    ] = None,
    top: Annotated[int, typer.Option("--top", help="how many source lines to print")] = 10,
) -> None:
    """Attach memray to a running Python job for a while (needs gdb or lldb); print the top allocating lines."""
    _run(ctx, "profile", pid=pid, duration=duration, out=out, top=top)


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
    _run(ctx, "breaker", verb="serve", env=env, listen=listen, state=state, read_only=read_only)


@breaker_app.command("plan")
def breaker_plan(
    ctx: typer.Context,
    alert: Annotated[Path, typer.Option("--alert", metavar="FILE", help="an Alertmanager webhook payload (JSON)")],
    env: EnvOpt = "local",
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
) -> None:
    """What the breaker would do with an alert: reads the orchestrator, changes nothing."""
    _run(ctx, "breaker", verb="plan", env=env, alert=alert, fmt=fmt.value)


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
    _run(ctx, "breaker", verb="history", env=env, job=job, fmt=fmt.value, state=state, last=last)


def main() -> None:
    """Console-script entry point."""
    args = sys.argv[1:]
    if args[:1] == ["run"] and not {"-h", "--help"} & set(args[: args.index("--") if "--" in args else None]):
        from provisioner.cli.run import main_fast  # a job wrapper's start-up: no typer parsing

        sys.exit(main_fast(args[1:]))
    try:
        app(prog_name="memprov")  # also under `python -m provisioner`: same usage lines, same completion
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C while typer parses
        sys.exit(130)
