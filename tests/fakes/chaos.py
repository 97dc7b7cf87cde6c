"""One fault-injecting proxy for every live target, in the wire protocol each one speaks.

:class:`HttpChaosProxy` relays HTTP/1.1 (keep-alive; optionally TLS on either side) and
:class:`GrpcChaosProxy` relays unary gRPC calls, both driven by the same :class:`Chaos`: targeted
:class:`Rule` s (the contract tests: "the next two writes of this alarm are throttled") and, with
probability ``p``, seeded random faults (the chaos tests). The draw depends on the request itself
(method, path, body) and how many times that same request was seen, never on the order in which
threads send, so a seed gives the same faults run after run.

Faults (``KINDS``): ``500``, ``503`` and ``429`` (with ``Retry-After`` or the service's equivalent)
answered as the service would (a :class:`Dialect` shapes the error body: CloudWatch's XML or JSON
error, ARM's ``{"error": …}``, a gRPC status with ``google.rpc.RetryInfo``); ``reset``: the
connection is reset before the request is relayed; ``lost``: relayed, carried out, then the
connection is reset (the answer is lost); ``slow``: relayed, answered late; ``hang``: relayed, then
no answer until the client's timeout has passed. Permanent refusals (``400``, ``403``, ``409``)
serve the targeted rules. Every request is recorded with the fault it got.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import grpc

KINDS = ("500", "503", "429", "reset", "lost", "slow", "hang")
HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "accept-encoding"}


@dataclass
class Request:
    method: str
    path: str
    body: bytes
    op: str  # what the dialect calls it: "PutMetricAlarm", "PUT metricAlerts", "CreateAlertPolicy"...
    fault: str | None = None


@dataclass
class Rule:
    """Answer the next ``times`` requests matching ``match`` with fault ``kind`` (``times=None``: always)."""

    kind: str
    match: Callable[[Request], bool]
    times: int | None = 1
    hits: int = 0


@dataclass
class Chaos:
    """Which requests fail, and how (see the module)."""

    p: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    timeout: float | None = None  # the client's timeout, which a "hang" outlasts (None: no hangs)
    rules: list[Rule] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    _counts: Counter[bytes] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rule(self, kind: str, match: Callable[[Request], bool], times: int | None = 1) -> Rule:
        r = Rule(kind, match, times)
        with self.lock:
            self.rules.append(r)
        return r

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.seen.clear()
            self.injected.clear()

    def decide(self, req: Request) -> tuple[str | None, float]:
        """The fault for ``req`` (None: relay it), and a number in [0, 1) drawn with it (for delays)."""
        with self.lock:
            self.seen.append(req)
            for r in self.rules:
                if (r.times is None or r.hits < r.times) and r.match(req):
                    r.hits += 1
                    req.fault = r.kind
                    self.injected[r.kind] += 1
                    return r.kind, 0.5
            if self.p <= 0:
                return None, 0.0
            ident = f"{req.method} {req.path}\n".encode() + req.body
            n = self._counts[ident]
            self._counts[ident] += 1
            h = hashlib.sha256(f"{self.seed}/{n}/".encode() + ident).digest()
            u = int.from_bytes(h[:8], "big") / 2**64
            if u >= self.p:
                return None, 0.0
            kinds = [k for k in self.kinds if k != "hang" or self.timeout is not None]
            req.fault = kinds[h[8] % len(kinds)]
            self.injected[req.fault] += 1
            return req.fault, h[9] / 256

    def faults(self) -> int:
        return sum(self.injected.values())


class Dialect:
    """How a service names a request and says no (plain text, ``Retry-After: 1`` on a 429)."""

    retry_after: tuple[str, str] | None = ("Retry-After", "1")

    def op(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str:
        return f"{method} {path.split('?')[0]}"

    def error(self, status: int, req: Request) -> tuple[dict[str, str], bytes]:
        return {"Content-Type": "text/plain; charset=utf-8"}, f"injected {status}\n".encode()

    def headers(self, status: int) -> dict[str, str]:
        return dict([self.retry_after]) if status == 429 and self.retry_after else {}


class JsonMessage(Dialect):
    """Grafana: ``{"message": …}``."""

    def error(self, status: int, req: Request) -> tuple[dict[str, str], bytes]:
        return {"Content-Type": "application/json"}, json.dumps({"message": f"injected {status}"}).encode()


class Arm(Dialect):
    """Azure Resource Manager: ``{"error": {"code", "message"}}``; a 429 carries ``Retry-After`` in seconds."""

    CODES: ClassVar[dict[int, str]] = {400: "BadRequest", 403: "AuthorizationFailed", 409: "Conflict"}
    CODES |= {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}

    def op(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str:
        rule = path.split("?")[0].rstrip("/").rsplit("/metricAlerts", 1)[-1].strip("/")
        return f"{method} {rule}" if rule else f"{method} list"

    def error(self, status: int, req: Request) -> tuple[dict[str, str], bytes]:
        body = {"error": {"code": self.CODES.get(status, "Error"), "message": f"injected {status}"}}
        return {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()


class CloudWatch(Dialect):
    """CloudWatch's errors in the protocol the request used (query XML, JSON, CBOR): ``Throttling`` for
    429, ``ServiceUnavailable``/``InternalFailure`` for 503/500; ``x-amz-retry-after`` (milliseconds)."""

    CODES: ClassVar[dict[int, str]] = {400: "InvalidParameterValue", 403: "AccessDenied", 429: "Throttling"}
    CODES |= {409: "ConcurrentModification", 500: "InternalFailure", 503: "ServiceUnavailable"}
    retry_after = ("x-amz-retry-after", "1000")

    def op(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str:
        from tests.fakes.cloudwatch import FaultProxy

        return FaultProxy.identify(path, headers, body)[0]

    def error(self, status: int, req: Request) -> tuple[dict[str, str], bytes]:
        from tests.fakes.cloudwatch import error_response

        protocol = "cbor" if "/operation/" in req.path else ("json" if req.body.startswith(b"{") else "query")
        _, headers, body = error_response(protocol, self.CODES.get(status, "Error"), f"injected {status}", status)
        return headers, body


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # apply's concurrency and the tag readers connect at once: no refused connections


class HttpChaosProxy:
    """Relays HTTP/1.1 to ``upstream`` with :class:`Chaos` faults; ``tls=(cert, key)`` serves HTTPS, and an
    ``https://`` upstream is verified against ``upstream_ca``."""

    def __init__(
        self,
        upstream: str,
        chaos: Chaos,
        dialect: Dialect | None = None,
        *,
        tls: tuple[Path, Path] | None = None,
        upstream_ca: Path | None = None,
    ) -> None:
        self.upstream, self.chaos, self.dialect = urlsplit(upstream), chaos, dialect or Dialect()
        self.upstream_tls = ssl.create_default_context(cafile=str(upstream_ca)) if upstream_ca else None
        self.server = Server(("127.0.0.1", 0), self._handler())
        self.server.handle_error = lambda *a: None  # type: ignore[method-assign]  # resets are the point
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[Any], bytes]:
        host, port = self.upstream.hostname or "127.0.0.1", self.upstream.port
        conn: http.client.HTTPConnection
        if self.upstream.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=60, context=self.upstream_tls)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def reset(self) -> None:
                """Close with RST: the client sees a connection reset, not an answer."""
                self.close_connection = True
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()

            def answer(self, status: int, headers: list[Any] | dict[str, str], body: bytes) -> None:
                self.send_response(status)
                items = headers.items() if isinstance(headers, dict) else headers
                for k, v in items:
                    if k.lower() not in HOP | {"server", "date"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                op = proxy.dialect.op(self.command, self.path, headers, body)
                req = Request(self.command, self.path, body, op)
                kind, u = proxy.chaos.decide(req)
                if kind is not None and kind.isdigit():
                    extra, data = proxy.dialect.error(int(kind), req)
                    return self.answer(int(kind), {**extra, **proxy.dialect.headers(int(kind))}, data)
                if kind == "reset":
                    return self.reset()
                status, got, data = proxy.forward(self.command, self.path, headers, body)
                if kind == "lost":
                    return self.reset()
                if kind == "slow":
                    time.sleep(0.05 + 0.25 * u)
                if kind == "hang":
                    time.sleep((proxy.chaos.timeout or 0) + 0.3)
                    return self.reset()
                self.answer(status, got, data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = relay

        return Handler


def _abort_with_retry_info(ctx: grpc.ServicerContext, code: grpc.StatusCode, message: str, delay: float) -> None:
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import error_details_pb2, status_pb2
    from grpc_status import rpc_status

    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=int(delay)))
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    ctx.abort_with_status(rpc_status.to_status(status))


class GrpcChaosProxy:
    """Relays unary gRPC calls (bytes in, bytes out) to ``upstream`` (``host:port``) with :class:`Chaos` faults:
    500 → ``INTERNAL``, 503 → ``UNAVAILABLE``, 429 → ``RESOURCE_EXHAUSTED`` with ``RetryInfo`` (1 s), a reset
    or a lost answer → ``UNAVAILABLE``, a hang → the client's ``DEADLINE_EXCEEDED``."""

    CODES: ClassVar[dict[str, grpc.StatusCode]] = {
        "400": grpc.StatusCode.INVALID_ARGUMENT,
        "403": grpc.StatusCode.PERMISSION_DENIED,
        "409": grpc.StatusCode.ABORTED,
        "500": grpc.StatusCode.INTERNAL,
        "503": grpc.StatusCode.UNAVAILABLE,
    }

    def __init__(self, upstream: str, chaos: Chaos) -> None:
        self.chaos = chaos
        self.channel = grpc.insecure_channel(upstream)
        proxy = self

        class Forward(grpc.GenericRpcHandler):  # type: ignore[misc]
            def service(self, details: Any) -> Any:
                method = details.method
                return grpc.unary_unary_rpc_method_handler(lambda request, ctx: proxy.call(method, request, ctx))

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        self.server.add_generic_rpc_handlers((Forward(),))
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.address = f"127.0.0.1:{port}"

    def close(self) -> None:
        self.server.stop(0)
        self.channel.close()

    def call(self, method: str, request: bytes, ctx: grpc.ServicerContext) -> bytes:
        req = Request("POST", method, request, method.rsplit("/", 1)[-1])
        kind, u = self.chaos.decide(req)
        if kind == "429":
            _abort_with_retry_info(ctx, grpc.StatusCode.RESOURCE_EXHAUSTED, "injected: quota exceeded", 1.0)
        if kind in self.CODES:
            ctx.abort(self.CODES[kind], f"injected {kind}")
        if kind == "reset":
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "injected: Connection reset by peer")
        metadata = [(k, v) for k, v in ctx.invocation_metadata() if k == "authorization" or k.startswith("x-goog")]
        try:
            response: bytes = self.channel.unary_unary(method)(request, metadata=metadata, timeout=60)
        except grpc.RpcError as e:
            ctx.set_trailing_metadata(e.trailing_metadata() or ())
            ctx.abort(e.code(), e.details())
        if kind == "lost":
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "injected: Connection reset by peer (after it was carried out)")
        if kind == "slow":
            time.sleep(0.05 + 0.25 * u)
        if kind == "hang":
            time.sleep((self.chaos.timeout or 0) + 0.3)
        return response
