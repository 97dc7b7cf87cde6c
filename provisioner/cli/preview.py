"""``memprov preview``: a PNG picture of each dashboard of an environment, for pull-request review.

Draws every dashboard ``memprov render`` commits (the jobs' and the overview) over a synthetic
run of each job; the pictures are deterministic, so they can be attached to a pull request and
compared. Needs matplotlib, the ``preview`` extra.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import EnvOpt, app, run_verb
from provisioner.core.errors import EXIT_OK, OperationError, UsageError


@app.command()
def preview(
    ctx: typer.Context,
    env: EnvOpt = "local",
    out: Annotated[Path, typer.Option("--out", "-o", help="directory for the PNGs", file_okay=False)] = Path(
        "out/preview"
    ),
) -> None:
    """Draw a PNG of each dashboard (layout, thresholds, a synthetic run) for pull-request review."""
    run_verb(ctx, lambda spec, color: run(spec=spec, color=color, env=env, out=out))


def write_bytes(path: Path, data: bytes) -> None:
    """Write atomically: a reader sees the old picture or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def run(*, spec: Path, color: bool | None, env: str, out: Path) -> int:
    from provisioner.spec.loader import load

    resolved = load(spec, env)
    try:
        import matplotlib  # noqa: F401 - only to say clearly that it is missing
    except ImportError:
        raise UsageError("memprov preview needs matplotlib; install it with: pip install 'memprov[preview]'") from None
    from provisioner.render.grafana import dashboards as grafana
    from provisioner.render.grafana.preview import render_png
    from provisioner.render.grafana.sample import JobSample

    console = Console(color=color)
    dashboards = grafana.dashboards(resolved)
    if not dashboards:
        console.line(f"no job of environment {env} uses the grafana backend; nothing to draw", "yellow")
        return EXIT_OK
    samples = {job.id: JobSample(job) for job in resolved.jobs}
    for d in dashboards:
        path = out / f"{d.uid}.png"
        drawn = [samples[d.job]] if d.job else [samples[j.id] for j in resolved.jobs_using("grafana")]
        try:
            write_bytes(path, render_png(d.data, drawn))
        except OSError as e:
            raise OperationError(f"{path}: cannot write ({e.strerror})") from e
        console.line(f"  {path}  ({d.title})")
    console.line(f"{len(dashboards)} picture(s) of environment {env} in {out}", "green")
    return EXIT_OK
