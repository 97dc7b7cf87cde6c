"""``memprov render``: write (or with ``--check``, verify) the rendered artefacts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import OptEnvOpt, app, run_verb
from provisioner.core.errors import EXIT_FAILED, EXIT_OK, UsageError


@app.command()
def render(
    ctx: typer.Context,
    env: OptEnvOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="write every artefact under DIR/<backend>/", file_okay=False)
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="write nothing; exit 1 with a diff if files are stale")
    ] = False,
) -> None:
    """Write the committed dashboards/<env>/ (or, with --out, every artefact); --check verifies them."""
    run_verb(ctx, lambda spec, color: run(spec=spec, color=color, env=env, out=out, check=check))


MAX_DIFF_LINES = 80


def run(*, spec: Path, color: bool | None, env: str | None, out: Path | None, check: bool) -> int:
    from provisioner.backends import artefacts
    from provisioner.cli.common import load_all
    from provisioner.core.gcpause import collector_paused

    resolved = load_all(spec, env)
    if out is not None and len(resolved) != 1:
        raise UsageError("--out writes one environment; add --env ENV")
    console = Console(color=color)
    drifts: list[artefacts.Drift] = []
    written = 0
    with collector_paused():  # each file is let go once written: reference counting frees it
        for r in resolved:  # one file at a time: rendered, compared or written, let go
            if out is not None:
                expected = artefacts.iter_tree(r, out)
                extra: list[Path] = []
            else:
                expected = artefacts.iter_dashboards(r)
                extra = artefacts.generated_dashboards_on_disk(r)
            if check:
                drifts += artefacts.compare(expected, extra)
                continue
            seen: set[Path] = set()
            written += _write_changed(expected, seen)
            for path in extra:
                if path not in seen:
                    path.unlink()
                    console.line(f"removed {path} (no longer in the spec)", "yellow")
            where = out if out is not None else artefacts.dashboards_dir(r)
            console.line(f"{r.env}: {len(seen)} files in {display(where)}", "green")
    if not check:
        console.line(f"{written} file(s) written." if written else "Everything was already up to date.", "dim")
        return EXIT_OK
    if not drifts:
        console.line(f"✓ rendered artefacts are up to date ({', '.join(r.env for r in resolved)})", "green")
        return EXIT_OK
    for d in drifts:
        rel = display(d.path)
        hint = {
            "missing": "not rendered yet",
            "stale": "differs from the spec",
            "extra": "generated for a job that is no longer in the spec",
        }[d.state]
        console.line(f"{d.state}: {rel} ({hint})", "bold red")
        for line in d.diff[:MAX_DIFF_LINES]:
            console.line(f"  {line}", "green" if line.startswith("+") else "red" if line.startswith("-") else "dim")
        if len(d.diff) > MAX_DIFF_LINES:
            console.line(f"  … {len(d.diff) - MAX_DIFF_LINES} more lines", "dim")
    console.line(f"{len(drifts)} file(s) out of date; run `memprov render` and commit the result.", "bold red")
    return EXIT_FAILED


def _write_changed(files: Iterable[tuple[Path, str]], seen: set[Path]) -> int:
    """Write the files whose content differs, atomically, as they come; how many were written (``seen``: every path).

    Rendered files are regenerated at will, so they are not fsynced (``apply`` fsyncs what it writes
    to a files target): readers never see a torn file, and a crash at worst calls for another
    ``memprov render``. Without fsync a write does not wait on the disk, so one thread is fastest
    (threads only contend for the interpreter lock).
    """
    from provisioner.backends.files import atomic_write

    written = 0
    for path, text in files:
        seen.add(path)
        if path.exists() and path.read_text(encoding="utf-8", errors="replace") == text:
            continue
        atomic_write(path, text, durable=False)
        written += 1
    return written


def display(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
