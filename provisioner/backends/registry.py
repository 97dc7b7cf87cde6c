"""The backends, as data: a name and its class. Adding a backend is one module (and its tests) plus
one line here.

The registry also knows every backend's target models, so it validates an environment's
``targets.<backend>`` blocks (:func:`configure`, with the file:line of each problem) and builds
each backend with its target (:func:`build`).
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.backends.alertmanager import AlertmanagerBackend
from provisioner.backends.azure import AzureBackend
from provisioner.backends.cloudwatch import CloudWatchBackend
from provisioner.backends.gcp import GcpBackend
from provisioner.backends.grafana import GrafanaBackend
from provisioner.backends.prometheus import PrometheusBackend
from provisioner.core.errors import Problem, SpecError, UsageError, did_you_mean
from provisioner.plan.contract import Backend, TargetConfig
from provisioner.plan.planner import Binding
from provisioner.spec.loader import locate, validate_block
from provisioner.spec.resolved import ResolvedSpec

BACKENDS: dict[str, type[Backend]] = {
    "prometheus": PrometheusBackend,
    "alertmanager": AlertmanagerBackend,
    "grafana": GrafanaBackend,
    "cloudwatch": CloudWatchBackend,
    "gcp": GcpBackend,
    "azure": AzureBackend,
}


def unknown(name: str) -> str:
    """Why ``name`` is not a backend, and which are."""
    options = list(BACKENDS)
    return f'"{name}" is not one of {", ".join(options[:-1])} or {options[-1]}{did_you_mean(name, options)}'


def _names(spec: ResolvedSpec) -> list[Problem]:
    """Backend names the spec uses (defaults.backends, jobs.<id>.backends, targets.<name>) that do not exist."""
    problems = [
        locate(spec.targets, ("targets", name), unknown(name)) for name in spec.targets.blocks if name not in BACKENDS
    ]
    for job in spec.jobs:
        own = ("jobs", job.id, "backends")
        path = own if own in spec.where else ("defaults", "backends")
        for i, name in enumerate(job.backends):
            if name not in BACKENDS:
                file, line = spec.where.get((*path, i), spec.where.get(path, (str(spec.spec_file.name), None)))
                problem = Problem(unknown(name), file, line, f"{'.'.join(map(str, path))}[{i}]")
                if problem not in problems:
                    problems.append(problem)
    return problems


def configure(spec: ResolvedSpec) -> dict[str, TargetConfig]:
    """Each ``targets.<backend>`` block validated by the model of its ``type``, after checking that every
    backend the spec names exists; every problem at once."""
    out: dict[str, TargetConfig] = {}
    problems = _names(spec)
    if problems:
        raise SpecError(problems)
    for backend, raw in spec.targets.blocks.items():
        types = BACKENDS[backend].TARGETS
        kind = raw.get("type", "files") if isinstance(raw, dict) else None
        path = ("targets", backend)
        if not isinstance(kind, str) or kind not in types:
            problems.append(
                locate(
                    spec.targets,
                    (*path, "type"),
                    f"unknown target type {kind!r} for {backend}"
                    f"{did_you_mean(str(kind), types)}; available: {', '.join(types)}",
                )
            )
            continue
        config, found = validate_block(types[kind].config, raw, spec.targets, path)
        problems += found
        if config is not None:
            out[backend] = config
    if problems:
        raise SpecError(problems)
    return out


def active(spec: ResolvedSpec) -> list[str]:
    """Backends to plan: those a job uses, plus those that may hold resources to prune (a target is
    configured, or the default files target's directory exists), in registry order."""
    return [n for n in BACKENDS if spec.jobs_using(n) or n in spec.targets.blocks or (spec.output_dir / n).is_dir()]


def bind(spec: ResolvedSpec, name: str, config: TargetConfig | None = None) -> Binding:
    """Backend ``name`` for ``spec`` and the target its config names (the files target without one)."""
    backend = BACKENDS[name](spec, config)
    return backend, backend.target()


def build(spec: ResolvedSpec, only: Sequence[str] = ()) -> list[Binding]:
    """Every active backend (or those of ``only``) with its configured target."""
    for name in only:
        if name not in BACKENDS:
            raise UsageError(
                f"unknown backend '{name}'{did_you_mean(name, BACKENDS)}; available: {', '.join(BACKENDS)}"
            )
    configs = configure(spec)
    return [bind(spec, name, configs.get(name)) for name in active(spec) if not only or name in only]
