"""One contract for every live target, each against its real or fake server (tests/contract/).

The same scenarios run on CloudWatch (moto over HTTP), GCP (gRPC fake, real client), Azure (HTTPS
fake ARM, real SDK), Grafana (fake HTTP API), the Mimir ruler (fake), Prometheus (a real server,
reloaded) and Alertmanager (a real server, reloaded): create, an empty re-plan, update, prune of
owned resources only, unowned look-alikes untouched (a desired key taken by one is a conflict),
throttling retried, an edit made since the plan refused (or, for a target that cannot detect one,
overwritten as it declares), a write already made counted as applied, and a failure mid-apply
reported exactly: every line of the report is compared with the service's own state, read by the
test without memprov. What is specific to one service's request bodies stays in its own file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.plan import output, retry
from provisioner.plan.engine import ApplyReport, Outcome
from provisioner.plan.model import Action, Plan
from tests.contract import HARNESSES
from tests.contract.base import Harness, Item, check_report

REAL_SERVERS = {"prometheus", "alertmanager", "cloudwatch"}  # real binaries (moto_server included)


@pytest.fixture(params=[pytest.param(n, marks=pytest.mark.integration) if n in REAL_SERVERS else n for n in HARNESSES])
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    harness = HARNESSES[request.param](tmp_path)
    with harness.running():
        yield harness


def actionable(plan: Plan) -> dict[str, Action]:
    return {c.key: c.action for c in plan.actionable}


def first_apply(h: Harness) -> ApplyReport:
    """From nothing to the spec (taking over a server's own pre-existing file, as apply --force would)."""
    _, report = h.apply(force=bool(h.preexisting))
    assert report.ok, output.report_lines(report)
    return report


# --- create, re-plan, update, prune ----------------------------------------------------------------------------
def test_create_then_an_empty_replan(h: Harness) -> None:
    plan, targets = h.plan()
    desired = h.desired()
    assert not plan.errors and len(desired) == h.total
    assert actionable(plan) == {k: Action.CONFLICT if k in h.preexisting else Action.CREATE for k in desired}
    before = h.view()
    _, report = h.apply(plan, targets, force=bool(h.preexisting))
    assert report.ok and len(report.of(Outcome.APPLIED)) == h.total, output.report_lines(report)
    after = h.view()
    check_report(h, report, before, after)
    assert all(h.holds(want, after) for want in desired.values())
    again, _ = h.plan()
    assert not again.has_changes and again.counts()["no-op"] == h.total, output.text(again)
    assert not h.duplicates()


def test_update_changes_exactly_what_the_spec_changed(h: Harness) -> None:
    first_apply(h)
    h.edit_spec(*h.update)
    plan, targets = h.plan()
    assert actionable(plan) == dict.fromkeys(h.updated, Action.UPDATE)
    assert all(c.diff() for c in plan.actionable)  # the plan shows what changes
    before = h.view()
    _, report = h.apply(plan, targets)
    assert report.ok, output.report_lines(report)
    after = h.view()
    check_report(h, report, before, after)
    assert all(h.holds(h.desired()[k], after) for k in h.updated)
    assert {k: v for k, v in after.items() if k not in h.updated} == {
        k: v for k, v in before.items() if k not in h.updated
    }
    assert not h.plan()[0].has_changes


def test_prune_deletes_owned_resources_only(h: Harness) -> None:
    first_apply(h)
    for key in h.foreign:
        h.plant(key, owned=False)
    if h.stale:
        h.plant(h.stale, owned=True)
    pruned = {k for k, r in h.desired().items() if r.job == "doc-embed"}
    h.edit_spec(*h.prune)
    plan, targets = h.plan()
    expected = dict.fromkeys(pruned | ({h.stale} if h.stale else set()), Action.DELETE)
    assert actionable(plan) == expected | dict.fromkeys(h.prune_updates, Action.UPDATE), output.text(plan)
    before = h.view()
    _, report = h.apply(plan, targets)
    assert report.ok, output.report_lines(report)
    after = h.view()
    check_report(h, report, before, after)
    assert not (set(expected) & {k for k, v in after.items() if v.owned})
    assert {k: after.get(k) for k in h.foreign} == {k: before[k] for k in h.foreign}  # untouched
    assert not h.plan()[0].has_changes


# --- ownership ----------------------------------------------------------------------------------------------------
def test_an_unowned_lookalike_is_a_conflict_and_never_taken_without_force(h: Harness) -> None:
    key = sorted(h.preexisting or h.updated)[0]
    if not h.lookalikes:  # ownership is the name itself: a resource there is memprov's, and is updated
        h.plant(key, owned=True)
        for other in h.foreign:
            h.plant(other, owned=False)
        before = h.view()
        plan, _ = h.plan()
        assert plan.counts()["conflict"] == 0 and actionable(plan)[key] is Action.UPDATE
        first_apply(h)
        assert {k: h.view().get(k) for k in h.foreign} == {k: before[k] for k in h.foreign}
        return
    h.plant(key, owned=False)
    for other in h.foreign:
        h.plant(other, owned=False)
    plan, targets = h.plan()
    assert actionable(plan)[key] is Action.CONFLICT and not set(h.foreign) & set(actionable(plan))
    assert any("not managed by memprov" in p for p in plan.safety_problems())
    before = h.view()
    _, report = h.apply(plan, targets)  # what apply does when nobody refused the plan
    failed = {r.change.key: r.message for r in report.of(Outcome.FAILED)}
    assert key in failed and "not managed by memprov" in failed[key] and "--force" in failed[key]
    after = h.view()
    check_report(h, report, before, after)
    assert after[key] == before[key] and not after[key].owned  # untouched
    _, report = h.apply(force=True)  # apply --force after review: taken over
    assert report.ok, output.report_lines(report)
    after = h.view()
    assert h.holds(h.desired()[key], after)
    assert {k: after.get(k) for k in h.foreign} == {k: before[k] for k in h.foreign}
    assert not h.plan()[0].has_changes


# --- faults -------------------------------------------------------------------------------------------------------
def test_throttling_is_retried_per_request_honouring_the_service(h: Harness) -> None:
    key = sorted(h.desired())[0]
    h.chaos.rule("429", h.is_read, times=1)
    h.chaos.rule("429", lambda r: h.is_write(r, key), times=2)
    h.chaos.rule("503", h.is_read, times=1)
    first_apply(h)
    assert h.chaos.injected["429"] == 3 and h.chaos.injected["503"] == 1
    assert len(h.retries) == 4  # each failed request retried once, nothing more
    assert 1.0 in h.sleeps  # the service's Retry-After (RetryInfo, x-amz-retry-after) was honoured
    after = h.view()
    assert all(h.holds(want, after) for want in h.desired().values())
    assert not h.duplicates()


def test_an_edit_since_the_plan_is_refused_or_overwritten_as_declared(h: Harness) -> None:
    first_apply(h)
    h.edit_spec(*h.update)
    plan, targets = h.plan()
    key = sorted(h.updated)[0]
    h.edit(key)
    edited = h.view()[key]
    _, report = h.apply(plan, targets)
    outcome = {r.change.key: r for r in report.results}[key]
    if targets[h.backend].DETECTS_EDITS:
        assert outcome.outcome is Outcome.FAILED and "since the plan" in outcome.message, outcome
        assert h.view()[key] == edited  # the edit survives
        _, report = h.apply()  # a new plan shows the edit; applying it is a decision made after review
        assert report.ok
    else:  # declared: last writer wins
        assert outcome.outcome is Outcome.APPLIED
    assert h.holds(h.desired()[key])
    assert not h.plan()[0].has_changes


def test_an_edit_since_the_plan_blocks_a_delete_as_declared(h: Harness) -> None:
    first_apply(h)
    if not h.stale:  # declared: one resource, never deleted by a prune
        h.edit_spec(*h.prune)
        assert Action.DELETE not in actionable(h.plan()[0]).values()
        return
    h.plant(h.stale, owned=True)
    plan, targets = h.plan()
    assert actionable(plan) == {h.stale: Action.DELETE}
    h.edit(h.stale)
    edited = h.view()[h.stale]
    _, report = h.apply(plan, targets)
    [result] = report.results[: len(plan.actionable)]
    if targets[h.backend].DETECTS_EDITS:
        assert result.outcome is Outcome.FAILED and "was not deleted" in result.message, result
        assert h.view()[h.stale] == edited
    else:
        assert result.outcome is Outcome.APPLIED and not h.view().get(h.stale, Item(None, False)).owned


def test_a_change_already_made_is_applied_not_refused(h: Harness) -> None:
    """What memprov's own earlier attempt left (its answer lost): live already is as desired."""
    first_apply(h)
    h.edit_spec(*h.update)
    plan, targets = h.plan()
    key = sorted(h.updated)[0]
    h.put(h.desired()[key])
    _, report = h.apply(plan, targets)
    assert report.ok, output.report_lines(report)
    assert h.holds(h.desired()[key])
    assert not h.plan()[0].has_changes


def test_a_lost_answer_is_read_back_not_reported_as_a_failure(h: Harness) -> None:
    key = sorted(h.desired())[0]
    h.chaos.rule("lost", lambda r: h.is_write(r, key), times=None)  # carried out, every answer lost
    before = h.view()
    _, report = h.apply(force=bool(h.preexisting))
    assert report.ok, output.report_lines(report)
    assert h.chaos.injected["lost"] >= 1
    after = h.view()
    check_report(h, report, before, after)
    assert not h.duplicates()
    assert not h.plan()[0].has_changes


def test_a_failure_mid_apply_is_reported_exactly(h: Harness) -> None:
    keys = sorted(h.desired())
    if h.stale:
        h.plant(h.stale, owned=True)
    refused = broken = None
    if h.local_writes:  # the wire carries only the reload: it fails for good
        h.chaos.rule("503", lambda r: h.is_write(r, ""), times=None)
    else:
        refused, broken = keys[0], keys[-1]
        said = h.refuse(refused)
        h.chaos.rule("503", lambda r: h.is_write(r, broken), times=None)  # past every retry
    plan, targets = h.plan()
    assert not plan.errors
    before = h.view()
    _, report = h.apply(plan, targets, force=bool(h.preexisting))
    after = h.view()
    check_report(h, report, before, after)
    failed = {
        r.change.kind if r.change.kind == "finish" else r.change.key: r.message for r in report.of(Outcome.FAILED)
    }
    skipped = {r.change.key for r in report.of(Outcome.SKIPPED)}
    applied = {r.change.key for r in report.of(Outcome.APPLIED)}
    if h.local_writes:
        assert set(failed) == {"finish"} and "does not run" in failed["finish"]
        assert applied == set(keys) | ({h.stale} if h.stale else set())
    else:
        assert refused is not None and broken is not None
        assert set(failed) == {refused, broken}, failed
        assert said in failed[refused]
        assert "gave up after 5 attempts" in failed[broken] and retry.NOT_CHANGED in failed[broken]
        assert skipped == ({h.stale} if h.stale else set())  # deletes wait until the creates succeed
        assert applied == set(keys) - {refused, broken}
        text = "\n".join(line for _, line in output.report_lines(report))
        total = len(keys) + bool(h.stale)
        assert f"Apply incomplete: {total - 2 - bool(h.stale)} of {total} changes applied, 2 failed" in text
    shown = "\n".join(line for _, line in output.report_lines(report)) + output.as_json(plan)
    assert not [secret for secret in h.secrets if secret in shown]  # redacted everywhere
    h.chaos.clear()
    replan, _ = h.plan()  # exactly what did not happen, as the service shows it, is left to do
    desired = h.desired()
    left = {k: Action.CREATE for k, want in desired.items() if not h.holds(want, after)}
    if h.stale and h.stale in after:
        left[h.stale] = Action.DELETE
    assert actionable(replan) == left, output.text(replan)
    if not h.local_writes:
        assert left == {refused: Action.CREATE, broken: Action.CREATE} | ({h.stale: Action.DELETE} if h.stale else {})
    _, report = h.apply(force=bool(h.preexisting))
    assert report.ok, output.report_lines(report)
    assert not h.plan()[0].has_changes
