"""``scripts/ensure-tools`` never installs Python packages into an interpreter it did not create: given
another interpreter (``PYTHON=``) that lacks them, it says what to run and exits 1, and pip is never called
(it installs only into the project's own virtualenv, which ``scripts/venv`` makes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def test_missing_python_packages_are_reported_not_installed(tmp_path: Path) -> None:
    if not all(shutil.which(t) for t in ("promtool", "prometheus", "amtool", "prometheus-alertmanager")):
        raise AssertionError("promtool/prometheus/amtool/alertmanager must be installed (scripts/ensure-tools)")
    log = tmp_path / "calls.log"
    shim = tmp_path / "bin" / "python3"
    shim.parent.mkdir()
    # an interpreter without memprov's packages: every import check fails; any other use is logged
    shim.write_text(f'#!/bin/sh\necho "$@" >> {log}\n[ "$1" = "-c" ] && case "$2" in import*) exit 1;; esac\nexit 0\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}", "PYTHON": str(shim)}
    done = subprocess.run(
        [str(ROOT / "scripts" / "ensure-tools")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert "nothing is installed into it" in done.stderr and "pip install -e .[dev]" in done.stderr
    calls = log.read_text().splitlines()
    assert calls and not any("pip" in c for c in calls), calls
    # with the packages present (this test's own interpreter) it passes and installs nothing either
    done = subprocess.run(
        [str(ROOT / "scripts" / "ensure-tools")],
        cwd=ROOT,
        env={**os.environ, "PYTHON": os.environ.get("PYTHON", "") or sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
