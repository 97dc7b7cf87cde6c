"""``memprov init DIR``: scaffold a monitoring repository and render its dashboards."""

from __future__ import annotations

from pathlib import Path

from provisioner.backends import artefacts
from provisioner.backends.files import atomic_write
from provisioner.cli.common import load_all
from provisioner.cli.console import Console
from provisioner.spec.scaffold import scaffold


def run(*, spec: Path, color: bool | None, directory: Path, force: bool) -> int:
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
