"""GCP: the local AlertPolicyService (tests/fakes/gcp.py) over gRPC, driven by the real
google-cloud-monitoring client through the gRPC fault proxy."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

from google.cloud.monitoring_v3.types import alert as alert_t
from google.protobuf.json_format import MessageToDict

from provisioner.backends.gcp_api import to_policy
from provisioner.plan.model import Resource
from tests.contract.base import Harness, Item
from tests.fakes.chaos import GrpcChaosProxy, Request
from tests.fakes.gcp import FakeAlertPolicies, serve

PROJECT = "ml-batch-prod"
TOKEN = "ya29.contract-token"
OWN = {"managed-by": "memprov", "memprov-env": "gcp", "memprov-spec": "batch-inference"}


class GcpHarness(Harness):
    name = "gcp"
    backend = "gcp"
    env = "gcp"
    total = 24
    updated = frozenset({"memprov-gcp-image-embed-usage-warning"})
    stale = "memprov-gcp-old-job-usage-warning"
    foreign = ("memprov-gcp-hand-made", "memprov-gcp-eu-clv-daily-usage-warning", "team-dashboards-alert")
    others: ClassVar[dict[str, dict[str, str]]] = {  # labels of the unowned ones: another environment's
        "memprov-gcp-eu-clv-daily-usage-warning": {"managed-by": "memprov", "memprov-env": "gcp-eu"},
        "team-dashboards-alert": {"managed-by": "terraform"},
    }
    variables: ClassVar[dict[str, str]] = {"MEMPROV_GCP_TOKEN": TOKEN}
    secrets = (TOKEN,)

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        self.fake = FakeAlertPolicies(token=TOKEN)
        with serve(self.fake) as address:
            self.proxy = GrpcChaosProxy(address, self.chaos)
            try:
                yield
            finally:
                self.proxy.close()

    def write_env(self) -> None:
        path = self.repo / "environments" / "gcp.yaml"
        text = path.read_text(encoding="utf-8")
        line = f"    project: {PROJECT}\n"
        assert line in text
        extra = (
            f"    endpoint: {self.proxy.address}\n    insecure: true\n    access_token: {{env: MEMPROV_GCP_TOKEN}}\n"
            f"    timeout: {self.timeout}\n"
        )
        path.write_text(text.replace(line, line + extra), encoding="utf-8")

    # --- the service ------------------------------------------------------------------------------
    def _all(self) -> list[Any]:
        with self.fake.lock:
            return [p for _, p in sorted(self.fake.db.items())]

    def view(self) -> dict[str, Item]:
        out = {}
        for p in self._all():  # the oldest policy per display name (the one memprov keeps)
            if p.display_name not in out:
                owned = all(p.user_labels.get(k) == v for k, v in OWN.items())
                out[p.display_name] = Item(MessageToDict(p), owned)
        return out

    def duplicates(self) -> list[str]:
        return sorted(k for k, n in Counter(p.display_name for p in self._all()).items() if n > 1)

    def _store(self, name: str, pb: Any) -> None:
        """Replace the stored policy ``name`` with ``pb``, as an update through the API would (new mutation time)."""
        with self.fake.lock:
            old = self.fake.db[name]
            pb.name = name
            pb.creation_record.CopyFrom(old.creation_record)
            pb.mutation_record.mutate_time.FromNanoseconds(old.mutation_record.mutate_time.ToNanoseconds() + 1000)
            for c, was in zip(pb.conditions, old.conditions, strict=False):
                c.name = was.name
            self.fake.db[name] = pb

    def _named(self, key: str) -> Any:
        return next(p for p in self._all() if p.display_name == key)

    def edit(self, key: str) -> None:
        pb = alert_t.AlertPolicy.pb()()
        pb.CopyFrom(self._named(key))
        cond = pb.conditions[0]
        if cond.HasField("condition_threshold"):
            cond.condition_threshold.threshold_value += 0.05
        else:
            pb.documentation.content += " (edited)"
        self._store(pb.name, pb)

    def plant(self, key: str, owned: bool) -> None:
        policy = alert_t.AlertPolicy(
            display_name=key,
            user_labels={**OWN, "memprov-job": "old-job"} if owned else self.others.get(key, {}),
            combiner="OR",
            conditions=[
                {
                    "display_name": "hand-made",
                    "condition_threshold": {
                        "filter": 'metric.type = "agent.googleapis.com/memory/percent_used"',
                        "comparison": "COMPARISON_GT",
                        "threshold_value": 0.125,
                        "duration": {"seconds": 60},
                    },
                }
            ],
        )
        self.fake.put(PROJECT, alert_t.AlertPolicy.pb(policy))

    def put(self, resource: Resource) -> None:
        pb = alert_t.AlertPolicy.pb(to_policy(resource.body))
        if resource.key in self.view():
            self._store(self._named(resource.key).name, pb)
        else:
            self.fake.put(PROJECT, pb)

    # --- faults -------------------------------------------------------------------------------------
    def is_write(self, req: Request, key: str) -> bool:
        return req.op in ("CreateAlertPolicy", "UpdateAlertPolicy") and key.encode() in req.body

    def is_read(self, req: Request) -> bool:
        return req.op in ("ListAlertPolicies", "GetAlertPolicy")
