"""Helpers shared by the verbs: loading the spec for one or all environments, building backends."""

from __future__ import annotations

from pathlib import Path

from provisioner.backends.base import Backend
from provisioner.spec.loader import environments, load
from provisioner.spec.resolved import ResolvedSpec


def env_names(spec: Path, env: str | None) -> list[str]:
    return [env] if env else environments(spec)


def load_all(spec: Path, env: str | None) -> list[ResolvedSpec]:
    """Resolved specs for one environment or all of them; every environment's problems at once."""
    from provisioner.errors import SpecError

    out, problems = [], []
    for name in env_names(spec, env):
        try:
            out.append(load(spec, name))
        except SpecError as e:
            problems += [p for p in e.problems if p not in problems]
    if problems:
        raise SpecError(problems)
    return out


def backends(resolved: ResolvedSpec, only: list[str] | None = None) -> list[Backend]:
    from provisioner import secrets
    from provisioner.backends.registry import build
    from provisioner.spec.types import SecretRef

    refs = [v for ch in resolved.notifications.values() for v in ch.__dict__.values() if isinstance(v, SecretRef)]
    secrets.register_env(refs)
    return build(resolved, only or [])
