"""``memprov plan``: what apply would change, as text, Markdown (PR comment) or JSON."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import EnvOpt, Format, app, complete_backend, run_verb
from provisioner.core.errors import EXIT_CHANGES, EXIT_FAILED, EXIT_OK
from provisioner.plan.model import Plan

if TYPE_CHECKING:
    from provisioner.plan.contract import Target


@app.command()
def plan(
    ctx: typer.Context,
    env: EnvOpt = "local",
    backend: Annotated[
        list[str] | None, typer.Option("--backend", "-b", help="only these backends", autocompletion=complete_backend)
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="exit 3 when there are changes, 0 when none")
    ] = False,
    show_unchanged: Annotated[bool, typer.Option("--show-unchanged", help="list up-to-date resources")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="refuse alert kinds a backend approximates or cannot express (exit 2)")
    ] = False,
) -> None:
    """Show what apply would change, against what is live (files, servers, cloud APIs)."""
    run_verb(
        ctx,
        lambda spec, color: run(
            spec=spec,
            color=color,
            env=env,
            backends=backend or [],
            fmt=fmt.value,
            detailed_exitcode=detailed_exitcode,
            show_unchanged=show_unchanged,
            strict=strict,
        ),
    )


def build_plan(
    spec: Path, env: str, only: list[str], locks: ExitStack | None = None, strict: bool = False
) -> tuple[Plan, dict[str, Target]]:
    """The plan of one environment, and the targets it was made against (what apply needs); with
    ``locks``, every target is locked into it before the plan is made; ``strict`` refuses (exit 2,
    before anything live is read) the alert kinds a backend approximates or cannot express."""
    from provisioner.cli.common import backends, inexact, settle
    from provisioner.core.errors import SpecError
    from provisioner.plan.planner import make_plan
    from provisioner.spec.loader import load

    resolved = load(spec, env)
    settle()
    bindings = backends(resolved, only)
    if strict and (problems := inexact(resolved, bindings)):
        raise SpecError(problems)
    targets = {b.name: t for b, t in bindings}
    if locks is not None:
        for target in sorted(targets.values(), key=lambda t: t.describe()):
            locks.enter_context(target.lock())
    return make_plan(resolved.env, resolved.name, bindings), targets


def run(
    *,
    spec: Path,
    color: bool | None,
    env: str,
    backends: list[str],
    fmt: str,
    detailed_exitcode: bool,
    show_unchanged: bool,
    strict: bool = False,
) -> int:
    from provisioner.plan import output

    plan, _ = build_plan(spec, env, backends, strict=strict)
    console = Console(color=color)
    if fmt == "json":
        console.raw(output.as_json(plan))
    elif fmt == "markdown":
        console.raw(output.markdown(plan))
    else:
        console.lines(output.text(plan, show_noop=show_unchanged))
    if plan.errors:
        return EXIT_FAILED
    if detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK
