"""The light install and the scripts that install: ``pip install memprov`` (here ``scripts/venv``, which
the README's first command runs) plans without any cloud SDK and says which extra a live cloud target
needs; ``scripts/venv`` and ``scripts/ensure-tools`` install into no Python they did not make."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, example_repo


def _run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MEMPROV_VENV", "VIRTUAL_ENV")}
    full.update({"NO_COLOR": "1", "COLUMNS": "200"}, **(env or {}))
    return subprocess.run(list(args), cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)


def _freeze(python: Path) -> str:
    return _run(str(python), "-m", "pip", "freeze", "--all").stdout


@pytest.mark.integration
def test_the_light_install_plans_without_cloud_sdks(tmp_path: Path) -> None:
    venv = tmp_path / "light"
    made = _run(str(ROOT / "scripts" / "venv"), env={"MEMPROV_VENV": str(venv)})
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    for sdk in ("boto3", "google.cloud.monitoring_v3", "azure.mgmt.monitor", "matplotlib", "pytest"):
        probe = _run(
            str(python),
            "-c",
            f"import importlib.util as u, sys; sys.exit(u.find_spec('{sdk.split('.')[0]}') is not None)",
        )
        assert probe.returncode == 0, f"{sdk} is installed by the light install"
    repo = example_repo(tmp_path / "repo")
    memprov = str(venv / "bin" / "memprov")
    plan = _run(memprov, "plan", "--env", "local", cwd=repo)
    assert plan.returncode == 0, plan.stderr
    assert "\nPlan: 15 to create, 0 to update, 0 to delete, 0 unchanged.\n" in plan.stdout
    for env, extra, module in (
        ("aws", "aws", "boto3"),
        ("gcp", "gcp", "google.cloud.monitoring_v3"),
        ("azure", "azure", "azure.mgmt.monitor"),
    ):
        refused = _run(memprov, "plan", "--env", env, cwd=repo)
        assert refused.returncode == 2, (env, refused.stdout, refused.stderr)
        assert f"pip install 'memprov[{extra}]'" in refused.stderr and module in refused.stderr
        assert "Traceback" not in refused.stderr
    assert _run(memprov, "explain", "--env", "aws", cwd=repo).returncode == 0  # reads nothing live: no SDK needed
    again = _run(str(ROOT / "scripts" / "venv"), env={"MEMPROV_VENV": str(venv)})  # up to date: nothing to do
    assert again.returncode == 0 and again.stdout == again.stderr == ""


def test_scripts_venv_refuses_a_virtualenv_it_did_not_make(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    assert _run(sys.executable, "-m", "venv", "--without-pip", str(foreign)).returncode == 0
    before = sorted(p.name for p in foreign.rglob("*"))
    refused = _run(str(ROOT / "scripts" / "venv"), "dev", env={"MEMPROV_VENV": str(foreign)})
    assert refused.returncode == 1
    assert "was not made by scripts/venv, so nothing is installed into it" in refused.stderr
    assert sorted(p.name for p in foreign.rglob("*")) == before


def test_ensure_tools_only_checks_an_interpreter_it_did_not_make(tmp_path: Path) -> None:
    """The machine's Python (or any PYTHON=...) is never installed into: what it lacks is said."""
    bare = tmp_path / "bare"
    assert _run(sys.executable, "-m", "venv", "--without-pip", str(bare)).returncode == 0
    before = sorted(p.name for p in bare.rglob("*"))
    result = _run(str(ROOT / "scripts" / "ensure-tools"), env={"PYTHON": str(bare / "bin" / "python")})
    assert result.returncode == 1, result.stderr
    assert "lacks the development tools and is not the project's virtualenv, so nothing is installed" in result.stderr
    assert sorted(p.name for p in bare.rglob("*")) == before
    machine = (
        Path("/usr/bin/python3") if Path("/usr/bin/python3").exists() else Path(sys.base_prefix) / "bin" / "python3"
    )
    frozen = _freeze(machine)
    checked = _run(str(ROOT / "scripts" / "ensure-tools"), env={"PYTHON": str(machine)})
    assert checked.returncode in (0, 1)
    assert _freeze(machine) == frozen
