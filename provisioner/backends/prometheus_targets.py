"""Where Prometheus rule groups live: rule files, PrometheusRule manifests, a reloading
Prometheus, or the Mimir/Cortex ruler API.

- ``files``: one rule file per job (the default; see :mod:`provisioner.backends.files`).
- ``prometheusrule``: the same groups as ``monitoring.coreos.com/v1`` PrometheusRule manifests,
  for GitOps with the Prometheus operator.
- ``prometheus``: rule files in ``rules_dir`` of a plain Prometheus, then ``POST /-/reload`` and
  a check that the server loaded every group.
- ``mimir`` / ``cortex``: rule groups in one ruler namespace per environment, via the ruler's
  HTTP API; memprov owns the groups named ``memprov-<env>-*`` in that namespace and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field

from provisioner.backends.files import FilesTarget
from provisioner.backends.http import HttpApi, NotFound
from provisioner.core.errors import OperationError
from provisioner.core.types import SecretRef
from provisioner.core.yamlio import dumps, loads
from provisioner.plan.contract import Backend, Target, TargetConfig
from provisioner.plan.model import Resource

URL = Field(pattern=r"^https?://[^\s]+$")


class PrometheusRuleConfig(TargetConfig):
    """``targets.prometheus: {type: prometheusrule, dir, namespace, labels}``."""

    type: Literal["prometheusrule"]
    dir: str | None = None
    namespace: str = Field(default="monitoring", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    labels: dict[str, str] = Field(default={}, description="e.g. release: kube-prometheus-stack (ruleSelector)")


class ReloadConfig(TargetConfig):
    """``targets.prometheus: {type: prometheus, rules_dir, url}`` for a plain Prometheus."""

    type: Literal["prometheus"]
    rules_dir: str
    url: str = URL
    token: SecretRef | None = None


class RulerConfig(TargetConfig):
    """``targets.prometheus: {type: mimir|cortex, url, namespace, tenant, token}``."""

    type: Literal["mimir", "cortex"]
    url: str = URL
    namespace: str | None = Field(default=None, description="ruler namespace; default memprov-<spec>-<env>")
    tenant: str | None = Field(default=None, description="X-Scope-OrgID")
    token: SecretRef | None = None


class ManifestTarget(FilesTarget):
    """Rule groups written as PrometheusRule manifests (the backend's codec reads these attributes)."""

    type = "prometheusrule"

    def __init__(self, root: Path, display: str, codec: Backend, namespace: str, labels: dict[str, str]) -> None:
        super().__init__(root, display, codec)
        self.namespace = namespace
        self.labels = labels

    def describe(self) -> str:
        return f"PrometheusRule manifests {self.display} (namespace {self.namespace})"


class ReloadTarget(FilesTarget):
    """Rule files in a Prometheus server's rules directory; ``finish`` reloads and verifies."""

    type = "prometheus"

    def __init__(self, root: Path, display: str, codec: Backend, url: str, token: SecretRef | None) -> None:
        super().__init__(root, display, codec)
        self.url = url
        self.token = token

    def describe(self) -> str:
        return f"Prometheus {self.url} (rule files in {self.display})"

    def finish(self, desired: Sequence[Resource], changed: bool) -> None:
        if not changed:
            return
        api = HttpApi(self.url, what="Prometheus", token=self.token)
        try:
            try:
                api.request("POST", "/-/reload")
            except NotFound as e:
                raise OperationError(
                    f"{e}; start Prometheus with --web.enable-lifecycle so that memprov can "
                    "reload it (the rule files were written)"
                ) from e
            want = {r.key for r in desired}
            deadline = time.monotonic() + 10
            while True:
                data = api.request("GET", "/api/v1/rules", params={"type": "alert"}).json()
                loaded = {g["name"] for g in data.get("data", {}).get("groups", [])}
                if want <= loaded or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            missing = sorted(want - loaded)
            if missing:
                raise OperationError(
                    f"Prometheus {self.url} did not load {', '.join(missing)} after the reload; "
                    f"is {self.display} in its rule_files?"
                )
        finally:
            api.close()


class RulerTarget(Target):
    """Rule groups in a Mimir or Cortex ruler namespace."""

    type = "ruler"

    def __init__(self, config: RulerConfig, namespace: str, owned_prefix: str) -> None:
        self.config = config
        self.namespace = namespace
        self.owned_prefix = owned_prefix
        self.prefix = "/prometheus/config/v1/rules" if config.type == "mimir" else "/api/v1/rules"
        headers = {"X-Scope-OrgID": config.tenant} if config.tenant else {}
        self.api = HttpApi(config.url, what=f"{config.type} ruler", token=config.token, headers=headers)

    def describe(self) -> str:
        return f"{self.config.type} ruler {self.config.url} namespace {self.namespace}"

    def _ns(self) -> str:
        return f"{self.prefix}/{quote(self.namespace, safe='')}"

    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        try:
            text = self.api.request("GET", self._ns()).text
        except NotFound:
            return []
        data = loads(text, f"{self.describe()} response").data if text.strip() else {}
        groups = data.get(self.namespace, []) if isinstance(data, dict) else []
        wanted = {r.key for r in desired}
        out = []
        for group in groups if isinstance(groups, list) else []:
            name = str(group.get("name", "")) if isinstance(group, dict) else ""
            owned = name.startswith(self.owned_prefix)
            if owned or name in wanted:
                out.append(Resource("rule-group", name, group, owned=owned, title=f"{self.namespace}/{name}"))
        return out

    def create(self, desired: Resource, *, force: bool = False) -> None:
        self.api.request(
            "POST",
            self._ns(),
            ok=(200, 201, 202),
            content=dumps(desired.body).encode(),
            headers={"Content-Type": "application/yaml"},
        )

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        self.create(desired)

    def delete(self, live: Resource, *, force: bool = False) -> None:
        try:
            self.api.request("DELETE", f"{self._ns()}/{quote(live.key, safe='')}", ok=(200, 202, 204))
        except NotFound:
            return


def manifest(group: dict[str, Any], name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"groups": [group]},
    }
