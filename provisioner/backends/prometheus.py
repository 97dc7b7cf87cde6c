"""The ``prometheus`` backend: one rule group per job, as rule files (files target)."""

from __future__ import annotations

from typing import Any, ClassVar

from provisioner.backends.base import Backend, Resource
from provisioner.backends.files import FilesConfig, YamlFiles
from provisioner.render import prometheus as render


class PrometheusBackend(YamlFiles, Backend):
    name = "prometheus"
    TARGETS: ClassVar[dict[str, Any]] = {"files": FilesConfig}
    FILE_GLOB = "*.rules.yaml"
    resource_kind = "rule-group"

    def render(self) -> list[Resource]:
        return [
            Resource(
                self.resource_kind,
                render.group_name(self.spec, job),
                {"groups": [render.rule_group(self.spec, job)]},
                job=job.id,
                title=job.name,
            )
            for job in self.spec.jobs_using(self.name)
        ]

    def filename(self, key: str) -> str:
        return f"{key}.rules.yaml"

    def key_for_path(self, relpath: str) -> str | None:
        return relpath.removesuffix(".rules.yaml") if "/" not in relpath else None
