"""The README's "Connect to real servers", done as written: its environment files (extracted from the
README) applied to a real Prometheus (reloaded, every group loaded), a real Alertmanager (its secret
files written 0600), Grafana's HTTP API and Mimir's ruler (local fakes, tests/fakes) with their tokens;
docs/servers/prometheus.yml's rule_files reloaded after a files apply; and docs/compose.yaml, whose
mounted paths and secrets are checked against what `memprov apply --env local` writes."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fakes.grafana import ADMIN_TOKEN, serve
from tests.fakes.ruler import FakeRuler
from tests.helpers import ROOT, example_repo, memprov

README = (ROOT / "README.md").read_text(encoding="utf-8")
JOBS = ("clv-daily", "doc-embed", "feature-batch", "image-embed")
SECRETS = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.example/T0/B0/secret-1",
    "PD_ROUTING_KEY": "pd-routing-key-secret-2",
    "DATA_ENG_SLACK_WEBHOOK_URL": "https://hooks.slack.example/T0/B1/secret-3",
}


def readme_block(first_line: str) -> str:
    """The README's fenced block whose first line is ``first_line``."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README[README.index("## Connect to real servers") :], re.S)
    found = [b for b in blocks if b.startswith(first_line + "\n")]
    assert len(found) == 1, f"README: one block starting {first_line!r}"
    return found[0]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not become ready")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real Prometheus on docs/servers/prometheus.yml, its rule directory moved to a temporary one."""
    rules = tmp_path / "prometheus-rules"
    rules.mkdir()
    config = tmp_path / "prometheus.yml"
    text = (ROOT / "docs" / "servers" / "prometheus.yml").read_text()
    assert "/etc/prometheus/memprov/*.rules.yaml" in text
    config.write_text(text.replace("/etc/prometheus/memprov", str(rules)))
    port = _port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _ready(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}", rules
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    config = tmp_path / "alertmanager" / "alertmanager.yml"
    config.parent.mkdir()
    config.write_text("route: {receiver: default}\nreceivers: [{name: default}]\n")  # the hand-written one
    port = _port()
    proc = subprocess.Popen(
        [
            "prometheus-alertmanager",
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--cluster.listen-address=127.0.0.1:{_port()}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _ready(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}", config
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _loaded_groups(url: str) -> list[str]:
    return sorted(g["name"] for g in httpx.get(f"{url}/api/v1/rules").json()["data"]["groups"])


@pytest.mark.integration
def test_files_target_then_reload_as_prometheus_yml_says(tmp_path: Path, prometheus: tuple[str, Path]) -> None:
    url, rules = prometheus
    repo = example_repo(tmp_path / "repo")
    (repo / "environments" / "local.yaml").write_text(
        (repo / "environments" / "local.yaml").read_text()
        + f"targets:\n  prometheus: {{type: files, dir: '{rules}'}}\n"
    )
    assert memprov("apply", "--backend", "prometheus", "--yes", cwd=repo).returncode == 0
    assert _loaded_groups(url) == []  # written, not yet read
    assert httpx.post(f"{url}/-/reload").status_code == 200
    assert _loaded_groups(url) == sorted(f"memprov-local-{j}{part}" for j in JOBS for part in ("", "-slow"))


@pytest.mark.integration
def test_the_readmes_environment_against_real_servers(
    tmp_path: Path, prometheus: tuple[str, Path], alertmanager: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    prom_url, rules = prometheus
    am_url, am_config = alertmanager
    secrets_dir = tmp_path / "alertmanager-secrets"
    with serve() as (grafana, grafana_url):
        env_file = readme_block("# environments/prod.yaml: a Prometheus, an Alertmanager and Grafana's API")
        for old, new in (
            ("http://prometheus:9090", prom_url),
            ("/etc/prometheus/memprov", str(rules)),
            ("http://alertmanager:9093", am_url),
            ("/etc/alertmanager/alertmanager.yml", str(am_config)),
            ("/etc/alertmanager/secrets", str(secrets_dir)),
            ("https://grafana.example.com", grafana_url),
        ):
            assert old in env_file
            env_file = env_file.replace(old, new)
        repo = example_repo(tmp_path / "repo")
        (repo / "environments" / "prod.yaml").write_text(env_file)
        env = {"GRAFANA_TOKEN": ADMIN_TOKEN, **SECRETS}
        plan = memprov("plan", "--env", "prod", cwd=repo, env=env)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        applied = memprov(
            "apply", "--env", "prod", "--yes", "--force", cwd=repo, env=env
        )  # replaces the hand-written config
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert not any(v in applied.stdout + applied.stderr for v in SECRETS.values())
        # Prometheus: reloaded by memprov, every group loaded
        assert _loaded_groups(prom_url) == sorted(f"memprov-prod-{j}{part}" for j in JOBS for part in ("", "-slow"))
        # Alertmanager: memprov's config loaded, each secret in its own file, mode 0600, never in the config
        original = httpx.get(f"{am_url}/api/v2/status").json()["config"]["original"]
        assert "memprov-blackhole" in original and "-secret-" not in original
        for name, value in SECRETS.items():
            path = secrets_dir / name
            assert path.read_text() == value and oct(path.stat().st_mode & 0o777) == "0o600"
            assert f"{secrets_dir}/{name}" in original
        # Grafana: the dashboards saved through the API with the token, in the README's folder
        uids = sorted(grafana.dashboards)
        assert uids == sorted([f"memprov-prod-{j}" for j in JOBS] + ["memprov-prod-overview"])
        assert {f["title"] for f in grafana.folders.values()} == {"memprov (prod)"}
        again = memprov("plan", "--env", "prod", "--detailed-exitcode", cwd=repo, env=env)
        assert again.returncode == 0, again.stdout


def test_the_readmes_mimir_environment(tmp_path: Path) -> None:
    ruler = FakeRuler(token="mimir-token")
    try:
        env_file = readme_block("# environments/prod.yaml: rules in Mimir's ruler instead")
        assert "https://mimir.example.com" in env_file
        repo = example_repo(tmp_path / "repo")
        (repo / "environments" / "prod.yaml").write_text(env_file.replace("https://mimir.example.com", ruler.url))
        refused = memprov("plan", "--env", "prod", "--backend", "prometheus", cwd=repo, env={"MIMIR_TOKEN": "wrong"})
        assert refused.returncode == 1
        env = {"MIMIR_TOKEN": "mimir-token"}
        applied = memprov("apply", "--env", "prod", "--backend", "prometheus", "--yes", cwd=repo, env=env)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert sorted(ruler.groups("ml-batch", "memprov-batch-inference-prod")) == sorted(
            f"memprov-prod-{j}{part}" for j in JOBS for part in ("", "-slow")
        )
    finally:
        ruler.close()


def _mounts(service: dict[str, object]) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes", []):  # type: ignore[attr-defined]
        source, target = str(volume).split(":")[:2]
        out.append((source, target))
    return out


def test_compose_mounts_what_memprov_writes(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    shutil.copytree(ROOT / "docs", repo / "docs")
    assert memprov("apply", "--env", "local", "--yes", cwd=repo).returncode == 0
    compose = yaml.safe_load((repo / "docs" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"prometheus", "alertmanager", "grafana"}
    for name, service in services.items():
        assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+", service["image"]), name  # pinned
        for source, _ in _mounts(service):
            assert (repo / "docs" / source).exists(), f"{name} mounts {source}, which does not exist"
    # Prometheus: its config's rule_files glob is where the rule files are mounted, and matches them
    prom = dict(_mounts(services["prometheus"]))
    config = yaml.safe_load((repo / "docs" / "servers" / "prometheus.yml").read_text())
    [glob] = config["rule_files"]
    mounted = next(s for s, t in prom.items() if glob.startswith(t + "/"))
    assert sorted(p.name for p in (repo / "docs" / mounted).glob(Path(glob).name)) == sorted(
        f"memprov-local-{j}{part}.rules.yaml" for j in JOBS for part in ("", "-slow")
    )
    assert "--web.enable-lifecycle" in services["prometheus"]["command"]
    # Alertmanager: the config file is in a mounted directory; every secret file it reads is a compose secret
    am = services["alertmanager"]
    config_file = next(c.split("=", 1)[1] for c in am["command"] if c.startswith("--config.file="))
    source = next(s for s, t in _mounts(am) if config_file.startswith(t + "/"))
    rendered = (repo / "docs" / source / Path(config_file).name).read_text()
    read = set(re.findall(r"_file: (/etc/alertmanager/secrets/\S+)", rendered))
    assert read == {s["target"] for s in am["secrets"]}
    assert {s["source"] for s in am["secrets"]} == set(compose["secrets"]) == set(SECRETS)
    assert all(v == {"environment": k} for k, v in compose["secrets"].items())
    # Grafana: the data source uid the dashboards use, and memprov's provider in the provisioning directory
    graf = dict(_mounts(services["grafana"]))
    ds = yaml.safe_load((repo / "docs" / "servers" / "grafana-datasource.yaml").read_text())["datasources"][0]
    board = (repo / "out" / "local" / "grafana" / "dashboards" / "memprov-local-clv-daily.json").read_text()
    assert f'"value": "{ds["uid"]}"' in board
    provisioning = next(s for s, t in graf.items() if t == "/etc/grafana/provisioning/dashboards")
    assert [p.name for p in (repo / "docs" / provisioning).iterdir()] == ["memprov-local.yaml"]
    dashboards = next(s for s, t in graf.items() if t.startswith("/var/lib/grafana/dashboards/"))
    assert len(list((repo / "docs" / dashboards).glob("*.json"))) == len(JOBS) + 1
    assert os.path.basename(dashboards) == "dashboards"
