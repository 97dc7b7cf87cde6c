"""``memprov profile attach``: attach memray to a running Python job for a while, then print the
source lines holding the most memory at the peak of that window.

memray injects its tracker through gdb (or lldb), so this needs a debugger and ptrace permission;
both are checked first (:func:`provisioner.run.profile.attach_blocker`) and refused with the fix.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli.root import app, run_verb
from provisioner.core.errors import OperationError, UsageError
from provisioner.core.units import parse_duration
from provisioner.run import profile as prof

profile_app = typer.Typer(help="Hand a job to a memory profiler (memray).", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


@profile_app.command("attach")
def profile_attach(
    ctx: typer.Context,
    pid: Annotated[int, typer.Option("--pid", help="the running Python process")],
    duration: Annotated[str, typer.Option("--duration", help="how long to track (1s to 1h)")] = "30s",
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="keep the capture there", dir_okay=False)
    ] = None,
    top: Annotated[int, typer.Option("--top", help="how many source lines to print")] = 10,
) -> None:
    """Attach memray to a running Python job for a while (needs gdb or lldb); print the top allocating lines."""
    run_verb(ctx, lambda spec, color: run(spec=spec, color=color, pid=pid, duration=duration, out=out, top=top))


def _memray(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", prof.TOOL, *args], capture_output=True, text=True, check=False)


def _said(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {result.returncode}"


def run(*, spec: Path, color: bool | None, pid: int, duration: str, out: Path | None, top: int) -> int:
    from provisioner.cli.console import err
    from provisioner.cli.console import out as stdout

    try:
        seconds = parse_duration(duration)
    except ValueError as e:
        raise UsageError(f"--duration: {e}") from None
    if not 1 <= seconds <= 3600:
        raise UsageError(f"--duration {duration}: track between 1s and 1h")
    if top < 1:
        raise UsageError("--top must be at least 1")
    if pid <= 0 or not Path(f"/proc/{pid}").is_dir():
        raise UsageError(f"--pid {pid}: no such process")
    if not prof.installed():
        raise UsageError(f"memray is not installed; {prof.INSTALL}")
    blocker = prof.attach_blocker()
    if blocker:
        raise UsageError(f"cannot attach to pid {pid}: {blocker}")
    if out is not None and out.exists():
        raise UsageError(f"--out {out}: already exists; give a new file")
    if out is None:
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="memprov-profile-")) / f"memray-{pid}.bin"
    capture = out.absolute()  # the target process writes it, from its own working directory
    attached = _memray("attach", "--aggregate", "-o", str(capture), str(pid))
    if attached.returncode != 0:
        raise OperationError(
            f"memray attach {pid} failed: {_said(attached)}; the process must run Python with memray importable "
            f"in its environment ({prof.INSTALL}); {prof.ATTACH_HINT}"
        )
    err().line(f"memprov: tracking pid {pid} for {duration} (Ctrl-C stops early)")
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        err().line("memprov: stopping early")
    if Path(f"/proc/{pid}").is_dir():  # else the process ended and its tracker wrote the capture
        detached = _memray("detach", str(pid))
        if detached.returncode != 0 and Path(f"/proc/{pid}").is_dir():
            raise OperationError(f"memray detach {pid} failed: {_said(detached)}")
    try:
        found = prof.summarize(capture, top)
    except (OSError, ValueError, RuntimeError) as e:
        raise OperationError(f"{capture}: no readable memray capture ({e})") from None
    c = stdout()
    c.line(f"memray capture of pid {pid}: {capture} (peak {found['peak_bytes'] / 2**20:.1f} MiB while tracked)")
    c.line("top allocating lines at the peak:")
    for row in found["top"]:
        c.line(f"  {row['bytes'] / 2**20:10.1f} MiB {row['allocations']:8d} allocations  {row['location']}")
    return 0
