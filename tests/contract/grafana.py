"""Grafana: the fake Grafana HTTP API (tests/fakes/grafana.py), driven by memprov's own httpx client."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any, ClassVar

from provisioner.plan.model import Resource
from tests.contract.base import PRUNE_LINE, Harness, Item
from tests.fakes.chaos import HttpChaosProxy, JsonMessage, Request
from tests.fakes.grafana import ADMIN_TOKEN, FakeGrafana, serve

OWNED_TAGS = ["managed-by:memprov", "memprov-env:live", "memprov-spec:batch-inference"]
FOLDER = "memprov-live"


class GrafanaHarness(Harness):
    name = "grafana"
    backend = "grafana"
    env = "live"
    total = 5
    updated = frozenset({"memprov-live-image-embed", "memprov-live-overview"})
    stale = "memprov-live-old-job"
    foreign = ("memprov-live-hand-made", "memprov-prod-clv-daily", "team-dashboard")
    others: ClassVar[dict[str, list[str]]] = {  # tags of the unowned ones: another environment's
        "memprov-prod-clv-daily": [OWNED_TAGS[0], "memprov-env:prod", OWNED_TAGS[2]],
        "team-dashboard": ["team"],
    }
    prune = (PRUNE_LINE, PRUNE_LINE + "\n    backends: [prometheus]")
    prune_updates = frozenset({"memprov-live-overview"})
    variables: ClassVar[dict[str, str]] = {"GRAFANA_TOKEN": ADMIN_TOKEN}
    secrets = (ADMIN_TOKEN,)

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with serve(FakeGrafana()) as (fake, url):
            self.fake = fake
            self.proxy = HttpChaosProxy(url, self.chaos, JsonMessage())
            try:
                yield
            finally:
                self.proxy.close()

    def write_env(self) -> None:
        url = self.proxy.url
        (self.repo / "environments" / "live.yaml").write_text(
            f"description: A live Grafana (the fake one).\ngrafana_url: {url}\ntargets:\n"
            f'  grafana: {{type: api, url: "{url}", token: {{env: GRAFANA_TOKEN}}, timeout: {self.timeout}}}\n',
            encoding="utf-8",
        )

    # --- the service ------------------------------------------------------------------------------
    def view(self) -> dict[str, Item]:
        with self.fake.lock:
            found = {uid: copy.deepcopy(e) for uid, e in self.fake.dashboards.items()}
        owned = {uid: set(OWNED_TAGS) <= set(e["dashboard"].get("tags", [])) for uid, e in found.items()}
        return {uid: Item(e["dashboard"], owned[uid] and e["folderUid"] == FOLDER) for uid, e in found.items()}

    def edit(self, key: str) -> None:
        def change(d: dict[str, Any]) -> None:
            d["title"] = "edited by hand"

        self.fake.ui_edit(key, change)

    def plant(self, key: str, owned: bool) -> None:
        self.fake.seed(
            {
                "uid": key,
                "title": f"hand-made {key}",
                "tags": OWNED_TAGS if owned else self.others.get(key, []),
                "schemaVersion": 39,
                "panels": [],
                "templating": {"list": []},
                "annotations": {"list": []},
            },
            FOLDER if owned else "",
        )

    def put(self, resource: Resource) -> None:
        with self.fake.lock:
            self.fake.folders.setdefault(FOLDER, {"id": 1, "uid": FOLDER, "title": "memprov (live)", "version": 1})
            old = self.fake.dashboards.get(resource.key)
            version = old["dashboard"]["version"] + 1 if old else 1
            stored = {**copy.deepcopy(resource.body), "id": 99, "version": version}
            self.fake.dashboards[resource.key] = {"dashboard": stored, "folderUid": FOLDER, "message": "by hand"}

    # --- faults -------------------------------------------------------------------------------------
    def is_write(self, req: Request, key: str) -> bool:
        return req.method == "POST" and req.path.startswith("/api/dashboards/db") and f'"{key}"'.encode() in req.body

    def is_read(self, req: Request) -> bool:
        return req.method == "GET"
