"""The live Grafana target through the real entry point (``python -m provisioner``) and a fake Grafana.

The fake runs in this process on 127.0.0.1; memprov runs as a user would, in a subprocess, with
the service-account token in ``GRAFANA_TOKEN``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.grafana import ADMIN_TOKEN, FakeGrafana, live_repo, serve
from tests.helpers import memprov

TOKEN = {"GRAFANA_TOKEN": ADMIN_TOKEN}


@pytest.fixture
def grafana(tmp_path: Path) -> Iterator[tuple[FakeGrafana, str, Path]]:
    with serve() as (fake, url):
        yield fake, url, live_repo(tmp_path / "repo", url)


def test_plan_apply_replan_through_the_cli(grafana: tuple[FakeGrafana, str, Path]) -> None:
    fake, url, repo = grafana
    plan = memprov(
        "plan", "--env", "live", "-b", "grafana", "--detailed-exitcode", "--format", "markdown", cwd=repo, env=TOKEN
    )
    assert plan.returncode == 3, plan.stdout + plan.stderr
    assert f"| grafana | `api {url} folder 'memprov (live)'` | 5 | 0 | 0 | 0 |" in plan.stdout
    applied = memprov("apply", "--env", "live", "-b", "grafana", "--yes", cwd=repo, env=TOKEN)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "5 of 5 changes applied" in applied.stdout
    assert sorted(fake.dashboards) == [
        "memprov-live-clv-daily",
        "memprov-live-doc-embed",
        "memprov-live-feature-batch",
        "memprov-live-image-embed",
        "memprov-live-overview",
    ]
    again = memprov("plan", "--env", "live", "-b", "grafana", "--detailed-exitcode", cwd=repo, env=TOKEN)
    assert again.returncode == 0, again.stdout
    assert "0 to create, 0 to update, 0 to delete, 5 unchanged" in again.stdout
    assert ADMIN_TOKEN not in plan.stdout + applied.stdout + again.stdout + applied.stderr


def test_conflict_is_refused_without_force_and_taken_over_with_it(grafana: tuple[FakeGrafana, str, Path]) -> None:
    fake, _, repo = grafana
    fake.seed({"uid": "memprov-live-clv-daily", "title": "hand-made", "tags": [], "schemaVersion": 39, "panels": []})
    refused = memprov("apply", "--env", "live", "-b", "grafana", "--yes", cwd=repo, env=TOKEN)
    assert refused.returncode == 1
    assert "! dashboard memprov-live-clv-daily" in refused.stdout and "not managed by memprov" in refused.stdout
    assert "refusing to apply (nothing was changed)" in refused.stderr
    assert fake.dashboards["memprov-live-clv-daily"]["dashboard"]["title"] == "hand-made"
    forced = memprov("apply", "--env", "live", "-b", "grafana", "--yes", "--force", cwd=repo, env=TOKEN)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert fake.dashboards["memprov-live-clv-daily"]["dashboard"]["title"].startswith("memprov · ")


def test_errors_are_clear_and_exit_1(grafana: tuple[FakeGrafana, str, Path]) -> None:
    _, _, repo = grafana
    bad = memprov("plan", "--env", "live", "-b", "grafana", cwd=repo, env={"GRAFANA_TOKEN": "glsa_wrong_token_123"})
    assert bad.returncode == 1
    assert "cannot read live state: Grafana: GET" in bad.stdout
    assert "Grafana rejected the token (401 Unauthorized)" in bad.stdout
    assert "glsa_wrong_token_123" not in bad.stdout + bad.stderr
    missing = memprov("plan", "--env", "live", "-b", "grafana", cwd=repo, env={"GRAFANA_TOKEN": ""})
    assert missing.returncode == 1


def test_unreachable_grafana_is_a_clear_error(tmp_path: Path) -> None:
    repo = live_repo(tmp_path / "repo", "http://127.0.0.1:9")
    result = memprov("plan", "--env", "live", "-b", "grafana", cwd=repo, env=TOKEN)
    assert result.returncode == 1
    assert "Grafana: GET http://127.0.0.1:9/api/search" in result.stdout
    assert "cannot connect (ConnectError); check the URL" in result.stdout


def test_example_prod_environment_uses_the_api_target(tmp_path: Path) -> None:
    from provisioner.backends.grafana_api import GrafanaApiConfig
    from provisioner.backends.registry import configure
    from provisioner.spec.loader import load
    from tests.helpers import ROOT

    config = configure(load(ROOT / "memprov.yaml", "prod"))["grafana"]
    assert isinstance(config, GrafanaApiConfig)
    assert (config.url, config.folder, config.token.env) == (
        "https://grafana.example.com",
        "memprov (prod)",
        "GRAFANA_TOKEN",
    )
    assert memprov("validate", cwd=ROOT).returncode == 0
