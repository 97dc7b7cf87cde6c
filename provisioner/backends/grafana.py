"""The ``grafana`` backend: one dashboard per job; the files target uses Grafana's provisioning layout.

Files target layout: ``dashboards/<uid>.json`` plus ``provisioning/memprov-<env>.yaml``, a
dashboard provider that points Grafana at the directory.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from provisioner.backends.base import Backend, Resource
from provisioner.backends.files import FilesConfig, FilesTarget, YamlFiles
from provisioner.render import grafana as render

PROVIDER = "provider:"


class GrafanaBackend(YamlFiles, Backend):
    name = "grafana"
    TARGETS: ClassVar[dict[str, Any]] = {"files": FilesConfig}
    FILE_GLOB = "*/*"
    resource_kind = "dashboard"

    def render(self) -> list[Resource]:
        jobs = self.spec.jobs_using(self.name)
        out = [
            Resource("dashboard", job.dashboard_uid, render.dashboard(self.spec, job), job=job.id, title=job.name)
            for job in jobs
        ]
        if out and isinstance(self.target, FilesTarget):
            out.append(
                Resource(
                    "dashboard-provider",
                    f"{PROVIDER}memprov-{self.spec.env}",
                    self._provider(self.target),
                    title="Grafana dashboard provider",
                )
            )
        return out

    def _provider(self, target: FilesTarget) -> dict[str, Any]:
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
                        "path": str((target.root / "dashboards").resolve()),
                        "foldersFromFilesStructure": False,
                    },
                }
            ],
        }

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
