"""The external tools memprov drives: promtool and amtool (Debian's prometheus packages).

A missing tool is an operation failure with a message that says how to install it, never a
traceback.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from provisioner.core.errors import OperationError

INSTALL_HINT = {
    "promtool": "install it with `apt-get install prometheus` (Debian) or put promtool on PATH",
    "amtool": "install it with `apt-get install prometheus-alertmanager` (Debian) or put amtool on PATH",
}


def which(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise OperationError(f"{tool} not found; {INSTALL_HINT.get(tool, 'put it on PATH')}")
    return path


def run(tool: str, *args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a tool and return its result (the caller judges the exit code)."""
    try:
        return subprocess.run(
            [which(tool), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise OperationError(f"{tool} {' '.join(args)} did not finish within {timeout:.0f}s") from e
