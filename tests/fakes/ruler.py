"""A fake Mimir/Cortex ruler API on 127.0.0.1, with the semantics memprov relies on.

Endpoints (Mimir prefix ``/prometheus/config/v1/rules``, Cortex ``/api/v1/rules``):
GET ``/{ns}`` (YAML map ns -> groups; 404 when the namespace has none), GET ``/{ns}/{group}``,
POST ``/{ns}`` (YAML body = one group; 400 on a group without name or rules; 202),
DELETE ``/{ns}/{group}`` (202; 404 when absent). Every request needs ``X-Scope-OrgID`` (401
"no org id" otherwise) and, when a token is configured, ``Authorization: Bearer <token>`` (401).
Tenants are isolated. ``fail_next`` injects status codes (e.g. 429 with Retry-After, 503).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import yaml


class FakeRuler:
    def __init__(self, token: str | None = "ruler-token", prefix: str = "/prometheus/config/v1/rules") -> None:
        self.token = token
        self.prefix = prefix
        self.db: dict[str, dict[str, dict[str, Any]]] = {}  # tenant -> "ns/group" -> group
        self.fail_next: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def groups(self, tenant: str, ns: str) -> dict[str, dict[str, Any]]:
        return {k.split("/", 1)[1]: v for k, v in self.db.get(tenant, {}).items() if k.split("/", 1)[0] == ns}

    def put(self, tenant: str, ns: str, group: dict[str, Any]) -> None:
        self.db.setdefault(tenant, {})[f"{ns}/{group['name']}"] = group

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def send(self, code: int, body: str = "", headers: dict[str, str] | None = None) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/yaml" if code == 200 else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def route(self) -> tuple[str, str, str | None] | None:
                fake.requests.append((self.command, self.path))
                tenant = self.headers.get("X-Scope-OrgID")
                if not tenant:
                    self.send(401, "no org id\n")
                    return None
                if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self.send(401, "unauthorized\n")
                    return None
                with fake.lock:
                    code = fake.fail_next.pop(0) if fake.fail_next else None
                if code is not None:
                    self.send(code, "injected failure\n", {"Retry-After": "0"} if code == 429 else None)
                    return None
                if not self.path.startswith(fake.prefix + "/"):
                    self.send(404, "404 page not found\n")
                    return None
                parts = [unquote(p) for p in self.path[len(fake.prefix) + 1 :].split("/")]
                if len(parts) > 2 or not parts[0]:
                    self.send(404, "404 page not found\n")
                    return None
                return tenant, parts[0], parts[1] if len(parts) == 2 else None

            def do_GET(self) -> None:
                r = self.route()
                if r is None:
                    return
                tenant, ns, group = r
                groups = fake.groups(tenant, ns)
                if group is not None:
                    if group not in groups:
                        return self.send(404, "group does not exist\n")
                    return self.send(200, yaml.safe_dump(groups[group], sort_keys=False))
                if not groups:
                    return self.send(404, "no rule groups found\n")
                self.send(200, yaml.safe_dump({ns: list(groups.values())}, sort_keys=False))

            def do_POST(self) -> None:
                r = self.route()
                if r is None:
                    return
                tenant, ns, group = r
                if group is not None:
                    return self.send(405, "method not allowed\n")
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    data = yaml.safe_load(body)
                except yaml.YAMLError as e:
                    return self.send(400, f"unable to parse rule group: {e}\n")
                if not isinstance(data, dict) or not data.get("name") or not data.get("rules"):
                    return self.send(400, "invalid rule group: name and rules are required\n")
                with fake.lock:
                    fake.put(tenant, ns, data)
                self.send(202)

            def do_DELETE(self) -> None:
                r = self.route()
                if r is None:
                    return
                tenant, ns, group = r
                with fake.lock:
                    store = fake.db.get(tenant, {})
                    if group is None:
                        for key in [k for k in store if k.startswith(ns + "/")]:
                            del store[key]
                        return self.send(202)
                    if store.pop(f"{ns}/{group}", None) is None:
                        return self.send(404, "group does not exist\n")
                self.send(202)

        return Handler
