"""The ``prometheus`` backend: one rule group per job, in any of the Prometheus targets.

A resource's body is the rule group itself, whatever the target; the files codec wraps it in a
rule file (``groups: [...]``) or a PrometheusRule manifest, so that plans compare the same data
everywhere. See :mod:`provisioner.backends.prometheus_targets` for the targets.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from pydantic import BaseModel

from provisioner.backends.base import Backend, Resource, Target
from provisioner.backends.files import FilesConfig, YamlFiles
from provisioner.backends.prometheus_targets import (
    ManifestTarget,
    PrometheusRuleConfig,
    ReloadConfig,
    ReloadTarget,
    RulerConfig,
    RulerTarget,
    manifest,
)
from provisioner.core.names import ownership_tags
from provisioner.core.units import format_duration, parse_duration
from provisioner.render.prometheus import rules as render
from provisioner.spec.resolved import ResolvedSpec

DURATION_KEYS = ("for", "keep_firing_for", "interval")


class PrometheusBackend(YamlFiles, Backend):
    name = "prometheus"
    TARGETS: ClassVar[dict[str, Any]] = {
        "files": FilesConfig,
        "prometheusrule": PrometheusRuleConfig,
        "prometheus": ReloadConfig,
        "mimir": RulerConfig,
        "cortex": RulerConfig,
    }
    FILE_GLOB = "*.yaml"
    resource_kind = "rule-group"

    @classmethod
    def make_target(cls, spec: ResolvedSpec, config: BaseModel) -> Target:
        from provisioner.backends.registry import display_dir

        if isinstance(config, PrometheusRuleConfig):
            root, shown = display_dir(spec, config.dir, cls.name)
            return ManifestTarget(root, shown, config.namespace, config.labels)
        if isinstance(config, ReloadConfig):
            root, shown = display_dir(spec, config.rules_dir, cls.name)
            return ReloadTarget(root, shown, config.url, config.token)
        if isinstance(config, RulerConfig):
            namespace = config.namespace or f"memprov-{spec.name}-{spec.env}"
            return RulerTarget(config, namespace, owned_prefix=f"memprov-{spec.env}-")
        raise TypeError(f"unknown prometheus target {type(config).__name__}")  # pragma: no cover

    def render(self) -> list[Resource]:
        return [
            Resource(
                self.resource_kind,
                render.group_name(self.spec, job),
                render.rule_group(self.spec, job),
                job=job.id,
                title=job.name,
            )
            for job in self.spec.jobs_using(self.name)
        ]

    def normalise(self, body: Any) -> Any:
        """Same durations written the same way (``5m`` vs ``300s``), empty maps dropped."""
        if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
            return body
        out = _durations(body)
        out["rules"] = [
            _durations({k: v for k, v in r.items() if v not in ({}, None)}) if isinstance(r, dict) else r
            for r in body["rules"]
        ]
        for rule in out["rules"]:
            if isinstance(rule, dict) and rule.get("for") == "0s":
                del rule["for"]
        return out

    # --- files codec -----------------------------------------------------------------------------
    def filename(self, key: str) -> str:
        return f"{key}.yaml" if isinstance(self.target, ManifestTarget) else f"{key}.rules.yaml"

    def key_for_path(self, relpath: str) -> str | None:
        if "/" in relpath:
            return None
        if isinstance(self.target, ManifestTarget):
            return relpath.removesuffix(".yaml")
        return relpath.removesuffix(".rules.yaml") if relpath.endswith(".rules.yaml") else None

    def serialise(self, resource: Resource) -> str:
        target = self.target
        if isinstance(target, ManifestTarget):
            labels = {**ownership_tags(self.spec.env, self.spec.name), **target.labels}
            data = manifest(resource.body, resource.key, target.namespace, labels)
        else:
            data = {"groups": [resource.body]}
        return super().serialise(Resource(resource.kind, resource.key, data))

    def parse(self, key: str, text: str) -> tuple[Any, bool]:
        data, owned = super().parse(key, text)
        if isinstance(data, dict) and data.get("kind") == "PrometheusRule":
            labels = (data.get("metadata") or {}).get("labels") or {}
            owned = owned and labels.get("managed-by") == "memprov"
            data = data.get("spec") or {}
        groups = data.get("groups") if isinstance(data, dict) else None
        if not isinstance(groups, list) or len(groups) != 1:
            return data, False
        return groups[0], owned


def _durations(d: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    for key in DURATION_KEYS:
        value = out.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # not a duration: compare as written
                out[key] = format_duration(parse_duration(value))
    return out
