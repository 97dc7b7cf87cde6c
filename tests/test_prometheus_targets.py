"""What is specific to the Prometheus backend's targets: the ruler's tenants, prefixes and token, the
PrometheusRule manifests, and the reload target through the CLI against a real Prometheus.

The scenarios every live target shares, the Mimir ruler and the reload target included, are in
tests/test_backend_contract.py (:mod:`tests.contract.ruler`, :mod:`tests.contract.prometheus`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from provisioner.backends.registry import build
from provisioner.plan.engine import apply
from provisioner.plan.model import Plan
from provisioner.plan.planner import Binding, make_plan
from provisioner.plan.retry import RetryPolicy
from provisioner.spec.loader import load
from tests.fakes.ruler import FakeRuler
from tests.helpers import example_repo, memprov, targets_of

NO_SLEEP = RetryPolicy(sleep=lambda _s: None)

JOBS = ("clv-daily", "image-embed", "doc-embed", "feature-batch")  # the example spec's jobs


@pytest.fixture
def ruler() -> Iterator[FakeRuler]:
    fake = FakeRuler()
    yield fake
    fake.close()


def _env(repo: Path, name: str, targets: str, extra: str = "") -> None:
    (repo / "environments" / f"{name}.yaml").write_text(f"description: test\n{extra}targets:\n{targets}")


def _plan(repo: Path, env: str) -> tuple[Plan, list[Binding]]:
    spec = load(repo / "memprov.yaml", env)
    backends = build(spec, ["prometheus"])
    return make_plan(spec.env, spec.name, backends, retry=NO_SLEEP), backends


@pytest.fixture
def mimir_repo(tmp_path: Path, ruler: FakeRuler, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = example_repo(tmp_path / "repo")
    _env(repo, "mimir", f"  prometheus: {{type: mimir, url: '{ruler.url}', tenant: ml, token: {{env: RULER_TOKEN}}}}\n")
    monkeypatch.setenv("RULER_TOKEN", "ruler-token")
    return repo


def test_ruler_bad_token_is_a_clear_error(mimir_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULER_TOKEN", "wrong")
    result = memprov("plan", "--env", "mimir", "--backend", "prometheus", cwd=mimir_repo, env={"RULER_TOKEN": "wrong"})
    assert result.returncode == 1
    assert "HTTP 401: not authenticated; check the credentials" in result.stdout
    assert "wrong" not in result.stdout + result.stderr  # the token is redacted
    assert "Traceback" not in result.stderr


def test_cortex_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRuler(token=None, prefix="/api/v1/rules")
    try:
        repo = example_repo(tmp_path / "repo")
        _env(repo, "cortex", f"  prometheus: {{type: cortex, url: '{fake.url}', tenant: t1, namespace: batch}}\n")
        plan, backends = _plan(repo, "cortex")
        assert apply(plan, targets_of(backends), retry=NO_SLEEP).ok
        assert len(fake.groups("t1", "batch")) == 2 * len(JOBS)  # a fast and a slow group per job
        assert fake.groups("other-tenant", "batch") == {}  # X-Scope-OrgID: one tenant's namespace only
        assert all(path.startswith("/api/v1/rules/batch") for _, path in fake.requests)
    finally:
        fake.close()


def test_prometheusrule_manifests_pass_promtool(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    _env(
        repo,
        "k8s",
        "  prometheus: {type: prometheusrule, dir: manifests, namespace: monitoring, "
        "labels: {release: kube-prometheus-stack}}\n",
    )
    plan, backends = _plan(repo, "k8s")
    assert apply(plan, targets_of(backends), retry=NO_SLEEP).ok
    files = sorted((repo / "manifests").glob("*.yaml"))
    assert len(files) == 2 * len(JOBS)  # a fast and a slow group per job
    doc = yaml.safe_load(files[0].read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    assert doc["metadata"]["labels"] == {
        "managed-by": "memprov",
        "memprov-env": "k8s",
        "memprov-spec": "batch-inference",
        "release": "kube-prometheus-stack",
    }
    # promtool rejects the wrapper: check the spec as a plain rule file, as the crib says
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(doc["spec"]))
    result = subprocess.run(["promtool", "check", "rules", str(plain)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    again, _ = _plan(repo, "k8s")
    assert not again.has_changes


@pytest.mark.integration
def test_reload_target_against_a_real_prometheus(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    rules = tmp_path / "rules"
    rules.mkdir()
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global: {{evaluation_interval: 30s}}\nrule_files: ['{rules}/*.yaml']\n")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url)
        _env(repo, "live", f"  prometheus: {{type: prometheus, rules_dir: '{rules}', url: '{url}'}}\n")
        result = memprov("apply", "--env", "live", "--backend", "prometheus", "--yes", cwd=repo)
        assert result.returncode == 0, result.stdout + result.stderr
        groups = httpx.get(f"{url}/api/v1/rules").json()["data"]["groups"]
        assert sorted(g["name"] for g in groups) == sorted(
            f"memprov-live-{j}{part}" for j in JOBS for part in ("", "-slow")
        )
        alerts = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
        assert {"BatchJobMemoryWarning", "BatchJobMemoryGrowthFast", "BatchJobMemoryTimeToOOM"} <= alerts
        assert all(r["health"] != "err" for g in groups for r in g["rules"])
        replan = memprov("plan", "--env", "live", "--backend", "prometheus", "--detailed-exitcode", cwd=repo)
        assert replan.returncode == 0, replan.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not become ready")
