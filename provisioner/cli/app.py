"""The ``memprov`` command's entry point: every verb module registers itself on the root app when
imported here (each imports typer and the standard library only at start-up; its work imports what it
needs when it runs).
"""

from __future__ import annotations

import sys

# The order of these imports is the order of the verbs in `memprov --help`: the flow of work.
# isort: off
from provisioner.cli import validate, lint, render, plan, apply, test  # noqa: F401 - importing registers
from provisioner.cli import baseline, backtest, preview, run, profile, breaker, schema, init  # noqa: F401

# isort: on
from provisioner.cli.root import app


def main() -> None:
    """Console-script entry point."""
    args = sys.argv[1:]
    if args[:1] == ["run"] and not {"-h", "--help"} & set(args[: args.index("--") if "--" in args else None]):
        from provisioner.cli.run import main_fast  # a job wrapper's start-up: no typer parsing

        sys.exit(main_fast(args[1:]))
    try:
        app(prog_name="memprov")  # also under `python -m provisioner`: same usage lines, same completion
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C while typer parses
        sys.exit(130)
