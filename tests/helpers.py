"""The one shared helper for tests: an example repository in a temp dir, and the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from provisioner.plan.contract import Target
from provisioner.plan.planner import Binding

ROOT = Path(__file__).resolve().parent.parent


def targets_of(bindings: Sequence[Binding]) -> dict[str, Target]:
    """What ``apply`` needs from the backends a plan was made with: each one's target, by name."""
    return {backend.name: target for backend, target in bindings}


def example_repo(dest: Path) -> Path:
    """Copy the example spec and its environments into ``dest``; returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "memprov.yaml", dest / "memprov.yaml")
    shutil.copytree(ROOT / "environments", dest / "environments", dirs_exist_ok=True)
    return dest


def memprov(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real entry point (``python -m provisioner``) as a user would, capturing output."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    full_env.pop("MEMPROV_DEBUG", None)  # from the developer's shell; a test may still pass it in ``env``
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


GOLDEN = ROOT / "tests" / "golden"


def assert_golden(relpath: str, text: str) -> None:
    """Compare ``text`` with ``tests/golden/<relpath>``; a missing golden fails.

    Regenerate with ``make golden`` (MEMPROV_UPDATE_GOLDEN=1) and review the diff like code.
    """
    path = GOLDEN / relpath
    if os.environ.get("MEMPROV_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"missing golden file {path}; run `make golden` and review it"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        import difflib

        diff = "\n".join(
            difflib.unified_diff(expected.splitlines(), text.splitlines(), "golden", "rendered", lineterm="", n=2)
        )
        raise AssertionError(f"{path} is stale (run `make golden` if the change is intended):\n{diff[:6000]}")
