"""Mimir ruler: the fake ruler API (tests/fakes/ruler.py), driven by memprov's own httpx client."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import ClassVar

from provisioner.plan.model import Resource
from tests.contract.base import Harness, Item
from tests.fakes.chaos import Dialect, HttpChaosProxy, Request
from tests.fakes.ruler import FakeRuler

TENANT, NS = "ml", "memprov-batch-inference-mimir"


class RulerHarness(Harness):
    name = "ruler"
    backend = "prometheus"
    env = "mimir"
    total = 8  # a fast and a slow rule group per job
    updated = frozenset({"memprov-mimir-image-embed"})
    stale = "memprov-mimir-old-job"
    foreign = ("hand-written",)
    lookalikes = False  # memprov owns the groups named memprov-<env>-* in its own namespace: the name is the marker
    timeout = None  # the ruler target has no timeout setting: no hangs
    variables: ClassVar[dict[str, str]] = {"RULER_TOKEN": "ruler-token"}
    secrets = ("ruler-token",)

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        self.fake = FakeRuler(token="ruler-token")
        self.proxy = HttpChaosProxy(self.fake.url, self.chaos, Dialect())
        try:
            yield
        finally:
            self.proxy.close()
            self.fake.close()

    def write_env(self) -> None:
        (self.repo / "environments" / "mimir.yaml").write_text(
            "description: test\ntargets:\n"
            f"  prometheus: {{type: mimir, url: '{self.proxy.url}', tenant: {TENANT}, token: {{env: RULER_TOKEN}}}}\n",
            encoding="utf-8",
        )

    def view(self) -> dict[str, Item]:
        with self.fake.lock:
            groups = copy.deepcopy(self.fake.groups(TENANT, NS))
        return {name: Item(g, name.startswith("memprov-mimir-")) for name, g in groups.items()}

    def edit(self, key: str) -> None:
        group = self.view()[key].body
        group["rules"][0]["expr"] = f"({group['rules'][0]['expr']}) * 2"
        with self.fake.lock:
            self.fake.put(TENANT, NS, group)

    def plant(self, key: str, owned: bool) -> None:
        assert owned or not key.startswith("memprov-mimir-"), "ownership is the name: an unowned group has another"
        with self.fake.lock:
            self.fake.put(TENANT, NS, {"name": key, "rules": [{"alert": "HandMade", "expr": "vector(1)"}]})

    def put(self, resource: Resource) -> None:
        with self.fake.lock:
            self.fake.put(TENANT, NS, copy.deepcopy(resource.body))

    def is_write(self, req: Request, key: str) -> bool:
        return req.method == "POST" and f"name: {key}\n".encode() in req.body

    def is_read(self, req: Request) -> bool:
        return req.method == "GET"
