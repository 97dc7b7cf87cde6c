"""Airflow 3 (``/api/v2``): pause the DAG, fail the running task instance, bump the memory Variable, clear, unpause.

Airflow cannot give a running task more memory: the task reads it at render time, through a
templated field — ``KubernetesPodOperator(container_resources=k8s.V1ResourceRequirements(limits={"memory":
"{{ var.value.get('<memory_variable>', '8Gi') }}"}))`` (the provider renders ``limits``/``requests``; a
maintainer recommended this in apache/airflow PR #37288). So the sequence, run here against a real
``airflow standalone`` 3.3.2 (research note §A2): ``PATCH /dags/{dag}`` is_paused (no new runs while
we work) → ``PATCH …/taskInstances/{task}`` new_state failed with a note (the supervisor SIGTERMs the
task within seconds) → verify the state is ``failed`` → upsert the Variable (bulk ``PATCH /variables``,
``action_on_existence: overwrite``) → ``POST /dags/{dag}/clearTaskInstances`` (``dry_run`` defaults
to *true* in the API: sent false) → unpause, unless a person had paused the DAG before. Auth: the
token from ``POST /auth/token``, fetched again on 401 (it lives ``jwt_expiration_time``, 24 h).
The task instance's note carries the alert's identity, so a lost ledger cannot cause a second bump.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from provisioner.breaker.orchestrators.base import Call, HttpClient
from provisioner.breaker.planner import Decision, Observed
from provisioner.core.errors import OperationError
from provisioner.core.secrets import REDACTOR
from provisioner.core.units import format_size, parse_size
from provisioner.spec.breaker import AirflowConnection, AirflowTarget

MARK = "memprov-breaker:"
FAIL_TIMEOUT = 30.0


def quantity(n: int) -> str:
    """Bytes as a Kubernetes quantity the task's template can pass on: ``12Gi``, ``1536Mi``."""
    return format_size(n) if n % 2**30 == 0 or n % 2**20 else f"{n // 2**20}Mi"


class Airflow(HttpClient):
    name = "airflow"
    prefix = "/api/v2"

    def __init__(self, conn: AirflowConnection, target: AirflowTarget, password: str) -> None:
        super().__init__(conn.url, timeout=20)
        self.conn, self.target, self.password = conn, target, password
        self.what = f"Airflow {conn.url}"
        self._authenticate()

    # --- auth ----------------------------------------------------------------------------------
    def _authenticate(self) -> None:
        try:
            r = self.http.post("/auth/token", json={"username": self.conn.username, "password": self.password})
        except httpx.HTTPError as e:
            raise OperationError(f"{self.what}: cannot reach it for a token: {e}") from None
        if r.status_code not in (200, 201):
            raise OperationError(
                f"{self.what}: POST /auth/token answered {r.status_code}; check breaker.airflow.username/password"
            )
        token = str(r.json().get("access_token", ""))

        REDACTOR.add(token)
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _send(self, method: str, path: str, call: Call, headers: dict[str, str]) -> httpx.Response:
        response = super()._send(method, path, call, headers)
        if response.status_code == 401:  # the token expired: fetch a new one, once
            self._authenticate()
            response = super()._send(method, path, call, headers)
        return response

    # --- paths -----------------------------------------------------------------------------------
    @property
    def dag(self) -> str:
        return f"{self.prefix}/dags/{self.target.dag_id}"

    def ti_path(self, run_id: str) -> str:
        return f"{self.dag}/dagRuns/{run_id}/taskInstances/{self.target.task_id}"

    # --- observe ---------------------------------------------------------------------------------
    def observe(self) -> Observed:
        dag = self.get(self.dag)
        if dag.status_code != 200:
            raise OperationError(f"{self.what}: DAG {self.target.dag_id} not found ({dag.status_code})")
        runs = self.get(f"{self.dag}/dagRuns", {"state": "running", "order_by": self.newest_first, "limit": "1"}).json()
        found = runs.get("dag_runs") or []
        run_id = str(found[0]["dag_run_id"]) if found else None
        ti: dict[str, Any] = {}
        if run_id is not None:
            got = self.get(self.ti_path(run_id))
            ti = got.json() if got.status_code == 200 else {}
        variable = self.get(f"{self.prefix}/variables/{self.target.memory_variable}")
        memory = None
        if variable.status_code == 200:
            try:
                memory = parse_size(str(variable.json().get("value", "")).strip().strip('"'))
            except ValueError:
                memory = None
        note = str(ti.get("note") or "")
        handled = frozenset(part.split()[0] for part in note.split(MARK)[1:] if part.split())
        return Observed(
            run_id=run_id,
            running=ti.get("state") == "running",
            memory=memory,
            handled=handled,
            remote_bumps=note.count(MARK),
            details={
                "dag_run_id": run_id,
                "try_number": ti.get("try_number"),
                "is_paused": bool(dag.json().get("is_paused")),
                "variable_exists": variable.status_code == 200,
                "note": note,
            },
        )

    newest_first = "-start_date"

    # --- plan ------------------------------------------------------------------------------------
    def plan(self, decision: Decision, observed: Observed, marker: str) -> list[Call]:
        run_id = str(observed.details.get("dag_run_id"))
        was_paused = bool(observed.details.get("is_paused"))
        note = self.note(observed, marker, decision)
        calls = [self.pause_call(True), *self.fail_calls(run_id, note)]
        if decision.action != "bump_and_resume":
            return calls
        assert decision.memory_after is not None
        calls.append(self.variable_call(quantity(decision.memory_after), decision))
        calls.append(
            Call(
                "clear task instance",
                f"POST {self.dag}/clearTaskInstances",
                {
                    "dry_run": False,
                    "dag_run_id": run_id,
                    "task_ids": [self.target.task_id],
                    "only_failed": True,
                    "reset_dag_runs": True,
                },
            )
        )
        if not was_paused:  # a person paused it before us: leave it paused
            calls.append(self.pause_call(False))
        return calls

    def note(self, observed: Observed, marker: str, decision: Decision) -> str:
        before = str(observed.details.get("note") or "")
        mark = f"{MARK}{marker} {decision.describe()}"[:500]
        return (f"{before}\n{mark}" if before else mark)[-1000:]  # the API takes at most 1000 characters

    def pause_call(self, paused: bool) -> Call:
        return Call("pause DAG" if paused else "unpause DAG", f"PATCH {self.dag}", {"is_paused": paused})

    def fail_calls(self, run_id: str, note: str) -> list[Call]:
        return [
            Call(
                "fail task instance",
                f"PATCH {self.ti_path(run_id)}",
                {"new_state": "failed", "note": note},
                verify={"ti_failed": self.ti_path(run_id)},
            )
        ]

    def variable_call(self, value: str, decision: Decision) -> Call:
        entity = {
            "key": self.target.memory_variable,
            "value": value,
            "description": f"memory limit, raised by memprov breaker ({decision.reason})",
        }
        body = {"actions": [{"action": "create", "entities": [entity], "action_on_existence": "overwrite"}]}
        return Call("set memory variable", f"PATCH {self.prefix}/variables", body)

    # --- verify ----------------------------------------------------------------------------------
    def check(self, call: Call, response: httpx.Response) -> str:
        path = call.verify.get("ti_failed")
        if not path:
            if call.op == f"PATCH {self.prefix}/variables":
                errors = (response.json().get("create") or {}).get("errors") or []
                if errors:
                    raise OperationError(f"the Variable was not written: {errors}")
            return ""
        t0 = time.monotonic()
        deadline = t0 + FAIL_TIMEOUT
        state = None
        while time.monotonic() < deadline:
            state = self.get(str(path)).json().get("state")
            if state == "failed":
                return f"task instance failed after {time.monotonic() - t0:.1f} s"
            time.sleep(0.5)
        raise OperationError(f"the task instance is still {state!r} {FAIL_TIMEOUT:g} s after being marked failed")
