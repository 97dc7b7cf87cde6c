"""The ``memprov`` command's entry point.

``memprov run …`` is on a job's start-up path: it is parsed without typer (or any verb module) by
:func:`provisioner.run.launch.main_fast`; everything else goes through the typer app, with every
verb registered by :mod:`provisioner.cli.verbs` and the global options given to each
(:func:`provisioner.cli.root.command`).
"""

from __future__ import annotations

import sys
from pathlib import Path


def split_globals(args: list[str]) -> tuple[list[str], Path | None, bool | None]:
    """``memprov run``'s arguments without the global options given among its own (before ``--`` or the
    command: all of run's own options take a value), and those options' values."""
    rest: list[str] = []
    spec: Path | None = None
    color: bool | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=")
        if name in ("--spec", "-s"):
            if not eq and i + 1 < len(args):
                i += 1
                value = args[i]
            spec = Path(value) if value else spec
        elif arg in ("--color", "--no-color"):
            color = arg == "--color"
        else:
            rest.append(arg)
            if not eq and i + 1 < len(args):  # the option's value
                i += 1
                rest.append(args[i])
        i += 1
    return rest + args[i:], spec, color


def main() -> None:
    """Console-script entry point."""
    args = sys.argv[1:]
    if args[:1] == ["run"] and not {"-h", "--help"} & set(args[: args.index("--") if "--" in args else None]):
        from provisioner.run.launch import main_fast  # a job wrapper's start-up: no typer, no other verb

        rest, spec, _ = split_globals(args[1:])  # colour: the wrapper prints plain lines anyway
        sys.exit(main_fast(rest, spec=spec))
    from provisioner.cli.root import command
    from provisioner.cli.verbs import app  # noqa: F401 - importing registers every verb

    try:
        command()(prog_name="memprov")  # also under `python -m provisioner`: same usage lines, same completion
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C while typer parses
        sys.exit(130)
