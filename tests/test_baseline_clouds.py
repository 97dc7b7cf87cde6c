"""`memprov baseline --azure` / `--gcp`: peaks from Azure Monitor metrics and Cloud Monitoring time
series, read with the real SDKs (azure-mgmt-monitor over HTTPS, google-cloud-monitoring over gRPC)
from the local fake servers the live-target tests use, which now also serve the metric reads."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.analysis import baseline as bl
from provisioner.history.clouds import read_runs_azure, read_runs_gcp
from provisioner.render.azure import source as azure_source
from provisioner.render.gcp import source as gcp_source
from provisioner.spec.loader import load
from tests.fakes.azure import ArmServer
from tests.fakes.gcp import FakeAlertPolicies, serve
from tests.helpers import memprov
from tests.test_azure_live import TOKEN_VAR, azure_repo
from tests.test_gcp_live import GCP_ENV, TOKEN, gcp_repo

pytestmark = pytest.mark.integration
DAY = 86_400


def daily_runs(now: float, scale: float) -> tuple[list[list[tuple[float, float]]], list[float], float]:
    """Six daily 80-minute runs in the last week (values per minute), the fifth climbing to the limit.

    Returns the series (one per run), the peaks of the successful runs, and the OOM run's peak."""
    series, peaks, oom = [], [], 0.0
    for day in range(6):
        start = (now // DAY - 6 + day) * DAY + 2 * 3600
        top = (48 + 2 * day if day != 4 else 99.5) * scale / 100
        minutes = 80 if day != 4 else 50
        points = [(start + 60 * m, (0.3 * scale + (top - 0.3 * scale) * m / (minutes - 1))) for m in range(minutes)]
        series.append(points)
        if day == 4:
            oom = points[-1][1]
        else:
            peaks.append(points[-1][1])
    return series, peaks, oom


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmServer]:
    server = ArmServer(tmp_path_factory.mktemp("arm"))
    yield server
    server.close()


def test_azure_runs_and_baseline(arm: ArmServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VAR, arm.fake.token)
    repo = azure_repo(tmp_path / "repo", arm)
    spec = load(repo / "memprov.yaml", "azure", baselines=False)
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    src = azure_source(job)
    now = time.time()
    series, peaks, _ = daily_runs(now, 100.0)  # node_memory_working_set_percentage: percent
    quiet = [[(t, v / 2) for t, v in points] for points in series]  # a second node, half as full
    arm.fake.metrics[(src.scope.lower(), src.namespace, src.metric)] = {
        (("node", "aks-batch-0"),): [p for s in series for p in s],
        (("node", "aks-batch-1"),): [p for s in quiet for p in s],
    }
    runs = read_runs_azure(spec, job, now - 7 * DAY, now)
    assert len(runs) == 6 and [r.oom for r in runs] == [False] * 4 + [True, False]
    b = bl.compute(job, runs)
    assert (b.runs, b.failed) == (5, 1)
    assert b.max == pytest.approx(max(peaks) / 100 * job.limit)  # the fullest node, the maximum per interval
    result = memprov("baseline", "--env", "azure", "--azure", "-j", "clv-daily", "--dry-run", "-f", "json",
                     cwd=repo, env={TOKEN_VAR: arm.fake.token})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["runs"] == 5


def test_gcp_runs_and_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GCP_ENV.items():
        monkeypatch.setenv(k, v)
    fake = FakeAlertPolicies(token=TOKEN)
    with serve(fake) as address:
        repo = gcp_repo(tmp_path / "repo", address)
        spec = load(repo / "memprov.yaml", "gcp", baselines=False)
        job = next(j for j in spec.jobs if j.id == "doc-embed")
        src = gcp_source(job)
        now = time.time()
        series, peaks, _ = daily_runs(now, 1.0)  # limit_utilization: a fraction
        fake.series[src.filter(src.usage)] = series
        runs = read_runs_gcp(spec, job, now - 7 * DAY, now)
        assert len(runs) == 6 and [r.oom for r in runs] == [False] * 4 + [True, False]
        b = bl.compute(job, runs)
        assert (b.runs, b.failed) == (5, 1)
        assert b.max == pytest.approx(max(peaks) * job.limit)
        result = memprov("baseline", "--env", "gcp", "--gcp", "-j", "doc-embed", "--dry-run", "-f", "json",
                         cwd=repo, env=GCP_ENV)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)[0]["runs"] == 5
        local = memprov("baseline", "--env", "local", "--gcp", "--dry-run", cwd=repo, env=GCP_ENV)
        assert local.returncode == 2 and "no job uses the gcp backend in local" in local.stderr
