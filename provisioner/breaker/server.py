"""``breaker serve``'s HTTP front: Alertmanager's webhook (v4 payload), checked before anything is decided.

Standard library only (``http.server``), so the receiver starts in well under a second and imports
no SDK. ``POST /alerts``: bearer token compared in constant time (401), a declared body of at most
1 MiB (411 without a length, 413 above it, never read), JSON (400), ``version == "4"`` with an
``alerts`` list (422); then :class:`~provisioner.breaker.service.Service` decides, and the answer is
200 only once every decision is durably recorded (503 when the ledger or audit cannot be written,
so Alertmanager retries). ``GET /-/healthy`` answers 200. Nothing secret is ever logged.
"""

from __future__ import annotations

import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from provisioner.breaker.service import Service
from provisioner.core.secrets import REDACTOR

MAX_BODY = 1024 * 1024
MAX_ALERTS = 1000


class BreakerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: Service, token: str, log: Any = None) -> None:
        self.service = service
        self.token = token.encode()
        self.log = log or sys.stderr
        self.log_lock = threading.Lock()
        super().__init__(address, Handler)

    def say(self, line: str) -> None:

        with self.log_lock:
            self.log.write(REDACTOR(line) + "\n")
            self.log.flush()


class Handler(BaseHTTPRequestHandler):
    server: BreakerServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that declares a body and never sends it does not hold a thread for ever
    server_version = "memprov-breaker"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        return  # the audit log is the record; access lines would only add noise

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if code >= 400:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/-/healthy":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": "not found; Alertmanager posts to /alerts"})

    def do_POST(self) -> None:
        received = time.monotonic()
        if self.path != "/alerts":
            self._answer(404, {"error": "not found; Alertmanager posts to /alerts"})
            return
        auth = self.headers.get("Authorization", "")
        given = auth[7:].encode() if auth.startswith("Bearer ") else b""
        if not hmac.compare_digest(given, self.server.token):
            self.close_connection = True
            self._answer(401, {"error": "missing or wrong bearer token"})
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self.close_connection = True
            self._answer(411, {"error": "a Content-Length is required"})
            return
        length = int(length_text)
        if length > MAX_BODY:
            self.close_connection = True
            self._answer(413, {"error": f"body of {length} bytes; at most {MAX_BODY}"})
            return
        raw = self.rfile.read(length)
        try:
            payload = json.loads(raw)
        except ValueError:
            self._answer(400, {"error": "the body is not JSON"})
            return
        problem = _shape(payload)
        if problem:
            self._answer(422, {"error": problem})
            return
        try:
            records = self.server.service.handle(payload, received)
        except OSError as e:  # the ledger or the audit could not be written: let Alertmanager retry
            self.server.say(f"memprov breaker: cannot record decisions: {e}")
            self._answer(503, {"error": "decisions could not be recorded; retry"})
            return
        for r in records:
            self.server.say(
                f"memprov breaker: {r.get('job', '?')} {r.get('alert', {}).get('name', '')} -> {r.get('outcome')}: "
                f"{r.get('reason', '')}"
            )
        self._answer(200, {"decisions": [{"job": r.get("job"), "outcome": r.get("outcome")} for r in records]})


def _shape(payload: Any) -> str | None:
    """What is wrong with a webhook payload's shape, or None (Alertmanager's webhook v4)."""
    if not isinstance(payload, dict):
        return "expected a JSON object (Alertmanager's webhook payload)"
    if payload.get("version") != "4":
        return f'webhook payload version {payload.get("version")!r}; this receiver speaks version "4"'
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        return "alerts must be a list"
    if len(alerts) > MAX_ALERTS:
        return f"{len(alerts)} alerts in one delivery; at most {MAX_ALERTS}"
    for i, alert in enumerate(alerts):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            return f"alerts[{i}] must be an object with labels"
        for key in ("status", "fingerprint", "startsAt"):
            if not isinstance(alert.get(key), str) or not alert.get(key):
                return f"alerts[{i}].{key} must be a non-empty string"
    return None
