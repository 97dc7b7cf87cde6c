"""``memprov validate``: load every environment; silence means nothing to say but the summary."""

from __future__ import annotations

from pathlib import Path

from provisioner.cli.common import load_all
from provisioner.cli.console import Console


def run(*, spec: Path, color: bool | None, env: str | None) -> int:
    resolved = load_all(spec, env)
    jobs = len(resolved[0].jobs) if resolved else 0
    names = ", ".join(r.env for r in resolved)
    Console(color=color).line(f"✓ {spec} is valid for {names} ({jobs} jobs)", "green")
    return 0
