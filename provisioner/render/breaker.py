"""The breaker's part of ``alertmanager.yml``: one webhook receiver per environment, and per job a route
that sends its ``memprov_breaker="on"`` alerts there with ``continue: true``, so the pager still fires.

Alertmanager 0.25 sends the bearer token it reads from ``http_config.authorization.credentials_file``
(``webhook_configs.url_file`` does not exist in 0.25); a ``{env: NAME}`` token becomes
``<secrets_dir>/<NAME>``, which the ``alertmanager`` target writes like every other secret.
"""

from __future__ import annotations

from typing import Any

from provisioner.breaker.planner import bump
from provisioner.core.types import SecretRef
from provisioner.core.units import format_duration, format_size
from provisioner.spec.breaker import LABEL, STRATEGIES, BreakerSettings, active
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec


def receiver_name(env: str) -> str:
    return f"memprov-breaker-{env}"


def _settings(spec: ResolvedSpec) -> BreakerSettings | None:
    return spec.environment.breaker


def jobs(spec: ResolvedSpec) -> list[ResolvedJob]:
    """Jobs whose breaker is active in this environment and whose alerts go through Alertmanager."""
    return [j for j in spec.jobs_using("alertmanager") if active(_settings(spec), j.breaker)]


def token_ref(spec: ResolvedSpec) -> SecretRef | None:
    settings = _settings(spec)
    return settings.token if settings is not None and jobs(spec) else None


def route(spec: ResolvedSpec, job: ResolvedJob) -> dict[str, Any] | None:
    """The job's first child route: its breaker alerts to the breaker, then on to the other routes."""
    settings = _settings(spec)
    if settings is None or not active(settings, job.breaker):
        return None
    return {
        "receiver": receiver_name(spec.env),
        "matchers": [f'{LABEL}="on"'],
        "group_wait": format_duration(settings.group_wait),
        "group_interval": "1m",
        "repeat_interval": "1h",
        "continue": True,
    }


def receiver(spec: ResolvedSpec, token_file: str) -> dict[str, Any] | None:
    settings = _settings(spec)
    if settings is None or not jobs(spec):
        return None
    return {
        "name": receiver_name(spec.env),
        "webhook_configs": [
            {
                "url": settings.webhook_url,
                "send_resolved": True,
                "max_alerts": 0,
                "http_config": {"authorization": {"type": "Bearer", "credentials_file": token_file}},
            }
        ],
    }


def notes(spec: ResolvedSpec) -> list[str]:
    """One plan note per job with a breaker: what it would do here, within which limits, what state is lost."""

    settings = _settings(spec)
    out = []
    for job in spec.jobs_using("alertmanager"):
        b = job.breaker
        if b is None:
            continue
        if settings is None:
            out.append(
                f"breaker {job.id}: configured, but environments/{spec.env}.yaml has no breaker: block, "
                "so nothing is routed to it in this environment"
            )
            continue
        if not settings.enabled:
            out.append(f"breaker {job.id}: switched off here (breaker.enabled: false); people are paged as usual")
            continue
        table = STRATEGIES[b.orchestrator]
        what = (
            table.get(b.action, "record the alert, change nothing")
            if b.action != "notify_only"
            else ("record the alert, change nothing")
        )
        limits = ""
        if b.action == "bump_and_resume":
            first = bump(job.limit, b.bump.factor, b.bump.min_step, b.max_memory)
            limits = (
                f"; memory {format_size(job.limit)} -> {format_size(first)} on a first bump from the spec's limit "
                f"(x{b.bump.factor:g}, at least +{format_size(b.bump.min_step)}, at most {format_size(b.max_memory)}, "
                f"{b.max_bumps} per run, cooldown {format_duration(b.cooldown)})"
            )
        mode = "DRY RUN (dry_run: true, no mutating request)" if b.dry_run else "LIVE"
        triggers = ", ".join(b.on)
        out.append(
            f"breaker {job.id} [{mode}] on critical {triggers} via {receiver_name(spec.env)}: {b.orchestrator}: "
            f"{what}{limits}; state lost: {table['loses'] if b.action != 'notify_only' else 'nothing'}"
        )
    return out
