"""The ``prometheus`` backend: a job's rule groups (a fast one, and a slow one), in any of the Prometheus targets.

A resource's body is the rule group itself, whatever the target; the files codec wraps it in a
rule file (``groups: [...]``) or a PrometheusRule manifest, so that plans compare the same data
everywhere. See :mod:`provisioner.backends.prometheus_targets` for the targets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from provisioner.backends.files import FILES, YamlFiles, target_dir
from provisioner.backends.prometheus_targets import (
    ManifestTarget,
    PrometheusFilesConfig,
    PrometheusRuleConfig,
    ReloadConfig,
    ReloadTarget,
    RulerConfig,
    RulerTarget,
    manifest,
)
from provisioner.core.names import ownership_tags
from provisioner.core.units import format_duration, parse_duration
from provisioner.kinds import ALL as KINDS
from provisioner.kinds.base import Kind, Support
from provisioner.plan.contract import Backend, JobSupport, TargetType
from provisioner.plan.model import Resource
from provisioner.render.prometheus import rules as render

DURATION_KEYS = ("for", "keep_firing_for", "interval")


def _manifests(backend: Backend, config: PrometheusRuleConfig) -> ManifestTarget:
    return ManifestTarget(*target_dir(backend.spec, config.dir, backend.name), backend, config.namespace, config.labels)


def _reload(backend: Backend, config: ReloadConfig) -> ReloadTarget:
    return ReloadTarget(*target_dir(backend.spec, config.rules_dir, backend.name), backend, config.url, config.token)


def _ruler(backend: Backend, config: RulerConfig) -> RulerTarget:
    namespace = config.namespace or f"memprov-{backend.spec.name}-{backend.spec.env}"
    return RulerTarget(config, namespace, owned_prefix=f"memprov-{backend.spec.env}-", normalise=backend.normalise)


class PrometheusBackend(YamlFiles, Backend):
    name = "prometheus"
    TARGETS: ClassVar[dict[str, TargetType[Any]]] = {
        "files": TargetType(PrometheusFilesConfig, FILES.build),
        "prometheusrule": TargetType(PrometheusRuleConfig, _manifests),
        "prometheus": TargetType(ReloadConfig, _reload),
        "mimir": TargetType(RulerConfig, _ruler),
        "cortex": TargetType(RulerConfig, _ruler),
    }
    SUPPORTS = frozenset(Kind)  # the reference: every kind is PromQL first
    FILE_GLOB = "*.yaml"
    resource_kind = "rule-group"

    def render(self) -> list[Resource]:
        return list(self.stream())

    def stream(self) -> Iterator[Resource]:
        """One resource per rule group: each job's fast group, and its slow group when it has one."""
        for job in self.spec.jobs_using(self.name):
            for group in render.rule_groups(self.spec, job):
                yield Resource(self.resource_kind, group["name"], group, job=job.id, title=job.name)

    def support(self) -> list[JobSupport]:
        """Every enabled kind is native (PromQL is memprov's reference), unless a job has no series for it."""
        return [
            JobSupport(job.id, k.kind, Support.unsupported(why))
            for job in self.spec.jobs_using(self.name)
            for k in KINDS
            if (p := k.of(job)).enabled and (why := k.unexpressed(p)) is not None
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
    @property
    def manifests(self) -> PrometheusRuleConfig | None:
        """The PrometheusRule settings when the target writes manifests instead of rule files."""
        return self.config if isinstance(self.config, PrometheusRuleConfig) else None

    def filename(self, key: str) -> str:
        return f"{key}.yaml" if self.manifests else f"{key}.rules.yaml"

    def key_for_path(self, relpath: str) -> str | None:
        if "/" in relpath:
            return None
        if self.manifests:
            return relpath.removesuffix(".yaml")
        return relpath.removesuffix(".rules.yaml") if relpath.endswith(".rules.yaml") else None

    def serialise(self, resource: Resource) -> str:
        if (m := self.manifests) is not None:
            labels = {**ownership_tags(self.spec.env, self.spec.name), **m.labels}
            data = manifest(resource.body, resource.key, m.namespace, labels)
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
