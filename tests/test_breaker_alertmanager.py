"""Rendering for the breaker (rule label, Alertmanager route and receiver; amtool-checked) and a real
Alertmanager 0.25 delivering to ``breaker serve`` through a proxy that answers 500 twice.

Alertmanager retries a webhook that fails (research note §A5: 500, 500, 200 → three deliveries in
about 1.4 s). The proxy forwards every delivery to the breaker and *then* answers 500, so the
breaker sees the same alert three times, as it would when its answers are lost; in the second
test the breaker is restarted between deliveries. The orchestrator (the Airflow 2 fake) must see
the sequence exactly once.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.breaker.ledger import Ledger
from provisioner.core.yamlio import dumps
from provisioner.render.alertmanager import config
from provisioner.render.prometheus.rules import rule_group
from provisioner.spec.loader import load
from tests.breaker_helpers import TOKEN, Serve, audit, env_yaml, free_port, make_repo
from tests.fakes.airflow2 import FakeAirflow2

pytestmark = pytest.mark.integration
BLOCK = """\
orchestrator: airflow
on: [time_to_oom, usage]
max_memory: 32Gi
dry_run: false
airflow: {dag_id: clv_daily, task_id: score, memory_variable: memprov.clv-daily.memory_limit}
"""


def repo_for(tmp: Path, serve_port: int, hook_port: int, airflow_url: str) -> Path:
    conn = f"airflow: {{url: '{airflow_url}', api: v1, username: admin, password: {{env: AIRFLOW2_PASSWORD}}}}"
    extra = f"  url: http://127.0.0.1:{hook_port}/alerts\n"
    return make_repo(tmp / "repo", {"clv-daily": BLOCK}, env_yaml=env_yaml(serve_port, tmp / "state", conn, extra))


# --- rendering -------------------------------------------------------------------------------------
def test_rules_and_routes_for_breaker_jobs(tmp_path: Path) -> None:
    repo = repo_for(tmp_path, 9095, 9096, "http://airflow.example:8080")
    spec = load(repo / "memprov.yaml", "test")
    [job] = spec.jobs
    labelled = {r["alert"]: r["labels"].get("memprov_breaker") for r in rule_group(spec, job)["rules"] if "alert" in r}
    assert labelled["BatchJobMemoryTimeToOOM"] == "on" and labelled["BatchJobMemoryCritical"] == "on"
    assert {k for k, v in labelled.items() if v} == {"BatchJobMemoryTimeToOOM", "BatchJobMemoryCritical"}
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "MEMPROV_BREAKER_TOKEN").write_text(TOKEN)
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(dumps(config(spec, str(secrets))))
    text = cfg.read_text()
    assert "credentials_file: " + str(secrets / "MEMPROV_BREAKER_TOKEN") in text and TOKEN not in text
    check = subprocess.run(["amtool", "check-config", str(cfg)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    routes = subprocess.run(
        [
            "amtool",
            "config",
            "routes",
            "test",
            f"--config.file={cfg}",
            "memprov_breaker=on",
            "severity=critical",
            "memprov_job=clv-daily",
            "memprov_env=test",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert routes.stdout.split() == ["memprov-breaker-test,pager"], routes.stdout  # the breaker, and people still paged
    warning = subprocess.run(
        [
            "amtool",
            "config",
            "routes",
            "test",
            f"--config.file={cfg}",
            "severity=warning",
            "memprov_job=clv-daily",
            "memprov_env=test",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert warning.stdout.split() == ["pager"]


def test_without_an_environment_breaker_block_nothing_is_routed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"clv-daily": BLOCK})
    spec = load(repo / "memprov.yaml", "test")
    assert "memprov_breaker" not in json.dumps(rule_group(spec, spec.jobs[0]))
    assert "memprov-breaker" not in json.dumps(config(spec))


# --- a real Alertmanager ---------------------------------------------------------------------------
class Proxy:
    """Forwards each delivery to the breaker, then answers 500 to the first ``fail`` of them."""

    def __init__(self, target: Callable[[], str], fail: int, between: Callable[[int], None] = lambda n: None) -> None:
        self.target, self.fail, self.between = target, fail, between
        self.deliveries: list[tuple[float, int, dict[str, Any]]] = []
        proxy = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                r = httpx.post(
                    f"{proxy.target()}/alerts",
                    content=raw,
                    timeout=60,
                    headers={
                        "Authorization": self.headers.get("Authorization", ""),
                        "Content-Type": "application/json",
                    },
                )
                n = len(proxy.deliveries) + 1
                proxy.deliveries.append((time.monotonic(), r.status_code, r.json()))
                proxy.between(n)
                code = 500 if n <= proxy.fail else r.status_code
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_alertmanager(tmp: Path, cfg: Path) -> tuple[subprocess.Popen[bytes], str]:
    port, cluster = free_port(), free_port()
    proc = subprocess.Popen(
        [
            "prometheus-alertmanager",
            f"--config.file={cfg}",
            f"--storage.path={tmp / 'amdata'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--cluster.listen-address=127.0.0.1:{cluster}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "am.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("alertmanager did not become ready")


@pytest.fixture
def fake2() -> Iterator[FakeAirflow2]:
    fake = FakeAirflow2()
    fake.add_running("clv_daily", "scheduled__2026-12-02", "score")
    yield fake
    fake.close()
    assert fake.invalid == []


def deliver_through_alertmanager(tmp: Path, fake: FakeAirflow2, restart: bool) -> tuple[Proxy, Path, list[str]]:
    serve_port = free_port()
    serves: list[Serve] = []
    proxy = Proxy(lambda: serves[-1].url, fail=2)
    repo = repo_for(tmp, serve_port, proxy.port, fake.url)
    extra = {"AIRFLOW2_PASSWORD": "fake-airflow2-password"}
    serves.append(Serve(repo, "test", serve_port, extra_env=extra).start())
    logs: list[str] = []
    if restart:

        def between(n: int) -> None:
            if n == 1:  # the breaker dies after acting, before Alertmanager hears back; a new one starts
                logs.append(serves[-1].stop())
                serves.append(Serve(repo, "test", serve_port, extra_env=extra).start())

        proxy.between = between
    spec = load(repo / "memprov.yaml", "test")
    secrets = tmp / "secrets"
    secrets.mkdir()
    (secrets / "MEMPROV_BREAKER_TOKEN").write_text(TOKEN)
    cfg = tmp / "alertmanager.yml"
    cfg.write_text(dumps(config(spec, str(secrets))))
    am, url = start_alertmanager(tmp, cfg)
    try:
        labels = {
            "alertname": "BatchJobMemoryTimeToOOM",
            "severity": "critical",
            "memprov_job": "clv-daily",
            "memprov_env": "test",
            "memprov_breaker": "on",
            "memprov_kind": "time_to_oom",
            "namespace": "batch",
            "container": "scorer",
            "pod": "clv-daily-x1",
        }
        assert (
            httpx.post(
                f"{url}/api/v2/alerts", json=[{"labels": labels, "annotations": {"current": "7.2GiB"}}]
            ).status_code
            == 200
        )
        deadline = time.monotonic() + 60
        while len(proxy.deliveries) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # would Alertmanager send a fourth? (it must not: the third got a 200)
    finally:
        am.terminate()
        am.wait(timeout=20)
        proxy.close()
        logs += [s.stop() for s in serves]
    return proxy, tmp / "state", logs


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "restarted-between-deliveries"])
def test_alertmanager_retries_cause_exactly_one_action(tmp_path: Path, fake2: FakeAirflow2, restart: bool) -> None:
    proxy, state, logs = deliver_through_alertmanager(tmp_path, fake2, restart)
    assert [code for _, code, _ in proxy.deliveries] == [200, 200, 200]  # the breaker answered each...
    outcomes = [body["decisions"][0]["outcome"] for _, _, body in proxy.deliveries]
    assert outcomes == ["acted", "duplicate", "duplicate"]  # ...and acted once
    spread = proxy.deliveries[-1][0] - proxy.deliveries[0][0]
    print(f"\nAlertmanager 0.25: 3 deliveries in {spread:.1f} s (first two answered 500); restart={restart}")
    assert [f"{r.method} {r.path.rsplit('/', 1)[-1]}" for r in fake2.mutating] == [
        "PATCH clv_daily",
        "PATCH setNote",
        "PATCH score",
        "POST variables",
        "POST clearTaskInstances",
        "PATCH clv_daily",
    ]
    ledger = Ledger(state / "ledger.sqlite")
    assert ledger.count() == 1 and ledger.count("done") == 1
    ledger.close()
    records = audit(state)
    assert [r["outcome"] for r in records] == ["acted", "duplicate", "duplicate"]
    assert len({r["alert"]["fingerprint"] + r["alert"]["startsAt"] for r in records}) == 1
    assert all(TOKEN not in log for log in logs)
