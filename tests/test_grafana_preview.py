"""``memprov preview``: a deterministic PNG per dashboard, drawn from the dashboard's own JSON."""

from __future__ import annotations

import itertools
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

from provisioner.kinds import series as s
from provisioner.render.grafana import dashboards as grafana
from provisioner.render.grafana.preview import render_png
from provisioner.render.grafana.sample import JobSample, evaluate
from provisioner.spec.loader import load
from tests.helpers import ROOT, example_repo, memprov

RED = (0xE0, 0x2F, 0x44)  # the critical threshold's colour
ORANGE = (0xFF, 0x98, 0x30)


def chunks(png: bytes) -> list[bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        out.append(png[pos + 4 : pos + 8])
        pos += 12 + length
    return out


def pixels(png: bytes) -> np.ndarray:  # type: ignore[type-arg]
    import io

    from matplotlib.image import imread

    return (imread(io.BytesIO(png), format="png")[:, :, :3] * 255).round().astype(int)


def count(img: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 12) -> int:  # type: ignore[type-arg]
    return int((np.abs(img - np.array(rgb)).sum(axis=2) < tolerance).sum())


def test_preview_writes_a_deterministic_png_per_dashboard(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    first = memprov("preview", "--env", "local", "--out", str(tmp_path / "a"), cwd=repo)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "5 picture(s) of environment local" in first.stdout
    second = memprov("preview", "--env", "local", "--out", str(tmp_path / "b"), cwd=repo)
    assert second.returncode == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [
        "memprov-local-clv-daily.png",
        "memprov-local-doc-embed.png",
        "memprov-local-feature-batch.png",
        "memprov-local-image-embed.png",
        "memprov-local-overview.png",
    ]
    for name in names:
        png = (tmp_path / "a" / name).read_bytes()
        assert png == (tmp_path / "b" / name).read_bytes(), name
        kinds = chunks(png)
        assert b"tIME" not in kinds and b"tEXt" not in kinds and b"iTXt" not in kinds  # no timestamps, no versions
        assert zlib.crc32(png) and len(png) > 20_000


def test_job_picture_draws_layout_series_and_threshold_lines() -> None:
    spec = load(ROOT / "memprov.yaml", "prod")
    job = spec.jobs[0]
    dash = grafana.dashboard(spec, job)
    img = pixels(render_png(dash, [JobSample(job)]))
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dash["panels"])
    assert img.shape[1] == 1600 and img.shape[0] > rows * 30
    assert count(img, RED) > 300 and count(img, ORANGE) > 300  # critical and warning lines, gauge bands
    without = {**dash, "panels": [p for p in dash["panels"] if p.get("title") != "Working set vs limit"]}
    fewer = pixels(render_png(without, [JobSample(job)]))
    assert count(fewer, ORANGE, 90) < count(img, ORANGE, 90) - 300  # the warning line of the removed panel


def test_synthetic_run_ramps_then_saws_below_the_limit() -> None:
    job = load(ROOT / "memprov.yaml", "local").jobs[0]
    sample = JobSample(job)
    [(name, ws), _] = evaluate(f'{s.WS}{{memprov_job="$job"}}', "{{pod}}", sample)
    values = [v for v in ws if v is not None]
    assert name == "worker-0" and len(values) > 200
    assert values[0] < values[20] and max(values) < job.warning_bytes  # a healthy run
    assert any(b < a for a, b in itertools.pairwise(values))  # the sawtooth falls back
    [(_, limit)] = evaluate(f"max({s.LIMIT}{{}})", "limit", sample)
    assert {v for v in limit if v is not None} == {float(job.limit)}


def test_help_stays_light() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "provisioner", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0 and "preview" in result.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    heavy = {"matplotlib", "grafanalib", "httpx", "pydantic", "rich", "numpy", "jinja2", "yaml", "ruamel", "memray"}
    assert not imported & (heavy | {"boto3", "botocore", "azure", "google"})  # every cloud SDK, too
