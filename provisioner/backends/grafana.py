"""The ``grafana`` backend: a dashboard per job and an overview per environment.

Targets: ``files`` (Grafana's provisioning layout: ``dashboards/<uid>.json`` plus
``provisioning/memprov-<env>.yaml``, a dashboard provider that points Grafana at the
directory) and ``api`` (a live Grafana over its HTTP API, see
:mod:`provisioner.backends.grafana_api`). Both sides are normalised by stripping the fields
Grafana owns (``id``, ``version``...), so a re-plan after apply is empty; an update is described
in words (which panels, queries and thresholds changed) by
:mod:`provisioner.backends.grafana_diff`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field

from provisioner.backends.files import FILES, FilesConfig, YamlFiles
from provisioner.backends.grafana_api import GrafanaApiConfig, GrafanaApiTarget
from provisioner.backends.grafana_diff import describe
from provisioner.backends.grafana_schema import latest
from provisioner.plan.contract import Backend, TargetType
from provisioner.plan.model import Resource
from provisioner.render.grafana import dashboards as render

PROVIDER = "provider:"
DASHBOARDS_PATH = "/var/lib/grafana/dashboards/memprov-{env}"


class GrafanaFilesConfig(FilesConfig):
    """``targets.grafana: {type: files, dir, dashboards_path}``: the dashboards and a file-provisioning provider.

    ``dashboards_path`` is where *Grafana* reads the dashboards (the provider's ``options.path``, on the
    Grafana host or in its container), not where memprov writes them: the provider file is then the same
    whichever checkout renders it. ``{env}`` is filled in.
    """

    dashboards_path: str = Field(
        default=DASHBOARDS_PATH,
        pattern=r"^/[^\s]*$",
        description="absolute path at which Grafana sees <dir>/dashboards (mount or copy it there); {env} is filled in",
    )


SERVER_OWNED = ("id", "version", "iteration", "gnetId", "__inputs", "__requires", "__elements")


def _api(backend: Backend, config: GrafanaApiConfig) -> GrafanaApiTarget:
    return GrafanaApiTarget(backend.spec, config, normalise=backend.normalise)


class GrafanaBackend(YamlFiles, Backend):
    name = "grafana"
    TARGETS: ClassVar[dict[str, TargetType[Any]]] = {
        "files": TargetType(GrafanaFilesConfig, FILES.build),
        "api": TargetType(GrafanaApiConfig, _api),
    }
    FILE_GLOB = "*/*"
    resource_kind = "dashboard"

    def render(self) -> list[Resource]:
        out = [Resource("dashboard", d.uid, d.data, job=d.job, title=d.title) for d in render.dashboards(self.spec)]
        return out + self._providers(bool(out))

    def stream(self) -> Iterator[Resource]:
        """One dashboard at a time (a files target's plan holds one at once)."""
        some = False
        for d in render.iter_dashboards(self.spec):
            some = True
            yield Resource("dashboard", d.uid, d.data, job=d.job, title=d.title)
        yield from self._providers(some)

    def _providers(self, dashboards: bool) -> list[Resource]:
        if not dashboards or not (self.config is None or isinstance(self.config, FilesConfig)):
            return []
        path = self.config.dashboards_path if isinstance(self.config, GrafanaFilesConfig) else DASHBOARDS_PATH
        return [
            Resource(
                "dashboard-provider",
                f"{PROVIDER}memprov-{self.spec.env}",
                self._provider(path.replace("{env}", self.spec.env)),
                title="Grafana dashboard provider",
            )
        ]

    def normalise(self, body: Any) -> Any:
        """Dashboards migrated to Grafana's latest schema (as Grafana 12 returns them) and without the fields
        Grafana sets on save; anything else unchanged."""
        if isinstance(body, dict) and "schemaVersion" in body:
            return {k: v for k, v in latest(body).items() if k not in SERVER_OWNED}
        return body

    def describe_change(self, desired: Any, live: Any) -> tuple[str, ...]:
        if isinstance(desired, dict) and isinstance(live, dict) and "panels" in desired:
            return describe(latest(desired), latest(live))
        return ()

    def _provider(self, path: str) -> dict[str, Any]:
        return {
            "apiVersion": 1,
            "providers": [
                {
                    "name": f"memprov-{self.spec.env}",
                    "type": "file",
                    "folder": f"memprov ({self.spec.env})",
                    "disableDeletion": False,
                    "allowUiUpdates": False,
                    "updateIntervalSeconds": 30,
                    "options": {
                        "path": path,
                        "foldersFromFilesStructure": False,
                    },
                }
            ],
        }

    # --- files codec ---------------------------------------------------------------------------
    def kind_of(self, key: str) -> str:
        return "dashboard-provider" if key.startswith(PROVIDER) else "dashboard"

    def filename(self, key: str) -> str:
        if key.startswith(PROVIDER):
            return f"provisioning/{key.removeprefix(PROVIDER)}.yaml"
        return f"dashboards/{key}.json"

    def key_for_path(self, relpath: str) -> str | None:
        folder, _, name = relpath.partition("/")
        if folder == "provisioning" and name.endswith(".yaml"):
            return PROVIDER + name.removesuffix(".yaml")
        if folder == "dashboards" and name.endswith(".json"):
            return name.removesuffix(".json")
        return None

    def serialise(self, resource: Resource) -> str:
        if resource.key.startswith(PROVIDER):
            return super().serialise(resource)
        return render.serialise(resource.body)

    def parse(self, key: str, text: str) -> tuple[Any, bool]:
        if key.startswith(PROVIDER):
            return super().parse(key, text)
        try:
            body = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(str(e)) from None
        tags = set(body.get("tags", [])) if isinstance(body, dict) else set()
        return body, set(render.tags(self.spec)) <= tags
