"""``memprov init DIR``: scaffold a monitoring repository and render its dashboards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import app, run_verb


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="where to create the monitoring repository", file_okay=False)],
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing memprov.yaml")] = False,
) -> None:
    """Scaffold a monitoring repository: memprov.yaml, environments/, templates/, dashboards/, Makefile."""
    run_verb(ctx, lambda spec, color: run(spec=spec, color=color, directory=directory, force=force))


def run(*, spec: Path, color: bool | None, directory: Path, force: bool) -> int:
    from provisioner.backends import artefacts
    from provisioner.backends.files import atomic_write
    from provisioner.cli.common import load_all
    from provisioner.render.scaffold import scaffold

    console = Console(color=color)
    written = scaffold(directory, force)
    dashboards = 0
    for resolved in load_all(directory / "memprov.yaml", None):
        for path, text in artefacts.expected_dashboards(resolved).items():
            atomic_write(path, text)
            dashboards += 1
    for path in written:
        console.line(f"created {path}", "green")
    console.line(f"rendered {dashboards} dashboards under {directory / 'dashboards'}", "green")
    console.line(f"Next: cd {directory} && memprov validate && memprov plan --env local", "bold")
    return 0
