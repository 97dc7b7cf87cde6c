"""The installed package carries its templates and the example spec (not only the repository)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.mark.integration
def test_wheel_ships_templates_and_example(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wheel = next(tmp_path.glob("memprov-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {str(p.relative_to(ROOT / "templates")) for p in (ROOT / "templates").rglob("*.j2")}
    assert templates, "the repository has templates"
    for name in templates:
        assert f"provisioner/_templates/{name}" in names
    assert "provisioner/_example/memprov.yaml" in names
    assert "provisioner/_example/environments/local.yaml" in names
    assert not any(n.startswith(("tests/", "dashboards/")) for n in names)
