"""The breaker against a real Airflow 3.3.2 (``airflow standalone``, sqlite, LocalExecutor, parallelism 2).

A run of the test DAG is triggered and its task is running (try 1 sleeps, as a job heading for an
OOM would keep going). A dry-run breaker must leave Airflow exactly as it was. Then the real
breaker, fed the same alert through ``breaker serve``, must: pause the DAG, fail the task instance
with a note (its process ends within 10 s), set the memory Variable to the bumped value, clear the
task instance, unpause — and try 2 must run and print the bumped value, which it reads through
``{{ var.value.get(...) }}`` exactly as a KubernetesPodOperator's ``container_resources`` would.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.airflow_server import DAG_ID, TASK_ID, VARIABLE, Airflow
from tests.breaker_helpers import Serve, alert, audit, env_yaml, free_port, make_repo, payload

pytestmark = pytest.mark.integration


def breaker_block(dry_run: bool) -> str:
    return f"""\
orchestrator: airflow
on: [time_to_oom, usage]
max_memory: 32Gi
dry_run: {str(dry_run).lower()}
airflow: {{dag_id: {DAG_ID}, task_id: {TASK_ID}, memory_variable: {VARIABLE}}}
"""


def start_serve(tmp: Path, server: Airflow, dry_run: bool) -> tuple[Serve, Path]:
    port, state = free_port(), tmp / "state"
    conn = f"airflow: {{url: '{server.url}', username: admin, password: {{env: AIRFLOW_PASSWORD}}}}"
    repo = make_repo(tmp / "repo", {"mp-airflow": breaker_block(dry_run)}, env_yaml=env_yaml(port, state, conn))
    serve = Serve(repo, "test", port, extra_env={"AIRFLOW_PASSWORD": server.password}).start()
    return serve, state


def wait(c: httpx.Client, path: str, ok: object, timeout: float = 90) -> dict[str, object]:
    deadline, body = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        body = c.get(path).json()
        if ok(body):  # type: ignore[operator]
            return body
        time.sleep(0.5)
    raise AssertionError(f"{path}: still {body} after {timeout} s")


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_airflow3_dry_run_changes_nothing_then_bump_and_resume(airflow_server: Airflow, tmp_path: Path) -> None:
    c = airflow_server.client()
    run_id = f"mp-{uuid.uuid4().hex[:8]}"
    assert (
        c.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "dag_run_id": run_id}).status_code == 200
    )
    ti_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}"
    ti = wait(c, ti_path, lambda b: b.get("state") == "running")
    assert ti["try_number"] == 1
    task_pid = int(ti["pid"])  # type: ignore[arg-type]
    assert pid_alive(task_pid)
    c.delete(f"/api/v2/variables/{VARIABLE}")  # a previous session's value must not count

    # --- dry run: the full call list is audited, Airflow is left exactly as it was ------------------
    dry, dry_state = start_serve(tmp_path / "dry", airflow_server, dry_run=True)
    try:
        r = dry.post(payload(alert("mp-airflow", fingerprint="f00dfeed01")))
        assert r.status_code == 200, r.text
    finally:
        dry.stop()
    [record] = audit(dry_state)
    assert record["outcome"] == "dry_run" and record["steps"] == []
    assert [p["call"] for p in record["planned"]] == [
        "pause DAG",
        "fail task instance",
        "set memory variable",
        "clear task instance",
        "unpause DAG",
    ]
    assert record["memory"] == {"before": 8 * 2**30, "after": 12 * 2**30}
    assert c.get(ti_path).json()["state"] == "running"
    assert c.get(f"/api/v2/dags/{DAG_ID}").json()["is_paused"] is False
    assert c.get(f"/api/v2/variables/{VARIABLE}").status_code == 404

    # --- the real thing ---------------------------------------------------------------------------
    serve, state = start_serve(tmp_path / "real", airflow_server, dry_run=False)
    try:
        t0 = time.monotonic()
        r = serve.post(payload(alert("mp-airflow", fingerprint="f00dfeed02")))
        acted_in = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert r.json()["decisions"] == [{"job": "mp-airflow", "outcome": "acted"}]
        deadline = time.monotonic() + 10
        while pid_alive(task_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not pid_alive(task_pid), "try 1's process still runs 10 s after the breaker failed it"
    finally:
        log = serve.stop()
    [record] = audit(state)
    assert record["outcome"] == "acted", record
    assert [(s["call"], s["status"]) for s in record["steps"]] == [
        ("pause DAG", 200),
        ("fail task instance", 200),
        ("set memory variable", 200),
        ("clear task instance", 200),
        ("unpause DAG", 200),
    ]
    assert record["run_id"] == run_id
    assert c.get(f"/api/v2/variables/{VARIABLE}").json()["value"] == "12Gi"
    assert c.get(f"/api/v2/dags/{DAG_ID}").json()["is_paused"] is False
    done = wait(c, ti_path, lambda b: b.get("try_number") == 2 and b.get("state") == "success")
    assert f"memprov-breaker:f00dfeed02@{alert('x')['startsAt']} act: bump_and_resume 8Gi -> 12Gi" in str(done["note"])
    tries = c.get(f"{ti_path}/tries").json()["task_instances"]
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    text = c.get(f"{ti_path}/logs/2", headers={"Accept": "application/json"}).text
    assert "memprov-memory-limit=12Gi try=2" in text, text[-2000:]
    assert airflow_server.password not in log and airflow_server.password not in (state / "audit.jsonl").read_text()
    print(f"\nbreaker acted on Airflow 3.3.2 in {acted_in:.1f} s (5 calls, incl. waiting for the task to fail)")
