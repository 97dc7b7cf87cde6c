"""End to end: a backfilled surge in a real Prometheus fires memprov's time-to-OOM rule → a real
Alertmanager 0.25 routes it (memprov's rendered configuration) → ``breaker serve`` → a real Airflow
3.3.2 is paused, its running task failed, the memory Variable bumped, and the task run again.

The surge: a model-load ramp, then a sawtooth whose troughs climb 3 MiB/s towards an 8Gi limit,
backfilled with promtool up to the moment Prometheus starts. memprov's recording rules are backfilled
too (``promtool tsdb create-blocks-from rules``, one pass per level of rules that read other
recorded series), so the alert rules see the run's history at once; Prometheus then evaluates the
rendered rules every 5 s in real time and sends the firing alert to Alertmanager. The test prints the time
from the alert's delivery to the breaker until Airflow confirmed the pause (< 10 s required).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from provisioner.core.yamlio import dumps
from provisioner.history.promapi import Series, backfill
from provisioner.render.alertmanager import config
from provisioner.render.prometheus.rules import rule_group
from provisioner.spec.loader import load
from tests.airflow_server import DAG_ID, TASK_ID, VARIABLE, Airflow
from tests.breaker_helpers import TOKEN, Serve, audit, env_yaml, free_port, indent
from tests.test_breaker_airflow import wait
from tests.test_breaker_alertmanager import start_alertmanager

pytestmark = pytest.mark.integration
GI, MI = 2.0**30, 2.0**20
SPEC = f"""\
version: 1
name: breaker-e2e
defaults:
  scrape_interval: 1m  # the rules see a series for three scrapes after its last sample: the backfill's time
  evaluation_interval: 5s
  trough_window: 1m
  route: {{warning: pager, critical: pager}}
notifications:
  pager: {{type: webhook, url: "http://127.0.0.1:9/pager"}}
jobs:
  mp-airflow:
    owner: data-eng
    model: {{name: scorer, version: "1"}}
    runtime: kubernetes
    selector: {{namespace: batch, container: scorer}}
    memory: {{limit: 8Gi, baseline: {{peak_p95: 3Gi, velocity: 20Mi}}}}  # past runs: the page judges against them
    growth: {{enabled: false, warmup: 1m}}
    anomaly: {{enabled: false}}
    baseline_alert: {{enabled: false}}
    time_to_oom: {{horizon: 30m, window: 2m, for: 10s, warning_horizon: null}}
    breaker:
      orchestrator: airflow
      max_memory: 32Gi
      dry_run: false
      airflow: {{dag_id: {DAG_ID}, task_id: {TASK_ID}, memory_variable: {VARIABLE}}}
"""


def surge(end: float) -> list[Series]:
    """25 minutes of a run heading for its 8Gi limit, every 5 s, up to ``end``."""
    start, samples = end - 25 * 60, []
    t = start
    while t <= end:
        u = t - start
        trough = 2 * GI + 3 * MI * u
        value = 1 * GI + (trough - 1 * GI) * u / 120 if u < 120 else trough + 200 * MI * ((u - 120) % 60) / 60
        samples.append((t, value))
        t += 5
    labels = {"namespace": "batch", "container": "scorer", "pod": "mp-airflow-score-1", "node": "node-1"}
    return [
        Series.of("container_memory_working_set_bytes", labels, samples),
        Series.of("container_spec_memory_limit_bytes", labels, [(t, 8 * GI) for t, _ in samples]),
    ]


def start_prometheus(tmp: Path, data: Path, config: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cfg = tmp / f"prometheus-{port}.yml"
    cfg.write_text(config)
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={cfg}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--query.lookback-delta=5m",
            "--log.level=warn",
            "--storage.tsdb.retention.time=100y",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "prometheus.log").open("ab"),
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError((tmp / "prometheus.log").read_text()[-2000:])


def backfill_recordings(tmp: Path, data: Path, group: dict[str, object], start: float, end: float) -> int:
    """Write the group's recording rules' history into ``data``, level by level; returns the levels."""
    recordings = [r for r in group["rules"] if "record" in r]  # type: ignore[attr-defined]
    names = {r["record"] for r in recordings}
    done: set[str] = set()
    levels = 0
    while len(done) < len(names):
        ready = [
            r
            for r in recordings
            if r["record"] not in done and all(n in done or n == r["record"] or n not in r["expr"] for n in names)
        ]
        assert ready, "recording rules depend on each other in a cycle"
        path = tmp / f"level-{levels}.yaml"
        path.write_text(dumps({"groups": [{"name": f"level-{levels}", "interval": "5s", "rules": ready}]}))
        prom, url = start_prometheus(tmp, data, "global: {evaluation_interval: 5s}\n")
        try:
            out = subprocess.run(
                [
                    "promtool",
                    "tsdb",
                    "create-blocks-from",
                    "rules",
                    "-q",
                    f"--url={url}",
                    f"--start={int(start)}",
                    f"--end={int(end)}",
                    f"--output-dir={data}",
                    "--eval-interval=5s",
                    str(path),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            assert out.returncode == 0, out.stdout + out.stderr
        finally:
            prom.terminate()
            prom.wait(timeout=30)
        done |= {r["record"] for r in ready}
        levels += 1
    return levels


def test_surge_in_prometheus_pauses_and_bumps_airflow(airflow_server: Airflow, tmp_path: Path) -> None:
    c = airflow_server.client()
    c.delete(f"/api/v2/variables/{VARIABLE}")
    run_id = f"e2e-{uuid.uuid4().hex[:8]}"
    assert (
        c.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "dag_run_id": run_id}).status_code == 200
    )
    ti_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}"
    wait(c, ti_path, lambda b: b.get("state") == "running")

    # memprov's own artefacts: the rules and the Alertmanager configuration, rendered from the spec
    port, state = free_port(), tmp_path / "state"
    repo = tmp_path / "repo"
    (repo / "environments").mkdir(parents=True)
    (repo / "memprov.yaml").write_text(SPEC)
    conn = f"airflow: {{url: '{airflow_server.url}', username: admin, password: {{env: AIRFLOW_PASSWORD}}}}"
    (repo / "environments" / "test.yaml").write_text(env_yaml(port, state, indent(conn, 0)))
    spec = load(repo / "memprov.yaml", "test")
    rules = tmp_path / "rules.yaml"
    rules.write_text(dumps({"groups": [rule_group(spec, spec.jobs[0])]}))
    assert subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, check=False).returncode == 0
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "MEMPROV_BREAKER_TOKEN").write_text(TOKEN)
    am_cfg = tmp_path / "alertmanager.yml"
    am_cfg.write_text(dumps(config(spec, str(secrets))))

    serve = Serve(repo, "test", port, extra_env={"AIRFLOW_PASSWORD": airflow_server.password}).start()
    am, am_url = start_alertmanager(tmp_path, am_cfg)
    data = tmp_path / "tsdb"
    end = time.time() - 1
    t0 = time.monotonic()
    backfill(surge(end), data)
    levels = backfill_recordings(tmp_path, data, rule_group(spec, spec.jobs[0]), end - 25 * 60, end)
    backfilled_in = time.monotonic() - t0
    alerting = (
        f"alerting: {{alertmanagers: [{{static_configs: [{{targets: ['{am_url.removeprefix('http://')}']}}]}}]}}\n"
    )
    prom, prom_url = start_prometheus(
        tmp_path, data, f"global: {{evaluation_interval: 5s}}\nrule_files: ['{rules}']\n{alerting}"
    )
    t_start = time.monotonic()
    try:
        deadline = time.monotonic() + 120
        records: list[dict[str, object]] = []
        while time.monotonic() < deadline and not any(r.get("outcome") == "acted" for r in records):
            time.sleep(0.5)
            records = audit(state)
        alerts = httpx.get(f"{prom_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    finally:
        prom.terminate()
        am.terminate()
        log = serve.stop()
        prom.wait(timeout=30)
        am.wait(timeout=30)
    fired = [a for a in alerts if a["labels"]["alertname"] == "BatchJobMemoryTimeToOOM"]
    assert fired and fired[0]["labels"]["memprov_breaker"] == "on", alerts
    [acted] = [r for r in records if r.get("outcome") == "acted"]
    assert acted["alert"]["name"] == "BatchJobMemoryTimeToOOM" and acted["receiver"] == "memprov-breaker-test"  # type: ignore[index]
    steps = acted["steps"]
    assert [s["call"] for s in steps] == [  # type: ignore[union-attr]
        "pause DAG",
        "fail task instance",
        "set memory variable",
        "clear task instance",
        "unpause DAG",
    ]
    to_paused = steps[0]["since_delivery_ms"] / 1000  # type: ignore[index]
    print(
        f"\nend to end: raw series and {levels} levels of recording rules backfilled in {backfilled_in:.0f} s; "
        f"Prometheus fired BatchJobMemoryTimeToOOM and the breaker acted {time.monotonic() - t_start:.0f} s "
        f"after Prometheus started; alert delivery -> Airflow paused in {to_paused:.2f} s, "
        f"all 5 calls in {steps[-1]['since_delivery_ms'] / 1000:.2f} s"  # type: ignore[index]
    )
    assert to_paused < 10
    assert c.get(f"/api/v2/variables/{VARIABLE}").json()["value"] == "12Gi"
    done = wait(c, ti_path, lambda b: b.get("try_number") == 2 and b.get("state") == "success")
    assert done["try_number"] == 2
    assert TOKEN not in log
