"""``memprov lint``: print findings for one or all environments; exit 1 if any is an error."""

from __future__ import annotations

from pathlib import Path

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import OptEnvOpt, app, run_verb
from provisioner.core.errors import EXIT_FAILED, EXIT_OK


@app.command()
def lint(ctx: typer.Context, env: OptEnvOpt = None) -> None:
    """Find common alerting mistakes (thresholds too high, windows too short, pagers for warnings...)."""
    run_verb(ctx, lambda spec, color: run(spec=spec, color=color, env=env))


def run(*, spec: Path, color: bool | None, env: str | None) -> int:
    from provisioner.analysis.lint import lint
    from provisioner.cli.common import load_all

    console = Console(color=color)
    findings = [f for r in load_all(spec, env) for f in lint(r)]
    for f in findings:
        console.line(f.render(), "bold red" if f.severity == "error" else "yellow")
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    if errors:
        console.line(f"{errors} error(s), {warnings} warning(s).", "bold red")
        return EXIT_FAILED
    console.line(f"✓ no errors ({warnings} warning(s)).", "green")
    return EXIT_OK
