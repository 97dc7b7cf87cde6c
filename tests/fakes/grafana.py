"""A fake Grafana: a real HTTP server on 127.0.0.1 speaking the legacy ``/api`` dashboard endpoints.

Implements what memprov uses, with Grafana's semantics: bearer-token auth (401 for an unknown
token, 403 when a Viewer token writes), ``GET /api/search`` (``type``, ``tag`` ANDed,
``dashboardUIDs``, ``limit``/``page``), ``GET``/``DELETE /api/dashboards/uid/:uid`` (404 when
absent), ``POST /api/dashboards/db`` (uid at most 40 characters, the folder must exist, new
dashboards start at version 1 and every save increments it, ``overwrite: false`` with a stale
``version`` is 412 ``version-mismatch``, a new uid whose title exists in the folder is 412
``name-exists``; the commit message is kept), and ``GET``/``POST /api/folders``. Dashboards are
also checked against Grafana's schema (:mod:`tests.fakes.grafana_schema`), 400 when invalid.

Tests inject faults (:meth:`FakeGrafana.fail`: 429 with ``Retry-After``, 5xx...), seed
dashboards that memprov does not own (:meth:`FakeGrafana.seed`) and play a user editing a
dashboard in the UI (:meth:`FakeGrafana.ui_edit`).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.grafana_schema import errors as schema_errors

ADMIN_TOKEN = "glsa_memprov_test_admin_0123456789"
VIEWER_TOKEN = "glsa_memprov_test_viewer_0123456789"


@dataclass
class Fault:
    method: str
    path: str  # regular expression matched against the URL path
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = 1  # None: every time
    when: Callable[[dict[str, Any]], bool] | None = None  # on the JSON body


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


def grafana12_read(dashboard: dict[str, Any]) -> dict[str, Any]:
    """What Grafana 12 returns for a stored dashboard: migrated to its latest schema version on read.

    grafana/grafana, apps/dashboard/pkg/migration/schemaversion: V40 (``refresh`` always a string, ``""`` when
    missing), V41 (``timepicker.time_options`` removed), V42 (an override hiding a field from the visualisation
    hides it from the tooltip too), V43 (the ``formatTime`` transformation becomes ``convertFieldType``).
    """
    d = copy.deepcopy(dashboard)
    version = int(d.get("schemaVersion") or 0)
    if version < 40:
        d["refresh"] = d["refresh"] if isinstance(d.get("refresh"), str) else ""
    if version < 41 and isinstance(d.get("timepicker"), dict):
        d["timepicker"].pop("time_options", None)

    def panels(items: Any) -> Iterator[dict[str, Any]]:
        for p in items if isinstance(items, list) else []:
            if isinstance(p, dict):
                yield p
                yield from panels(p.get("panels"))

    for panel in panels(d.get("panels")):
        if version < 42:
            for override in panel.get("fieldConfig", {}).get("overrides", []):
                for prop in override.get("properties", []):
                    value = prop.get("value")
                    if prop.get("id") == "custom.hideFrom" and isinstance(value, dict) and value.get("viz"):
                        value["tooltip"] = True
        if version < 43:
            for i, t in enumerate(panel.get("transformations") or []):
                if isinstance(t, dict) and t.get("id") == "formatTime":
                    o = t.get("options") or {}
                    conv = {"destinationType": "string"}
                    for src, dst in (("timeField", "targetField"), ("outputFormat", "dateFormat"),
                                     ("timezone", "timezone")):  # fmt: skip
                        if o.get(src):
                            conv[dst] = o[src]
                    panel["transformations"][i] = {"id": "convertFieldType", "options": {"conversions": [conv]}}
    d["schemaVersion"] = max(version, 43)
    return d


class FakeGrafana:
    def __init__(self, migrate_on_read: bool = False) -> None:
        self.migrate_on_read = migrate_on_read  # Grafana 12: GET returns the dashboard migrated to schema 43
        self.tokens = {ADMIN_TOKEN: "Admin", VIEWER_TOKEN: "Viewer"}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {"dashboard", "folderUid", "message"}
        self.folders: dict[str, dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self._next_id = 1

    # --- test helpers ---------------------------------------------------------------------------
    def fail(self, method: str, path: str, status: int, **kw: Any) -> Fault:
        fault = Fault(method, path, status, **kw)
        with self.lock:
            self.faults.append(fault)
        return fault

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def seed(self, dashboard: dict[str, Any], folder_uid: str = "", message: str = "") -> None:
        """Store a dashboard as someone else made it (no validation), at version 1."""
        with self.lock:
            self.dashboards[dashboard["uid"]] = {
                "dashboard": {**copy.deepcopy(dashboard), "id": self._id(), "version": 1},
                "folderUid": folder_uid,
                "message": message,
            }

    def ui_edit(self, uid: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Someone edits the dashboard in Grafana's UI and saves it: new content, new version."""
        with self.lock:
            dash = self.dashboards[uid]["dashboard"]
            change(dash)
            dash["version"] += 1

    def version(self, uid: str) -> int:
        return int(self.dashboards[uid]["dashboard"]["version"])

    def calls(self, method: str, path_re: str = ".*") -> list[Request]:
        return [r for r in self.requests if r.method == method and re.fullmatch(path_re, r.path)]

    # --- semantics ------------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append(Request(method, path, query, body))
            auth = headers.get("Authorization", "")
            role = self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
            if role is None:
                return 401, {"message": "Unauthorized", "messageId": "auth.unauthorized", "statusCode": 401}, {}
            for fault in list(self.faults):
                if (
                    fault.method == method
                    and re.fullmatch(fault.path, path)
                    and (fault.when is None or fault.when(body))
                ):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault.status, {"message": f"injected {fault.status}"}, fault.headers
            if method != "GET" and role == "Viewer":
                return 403, {"message": "You'll need additional permissions to perform this action."}, {}
            return self._route(method, path, query, body)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, dict[str, str]]:
        if (method, path) == ("GET", "/api/search"):
            return 200, self._search(query), {}
        if (method, path) == ("POST", "/api/dashboards/db"):
            return self._save(body)
        if m := re.fullmatch(r"/api/dashboards/uid/([^/]+)", path):
            return self._by_uid(method, m[1])
        if (method, path) == ("POST", "/api/folders"):
            return self._create_folder(body)
        if (m := re.fullmatch(r"/api/folders/([^/]+)", path)) and method == "GET":
            found = self.folders.get(m[1])
            return (200, found, {}) if found else (404, {"message": "folder not found", "status": "not-found"}, {})
        return 404, {"message": "Not found"}, {}

    def _hit(self, uid: str, entry: dict[str, Any]) -> dict[str, Any]:
        d = entry["dashboard"]
        return {
            "id": d["id"],
            "uid": uid,
            "title": d.get("title", ""),
            "type": "dash-db",
            "tags": list(d.get("tags", [])),
            "uri": f"db/{uid}",
            "url": f"/d/{uid}/x",
            "folderUid": entry["folderUid"],
            "isStarred": False,
        }

    def _search(self, q: dict[str, list[str]]) -> list[dict[str, Any]]:
        if q.get("type", ["dash-db"]) != ["dash-db"]:
            return []
        tags, uids = set(q.get("tag", [])), set(q.get("dashboardUIDs", []))
        hits = [
            self._hit(uid, e)
            for uid, e in self.dashboards.items()
            if tags <= set(e["dashboard"].get("tags", [])) and (not uids or uid in uids)
        ]
        hits.sort(key=lambda h: (h["title"].lower(), h["uid"]))
        limit, page = int(q.get("limit", ["1000"])[0]), int(q.get("page", ["1"])[0])
        return hits[(page - 1) * limit : page * limit]

    def _by_uid(self, method: str, uid: str) -> tuple[int, Any, dict[str, str]]:
        entry = self.dashboards.get(uid)
        if entry is None:
            return 404, {"message": "Dashboard not found", "status": "not-found"}, {}
        if method == "DELETE":
            del self.dashboards[uid]
            title = entry["dashboard"].get("title", "")
            return 200, {"title": title, "message": f"Dashboard {title} deleted", "uid": uid}, {}
        folder = self.folders.get(entry["folderUid"], {})
        meta = {
            "type": "db",
            "slug": "x",
            "url": f"/d/{uid}/x",
            "folderUid": entry["folderUid"],
            "folderTitle": folder.get("title", "General"),
            "version": entry["dashboard"]["version"],
            "provisioned": False,
            "canSave": True,
        }
        stored = entry["dashboard"]
        shown = grafana12_read(stored) if self.migrate_on_read else copy.deepcopy(stored)
        return 200, {"dashboard": shown, "meta": meta}, {}

    def _save(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        dash = body.get("dashboard") if isinstance(body, dict) else None
        if not isinstance(dash, dict) or not dash.get("title"):
            return 400, {"message": "Dashboard title cannot be empty", "status": "empty-name"}, {}
        uid = str(dash.get("uid") or f"gen{self._next_id}")
        if len(uid) > 40:
            return 400, {"message": "Dashboard UID too long", "status": "uid-too-long"}, {}
        folder_uid = str(body.get("folderUid") or "")
        if folder_uid and folder_uid not in self.folders:
            return 400, {"message": "folder not found", "status": "folder-not-found"}, {}
        problems = schema_errors({k: v for k, v in dash.items() if k not in ("id", "version")})
        if problems:
            return 400, {"message": "invalid dashboard: " + "; ".join(problems[:3]), "status": "invalid"}, {}
        current = self.dashboards.get(uid)
        overwrite = bool(body.get("overwrite"))
        if current is None:
            clash = [
                u
                for u, e in self.dashboards.items()
                if e["folderUid"] == folder_uid and e["dashboard"].get("title") == dash["title"]
            ]
            if clash and not overwrite:
                return (
                    412,
                    {"message": "A dashboard with the same name in the folder already exists", "status": "name-exists"},
                    {},
                )
            for u in clash:
                del self.dashboards[u]
            version, ident = 1, self._id()
        else:
            if not overwrite and dash.get("version") != current["dashboard"]["version"]:
                return (
                    412,
                    {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"},
                    {},
                )
            version, ident = current["dashboard"]["version"] + 1, current["dashboard"]["id"]
        stored = {**copy.deepcopy(dash), "uid": uid, "id": ident, "version": version}
        self.dashboards[uid] = {"dashboard": stored, "folderUid": folder_uid, "message": str(body.get("message", ""))}
        return (
            200,
            {"id": ident, "uid": uid, "url": f"/d/{uid}/x", "status": "success", "version": version, "slug": "x"},
            {},
        )

    def _create_folder(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        uid, title = str(body.get("uid", "")), str(body.get("title", ""))
        if not title:
            return 400, {"message": "folder title cannot be empty"}, {}
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}, {}
        if any(f["title"] == title for f in self.folders.values()):
            return 409, {"message": "a folder or dashboard in the general folder with the same name already exists"}, {}
        self.folders[uid] = {"id": self._id(), "uid": uid, "title": title, "url": f"/dashboards/f/{uid}/", "version": 1}
        return 200, self.folders[uid], {}


def _handler(fake: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                status, payload, headers = 400, {"message": "bad request data"}, {}
            else:
                status, payload, headers = fake.handle(self.command, url.path, parse_qs(url.query), self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = _serve

    return Handler


@contextmanager
def serve(fake: FakeGrafana | None = None) -> Iterator[tuple[FakeGrafana, str]]:
    """Run a fake Grafana on 127.0.0.1 (a free port) for the duration of the block: ``(fake, url)``."""
    fake = fake or FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def live_repo(dest: Any, url: str, env: str = "live", extra: str = "") -> Any:
    """A copy of the example repository with ``environments/<env>.yaml`` targeting Grafana at ``url``."""
    from tests.helpers import example_repo

    repo = example_repo(dest)
    (repo / "environments" / f"{env}.yaml").write_text(
        f"description: A live Grafana (the fake one).\n"
        f"grafana_url: {url}\n"
        f"targets:\n"
        f'  grafana: {{type: api, url: "{url}", token: {{env: GRAFANA_TOKEN}}}}\n{extra}',
        encoding="utf-8",
    )
    return repo
