"""Azure: the fake ARM (tests/fakes/azure.py) over HTTPS, driven by the real azure-mgmt-monitor SDK through a
TLS fault proxy (azure-core refuses bearer tokens over plain HTTP)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import ClassVar

from provisioner.plan.model import Resource
from tests.contract.base import Harness, Item
from tests.fakes.azure import ArmServer, self_signed
from tests.fakes.chaos import Arm, HttpChaosProxy, Request

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-ml-monitoring"
TOKEN_VAR = "MEMPROV_TEST_ARM_TOKEN"
OWN = {"managed-by": "memprov", "memprov-env": "azure", "memprov-spec": "batch-inference"}


class AzureHarness(Harness):
    name = "azure"
    backend = "azure"
    env = "azure"
    total = 15
    updated = frozenset({"memprov-azure-image-embed-usage-warning"})
    stale = "memprov-azure-old-job-usage-warning"
    foreign = ("memprov-azure-hand-made", "memprov-azure-eu-clv-daily-usage-warning")
    others: ClassVar[dict[str, dict[str, str]]] = {  # tags of the unowned ones: another environment's
        "memprov-azure-eu-clv-daily-usage-warning": {**OWN, "memprov-env": "azure-eu"},
    }
    variables: ClassVar[dict[str, str]] = {TOKEN_VAR: "fake-arm-token"}
    secrets = ("fake-arm-token",)

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        certs = self.tmp / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        self.arm = ArmServer(certs)
        self.fake = self.arm.fake
        proxy_certs = self.tmp / "proxy-certs"
        proxy_certs.mkdir(exist_ok=True)
        self.cert, key = self_signed(proxy_certs)
        self.proxy = HttpChaosProxy(self.arm.url, self.chaos, Arm(), tls=(self.cert, key), upstream_ca=self.arm.cert)
        try:
            yield
        finally:
            self.proxy.close()
            self.arm.close()

    def write_env(self) -> None:
        path = self.repo / "environments" / "azure.yaml"
        text = path.read_text(encoding="utf-8")
        old = "  azure:\n    type: azure"
        assert old in text
        extra = (
            f"\n    endpoint: {self.proxy.url}\n    ca_bundle: {self.cert}\n    token: {{env: {TOKEN_VAR}}}"
            f"\n    timeout: {self.timeout}"
        )
        path.write_text(text.replace(old, old + extra), encoding="utf-8")

    # --- the service ------------------------------------------------------------------------------
    def view(self) -> dict[str, Item]:
        with self.fake.lock:
            rules = [copy.deepcopy(v) for k, v in sorted(self.fake.rules.items()) if k[:2] == (SUB, RG.lower())]
        return {r["name"]: Item(r, all((r.get("tags") or {}).get(k) == v for k, v in OWN.items())) for r in rules}

    def _store(self, key: str, rule: dict[str, object]) -> None:
        with self.fake.lock:
            self.fake.rules[(SUB, RG.lower(), key.lower())] = rule

    def edit(self, key: str) -> None:
        rule = self.view()[key].body
        criterion = rule["properties"]["criteria"]["allOf"][0]
        if "threshold" in criterion:
            criterion["threshold"] = float(criterion["threshold"]) + 1.5
        else:
            criterion["alertSensitivity"] = "Low" if criterion.get("alertSensitivity") != "Low" else "High"
        rule["properties"]["lastUpdatedTime"] = self.fake.now()
        self._store(key, rule)

    def plant(self, key: str, owned: bool) -> None:
        scope = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
        self._store(
            key,
            {
                "id": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Insights/metricAlerts/{key}",
                "name": key,
                "type": "Microsoft.Insights/metricAlerts",
                "location": "global",
                "tags": {**OWN, "memprov-job": "old-job"} if owned else self.others.get(key, {}),
                "properties": {
                    "severity": 3,
                    "enabled": True,
                    "scopes": [scope],
                    "evaluationFrequency": "PT1M",
                    "windowSize": "PT5M",
                    "criteria": {
                        "odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                        "allOf": [
                            {
                                "criterionType": "StaticThresholdCriterion",
                                "name": "c1",
                                "metricName": "Percentage CPU",
                                "timeAggregation": "Average",
                                "operator": "GreaterThan",
                                "threshold": 12.5,
                            }
                        ],
                    },
                    "lastUpdatedTime": self.fake.now(),
                },
            },
        )

    def put(self, resource: Resource) -> None:
        body = copy.deepcopy(resource.body)
        rule = {
            "id": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Insights/metricAlerts/{resource.key}",
            "name": resource.key,
            "type": "Microsoft.Insights/metricAlerts",
            "location": "global",
            "tags": body.get("tags") or {},
            "properties": {**body["properties"], "lastUpdatedTime": self.fake.now(), "isMigrated": False},
        }
        self._store(resource.key, rule)

    # --- faults -------------------------------------------------------------------------------------
    def is_write(self, req: Request, key: str) -> bool:
        return req.op == f"PUT {key}"

    def is_read(self, req: Request) -> bool:
        return req.method == "GET"
