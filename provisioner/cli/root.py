"""The root of the ``memprov`` command: the typer app every verb registers on, the options verbs
share, and :func:`run_verb`, which turns a verb's outcome (an exit code, or memprov's errors) into
the process's exit code and ``error: file:line: ...`` lines.

Every verb module imports this one at start-up (:mod:`provisioner.cli.verbs` imports them all), so
it imports typer and the standard library only; a verb's work imports what it needs when it runs,
so that ``memprov --help`` stays fast and no cloud SDK is ever loaded for it.

The global options (``--spec``, ``--color/--no-color``) belong to the root, and
:func:`command` also gives them to every verb, so that ``memprov apply --no-color`` works as
``memprov --no-color apply`` does (the later one wins); what follows ``--`` is never read as one.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

EXIT_CODES = """Exit codes: 0 ok · 1 operation failed (or lint/check found problems, or a confirmation was declined) ·
2 invalid input or usage · 3 changes present (plan --detailed-exitcode) · 4 internal error (a bug: please report
it) · 130 interrupted. Global options (--spec, --color/--no-color) go before or after the verb; NO_COLOR is
honoured."""

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


SPEC_HELP = "the spec file"
COLOR_HELP = "force or disable colour (default: colour in a terminal, none when NO_COLOR is set)"


@app.callback()
def main_options(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Option("--spec", "-s", help=SPEC_HELP, envvar="MEMPROV_SPEC", dir_okay=False)] = Path(
        "memprov.yaml"
    ),
    color: Annotated[bool | None, typer.Option("--color/--no-color", help=COLOR_HELP)] = None,
) -> None:
    ctx.obj = {"spec": spec, "color": color}


SpecAfter = Annotated[Path | None, typer.Option("--spec", "-s", help=SPEC_HELP, dir_okay=False, show_default=False)]
ColorAfter = Annotated[bool | None, typer.Option("--color/--no-color", help=COLOR_HELP, show_default=False)]


def with_globals(func: Callable[..., None]) -> Callable[..., None]:
    """``func`` (a verb, whose first parameter is the context) taking the global options too: given after
    the verb, they replace those given before it."""
    signature = inspect.signature(func, eval_str=True)
    if {"spec", "color"} & set(signature.parameters):
        raise TypeError(f"{func.__name__} has its own spec or color parameter")

    @functools.wraps(func)
    def wrapper(*args: Any, spec: Path | None = None, color: bool | None = None, **kwargs: Any) -> None:
        ctx = args[0] if args else kwargs["ctx"]
        if spec is not None:
            ctx.obj["spec"] = spec
        if color is not None:
            ctx.obj["color"] = color
        func(*args, **kwargs)

    extra = [
        inspect.Parameter("spec", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=SpecAfter),
        inspect.Parameter("color", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ColorAfter),
    ]
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**func.__annotations__, "spec": SpecAfter, "color": ColorAfter}
    return wrapper


def command() -> Callable[..., Any]:
    """The whole CLI as one command, every verb (and sub-verb) taking the global options too."""

    def visit(typer_app: typer.Typer) -> None:
        for info in typer_app.registered_commands:
            if info.callback is not None and not getattr(info.callback, "__wrapped__", None):
                info.callback = with_globals(info.callback)
        for group in typer_app.registered_groups:
            if group.typer_instance is not None:
                visit(group.typer_instance)

    visit(app)
    return typer.main.get_command(app)


Work = Callable[[Path, bool | None], int]
"""A verb's work: given the spec path and the colour choice, it returns an exit code."""


def run_verb(ctx: typer.Context, work: Work) -> None:
    """Run a verb's ``work`` and exit with its code; memprov's errors become messages, a bug exit 4."""
    from provisioner.core.errors import EXIT_BUG, EXIT_FAILED, EXIT_INTERRUPTED, MemprovError

    color = ctx.obj["color"]
    try:
        code = work(ctx.obj["spec"], color)
    except MemprovError as e:
        from provisioner.cli.console import error

        error(e.render(), color=color)
        code = e.exit_code
    except KeyboardInterrupt:
        from provisioner.cli.console import error

        error("interrupted", color=color)
        code = EXIT_INTERRUPTED
    except OSError as e:  # the file system or network said no: an operation failed, not a bug
        from provisioner.cli.console import error

        where = f"{e.filename}: " if e.filename else ""
        error(
            f"{where}{e.strerror or e}; check that path (a file where a directory belongs, permissions, space)",
            color=color,
        )
        code = EXIT_FAILED
    except Exception as e:  # a bug: say so plainly, keep the traceback for whoever reports it
        if os.environ.get("MEMPROV_DEBUG"):
            raise
        from provisioner.cli.console import error

        error(
            f"internal error: {type(e).__name__}: {e}",
            "This is a bug in memprov. Re-run with MEMPROV_DEBUG=1 for the traceback and report it.",
            color=color,
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
