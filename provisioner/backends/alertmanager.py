"""The ``alertmanager`` backend: the whole routing configuration as one ``alertmanager.yml``."""

from __future__ import annotations

from typing import Any, ClassVar

from provisioner.backends.base import Backend, Resource
from provisioner.backends.files import FilesConfig, YamlFiles
from provisioner.render import alertmanager as render

CONFIG_KEY = "alertmanager"


class AlertmanagerBackend(YamlFiles, Backend):
    name = "alertmanager"
    TARGETS: ClassVar[dict[str, Any]] = {"files": FilesConfig}
    FILE_GLOB = "alertmanager.yml"
    resource_kind = "alertmanager-config"

    @property
    def secrets_dir(self) -> str:
        return str(getattr(self.target, "secrets_dir", None) or render.DEFAULT_SECRETS_DIR)

    def render(self) -> list[Resource]:
        if not self.spec.jobs_using(self.name):
            return []
        return [
            Resource(
                self.resource_kind, CONFIG_KEY, render.config(self.spec, self.secrets_dir), title="alertmanager.yml"
            )
        ]

    def filename(self, key: str) -> str:
        return "alertmanager.yml"

    def key_for_path(self, relpath: str) -> str | None:
        return CONFIG_KEY if relpath == "alertmanager.yml" else None
