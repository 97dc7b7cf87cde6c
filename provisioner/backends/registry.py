"""The plain registry of backends, imported lazily so that start-up stays fast.

Adding a backend means one module with a :class:`~provisioner.backends.base.Backend` subclass
(and its tests) plus one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from provisioner.backends.base import Backend, Target
from provisioner.backends.files import FilesConfig, FilesTarget
from provisioner.core.errors import UsageError, did_you_mean
from provisioner.spec.resolved import ResolvedSpec

BACKENDS: dict[str, str] = {
    "prometheus": "provisioner.backends.prometheus:PrometheusBackend",
    "alertmanager": "provisioner.backends.alertmanager:AlertmanagerBackend",
    "grafana": "provisioner.backends.grafana:GrafanaBackend",
    "cloudwatch": "provisioner.backends.cloudwatch:CloudWatchBackend",
    "gcp": "provisioner.backends.gcp:GcpBackend",
    "azure": "provisioner.backends.azure:AzureBackend",
}


def backend_class(name: str) -> type[Backend]:
    module, _, attr = BACKENDS[name].partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module), attr)
    return cls


def target_models(name: str) -> dict[str, type[BaseModel]]:
    return dict(backend_class(name).TARGETS)


def display_dir(spec: ResolvedSpec, configured: str | None, backend: str) -> tuple[Path, str]:
    """A target directory (relative paths are relative to the spec) and how to show it."""
    root = Path(configured) if configured else spec.output_dir / backend
    if not root.is_absolute():
        root = spec.base_dir / root
    try:
        return root, str(root.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return root, str(root)


def make_target(spec: ResolvedSpec, name: str, config: BaseModel | None) -> Target:
    config = config or FilesConfig()
    if isinstance(config, FilesConfig):
        return FilesTarget(*display_dir(spec, config.dir, name))
    factory: Any = getattr(backend_class(name), "make_target", None)
    if factory is None:  # pragma: no cover - a backend declaring a target must build it
        raise UsageError(f"backend {name} cannot build a {type(config).__name__} target")
    target: Target = factory(spec, config)
    return target


def active(spec: ResolvedSpec) -> list[str]:
    """Backends to plan: those a job uses, plus those that may hold resources to prune (a target is
    configured, or the default files target's directory exists), in registry order."""
    return [n for n in BACKENDS if spec.jobs_using(n) or n in spec.targets or (spec.output_dir / n).is_dir()]


def build(spec: ResolvedSpec, only: Sequence[str] = ()) -> list[Backend]:
    names = active(spec)
    for name in only:
        if name not in BACKENDS:
            raise UsageError(
                f"unknown backend '{name}'{did_you_mean(name, BACKENDS)}; available: {', '.join(BACKENDS)}"
            )
    if only:
        names = [n for n in names if n in only]
    out = []
    for name in names:
        cls = backend_class(name)
        out.append(cls(spec, make_target(spec, name, spec.targets.get(name))))
    return out
