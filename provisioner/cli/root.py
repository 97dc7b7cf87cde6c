"""The root of the ``memprov`` command: the typer app every verb registers on, the options verbs
share, and :func:`run_verb`, which turns a verb's outcome (an exit code, or memprov's errors) into
the process's exit code and ``error: file:line: ...`` lines.

Every verb module imports this one at start-up (:mod:`provisioner.cli.verbs` imports them all), so
it imports typer and the standard library only; a verb's work imports what it needs when it runs,
so that ``memprov --help`` stays fast and no cloud SDK is ever loaded for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

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


def complete_env(ctx: typer.Context, incomplete: str) -> list[str]:
    spec = Path((ctx.find_root().params or {}).get("spec") or "memprov.yaml")
    env_dir = spec.parent / "environments"
    names = {p.stem for p in env_dir.glob("*.yaml")} | {"local"} if env_dir.is_dir() else {"local"}
    return sorted(n for n in names if n.startswith(incomplete))


def complete_backend(incomplete: str) -> list[str]:
    from provisioner.backends.registry import BACKENDS  # only when completing: the registry loads pydantic

    return [b for b in BACKENDS if b.startswith(incomplete)]


EnvOpt = Annotated[
    str, typer.Option("--env", "-e", help="environment (environments/<env>.yaml)", autocompletion=complete_env)
]
OptEnvOpt = Annotated[
    str | None, typer.Option("--env", "-e", help="environment; default: all of them", autocompletion=complete_env)
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


Work = Callable[[Path, bool | None], int]
"""A verb's work: given the spec path and the colour choice, it returns an exit code."""


def run_verb(ctx: typer.Context, work: Work) -> None:
    """Run a verb's ``work`` and exit with its code; memprov's errors become messages, a bug exit 4."""
    from provisioner.core.errors import EXIT_BUG, EXIT_FAILED, EXIT_INTERRUPTED, MemprovError

    try:
        code = work(ctx.obj["spec"], ctx.obj["color"])
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
