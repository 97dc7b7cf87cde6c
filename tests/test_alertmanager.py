"""Alertmanager routing: amtool validates it, routes go where the spec says, a real Alertmanager
loads it (with secrets written from the environment) and inhibits warnings under a critical."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provisioner.core.yamlio import dumps
from provisioner.render.alertmanager import config
from provisioner.spec.loader import environments, load
from tests.helpers import ROOT, example_repo, memprov

pytestmark = pytest.mark.integration


def _rendered(env: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{env}.yml"
    path.write_text(dumps(config(load(ROOT / "memprov.yaml", env))))
    return path


@pytest.mark.parametrize("env", environments(ROOT / "memprov.yaml"))
def test_amtool_check_config(env: str, tmp_path: Path) -> None:
    result = subprocess.run(["amtool", "check-config", str(_rendered(env, tmp_path))], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _route(path: Path, *labels: str) -> str:
    result = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={path}", *labels], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_routes_follow_the_spec(tmp_path: Path) -> None:
    prod = _rendered("prod", tmp_path)
    job = ("memprov_env=prod", "memprov_job=clv-daily")
    assert _route(prod, *job, "severity=critical") == "ml-oncall-pagerduty,ml-platform-slack"
    assert _route(prod, *job, "severity=warning") == "data-eng-slack,ml-platform-slack"  # the job's own route
    other = ("memprov_env=prod", "memprov_job=image-embed")
    assert _route(prod, *other, "severity=warning") == "ml-platform-slack"
    assert _route(prod, "alertname=Unrelated") == "memprov-blackhole"
    assert _route(prod, "memprov_env=dev", "memprov_job=clv-daily", "severity=critical") == "memprov-blackhole"
    dev = _rendered("dev", tmp_path)  # nobody is paged for dev
    assert _route(dev, "memprov_env=dev", "memprov_job=clv-daily", "severity=critical") == "ml-platform-slack"


def test_no_secret_in_rendered_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.example/T000/SECRET-VALUE")
    text = _rendered("prod", tmp_path).read_text()
    assert "SECRET-VALUE" not in text
    assert "api_url_file: /etc/alertmanager/secrets/SLACK_WEBHOOK_URL" in text
    assert "routing_key_file: /etc/alertmanager/secrets/PD_ROUTING_KEY" in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_am(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A real Alertmanager on 127.0.0.1, started on a minimal config that memprov will replace."""
    cfg = tmp_path / "am" / "alertmanager.yml"
    cfg.parent.mkdir()
    cfg.write_text("route: {receiver: default}\nreceivers: [{name: default}]\n")
    port, cluster = _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            "prometheus-alertmanager",
            f"--config.file={cfg}",
            f"--storage.path={tmp_path / 'amdata'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--cluster.listen-address=127.0.0.1:{cluster}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url, cfg, tmp_path / "secrets"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_live_alertmanager_target(live_am: tuple[str, Path, Path], tmp_path: Path) -> None:
    url, cfg, secrets_dir = live_am
    repo = example_repo(tmp_path / "repo")
    (repo / "environments" / "am.yaml").write_text(
        f"targets:\n  alertmanager: {{type: alertmanager, config_file: '{cfg}', url: '{url}', "
        f"secrets_dir: '{secrets_dir}'}}\n"
    )
    env = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.example/T0/B0/very-secret-1",
        "PD_ROUTING_KEY": "pd-routing-key-very-secret-2",
    }
    plan = memprov("plan", "--env", "am", "--backend", "alertmanager", cwd=repo, env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "very-secret" not in plan.stdout + plan.stderr
    assert "DATA_ENG_SLACK_WEBHOOK_URL is not set" in plan.stdout
    # the hand-written config is not memprov's: refused without --force, nothing written
    refused = memprov("apply", "--env", "am", "--backend", "alertmanager", "--yes", cwd=repo, env=env)
    assert refused.returncode == 1 and "not managed by memprov" in refused.stderr
    assert "memprov" not in cfg.read_text() and not secrets_dir.exists()
    applied = memprov("apply", "--env", "am", "--backend", "alertmanager", "--yes", "--force", cwd=repo, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "very-secret" not in applied.stdout + applied.stderr
    secret = secrets_dir / "SLACK_WEBHOOK_URL"
    assert secret.read_text() == env["SLACK_WEBHOOK_URL"]
    assert oct(os.stat(secret).st_mode & 0o777) == "0o600"
    status = httpx.get(f"{url}/api/v2/status").json()
    assert "memprov-blackhole" in status["config"]["original"]
    assert "very-secret" not in status["config"]["original"]
    replan = memprov("plan", "--env", "am", "--backend", "alertmanager", "--detailed-exitcode", cwd=repo, env=env)
    assert replan.returncode == 0, replan.stdout
    rotated = {**env, "PD_ROUTING_KEY": "pd-routing-key-rotated-3"}
    changed = memprov("plan", "--env", "am", "--backend", "alertmanager", "--detailed-exitcode", cwd=repo, env=rotated)
    assert changed.returncode == 3 and "~ secret" in changed.stdout and "rotated" not in changed.stdout


def test_critical_inhibits_warning_for_the_same_job(live_am: tuple[str, Path, Path], tmp_path: Path) -> None:
    url, cfg, _ = live_am
    cfg.write_text(dumps(config(load(ROOT / "memprov.yaml", "prod"))))
    assert httpx.post(f"{url}/-/reload").status_code == 200

    def alert(job: str, severity: str) -> dict[str, object]:
        return {
            "labels": {
                "alertname": f"BatchJobMemory{severity.title()}",
                "memprov_env": "prod",
                "memprov_job": job,
                "severity": severity,
            }
        }

    body = [alert("clv-daily", "critical"), alert("clv-daily", "warning"), alert("image-embed", "warning")]
    assert httpx.post(f"{url}/api/v2/alerts", json=body).status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alerts = httpx.get(f"{url}/api/v2/alerts").json()
        state = {(a["labels"]["memprov_job"], a["labels"]["severity"]): a["status"]["state"] for a in alerts}
        if state.get(("clv-daily", "warning")) == "suppressed":
            break
        time.sleep(0.3)
    assert state == {
        ("clv-daily", "critical"): "active",
        ("clv-daily", "warning"): "suppressed",
        ("image-embed", "warning"): "active",
    }


def test_every_receiver_type_passes_amtool(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    text = (repo / "memprov.yaml").read_text()
    text = text.replace(
        "notifications:\n",
        "notifications:\n"
        "  ml-opsgenie: {type: opsgenie, api_key: {file: /run/secrets/opsgenie}, priority: P1, team: ml-oncall}\n"
        "  audit-hook: {type: webhook, url: 'https://hooks.example.com/memprov', bearer_token: {env: HOOK_TOKEN},"
        " max_alerts: 20}\n",
    ).replace("    critical: [ml-oncall-pagerduty, ml-platform-slack]", "    critical: [ml-opsgenie, audit-hook]")
    (repo / "memprov.yaml").write_text(text)
    rendered = dumps(config(load(repo / "memprov.yaml", "prod")))
    path = tmp_path / "am.yml"
    path.write_text(rendered)
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "api_key_file: /run/secrets/opsgenie" in rendered
    assert "credentials_file: /etc/alertmanager/secrets/HOOK_TOKEN" in rendered
    assert _route(path, "memprov_env=prod", "memprov_job=doc-embed", "severity=critical") == "ml-opsgenie,audit-hook"


# --- modes for an Alertmanager memprov does not own --------------------------------------------------
FOREIGN = """\
route:
  receiver: team-default
  routes:
    - receiver: ml-platform-slack
      matchers: ['team="payments"']
receivers:
  - name: team-default
  - name: ml-platform-slack
"""


def _merged(fragment: dict, tmp_path: Path) -> Path:  # type: ignore[type-arg]
    """An existing configuration with memprov's fragment merged as its notes say."""
    import yaml

    base = yaml.safe_load(FOREIGN)
    base["route"]["routes"].insert(0, fragment["route"])
    base["receivers"] += fragment["receivers"]
    base["inhibit_rules"] = fragment["inhibit_rules"]
    path = tmp_path / "merged.yml"
    path.write_text(dumps(base))
    return path


def test_a_fragment_merges_into_an_existing_alertmanager_and_leaves_its_routes_alone(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    prod = repo / "environments" / "prod.yaml"
    text = prod.read_text()
    block = "  alertmanager: {type: files, mode: fragment}\n"
    prod.write_text(text.replace("targets:\n", "targets:\n" + block, 1) if "targets:\n" in text
                    else text + "targets:\n" + block, encoding="utf-8")  # fmt: skip
    applied = memprov("apply", "--env", "prod", "--backend", "alertmanager", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "merge memprov-prod.fragment.yml into your alertmanager.yml" in applied.stdout
    import yaml

    written = repo / "out" / "prod" / "alertmanager" / "memprov-prod.fragment.yml"
    merged = _merged(yaml.safe_load(written.read_text()), tmp_path)
    check = subprocess.run(["amtool", "check-config", str(merged)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    job = ("memprov_env=prod", "memprov_job=clv-daily")
    assert (
        _route(merged, *job, "severity=critical") == "memprov-prod-ml-oncall-pagerduty,memprov-prod-ml-platform-slack"
    )
    assert _route(merged, "alertname=Unrelated") == "team-default"  # the full config would send it to the blackhole
    assert _route(merged, "team=payments") == "ml-platform-slack"  # an existing route, untouched
    inhibit = yaml.safe_load(written.read_text())["inhibit_rules"][0]
    assert inhibit["source_matchers"][0] == inhibit["target_matchers"][0] == 'memprov_env="prod"'
    again = memprov("plan", "--env", "prod", "--backend", "alertmanager", "--detailed-exitcode", cwd=repo)
    assert again.returncode == 0, again.stdout


# The fields of monitoring.coreos.com/v1alpha1 AlertmanagerConfig that memprov writes, as the CRD declares them
# (prometheus-operator, example/prometheus-operator-crd/monitoring.coreos.com_alertmanagerconfigs.yaml).
MATCHER = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "value": {"type": "string"},
        "matchType": {"enum": ["!=", "=", "=~", "!~"]},
    },
}
SECRET = {
    "type": "object",
    "required": ["key"],
    "additionalProperties": False,
    "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "optional": {"type": "boolean"}},
}
ROUTE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "receiver": {"type": "string"},
        "matchers": {"type": "array", "items": MATCHER},
        "groupBy": {"type": "array", "items": {"type": "string"}},
        "groupWait": {"type": "string"},
        "groupInterval": {"type": "string"},
        "repeatInterval": {"type": "string"},
        "continue": {"type": "boolean"},
        "routes": {"type": "array", "items": {"$ref": "#/$defs/route"}},
    },
}
RECEIVER_CONFIGS = {
    "slackConfigs": {"apiURL": SECRET, "channel": {"type": "string"}, "sendResolved": {"type": "boolean"},
                     "title": {"type": "string"}, "text": {"type": "string"}},
    "pagerdutyConfigs": {"routingKey": SECRET, "sendResolved": {"type": "boolean"}, "severity": {"type": "string"},
                         "description": {"type": "string"},
                         "details": {"type": "array", "items": {"type": "object", "required": ["key", "value"]}},
                         "links": {"type": "array"}},
    "opsgenieConfigs": {"apiKey": SECRET, "priority": {"type": "string"}, "sendResolved": {"type": "boolean"},
                        "message": {"type": "string"}, "description": {"type": "string"}, "tags": {"type": "string"},
                        "responders": {"type": "array"}},
    "webhookConfigs": {"url": {"type": "string"}, "sendResolved": {"type": "boolean"},
                       "maxAlerts": {"type": "integer", "minimum": 0}, "httpConfig": {"type": "object"}},
}  # fmt: skip
CRD = {
    "$defs": {"route": ROUTE},
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1alpha1"},
        "kind": {"const": "AlertmanagerConfig"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "route": {"$ref": "#/$defs/route"},
                "receivers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            **{
                                k: {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                                               "properties": v}}
                                for k, v in RECEIVER_CONFIGS.items()
                            },
                        },
                    },
                },
                "inhibitRules": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "sourceMatch": {"type": "array", "items": MATCHER},
                            "targetMatch": {"type": "array", "items": MATCHER},
                            "equal": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
    },
}  # fmt: skip


def test_an_alertmanagerconfig_resource_fits_the_crd(tmp_path: Path) -> None:
    import jsonschema

    from provisioner.render.alertmanager_modes import alertmanager_config

    spec = load(ROOT / "memprov.yaml", "prod")
    resource = alertmanager_config(spec, "monitoring", "memprov-alertmanager")
    jsonschema.validate(resource, CRD)
    receivers = {r["name"]: r for r in resource["spec"]["receivers"]}
    slack = receivers["memprov-prod-ml-platform-slack"]["slackConfigs"][0]
    assert slack["apiURL"] == {"name": "memprov-alertmanager", "key": "SLACK_WEBHOOK_URL"}
    assert resource["spec"]["route"]["matchers"] == [{"name": "memprov_env", "matchType": "=", "value": "prod"}]
    repo = example_repo(tmp_path / "repo")
    text = (repo / "memprov.yaml").read_text().replace("webhook_url: {env: SLACK_WEBHOOK_URL}",
                                                       "webhook_url: {file: /run/secrets/slack}")  # fmt: skip
    (repo / "memprov.yaml").write_text(text, encoding="utf-8")
    from provisioner.core.errors import UsageError

    with pytest.raises(
        UsageError, match=re.escape("notifications.ml-platform-slack.webhook_url: {file: /run/secrets/slack}")
    ):
        alertmanager_config(load(repo / "memprov.yaml", "prod"), "monitoring", "memprov-alertmanager")


def test_the_alertmanagerconfig_mode_through_the_cli(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    env = repo / "environments" / "staging.yaml"
    text = env.read_text()
    block = "  alertmanager: {type: files, mode: alertmanagerconfig, namespace: batch}\n"
    env.write_text(text.replace("targets:\n", "targets:\n" + block, 1) if "targets:\n" in text
                   else text + "targets:\n" + block, encoding="utf-8")  # fmt: skip
    applied = memprov("apply", "--env", "staging", "--backend", "alertmanager", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Secret memprov-alertmanager holding keys DATA_ENG_SLACK_WEBHOOK_URL" in applied.stdout.replace("\n", " ")
    import yaml

    written = yaml.safe_load((repo / "out" / "staging" / "alertmanager" / "memprov-staging.alertmanagerconfig.yml")
                             .read_text())  # fmt: skip
    assert written["kind"] == "AlertmanagerConfig" and written["metadata"]["namespace"] == "batch"
    again = memprov("plan", "--env", "staging", "--backend", "alertmanager", "--detailed-exitcode", cwd=repo)
    assert again.returncode == 0, again.stdout
