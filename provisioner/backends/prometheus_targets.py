"""Where Prometheus rule groups live: rule files, PrometheusRule manifests, a reloading
Prometheus, or the Mimir/Cortex ruler API.

- ``files``: one rule file per job (the default; see :mod:`provisioner.backends.files`).
- ``prometheusrule``: the same groups as ``monitoring.coreos.com/v1`` PrometheusRule manifests,
  for GitOps with the Prometheus operator.
- ``prometheus``: rule files in ``rules_dir`` of a plain Prometheus, then ``POST /-/reload`` and
  a check that the server loaded every group. The live state is what Prometheus runs: a group whose
  file it has not loaded as it is on disk (``/api/v1/rules``, and the file written after the last
  successful reload of ``/api/v1/status/runtimeinfo``, to the second) is still to be created, and
  one it runs from a file that is gone is still to be deleted; a file edited since the plan is not
  overwritten (:mod:`provisioner.backends.live_files`).
- ``mimir`` / ``cortex``: rule groups in one ruler namespace per environment, via the ruler's
  HTTP API; memprov owns the groups named ``memprov-<env>-*`` in that namespace and nothing else.
  The ruler keeps no version of a group, so an edit made since the plan is overwritten (last
  writer wins, ``DETECTS_EDITS = False``); a write whose answer was lost is read back.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from provisioner.backends.files import FilesConfig, FilesTarget
from provisioner.backends.http import HttpApi, NotFound
from provisioner.backends.live_files import ServerFiles
from provisioner.core.errors import OperationError, SpecError
from provisioner.core.types import Duration, SecretRef
from provisioner.core.yamlio import dumps, loads
from provisioner.plan import retry
from provisioner.plan.contract import Backend, Target, TargetConfig
from provisioner.plan.model import Resource, canonical

URL = Field(pattern=r"^https?://[^\s]+$")


class Server(BaseModel):
    """What ``memprov lint`` may know about the server the rules run on (both optional)."""

    version: str | None = Field(
        default=None,
        pattern=r"^\d+\.\d+(\.\d+)?$",
        description="Prometheus version the rules run on (e.g. 2.42); lint checks the rules' features against it",
    )
    retention: Duration | None = Field(
        default=None, description="history the server keeps (e.g. 15d); lint checks the rules' windows against it"
    )


class PrometheusFilesConfig(FilesConfig, Server):
    """``targets.prometheus: {type: files, dir, version, retention}``: rule files for a Prometheus set up elsewhere."""


class PrometheusRuleConfig(TargetConfig, Server):
    """``targets.prometheus: {type: prometheusrule, dir, namespace, labels}``."""

    type: Literal["prometheusrule"]
    dir: str | None = None
    namespace: str = Field(default="monitoring", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    labels: dict[str, str] = Field(default={}, description="e.g. release: kube-prometheus-stack (ruleSelector)")


class ReloadConfig(TargetConfig, Server):
    """``targets.prometheus: {type: prometheus, rules_dir, url}`` for a plain Prometheus."""

    type: Literal["prometheus"]
    rules_dir: str
    url: str = URL
    token: SecretRef | None = None


class RulerConfig(TargetConfig, Server):
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


class ReloadTarget(ServerFiles):
    """Rule files in a Prometheus server's rules directory; ``finish`` reloads and verifies."""

    type = "prometheus"
    SERVER = "Prometheus"

    def describe(self) -> str:
        return f"Prometheus {self.url} (rule files in {self.display})"

    @staticmethod
    def _runs(path: Path, group: dict[str, Any]) -> bool:
        file = Path(str(group.get("file", "")))
        return file.name == path.name and (not file.is_absolute() or file.resolve() == path.resolve())

    def unloaded(self, api: HttpApi, files: Sequence[Resource]) -> tuple[set[str], list[Resource]]:
        groups = api.request("GET", "/api/v1/rules").json().get("data", {}).get("groups", [])
        info = api.request("GET", "/api/v1/status/runtimeinfo").json().get("data", {})
        loaded_at = datetime.datetime.fromisoformat(str(info.get("lastConfigTime"))).timestamp()
        stale = set()
        for r in files:
            path = self.path(r.key)
            runs = any(g.get("name") == r.key and self._runs(path, g) for g in groups)
            # lastConfigTime has whole seconds: a file written in the second of the reload counts as loaded
            if not runs or int(path.stat().st_mtime) > loaded_at:
                stale.add(r.key)
        gone = []
        for g in groups:
            name, file = str(g.get("name", "")), Path(str(g.get("file", "")))
            here = file.parent.resolve() == self.root.resolve() if file.is_absolute() else True
            if here and self.codec.key_for_path(file.name) == name and not self.path(name).exists():
                gone.append(Resource("rule-group", name, {"name": name, "loaded from": str(file)}, title=file.name))
        return stale, gone

    def check_loaded(self, api: HttpApi, desired: Sequence[Resource], wait: float) -> str:
        want = {r.key for r in desired}
        deadline = time.monotonic() + wait
        while True:
            data = api.request("GET", "/api/v1/rules", params={"type": "alert"}).json()
            loaded = {g["name"] for g in data.get("data", {}).get("groups", [])}
            if want <= loaded or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        missing = sorted(want - loaded)
        return f"{', '.join(missing)} (is {self.display} in its rule_files?)" if missing else ""


class RulerTarget(Target):
    """Rule groups in a Mimir or Cortex ruler namespace."""

    type = "ruler"
    DETECTS_EDITS: ClassVar[bool] = False  # the ruler API keeps no version of a group: last writer wins

    def __init__(
        self,
        config: RulerConfig,
        namespace: str,
        owned_prefix: str,
        normalise: Callable[[Any], Any] | None = None,
    ) -> None:
        self.config = config
        self.namespace = namespace
        self.owned_prefix = owned_prefix
        self.normalise = normalise or (lambda body: body)
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

    def _group(self, key: str) -> Any:
        """The group as the ruler holds it now, or None."""
        try:
            text = self.api.request("GET", f"{self._ns()}/{quote(key, safe='')}").text
        except NotFound:
            return None
        try:
            return loads(text, f"{self.describe()} response").data
        except SpecError as e:
            raise OperationError(f"{self.describe()}: unreadable answer for {key} ({e})") from e

    def _is(self, desired: Resource) -> bool:
        return canonical(self.normalise(self._group(desired.key))) == canonical(self.normalise(desired.body))

    def create(self, desired: Resource, *, force: bool = False) -> None:
        retry.write(  # POST replaces the group: sending it again is harmless
            retry.HTTP,
            lambda: self.api.send(
                "POST",
                self._ns(),
                ok=(200, 201, 202),
                content=dumps(desired.body).encode(),
                headers={"Content-Type": "application/yaml"},
            ),
            lambda: self._is(desired),
        )

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        if not live.owned and not force:
            raise OperationError(f"rule group {desired.key} is not managed by memprov; pass --force to take it over")
        self.create(desired)

    def delete(self, live: Resource, *, force: bool = False) -> None:
        def once() -> None:
            try:
                self.api.send("DELETE", f"{self._ns()}/{quote(live.key, safe='')}", ok=(200, 202, 204))
            except NotFound:  # gone already (an earlier attempt of ours deleted it)
                return

        retry.write(retry.HTTP, once, lambda: self._group(live.key) is None)


def manifest(group: dict[str, Any], name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"groups": [group]},
    }
