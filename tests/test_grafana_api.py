"""What is Grafana's own in the live Grafana target: the folder, commit messages, versions and
``overwrite`` on each save, a change described in words, tokens and roles (a fake Grafana on 127.0.0.1,
through memprov's real client and backend), and the files target of the same backend.

The scenarios every live target shares (create, re-plan, update, prune, look-alikes, throttling, edits
since the plan, lost answers, failures mid-apply) are in tests/test_backend_contract.py
(:class:`tests.contract.grafana.GrafanaHarness`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.backends.registry import build
from provisioner.plan import output
from provisioner.plan.engine import ApplyReport, Outcome, apply
from provisioner.plan.model import Action, Plan
from provisioner.plan.planner import Binding, make_plan
from provisioner.plan.retry import RetryPolicy
from provisioner.spec.loader import load
from tests.fakes.grafana import ADMIN_TOKEN, VIEWER_TOKEN, FakeGrafana, live_repo, serve
from tests.helpers import targets_of

ENV = "live"
JOB_UID = "memprov-live-clv-daily"
OWNED_TAGS = ["managed-by:memprov", "memprov-env:live", "memprov-spec:batch-inference"]


class Live:
    """A fake Grafana, a repository targeting it, and helpers to plan and apply like the CLI does."""

    def __init__(self, fake: FakeGrafana, url: str, repo: Path) -> None:
        self.fake, self.url, self.repo = fake, url, repo
        self.sleeps: list[float] = []
        self.retry = RetryPolicy(attempts=4, sleep=self.sleeps.append)

    def backends(self) -> list[Binding]:
        return build(load(self.repo / "memprov.yaml", ENV), ["grafana"])

    def plan(self) -> tuple[Plan, list[Binding]]:
        backends = self.backends()
        return make_plan(ENV, "batch-inference", backends, retry=self.retry), backends

    def apply(self, force: bool = False) -> ApplyReport:
        plan, backends = self.plan()
        assert not plan.errors, plan.errors
        return apply(plan, targets_of(backends), retry=self.retry, force=force)

    def edit_spec(self, old: str, new: str) -> None:
        spec = self.repo / "memprov.yaml"
        text = spec.read_text(encoding="utf-8")
        assert old in text
        spec.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    monkeypatch.setenv("GRAFANA_TOKEN", ADMIN_TOKEN)
    with serve() as (fake, url):
        yield Live(fake, url, live_repo(tmp_path / "repo", url))


def actions(plan: Plan) -> dict[str, Action]:
    return {c.key: c.action for c in plan.changes}


def owned_dashboard(uid: str, title: str, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": OWNED_TAGS if tags is None else tags,
        "schemaVersion": 39,
        "panels": [],
        "templating": {"list": []},
        "annotations": {"list": []},
    }


def test_a_create_makes_the_folder_once_and_saves_new_dashboards(live: Live) -> None:
    plan, _ = live.plan()
    assert actions(plan) == {
        "memprov-live-clv-daily": Action.CREATE,
        "memprov-live-doc-embed": Action.CREATE,
        "memprov-live-feature-batch": Action.CREATE,
        "memprov-live-image-embed": Action.CREATE,
        "memprov-live-overview": Action.CREATE,
    }
    assert plan.backends[0].target.startswith(f"api {live.url} folder 'memprov (live)'")
    report = live.apply()
    assert report.ok and len(report.of(Outcome.APPLIED)) == 5
    assert live.fake.folders["memprov-live"]["title"] == "memprov (live)"
    assert len(live.fake.calls("POST", "/api/folders")) == 1
    for uid, entry in live.fake.dashboards.items():
        assert entry["folderUid"] == "memprov-live"
        assert entry["message"].startswith("memprov apply: create memprov · "), entry["message"]
        assert set(OWNED_TAGS) <= set(entry["dashboard"]["tags"]), uid
    saves = live.fake.calls("POST", "/api/dashboards/db")
    assert all(r.body["overwrite"] is False and "version" not in r.body["dashboard"] for r in saves)
    again, _ = live.plan()
    assert not again.has_changes, [(c.key, c.action, c.details) for c in again.actionable]
    assert again.backends[0].live_owned == 5


def test_update_sends_the_planned_version_and_says_what_changed(live: Live) -> None:
    assert live.apply().ok
    before = live.fake.version(JOB_UID)
    live.edit_spec("thresholds: {warning: 1.5x p95, critical: 7.5Gi}", "thresholds: {warning: 1.5x p95, critical: 7Gi}")
    plan, _ = live.plan()
    updates = {c.key: c for c in plan.actionable}
    assert set(updates) == {JOB_UID, "memprov-live-overview"}
    details = "\n".join(updates[JOB_UID].details)
    assert 'panel "Working set vs limit": thresholds green from -∞, orange from 6GiB, red from 7.5GiB → ' in details
    assert "red from 7GiB" in details
    assert 'panel "Percent of limit (now)": thresholds' in details
    report = live.apply()
    assert report.ok, output.report_lines(report)
    save = [r for r in live.fake.calls("POST", "/api/dashboards/db") if r.body["dashboard"]["uid"] == JOB_UID][-1]
    assert save.body["dashboard"]["version"] == before and save.body["overwrite"] is False
    assert save.body["message"].startswith("memprov apply: update ")
    assert live.fake.version(JOB_UID) == before + 1
    assert not live.plan()[0].has_changes


def test_a_take_over_saves_at_the_version_read(live: Live) -> None:
    live.fake.seed(owned_dashboard(JOB_UID, "Someone's CLV dashboard", ["clv"]))
    live.fake.seed(owned_dashboard("clv-copy", "memprov · Customer lifetime value (daily) (live)", OWNED_TAGS[:1]))
    plan, _ = live.plan()
    assert actions(plan)[JOB_UID] is Action.CONFLICT
    assert "clv-copy" not in actions(plan)  # the same title, not memprov's uid nor all its tags
    report = live.apply(force=True)  # what apply --force does after review: take it over at the version read
    assert report.ok, output.report_lines(report)
    take_over = [r for r in live.fake.calls("POST", "/api/dashboards/db") if r.body["dashboard"]["uid"] == JOB_UID]
    assert take_over[0].body["overwrite"] is False and take_over[0].body["dashboard"]["version"] == 1
    assert take_over[0].body["message"].startswith("memprov apply: take over ")
    assert live.fake.dashboards["clv-copy"]["dashboard"]["version"] == 1  # untouched
    assert not live.plan()[0].has_changes


def test_edit_in_the_ui_since_the_plan_is_refused_unless_forced(live: Live) -> None:
    assert live.apply().ok
    live.edit_spec("limit: 16Gi", "limit: 20Gi")
    plan, backends = live.plan()
    uid = "memprov-live-image-embed"
    assert actions(plan)[uid] is Action.UPDATE

    def edit(d: dict[str, Any]) -> None:
        d["title"] = "edited by hand"

    live.fake.ui_edit(uid, edit)  # after the plan, before the apply
    report = apply(plan, targets_of(backends), retry=live.retry)
    failed = {r.change.key: r.message for r in report.of(Outcome.FAILED)}
    assert set(failed) == {uid}
    assert "was changed in Grafana since the plan (planned against version 1; version-mismatch)" in failed[uid]
    assert "--force" in failed[uid]
    assert live.fake.dashboards[uid]["dashboard"]["title"] == "edited by hand"  # the edit survives
    again, _ = live.plan()
    assert "dashboard title: 'edited by hand' → \"memprov · Image batch inference (live)\"".replace('"', "'") in (
        "\n".join(c for ch in again.actionable for c in ch.details)
    )
    plan, backends = live.plan()
    live.fake.ui_edit(uid, edit)
    report = apply(plan, targets_of(backends), retry=live.retry, force=True)
    assert report.ok, output.report_lines(report)
    assert live.fake.dashboards[uid]["dashboard"]["title"] == "memprov · Image batch inference (live)"
    assert live.fake.calls("POST", "/api/dashboards/db")[-1].body["overwrite"] is True


def test_bad_token_is_a_clear_error(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_not_a_valid_token")
    plan, _ = live.plan()
    [error] = plan.errors
    assert "Grafana rejected the token (401 Unauthorized)" in error and "glsa_not_a_valid_token" not in error
    monkeypatch.delenv("GRAFANA_TOKEN")
    plan, _ = live.plan()
    assert "environment variable GRAFANA_TOKEN is not set" in plan.errors[0]


def test_read_only_token_can_plan_but_not_apply(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", VIEWER_TOKEN)
    plan, backends = live.plan()
    assert not plan.errors and len(plan.actionable) == 5
    report = apply(plan, targets_of(backends), retry=live.retry)
    assert len(report.of(Outcome.FAILED)) == 5
    message = report.of(Outcome.FAILED)[0].message
    assert "403 Forbidden" in message and "Editor role" in message
    assert live.fake.dashboards == {} and live.fake.folders == {}


def test_existing_folder_is_reused_and_vanished_dashboards_are_fine(live: Live) -> None:
    live.fake.folders["memprov-live"] = {"id": 1, "uid": "memprov-live", "title": "memprov (live)", "version": 1}
    live.fake.seed(owned_dashboard("memprov-live-retired-job", "memprov · retired (live)"))
    plan, backends = live.plan()
    del live.fake.dashboards["memprov-live-retired-job"]  # deleted by someone else before apply: nothing to do
    report = apply(plan, targets_of(backends), retry=live.retry)
    assert report.ok, output.report_lines(report)
    assert live.fake.calls("POST", "/api/folders") == []


def test_the_files_target_creates_replans_updates_and_prunes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The grafana backend's files target (dashboards and a provisioning file) through the same steps."""
    monkeypatch.setenv("GRAFANA_TOKEN", ADMIN_TOKEN)
    with serve() as (fake, url):
        repo = live_repo(tmp_path / "repo", url)
        (repo / "environments" / f"{ENV}.yaml").write_text(f"grafana_url: {url}\n", encoding="utf-8")
        env = Live(fake, url, repo)
        first, _ = env.plan()
        assert first.counts()["create"] == 6  # the dashboards and the provisioning file
        assert env.apply().ok
        assert not env.plan()[0].has_changes
        env.edit_spec(
            "      thresholds: {warning: 75%, critical: 90%}", "      thresholds: {warning: 70%, critical: 90%}"
        )
        assert {c.action for c in env.plan()[0].actionable} == {Action.UPDATE}
        assert env.apply().ok
        env.edit_spec(
            "    growth: {factor: 3, window: 15m}", "    growth: {factor: 3, window: 15m}\n    backends: [prometheus]"
        )
        pruned, _ = env.plan()
        assert {c.key: c.action for c in pruned.actionable} == {
            "memprov-live-doc-embed": Action.DELETE,
            "memprov-live-overview": Action.UPDATE,
        }
        assert env.apply().ok
        assert not env.plan()[0].has_changes
        assert not fake.dashboards  # nothing went to Grafana
        dashboards = repo / "out" / ENV / "grafana" / "dashboards"
        assert sorted(f.name for f in dashboards.iterdir()) == [
            "memprov-live-clv-daily.json",
            "memprov-live-feature-batch.json",
            "memprov-live-image-embed.json",
            "memprov-live-overview.json",
        ]


def test_grafana_12_returning_migrated_dashboards_is_not_a_permanent_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grafana 12 migrates a dashboard to its latest schema version when it is read (schemaVersion 39 -> 43,
    ``refresh`` a string, ``timepicker.time_options`` gone, ...): the plan compares both sides migrated alike."""
    monkeypatch.setenv("GRAFANA_TOKEN", ADMIN_TOKEN)
    with serve(FakeGrafana(migrate_on_read=True)) as (fake, url):
        live = Live(fake, url, live_repo(tmp_path / "repo", url))
        assert live.apply().ok
        assert fake.dashboards[JOB_UID]["dashboard"]["schemaVersion"] == 39  # stored as saved, shown migrated
        again, _ = live.plan()
        assert not again.has_changes, [(c.key, c.action, c.details) for c in again.actionable]
        live.edit_spec("critical: 7.5Gi}", "critical: 7Gi}")
        changed, _ = live.plan()
        assert {c.key for c in changed.actionable} == {JOB_UID, "memprov-live-overview"}
        assert not [d for c in changed.actionable for d in c.details if "schemaVersion" in d]
