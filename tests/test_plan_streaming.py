"""Plans against files targets stream: one resource rendered and compared at a time, unchanged files
recognised by their text without being parsed, unchanged resources kept without bodies; the plan is
the one the list-based planner makes, whatever the state of the files; files memprov wrote that are
bigger than a spec file may be are still read."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from provisioner.backends.files import FilesTarget
from provisioner.backends.prometheus import PrometheusBackend
from provisioner.backends.registry import build
from provisioner.core.yamlio import MAX_BYTES
from provisioner.plan.engine import Outcome, apply
from provisioner.plan.model import Action, Plan, Resource
from provisioner.plan.planner import make_plan
from provisioner.spec.loader import load
from tests.helpers import example_repo, targets_of


class Listed(FilesTarget):
    """The same files target, planned the list-based way (read everything, then diff)."""

    STREAMS: ClassVar[bool] = False


def plans(repo: Path, env: str = "local") -> tuple[Plan, Plan]:
    spec = load(repo / "memprov.yaml", env)
    streamed = build(spec)
    listed = [(b, Listed(t.root, t.display, t.codec)) for b, t in streamed]
    assert all(t.STREAMS for _, t in streamed if isinstance(t, FilesTarget))
    return make_plan(env, spec.name, streamed), make_plan(env, spec.name, listed)


def summary(plan: Plan) -> list[tuple[str, str, str, object, object]]:
    return [
        (c.backend, c.action.value, c.key, c.desired, c.live) for c in plan.changes if c.action is not Action.NOOP
    ] + [(c.backend, c.action.value, c.key, None, None) for c in plan.changes if c.action is Action.NOOP]


def test_streamed_and_listed_plans_agree_in_every_state(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    streamed, listed = plans(repo)  # nothing there: all creates
    assert summary(streamed) == summary(listed) and streamed.checksum == listed.checksum
    assert {c.action for c in streamed.changes} == {Action.CREATE}
    spec = load(repo / "memprov.yaml")
    bindings = build(spec)
    assert apply(make_plan("local", spec.name, bindings), targets_of(bindings)).ok
    prom = repo / "out" / "local" / "prometheus"
    edited = prom / "memprov-local-clv-daily.rules.yaml"
    edited.write_text(edited.read_text().replace("for: 5m", "for: 7m", 1))  # an update
    (prom / "memprov-local-gone.rules.yaml").write_text(  # ours, no longer in the spec: a delete
        (prom / "memprov-local-doc-embed.rules.yaml").read_text().replace("doc-embed", "gone")
    )
    unowned = prom / "memprov-local-image-embed.rules.yaml"
    unowned.write_text("groups: []\n")  # not ours, where the spec wants a file: a conflict
    equivalent = prom / "memprov-local-feature-batch.rules.yaml"  # reformatted, same data: unchanged
    equivalent.write_text(equivalent.read_text().replace("interval: 30s", "interval: 30s  # reviewed"))
    streamed, listed = plans(repo)
    assert summary(streamed) == summary(listed) and streamed.checksum == listed.checksum
    actions = {(c.action, c.key) for c in streamed.changes if c.backend == "prometheus"}
    assert {a for a, _ in actions} == {Action.UPDATE, Action.DELETE, Action.CONFLICT, Action.NOOP}
    assert (Action.NOOP, "memprov-local-feature-batch") in actions
    # two rule groups per job (fast and -slow); the conflict is not ours
    assert streamed.backends[0].live_owned == listed.backends[0].live_owned == 8


def test_unchanged_resources_keep_no_bodies_and_apply_still_finishes_with_every_key(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    spec = load(repo / "memprov.yaml")
    bindings = build(spec)
    report = apply(make_plan("local", spec.name, bindings), targets_of(bindings))
    assert report.ok and all(r.outcome is Outcome.APPLIED for r in report.results)
    plan = make_plan("local", spec.name, build(load(repo / "memprov.yaml")))
    assert not plan.has_changes and len(plan.changes) > 8
    for change in plan.changes:
        assert change.desired is None and change.live is None and change.have is None
        assert change.want is not None and change.want.body is None  # the key stays: finish() gets every one
    prom = next(b for b in plan.backends if b.backend == "prometheus")
    assert {r.key for r in prom.desired} == {
        f"memprov-local-{j.id}{part}" for j in spec.jobs_using("prometheus") for part in ("", "-slow")
    }


def test_a_file_memprov_wrote_may_be_bigger_than_a_spec_file(tmp_path: Path) -> None:
    spec = load(example_repo(tmp_path / "repo") / "memprov.yaml")
    backend = PrometheusBackend(spec)
    group = backend.desired[0].body
    big = {**group, "rules": group["rules"] * (2 * MAX_BYTES // len(str(group["rules"])) + 1)}
    text = backend.serialise(Resource("rule-group", "g", big))
    assert len(text) > 1.5 * MAX_BYTES
    body, owned = backend.parse("g", text)
    assert owned and body == big
