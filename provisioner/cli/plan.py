"""``memprov plan``: what apply would change, as text, Markdown (PR comment) or JSON."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from provisioner.cli.common import backends
from provisioner.cli.console import Console
from provisioner.core.errors import EXIT_CHANGES, EXIT_FAILED, EXIT_OK
from provisioner.plan import output
from provisioner.plan.contract import Target
from provisioner.plan.model import Plan
from provisioner.plan.planner import make_plan
from provisioner.spec.loader import load


def build_plan(spec: Path, env: str, only: list[str], locks: ExitStack | None = None) -> tuple[Plan, dict[str, Target]]:
    """The plan of one environment, and the targets it was made against (what apply needs); with
    ``locks``, every target is locked into it before the plan is made."""
    resolved = load(spec, env)
    bindings = backends(resolved, only)
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
) -> int:
    plan, _ = build_plan(spec, env, backends)
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
