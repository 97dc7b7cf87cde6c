"""A real ``airflow standalone`` (apache-airflow 3.3.2) on 127.0.0.1, shared by the breaker's tests.

The venv comes from ``scripts/airflow-venv`` (built once, cached outside the work tree). The
server runs with sqlite and the LocalExecutor, parallelism 2, on free ports, from a temporary
``AIRFLOW_HOME`` holding one DAG whose task reads its memory limit through
``{{ var.value.get(...) }}`` — the wiring the README documents for KubernetesPodOperator's
``container_resources``. The gotchas below were each hit on this machine
(../shared/notes/breaker-sampler.md §A2): the venv's ``bin`` on PATH (standalone spawns
``airflow`` by name), the execution API URL when the port is not 8080, the log servers' ports,
and a process group of its own (SIGTERM to ``standalone`` orphans its children).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "mp_breaker_test"
TASK_ID = "score"
VARIABLE = "memprov.mp-airflow.memory_limit"
DAG = f'''
import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
         max_active_runs=1, default_args={{"retries": 0}}):
    # The memory limit comes from the Variable the breaker bumps, exactly as a KubernetesPodOperator's
    # container_resources would read it. Try 1 "runs out of memory" slowly (sleeps until the breaker
    # fails it); the next try prints what it was given and succeeds.
    BashOperator(
        task_id="{TASK_ID}",
        bash_command=(
            "echo memprov-memory-limit={{{{ var.value.get('{VARIABLE}', '1Gi') }}}} try={{{{ ti.try_number }}}}; "
            "if [ {{{{ ti.try_number }}}} -eq 1 ]; then sleep 600; fi"
        ),
    )
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def airflow_venv() -> Path:
    """The cached Airflow venv, built by scripts/airflow-venv if it is not there yet (about 30-80 s)."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "airflow-venv")], capture_output=True, text=True, check=False, timeout=900
    )
    if out.returncode != 0:
        raise RuntimeError(f"scripts/airflow-venv failed:\n{out.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


@dataclass
class Airflow:
    url: str
    username: str
    password: str
    home: Path
    proc: subprocess.Popen[bytes]
    started_in: float

    def client(self) -> httpx.Client:
        token = httpx.post(
            f"{self.url}/auth/token", json={"username": self.username, "password": self.password}, timeout=30
        ).json()["access_token"]
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def log_tail(self, n: int = 4000) -> str:
        path = self.home / "standalone.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # children that outlived their group leader
            os.killpg(self.proc.pid, signal.SIGKILL)


def start_airflow(workdir: Path, timeout: float = 180) -> Airflow:
    venv = airflow_venv()
    home = workdir / "airflow-home"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "mp_breaker_test.py").write_text(DAG, encoding="utf-8")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    }
    env.pop("VIRTUAL_ENV", None)
    started = time.monotonic()
    log = (home / "standalone.log").open("wb")
    proc = subprocess.Popen(
        [str(venv / "bin" / "airflow"), "standalone"],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    server = Airflow(url, "admin", "", home, proc, 0.0)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"airflow standalone exited with {proc.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"airflow standalone not healthy after {timeout:.0f} s:\n{server.log_tail()}")
            try:
                health = httpx.get(f"{url}/api/v2/monitor/health", timeout=2)
                passwords = home / "simple_auth_manager_passwords.json.generated"
                if health.status_code == 200 and passwords.exists():
                    server.password = json.loads(passwords.read_text())["admin"]
                    with server.client() as c:
                        if c.get(f"/api/v2/dags/{DAG_ID}").status_code == 200:
                            break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            time.sleep(1)
    except BaseException:
        server.stop()
        raise
    server.started_in = time.monotonic() - started
    return server


@pytest.fixture(scope="session")
def airflow_server() -> Iterator[Airflow]:
    """One Airflow for the whole session: starting it costs ~30 s; each test triggers its own run."""
    workdir = Path(tempfile.mkdtemp(prefix="memprov-airflow-"))
    server = start_airflow(workdir)
    print(f"\nairflow standalone 3.3.2 healthy with the test DAG parsed in {server.started_in:.1f} s")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
