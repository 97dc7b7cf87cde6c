"""Every verb of the ``memprov`` command: importing a verb module registers it on the root app.

Each verb module imports typer and light modules only at start-up; its work imports what it needs
when it runs, so that ``memprov --help`` stays fast.
"""

from __future__ import annotations

# The order of these imports is the order of the verbs in `memprov --help`: the flow of work.
# isort: off
from provisioner.cli import validate, lint, explain, render, plan, apply, test  # noqa: F401 - importing registers
from provisioner.cli import baseline, backtest, preview, run, profile, breaker, schema, init  # noqa: F401

# isort: on
from provisioner.cli.root import app

__all__ = ["app"]
