"""A fake Airflow 2 REST API (``/api/v1``) whose every request and response is validated against the
OpenAPI document shipped in apache-airflow 2.11.2 (tests/fixtures/airflow2/v1.yaml).

What it enforces, each from that document or Airflow 2's behaviour: basic auth (401 otherwise);
paths, methods and declared query parameters (connexion's strict validation: 400 for an unknown
one); request bodies against the operation's schema (400); ``dry_run`` *defaults to true* in
``UpdateTaskInstance`` and ``ClearTaskInstances`` (a request that omits it changes nothing);
``update_mask`` on ``PATCH /dags``; ``POST /variables`` creates or overwrites (``Variable.set``);
clearing a task instance sets its state to none, and a paused DAG schedules nothing — the cleared
instance runs again (try + 1) only once the DAG is unpaused. Every request is logged.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.openapi import OpenApi, Operation

SPEC = Path(__file__).resolve().parent.parent / "fixtures" / "airflow2" / "v1.yaml"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class State:
    paused: dict[str, bool] = field(default_factory=dict)
    runs: dict[tuple[str, str], str] = field(default_factory=dict)  # (dag, run) -> state
    tis: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)  # (dag, run, task) -> TI
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeAirflow2:
    def __init__(self, username: str = "admin", password: str = "fake-airflow2-password") -> None:
        self.api = OpenApi(SPEC, "/api/v1")
        self.auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.state = State()
        self.log: list[Request] = []
        self.invalid: list[str] = []  # requests the document rejects (the test asserts it stays empty)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_running(self, dag: str, run: str, task: str) -> None:
        self.state.paused[dag] = False
        self.state.runs[(dag, run)] = "running"
        self.state.tis[(dag, run, task)] = {"state": "running", "try_number": 1, "max_tries": 0, "note": None}

    @property
    def mutating(self) -> list[Request]:
        return [r for r in self.log if r.method != "GET"]

    # --- the API ---------------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, Operation | None]:
        op = self.api.operation(method, path)
        if isinstance(op, str):
            code = int(op[:3])
            return code, {"title": op[4:], "status": code}, None
        errors = self.api.request_errors(op, query, body)
        if errors:
            self.invalid.append(f"{method} {path}: {errors}")
            return 400, {"title": "Bad Request", "status": 400, "detail": "; ".join(errors)}, op
        parts = path[len("/api/v1/") :].split("/")
        with self.lock:
            return (*self._route(method, parts, query, body or {}), op)

    def _route(self, method: str, p: list[str], query: dict[str, list[str]], body: dict[str, Any]) -> tuple[int, Any]:
        s = self.state
        if p[0] == "variables":
            if method == "POST":
                s.variables[body["key"]] = {
                    "key": body["key"],
                    "value": body["value"],
                    "description": body.get("description"),
                }
                return 200, s.variables[body["key"]]
            var = s.variables.get(p[1])
            return (200, var) if var else (404, _not_found(f"Variable {p[1]}"))
        dag = p[1]
        if dag not in s.paused:
            return 404, _not_found(f"DAG {dag}")
        if len(p) == 2:
            if method == "PATCH" and "is_paused" in query.get("update_mask", ["is_paused"])[0].split(","):
                s.paused[dag] = bool(body.get("is_paused"))
                if not s.paused[dag]:
                    self._schedule(dag)
            return 200, {"dag_id": dag, "is_paused": s.paused[dag]}
        if p[2] == "clearTaskInstances":
            cleared = []
            if body.get("dry_run", True) is False:
                for (d, run, task), ti in s.tis.items():
                    if d != dag or task not in body.get("task_ids", [task]) or run != body.get("dag_run_id", run):
                        continue
                    if body.get("only_failed", True) and ti["state"] != "failed":
                        continue
                    ti["state"] = None
                    ti["max_tries"] += 1
                    cleared.append({"task_id": task, "dag_id": d, "dag_run_id": run})
                    if body.get("reset_dag_runs"):
                        s.runs[(d, run)] = "queued"
                self._schedule(dag)
            return 200, {"task_instances": cleared}
        if p[2] == "dagRuns" and len(p) == 3:
            states = query.get("state", [])
            runs = [
                {"dag_run_id": r, "dag_id": d, "state": st}
                for (d, r), st in s.runs.items()
                if d == dag and (not states or st in states)
            ]
            return 200, {"dag_runs": runs[: int(query.get("limit", ["100"])[0])], "total_entries": len(runs)}
        run, task = p[3], p[5]
        ti = s.tis.get((dag, run, task))
        if ti is None:
            return 404, _not_found(f"task instance {dag}/{run}/{task}")
        if len(p) == 7 and p[6] == "setNote":
            ti["note"] = body["note"]
            return 200, self._ti(dag, run, task)
        if method == "PATCH":
            if body.get("dry_run", True) is False:
                ti["state"] = body["new_state"]
            return 200, {"task_id": task, "dag_id": dag, "dag_run_id": run}
        return 200, self._ti(dag, run, task)

    def _schedule(self, dag: str) -> None:
        """The scheduler: cleared instances of an unpaused DAG run again, with the next try number."""
        if self.state.paused[dag]:
            return
        for (d, run, _task), ti in self.state.tis.items():
            if d == dag and ti["state"] is None:
                ti["state"] = "running"
                ti["try_number"] += 1
                self.state.runs[(d, run)] = "running"

    def _ti(self, dag: str, run: str, task: str) -> dict[str, Any]:
        ti = self.state.tis[(dag, run, task)]
        return {
            "task_id": task,
            "dag_id": dag,
            "dag_run_id": run,
            "state": ti["state"],
            "try_number": ti["try_number"],
            "max_tries": ti["max_tries"],
            "note": ti["note"],
        }


def _not_found(what: str) -> dict[str, Any]:
    return {
        "title": f"{what} not found",
        "status": 404,
        "type": "https://airflow.apache.org/docs/apache-airflow/2.11.2/stable-rest-api-ref.html#section/Errors/NotFound",
    }


def _handler(fake: FakeAirflow2) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _do(self) -> None:
            url = urlsplit(self.path)
            query = {k: ",".join(v).split(",") if k == "update_mask" else v for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = "<not json>"
            fake.log.append(Request(self.command, url.path, query, body))
            if self.headers.get("Authorization") != fake.auth:
                code, out, op = 401, {"title": "Unauthorized", "status": 401}, None
            else:
                code, out, op = fake.handle(self.command, url.path, query, body)
            if op is not None:
                problems = fake.api.response_errors(op, code, out)
                if problems:
                    fake.invalid.append(f"response {self.command} {url.path} {code}: {problems}")
            data = json.dumps(out).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _do

    return Handler
