"""A real moto server on 127.0.0.1, and a small HTTP proxy in front of it that injects CloudWatch errors.

moto cannot throttle or fail on demand, so tests put :class:`FaultProxy` between boto3 and
moto. It forwards every request unchanged, records which operation it was (and, for
``DeleteAlarms``, how many names), and answers chosen requests with the error CloudWatch itself
would send, in the wire protocol the request used: botocore picks JSON (``awsJson1_0`` with the
``x-amzn-query-error`` header of query-compatible services), the query protocol (XML
``ErrorResponse``) or Smithy RPCv2 CBOR depending on its version; all three are answered.

moto accepts any alarm, so the proxy also decodes every ``PutMetricAlarm`` and applies
:mod:`tests.fakes.cloudwatch_rules`: what the real API refuses is answered with its 400
``ValidationError`` (never reaching moto), and an accepted alarm that can never fire in the proxy's
:class:`~tests.fakes.cloudwatch_rules.World` is recorded in ``never_fire`` for the test to assert on.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.cloudwatch_rules import World, never_fires, refusals

TARGET_PREFIX = "GraniteServiceVersion20100801."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """``moto_server`` (moto[server]) on a free port; yields its URL and stops it afterwards."""
    port = free_port()
    exe = shutil.which("moto_server")
    cmd = [exe] if exe else [sys.executable, "-m", "moto.server"]
    # a file, not a pipe: werkzeug logs every request, and a full pipe would block moto
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        err = log.read().decode(errors="replace")
                        raise RuntimeError(f"moto_server did not start: {err[-2000:]}") from None
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def reset(moto_url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=5).close()


@dataclass
class Fault:
    """Answer the next ``times`` requests of ``operation`` (whose body mentions ``name``) with an error."""

    operation: str
    code: str = "Throttling"
    message: str = "Rate exceeded"
    status: int = 400
    name: str | None = None
    times: int = 1
    injected: int = 0


def _cbor_text(s: str) -> bytes:
    data = s.encode()
    n = len(data)
    if n < 24:
        head = bytes([0x60 | n])
    elif n < 256:
        head = bytes([0x78, n])
    else:
        head = bytes([0x79]) + n.to_bytes(2, "big")
    return head + data


def error_response(protocol: str, code: str, message: str, status: int) -> tuple[int, dict[str, str], bytes]:
    """CloudWatch's error for one request, as its wire protocol writes it."""
    sender = "Sender" if status < 500 else "Receiver"
    request_id = "memprov-test-0000"
    if protocol == "query":
        body = (
            '<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">'
            f"<Error><Type>{sender}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body
    headers = {"x-amzn-RequestId": request_id, "x-amzn-query-error": f"{code};{sender}"}
    if protocol == "cbor":
        body = bytes([0xA2]) + _cbor_text("__type") + _cbor_text(f"com.amazonaws.cloudwatch#{code}")
        body += _cbor_text("message") + _cbor_text(message)
        return status, {**headers, "Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}, body
    body = json.dumps({"__type": f"com.amazonaws.cloudwatch#{code}", "message": message}).encode()
    return status, {**headers, "Content-Type": "application/x-amz-json-1.0"}, body


@dataclass
class Seen:
    operation: str
    protocol: str
    names: list[str] = field(default_factory=list)  # AlarmNames of DeleteAlarms (JSON and query protocols)


class FaultProxy:
    """Forwards to moto; answers requests matching a :class:`Fault` with CloudWatch's error instead."""

    def __init__(self, upstream: str, world: World | None = None) -> None:
        self.upstream = upstream
        self.world = world
        self.never_fire: dict[str, list[str]] = {}  # alarm name -> why it can never fire
        self.refused: dict[str, list[str]] = {}  # alarm name -> why PutMetricAlarm refused it
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as CloudWatch: botocore reuses pooled connections

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation, protocol, names = proxy.identify(self.path, dict(self.headers.items()), body)
                with proxy.lock:
                    proxy.seen.append(Seen(operation, protocol, names))
                    fault = next((f for f in proxy.faults if f.injected < f.times and f.operation == operation
                                  and (f.name is None or f.name.encode() in body)), None)  # fmt: skip
                    if fault:
                        fault.injected += 1
                if fault:
                    self.answer(*error_response(protocol, fault.code, fault.message, fault.status))
                    return
                if operation == "PutMetricAlarm":
                    params = decode(protocol, body)
                    name = str(params.get("AlarmName", ""))
                    if why := refusals(params):
                        with proxy.lock:
                            proxy.refused[name] = why
                        self.answer(*error_response(protocol, "ValidationError", "; ".join(why), 400))
                        return
                    if proxy.world is not None and (never := never_fires(params, proxy.world)):
                        with proxy.lock:
                            proxy.never_fire[name] = never
                skip = {"host", "content-length", "connection", "accept-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                request = urllib.request.Request(proxy.upstream + self.path, body, headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as r:
                        self.answer(r.status, dict(r.headers.items()), r.read())
                except urllib.error.HTTPError as e:
                    self.answer(e.code, dict(e.headers.items()), e.read())

            def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.request_queue_size = 128  # memprov connects with up to 32 pooled connections at once
        self.server.daemon_threads = True
        self.server.server_bind()
        self.server.server_activate()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def identify(path: str, headers: dict[str, str], body: bytes) -> tuple[str, str, list[str]]:
        lower = {k.lower(): v for k, v in headers.items()}
        if "/operation/" in path:  # Smithy RPCv2 CBOR: /service/<service>/operation/<operation>
            return path.rsplit("/", 1)[-1], "cbor", []
        target = lower.get("x-amz-target", "")
        if target:
            names = json.loads(body or b"{}").get("AlarmNames", []) if target.endswith(".DeleteAlarms") else []
            return target.removeprefix(TARGET_PREFIX), "json", names
        form = urllib.parse.parse_qs(body.decode())
        names = [v[0] for k, v in sorted(form.items()) if k.startswith("AlarmNames.member.")]
        return form.get("Action", ["?"])[0], "query", names

    def fail(self, operation: str, **kw: object) -> Fault:
        fault = Fault(operation, **kw)  # type: ignore[arg-type]
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.seen.clear()
            self.never_fire.clear()
            self.refused.clear()

    def operations(self, name: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.operation == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _nest(flat: dict[str, str]) -> Any:
    """Query-protocol form fields (``Metrics.member.1.MetricStat.Period``) as nested lists and dicts."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node: Any = root
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "member":
                continue
            if isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    nxt = parts[i + 1]
                    node = node.setdefault(part, {} if nxt != "member" else [])
            else:  # a list, indexed from 1
                index = int(part) - 1
                while len(node) <= index:
                    node.append({})
                if last:
                    node[index] = value
                else:
                    node = node[index]
    return root


QUERY_NUMBERS = {"Period", "EvaluationPeriods", "DatapointsToAlarm"}


def _typed(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _typed(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if key in QUERY_NUMBERS:
        return int(value)
    if key == "Threshold":
        return float(value)
    if key in ("ReturnData", "ActionsEnabled"):
        return value == "true"
    return value


def decode(protocol: str, body: bytes) -> dict[str, Any]:
    """A request's parameters, whichever protocol botocore used."""
    if protocol == "json":
        return dict(json.loads(body or b"{}"))
    if protocol == "cbor":
        import io

        from botocore.parsers import RpcV2CBORParser

        value = RpcV2CBORParser().parse_data_item(io.BufferedReader(io.BytesIO(body)))
        return dict(value)
    form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items() if k not in ("Action", "Version")}
    return dict(_typed(_nest(form)))
