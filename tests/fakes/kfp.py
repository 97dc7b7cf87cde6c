"""A fake of the Kubeflow Pipelines run API (``/apis/v2beta1``), as the RunServiceApi reference documents it.

Enforced: an optional bearer token; ``GET /runs`` with ``experiment_id``, ``filter`` (a JSON-encoded
``Filter`` message: ``predicates[{key, operation, string_value}]``, EQUALS on ``state`` here),
``sort_by``, ``page_size``; ``GET /runs/{run_id}``; ``POST /runs/{run_id}:terminate`` (an active run
goes to ``CANCELING``, then ``CANCELED``; a finished one is refused, as a terminal state cannot be
left); ``POST /runs`` with a ``v2beta1Run`` body — unknown fields are refused (grpc-gateway's JSON
unmarshalling rejects them), ``display_name`` and a ``pipeline_version_reference.pipeline_id`` are
required, runtime parameters are carried over as given. Every request is logged.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

RUN_FIELDS = {
    "experiment_id",
    "run_id",
    "display_name",
    "storage_state",
    "description",
    "pipeline_version_id",
    "pipeline_spec",
    "pipeline_version_reference",
    "runtime_config",
    "service_account",
    "created_at",
    "scheduled_at",
    "finished_at",
    "state",
    "error",
    "run_details",
    "recurring_run_id",
    "state_history",
}
ACTIVE = ("PENDING", "RUNNING", "PAUSED")


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


class FakeKfp:
    def __init__(self, token: str = "fake-kfp-token") -> None:
        self.token = token
        self.runs: dict[str, dict[str, Any]] = {}
        self.log: list[Req] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def mutating(self) -> list[Req]:
        return [r for r in self.log if r.method != "GET"]

    def add_run(self, experiment: str, pipeline: str, params: dict[str, Any], state: str = "RUNNING") -> str:
        run_id = str(uuid.uuid4())
        self.runs[run_id] = {
            "run_id": run_id,
            "display_name": "clv-daily-2026-12-02",
            "experiment_id": experiment,
            "state": state,
            "pipeline_version_reference": {"pipeline_id": pipeline, "pipeline_version_id": "v7"},
            "runtime_config": {"parameters": params, "pipeline_root": "gs://bucket/root"},
            "created_at": f"2026-12-02T10:{len(self.runs):02d}:00Z",
        }
        return run_id

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if not path.startswith("/apis/v2beta1/runs"):
            return 404, _status(5, "Not Found")
        rest = path[len("/apis/v2beta1/runs") :].lstrip("/")
        if rest == "" and method == "GET":
            runs = [
                r
                for r in self.runs.values()
                if r["experiment_id"] == query.get("experiment_id", [r["experiment_id"]])[0]
            ]
            for p in json.loads(query.get("filter", ["{}"])[0]).get("predicates", []):
                if p.get("operation") != "EQUALS":
                    return 400, _status(3, f"unsupported filter operation {p.get('operation')}")
                runs = [r for r in runs if str(r.get(p["key"])) == p.get("string_value")]
            runs.sort(key=lambda r: r["created_at"], reverse=query.get("sort_by", [""])[0].endswith("desc"))
            return 200, {"runs": runs, "total_size": len(runs)}
        if rest == "" and method == "POST":
            unknown = set(body or {}) - RUN_FIELDS
            if unknown:
                return 400, _status(3, f"proto: (line 1:2): unknown field {sorted(unknown)[0]!r}")
            if not body.get("display_name") or not (body.get("pipeline_version_reference") or {}).get("pipeline_id"):
                return 400, _status(
                    3, "Invalid input error: a run needs a display_name and a pipeline_version_reference"
                )
            run_id = str(uuid.uuid4())
            self.runs[run_id] = {
                **body,
                "run_id": run_id,
                "state": "RUNNING",
                "created_at": f"2026-12-02T11:{len(self.runs):02d}:00Z",
            }
            return 200, self.runs[run_id]
        run_id, _, verb = rest.partition(":")
        run = self.runs.get(run_id)
        if run is None:
            return 404, _status(5, f"Run {run_id} not found")
        if method == "GET" and not verb:
            return 200, run
        if method == "POST" and verb == "terminate":
            if run["state"] not in ACTIVE:
                return 400, _status(9, f"Failed to terminate run {run_id}: it is in state {run['state']}")
            run["state"] = "CANCELING"
            threading.Timer(0.2, lambda: run.update(state="CANCELED")).start()
            return 200, {}
        return 404, _status(5, "Not Found")


def _status(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": []}


def _handler(fake: FakeKfp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _do(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            query = parse_qs(url.query)
            fake.log.append(Req(self.command, url.path, query, body))
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                code, out = 401, _status(16, "Unauthenticated")
            else:
                with fake.lock:
                    code, out = fake.handle(self.command, url.path, query, body)
            data = json.dumps(out).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _do

    return Handler


def wait_state(fake: FakeKfp, run_id: str, state: str, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fake.runs[run_id]["state"] == state:
            return True
        time.sleep(0.05)
    return False
