"""Alertmanager routing for an Alertmanager memprov does not own: a fragment to merge, or an ``AlertmanagerConfig``.

:func:`provisioner.render.alertmanager.config` is a whole ``alertmanager.yml`` whose default receiver
drops every alert memprov does not route: right for an Alertmanager that serves memprov alone, wrong
for a shared one. Two other shapes leave everything else alone:

- :func:`fragment`: one route (matching ``memprov_env``) to put first under the existing
  ``route.routes``, receivers named ``memprov-<env>-<channel>`` (no clash with the existing ones) and
  inhibit rules that only touch this environment's alerts (``memprov_env`` in both matchers: alerts
  without memprov's labels would otherwise count as equal on ``memprov_job``).
- :func:`alertmanager_config`: the same as a prometheus-operator ``monitoring.coreos.com/v1alpha1``
  ``AlertmanagerConfig`` (field names from the CRD, ``example/prometheus-operator-crd/
  monitoring.coreos.com_alertmanagerconfigs.yaml``); secrets are keys of one Kubernetes Secret in the
  resource's namespace (``{env: NAME}`` is key ``NAME``); ``{file: PATH}`` has no equivalent there.
"""

from __future__ import annotations

import re
from typing import Any

from provisioner.core.errors import UsageError
from provisioner.core.types import SecretRef
from provisioner.render.alertmanager import BLACKHOLE, DEFAULT_SECRETS_DIR, config
from provisioner.spec.resolved import ResolvedSpec

SECRET_FIELDS = {  # alertmanager.yml *_file field -> the AlertmanagerConfig field holding a SecretKeySelector
    "api_url_file": "apiURL",
    "routing_key_file": "routingKey",
    "api_key_file": "apiKey",
}
CONFIGS = {"slack_configs": "slackConfigs", "pagerduty_configs": "pagerdutyConfigs",
           "opsgenie_configs": "opsgenieConfigs", "webhook_configs": "webhookConfigs"}  # fmt: skip


def _prefixed(spec: ResolvedSpec, name: str) -> str:
    return f"memprov-{spec.env}-{name.removeprefix('memprov-')}"


def fragment(spec: ResolvedSpec, secrets_dir: str = DEFAULT_SECRETS_DIR) -> dict[str, Any]:
    """``route`` (one route for ``route.routes``), ``receivers`` and ``inhibit_rules`` to merge into a config."""
    full = config(spec, secrets_dir)

    def rename(route: dict[str, Any]) -> dict[str, Any]:
        out = {**route, "receiver": _prefixed(spec, route["receiver"])}
        if "routes" in route:
            out["routes"] = [rename(r) for r in route["routes"]]
        return out

    root = full["route"]
    route = {
        "receiver": _prefixed(spec, BLACKHOLE),
        "matchers": [f'memprov_env="{spec.env}"'],
        **{k: root[k] for k in ("group_by", "group_wait", "group_interval", "repeat_interval")},
        "routes": [rename(r) for r in root["routes"]],
    }
    env = f'memprov_env="{spec.env}"'
    inhibit = [
        {**rule, "source_matchers": [env, *rule["source_matchers"]], "target_matchers": [env, *rule["target_matchers"]]}
        for rule in full["inhibit_rules"]
    ]
    receivers = [{**r, "name": _prefixed(spec, r["name"])} for r in full["receivers"]]
    return {"route": route, "receivers": receivers, "inhibit_rules": inhibit}


def _matchers(items: list[str]) -> list[dict[str, str]]:
    out = []
    for text in items:
        m = re.fullmatch(r'([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)"(.*)"', text)
        if m is None:  # pragma: no cover - memprov writes only these
            raise ValueError(f"unexpected matcher {text}")
        out.append({"name": m[1], "matchType": m[2], "value": m[3]})
    return out


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def alertmanager_config(spec: ResolvedSpec, namespace: str, secret: str) -> dict[str, Any]:
    """The prometheus-operator resource; its secrets are keys of Secret ``secret`` in ``namespace``."""
    by_path: dict[str, SecretRef] = {}
    for name, channel in spec.notifications.items():
        for f in ("webhook_url", "routing_key", "api_key", "bearer_token"):
            ref = getattr(channel, f, None)
            if isinstance(ref, SecretRef):
                if ref.file:
                    raise UsageError(
                        f"notifications.{name}.{f}: {{file: {ref.file}}} cannot be read by an AlertmanagerConfig, "
                        f"which reads secrets from Kubernetes Secrets: use {{env: NAME}} (key NAME of Secret {secret}) "
                        "or targets.alertmanager.mode: fragment"
                    )
                by_path[f"/memprov/{ref.env}"] = ref
    frag = fragment(spec, "/memprov")

    def selector(path: str) -> dict[str, str]:
        return {"name": secret, "key": by_path[path].env or ""}

    def integration(cfg: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in cfg.items():
            if key in SECRET_FIELDS:
                out[SECRET_FIELDS[key]] = selector(value)
            elif key == "http_config":
                out["httpConfig"] = {"authorization": {"type": "Bearer",
                                     "credentials": selector(value["authorization"]["credentials_file"])}}  # fmt: skip
            elif key == "details":
                out["details"] = [{"key": k, "value": v} for k, v in sorted(value.items())]
            elif key == "tags":
                out["tags"] = value
            else:
                out[_camel(key)] = value
        if "url" in cfg:
            out["url"] = cfg["url"]
        return out

    receivers = [
        {"name": r["name"], **{CONFIGS[k]: [integration(c) for c in v] for k, v in r.items() if k in CONFIGS}}
        for r in frag["receivers"]
    ]

    def route(r: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"receiver": r["receiver"], "matchers": _matchers(r["matchers"])}
        for key in ("group_by", "group_wait", "group_interval", "repeat_interval", "continue"):
            if key in r:
                out[_camel(key)] = r[key]
        if "routes" in r:
            out["routes"] = [route(x) for x in r["routes"]]
        return out

    inhibit = [
        {"sourceMatch": _matchers(i["source_matchers"]), "targetMatch": _matchers(i["target_matchers"]),
         "equal": i["equal"]}
        for i in frag["inhibit_rules"]
    ]  # fmt: skip
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {
            "name": f"memprov-{spec.env}",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "memprov", "memprov-env": spec.env},
        },
        "spec": {"route": route(frag["route"]), "receivers": receivers, "inhibitRules": inhibit},
    }


def secret_keys(spec: ResolvedSpec) -> list[str]:
    """The keys the AlertmanagerConfig's Secret must hold (each from the environment variable of that name)."""
    keys = set()
    for channel in spec.notifications.values():
        for f in ("webhook_url", "routing_key", "api_key", "bearer_token"):
            ref = getattr(channel, f, None)
            if isinstance(ref, SecretRef) and ref.env:
                keys.add(ref.env)
    return sorted(keys)
