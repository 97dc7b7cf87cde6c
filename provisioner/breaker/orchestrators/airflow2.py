"""Airflow 2 (``/api/v1``, basic auth): the same sequence as Airflow 3, in the v1 API's words.

From the v1 OpenAPI document shipped in apache-airflow 2.11.2 (``airflow/api_connexion/openapi/
v1.yaml``): ``PATCH /dags/{dag}?update_mask=is_paused``; ``PATCH …/taskInstances/{task}`` with
``UpdateTaskInstance{dry_run, new_state}`` — ``dry_run`` defaults to *true*, so it is sent false —
and the note through ``PATCH …/setNote`` (new in 2.5); ``POST /variables`` (``Variable.set``: creates
or overwrites); ``POST /dags/{dag}/clearTaskInstances`` (``dry_run`` again defaults to true).
Basic auth needs ``[api] auth_backends`` to include ``airflow.api.auth.backend.basic_auth``.
"""

from __future__ import annotations

import httpx

from provisioner.breaker.orchestrators.airflow import Airflow
from provisioner.breaker.orchestrators.base import Call, HttpClient
from provisioner.breaker.planner import Decision
from provisioner.spec.breaker import AirflowConnection, AirflowTarget


class Airflow2(Airflow):
    name = "airflow2"
    prefix = "/api/v1"
    newest_first = "-start_date"

    def __init__(self, conn: AirflowConnection, target: AirflowTarget, password: str) -> None:
        HttpClient.__init__(self, conn.url, timeout=20, auth=httpx.BasicAuth(conn.username, password))
        self.conn, self.target, self.password = conn, target, password
        self.what = f"Airflow {conn.url} (v1)"

    def _send(self, method: str, path: str, call: Call, headers: dict[str, str]) -> httpx.Response:
        return HttpClient._send(self, method, path, call, headers)

    def pause_call(self, paused: bool) -> Call:
        return Call(
            "pause DAG" if paused else "unpause DAG",
            f"PATCH {self.dag}",
            {"is_paused": paused},
            params={"update_mask": "is_paused"},
        )

    def fail_calls(self, run_id: str, note: str) -> list[Call]:
        ti = self.ti_path(run_id)
        return [
            Call("note task instance", f"PATCH {ti}/setNote", {"note": note}),
            Call(
                "fail task instance",
                f"PATCH {ti}",
                {"dry_run": False, "new_state": "failed"},
                verify={"ti_failed": ti},
            ),
        ]

    def variable_call(self, value: str, decision: Decision) -> Call:
        body = {
            "key": self.target.memory_variable,
            "value": value,
            "description": f"memory limit, raised by memprov breaker ({decision.reason})",
        }
        return Call("set memory variable", f"POST {self.prefix}/variables", body)

    def check(self, call: Call, response: httpx.Response) -> str:
        if call.op.startswith(f"POST {self.prefix}/variables"):
            return ""
        return super().check(call, response)
