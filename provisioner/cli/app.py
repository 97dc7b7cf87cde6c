"""The ``memprov`` command's entry point.

``memprov run …`` is on a job's start-up path: it is parsed without typer (or any verb module) by
:func:`provisioner.run.launch.main_fast`; everything else goes through the typer app, with every
verb registered by :mod:`provisioner.cli.verbs`.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    args = sys.argv[1:]
    if args[:1] == ["run"] and not {"-h", "--help"} & set(args[: args.index("--") if "--" in args else None]):
        from provisioner.run.launch import main_fast  # a job wrapper's start-up: no typer, no other verb

        sys.exit(main_fast(args[1:]))
    from provisioner.cli.verbs import app

    try:
        app(prog_name="memprov")  # also under `python -m provisioner`: same usage lines, same completion
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C while typer parses
        sys.exit(130)
