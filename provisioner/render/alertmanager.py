"""Alertmanager configuration: receivers per notification channel, routes per job and severity.

Warnings go to chat and critical alerts to the pager (as the spec routes them); critical
inhibits warning and info for the same job; alerts group by job; repeat intervals avoid fatigue.
Secrets are referenced by file (``*_file`` fields), never inlined: ``{file: PATH}`` is used as
is, ``{env: NAME}`` becomes ``<secrets_dir>/<NAME>``, which the alertmanager target materialises.
"""

from __future__ import annotations

from typing import Any

from provisioner.core.types import SecretRef
from provisioner.render import breaker
from provisioner.render.gotext import literal
from provisioner.render.templating import overridden, render_data
from provisioner.spec.model import Opsgenie, PagerDuty, Slack, Webhook
from provisioner.spec.resolved import ResolvedSpec

MESSAGES = "alertmanager/messages.yaml.j2"
DEFAULT_MESSAGES: dict[str, dict[str, str]] = {  # templates/alertmanager/messages.yaml.j2, rendered
    "slack": {
        "title": '{{ if eq .Status "firing" }}[{{ .CommonLabels.severity | toUpper }}]{{ else }}[RESOLVED]{{ end }} '
        "{{ .CommonAnnotations.summary }}",
        "text": "{{ range .Alerts }}*{{ .Annotations.summary }}*\n"
        "{{ .Annotations.description }}\n"
        "• job `{{ .Labels.memprov_job }}` ({{ .Labels.memprov_env }}) · node `{{ .Annotations.node }}` · "
        "model {{ .Labels.model }} {{ .Labels.model_version }} · owner {{ .Labels.owner }}\n"
        "• now {{ .Annotations.current }} of {{ .Annotations.limit }}\n"
        "• <{{ .Annotations.dashboard }}|Dashboard> · <{{ .Annotations.runbook_url }}|Runbook>\n"
        "{{ end }}",
    },
    "pagerduty": {"description": "[{{ .CommonLabels.memprov_env }}] {{ .CommonAnnotations.summary }}"},
    "opsgenie": {
        "message": "[{{ .CommonLabels.memprov_env }}] {{ .CommonAnnotations.summary }}",
        "description": "{{ range .Alerts }}{{ .Annotations.description }} Dashboard: {{ .Annotations.dashboard }} "
        'Runbook: {{ .Annotations.runbook_url }}{{ "\\n" }}{{ end }}',
    },
}
DEFAULT_SECRETS_DIR = "/etc/alertmanager/secrets"
BLACKHOLE = "memprov-blackhole"
SEVERITIES = ("critical", "warning", "info")
REPEAT = {"critical": "1h", "warning": "4h", "info": "24h"}


def secret_path(ref: SecretRef, secrets_dir: str) -> str:
    return ref.file if ref.file else f"{secrets_dir.rstrip('/')}/{ref.env}"


def secret_refs(spec: ResolvedSpec, secrets_dir: str) -> dict[str, SecretRef]:
    """Every secret the configuration reads, by the file path it reads it from."""
    out: dict[str, SecretRef] = {}
    for channel in spec.notifications.values():
        for ref in (getattr(channel, f, None) for f in ("webhook_url", "routing_key", "api_key", "bearer_token")):
            if isinstance(ref, SecretRef):
                out[secret_path(ref, secrets_dir)] = ref
    if (token := breaker.token_ref(spec)) is not None:
        out[secret_path(token, secrets_dir)] = token
    return out


def _receiver(name: str, channel: Any, texts: dict[str, Any], secrets_dir: str) -> dict[str, Any]:
    if isinstance(channel, Slack):
        return {
            "name": name,
            "slack_configs": [
                {
                    "api_url_file": secret_path(channel.webhook_url, secrets_dir),
                    "channel": channel.channel,
                    "send_resolved": channel.send_resolved,
                    **texts["slack"],
                }
            ],
        }
    if isinstance(channel, PagerDuty):
        return {
            "name": name,
            "pagerduty_configs": [
                {
                    "routing_key_file": secret_path(channel.routing_key, secrets_dir),
                    "send_resolved": channel.send_resolved,
                    "severity": '{{ if eq .CommonLabels.severity "critical" }}critical{{ else }}warning{{ end }}',
                    **texts["pagerduty"],
                    "details": {
                        "job": "{{ .CommonLabels.memprov_job }}",
                        "environment": "{{ .CommonLabels.memprov_env }}",
                        "model": "{{ .CommonLabels.model }} {{ .CommonLabels.model_version }}",
                        "owner": "{{ .CommonLabels.owner }}",
                        "node": "{{ .CommonAnnotations.node }}",
                        "current": "{{ .CommonAnnotations.current }}",
                        "limit": "{{ .CommonAnnotations.limit }}",
                        "runbook": "{{ .CommonAnnotations.runbook_url }}",
                    },
                    "links": [{"href": "{{ .CommonAnnotations.dashboard }}", "text": "Dashboard"}],
                }
            ],
        }
    if isinstance(channel, Opsgenie):
        cfg: dict[str, Any] = {
            "api_key_file": secret_path(channel.api_key, secrets_dir),
            "priority": channel.priority,
            "send_resolved": True,
            **texts["opsgenie"],
            "tags": "memprov,{{ .CommonLabels.memprov_env }},{{ .CommonLabels.memprov_job }}",
        }
        if channel.team:
            cfg["responders"] = [{"name": literal(channel.team), "type": "team"}]  # Alertmanager templates it
        return {"name": name, "opsgenie_configs": [cfg]}
    if isinstance(channel, Webhook):
        hook: dict[str, Any] = {
            "url": channel.url,
            "send_resolved": channel.send_resolved,
            "max_alerts": channel.max_alerts,
        }
        if channel.bearer_token:
            hook["http_config"] = {
                "authorization": {"type": "Bearer", "credentials_file": secret_path(channel.bearer_token, secrets_dir)}
            }
        return {"name": name, "webhook_configs": [hook]}
    raise TypeError(f"unknown channel type {type(channel).__name__}")  # pragma: no cover


def _severity_routes(routes_by_sev: dict[str, list[str]]) -> list[dict[str, Any]]:
    out = []
    for severity in SEVERITIES:
        channels = routes_by_sev.get(severity, [])
        for i, channel in enumerate(channels):
            route: dict[str, Any] = {
                "receiver": channel,
                "matchers": [f'severity="{severity}"'],
                "repeat_interval": REPEAT[severity],
            }
            if i < len(channels) - 1:
                route["continue"] = True
            out.append(route)
    return out


def config(spec: ResolvedSpec, secrets_dir: str = DEFAULT_SECRETS_DIR) -> dict[str, Any]:
    """The whole ``alertmanager.yml`` as data."""
    jobs = spec.jobs_using("alertmanager")
    used = sorted({c for j in jobs for sev in SEVERITIES for c in getattr(j.route, sev)})
    kinds = sorted({spec.notifications[c].type for c in used} - {"webhook"})  # the texts the receivers need
    override = spec.base_dir / "templates"
    if overridden(MESSAGES, override):
        texts = render_data(MESSAGES, override, required=kinds, spec=spec)
    else:  # what the shipped template renders (tests/test_templates_fast.py holds them equal)
        texts = DEFAULT_MESSAGES
    job_routes = []
    for job in jobs:
        sev_routes = _severity_routes({s: getattr(job.route, s) for s in SEVERITIES})
        if (breaker_route := breaker.route(spec, job)) is not None:
            sev_routes.insert(0, breaker_route)
        if not sev_routes:
            continue
        job_routes.append(
            {
                "receiver": BLACKHOLE,
                "matchers": [f'memprov_env="{spec.env}"', f'memprov_job="{job.id}"'],
                "routes": sev_routes,
            }
        )
    receivers = [{"name": BLACKHOLE}] + [_receiver(name, spec.notifications[name], texts, secrets_dir) for name in used]
    if (token := breaker.token_ref(spec)) is not None and (
        hook := breaker.receiver(spec, secret_path(token, secrets_dir))
    ):
        receivers.append(hook)
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": BLACKHOLE,
            "group_by": ["alertname", "memprov_env", "memprov_job"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": job_routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity=~"warning|info"'],
                "equal": ["memprov_env", "memprov_job"],
            },
            {
                "source_matchers": ['severity="warning"'],
                "target_matchers": ['severity="info"'],
                "equal": ["memprov_env", "memprov_job"],
            },
        ],
        "receivers": receivers,
    }
