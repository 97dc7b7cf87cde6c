"""``memprov apply``: lock the targets, plan, check the checksum and safety rules, confirm, apply, report exactly."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import EnvOpt, app, complete_backend, run_verb
from provisioner.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, OperationError, UsageError
from provisioner.plan.model import Plan

EXIT_DECLINED = EXIT_FAILED  # the confirmation was declined: nothing was applied, which no script may take for success

if TYPE_CHECKING:
    from provisioner.plan.contract import Target
    from provisioner.plan.engine import Result


@app.command()
def apply(
    ctx: typer.Context,
    env: EnvOpt = "local",
    backend: Annotated[
        list[str] | None, typer.Option("--backend", "-b", help="only these backends", autocompletion=complete_backend)
    ] = None,
    checksum: Annotated[str | None, typer.Option("--checksum", help="refuse unless the plan has this checksum")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="allow mass changes and taking over unowned resources")
    ] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="parallel API calls")] = 8,
    strict: Annotated[
        bool, typer.Option("--strict", help="refuse alert kinds a backend approximates or cannot express (exit 2)")
    ] = False,
) -> None:
    """Make it so: create, update and delete (owned only) what the plan shows."""
    run_verb(
        ctx,
        lambda spec, color: run(
            spec=spec,
            color=color,
            env=env,
            backends=backend or [],
            checksum=checksum,
            yes=yes,
            force=force,
            concurrency=concurrency,
            strict=strict,
        ),
    )


def run(
    *,
    spec: Path,
    color: bool | None,
    env: str,
    backends: list[str],
    checksum: str | None,
    yes: bool,
    force: bool,
    concurrency: int,
    strict: bool = False,
) -> int:
    from provisioner.cli.plan import build_plan

    if checksum is not None and not checksum.strip():
        raise UsageError(
            "--checksum is empty (an unset CI variable?); pass the checksum that `memprov plan` printed, "
            "or leave the option out to apply without a pin"
        )
    with ExitStack() as locks:  # held until the apply ends: one apply at a time per target
        plan, targets = build_plan(spec, env, backends, locks, strict=strict)
        return _apply(
            plan, targets, color=color, env=env, checksum=checksum, yes=yes, force=force, concurrency=concurrency
        )


def _apply(
    plan: Plan,
    targets: dict[str, Target],
    *,
    color: bool | None,
    env: str,
    checksum: str | None,
    yes: bool,
    force: bool,
    concurrency: int,
) -> int:
    from provisioner.plan import output
    from provisioner.plan.engine import apply as apply_plan

    console = Console(color=color)
    console.lines(output.text(plan, hint=False))  # about to apply it: no "apply exactly this plan" hint
    if plan.errors:
        raise OperationError(
            "cannot apply: live state could not be read for " + ", ".join(plan.errors) + "; nothing was changed"
        )
    if checksum and checksum != plan.checksum:
        raise OperationError(
            f"the plan changed since it was reviewed (checksum {plan.checksum[:12]}…, expected "
            f"{checksum[:12]}…); nothing was changed. Run memprov plan again and review it."
        )
    if not plan.has_changes:
        console.line("Nothing to do.", "green")
        return EXIT_OK
    problems = plan.safety_problems()
    if problems and not force:
        raise OperationError(
            "refusing to apply (nothing was changed); pass --force after reviewing:\n  " + "\n  ".join(problems)
        )
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "apply needs confirmation: run it in a terminal or pass --yes (e.g. in CI, after "
                "reviewing the plan and pinning it with --checksum)"
            )
        if not console.confirm(f"Apply {output.plural(len(plan.actionable), 'change')} to {env}?"):
            console.line("Cancelled; nothing was changed.", "yellow")
            return EXIT_DECLINED

    def progress(result: Result) -> None:
        style = {"applied": "green", "failed": "red"}.get(result.outcome.value, "yellow")
        console.line(
            f"  {result.outcome.value:>13} {result.change.action.symbol} {result.change.backend} {result.change.key}",
            style,
        )

    report = apply_plan(plan, targets, concurrency=concurrency, on_result=progress, force=force)
    console.line()
    console.lines(output.report_lines(report))
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_FAILED
