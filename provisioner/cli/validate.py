"""``memprov validate``: load and render every environment; silence means nothing to say but the summary.

Rendering is part of validation: the repository's templates fail here, and every Prometheus rule expression
is parsed (:func:`provisioner.backends.artefacts.render_problems`), so that nothing fails later in plan, apply or
promtool.
"""

from __future__ import annotations

from pathlib import Path

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import OptEnvOpt, app, run_verb
from provisioner.core.errors import Problem, SpecError


@app.command()
def validate(ctx: typer.Context, env: OptEnvOpt = None) -> None:
    """Check the spec and its environment overlays; print every problem as file:line."""
    run_verb(ctx, lambda spec, color: run(spec=spec, color=color, env=env))


def run(*, spec: Path, color: bool | None, env: str | None) -> int:
    from provisioner.backends.artefacts import render_problems
    from provisioner.cli.common import load_all

    resolved = load_all(spec, env)
    problems: list[Problem] = []
    for r in resolved:  # render as plan and apply will: the repository's templates, every rule expression
        problems += [p for p in render_problems(r) if p not in problems]
    if problems:
        raise SpecError(problems)
    jobs = len(resolved[0].jobs) if resolved else 0
    names = ", ".join(r.env for r in resolved)
    Console(color=color).line(f"✓ {spec} is valid for {names} ({jobs} jobs)", "green")
    return 0
