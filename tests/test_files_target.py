"""The files target: atomic writes, ownership from the marker inside each file, prune of owned files only.

Failures are real (a directory where a file belongs, a file where a directory belongs, text that
cannot be encoded); nothing is mocked.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner.backends.files import FilesTarget, atomic_write, marker_line
from provisioner.backends.registry import build
from provisioner.core.errors import OperationError
from provisioner.plan.engine import Outcome, apply
from provisioner.plan.model import Action, Plan
from provisioner.plan.planner import make_plan
from provisioner.plan.retry import RetryPolicy
from provisioner.spec.loader import load
from tests.helpers import example_repo, memprov, targets_of

NO_SLEEP = RetryPolicy(sleep=lambda _delay: None)
RULES = ("clv-daily", "image-embed", "doc-embed", "feature-batch")


def plan(repo: Path, env: str = "local") -> Plan:
    spec = load(repo / "memprov.yaml", env)
    return make_plan(env, spec.name, build(spec), retry=NO_SLEEP)


def apply_all(
    repo: Path, env: str = "local", force: bool = False
) -> tuple[Plan, list[tuple[tuple[str, str], Outcome, str]]]:
    """Plan and apply in-process; returns the plan and ((backend, key), outcome, message) per change."""
    spec = load(repo / "memprov.yaml", env)
    bindings = build(spec)
    p = make_plan(env, spec.name, bindings, retry=NO_SLEEP)
    report = apply(p, targets_of(bindings), retry=NO_SLEEP, force=force)
    return p, [((r.change.backend, r.change.key), r.outcome, r.message) for r in report.results]


def changes(p: Plan) -> list[tuple[str, str, str]]:
    return [(c.backend, c.action.value, c.key) for c in p.actionable]


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_repo(tmp_path / "repo")


@pytest.fixture
def applied(repo: Path) -> Path:
    _, results = apply_all(repo)
    assert all(outcome is Outcome.APPLIED for _, outcome, _ in results), results
    return repo


def rules(repo: Path, job: str = "clv-daily", env: str = "local") -> Path:
    return repo / "out" / env / "prometheus" / f"memprov-{env}-{job}.rules.yaml"


# --- atomic writes ------------------------------------------------------------------------------------
def test_atomic_write_creates_directories_and_replaces_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "f.yaml"
    atomic_write(path, "one\n")
    atomic_write(path, "two\n")
    assert path.read_text() == "two\n"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(path.parent) == ["f.yaml"]


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    atomic_write(path, "old: content\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write(path, "new: " + "x" * 100_000 + "\ud800\n")  # fails half-way through writing
    assert path.read_text() == "old: content\n"
    assert os.listdir(tmp_path) == ["f.yaml"]


def test_a_directory_in_the_way_fails_after_writing_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.mkdir()
    (path / "keep").write_text("precious\n")
    with pytest.raises(OSError):
        atomic_write(path, "new\n")
    assert (path / "keep").read_text() == "precious\n"
    assert os.listdir(tmp_path) == ["f.yaml"]


def test_a_file_where_the_directory_belongs_is_an_operation_error(repo: Path) -> None:
    (repo / "out" / "local").mkdir(parents=True)
    (repo / "out" / "local" / "prometheus").write_text("a file, not a directory\n")
    _, results = apply_all(repo)
    failed = sorted((key, msg) for key, outcome, msg in results if outcome is Outcome.FAILED)
    groups = [f"memprov-local-{job}{part}" for job in sorted(RULES) for part in ("", "-slow")]
    assert [key for key, _ in failed] == [("prometheus", group) for group in groups]
    blocker = repo / "out" / "local" / "prometheus"
    assert all(msg.endswith(f"; {blocker} is a file in the way") for _, msg in failed)
    assert (repo / "out" / "local" / "alertmanager" / "alertmanager.yml").is_file()  # other backends went ahead
    assert (repo / "out" / "local" / "prometheus").read_text() == "a file, not a directory\n"


def test_apply_isolates_a_failed_file_and_keeps_that_backends_deletes(applied: Path) -> None:
    repo = applied
    text = (repo / "memprov.yaml").read_text()
    (repo / "memprov.yaml").write_text(text.replace("  doc-embed:", "  doc-embed-v2:"))  # a rename
    blocker = rules(repo, "doc-embed-v2")
    blocker.mkdir()
    (blocker / "keep").write_text("x\n")
    p, results = apply_all(repo)
    assert ("prometheus", "delete", "memprov-local-doc-embed") in changes(p)
    outcome = {key: o for key, o, _ in results}
    assert outcome[("prometheus", "memprov-local-doc-embed-v2")] is Outcome.FAILED
    assert outcome[("prometheus", "memprov-local-doc-embed")] is Outcome.SKIPPED  # kept until the new rules exist
    assert outcome[("grafana", "memprov-local-doc-embed")] is Outcome.APPLIED  # another backend: pruned
    assert rules(repo, "doc-embed").is_file()
    assert (repo / "out" / "local" / "grafana" / "dashboards" / "memprov-local-doc-embed-v2.json").is_file()
    assert (blocker / "keep").read_text() == "x\n"
    assert not temp_files(repo / "out")


def test_files_target_errors_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "root").write_text("file\n")
    spec_repo = example_repo(tmp_path / "repo")
    backend, _ = build(load(spec_repo / "memprov.yaml"), ["prometheus"])[0]
    target = FilesTarget(tmp_path / "root" / "prometheus", "root/prometheus", backend)
    with pytest.raises(OperationError, match=r"root/prometheus/memprov-local-clv-daily\.rules\.yaml: cannot write"):
        target.create(backend.desired[0])


def test_unreadable_bytes_make_the_plan_fail_for_that_backend_only(applied: Path) -> None:
    rules(applied).write_bytes(b"\xff\xfe garbage")
    p = plan(applied)
    assert len(p.errors) == 1 and p.errors[0].startswith("prometheus: ")
    assert "memprov-local-clv-daily.rules.yaml: cannot read" in p.errors[0]
    assert [b.backend for b in p.backends if b.error is None] == ["alertmanager", "grafana"]


# --- ownership and prune ------------------------------------------------------------------------------
def test_prune_deletes_only_owned_files(applied: Path) -> None:
    repo = applied
    prom = repo / "out" / "local" / "prometheus"
    hand_written = {
        "my-team.rules.yaml": "groups: []\n",  # no marker: a person wrote it
        "notes.txt": "hello\n",
        "memprov-prod-clv-daily.rules.yaml": marker_line("prod", "batch-inference") + "groups: []\n",  # other env
        "memprov-local-other.rules.yaml": marker_line("local", "other-spec") + "groups: []\n",  # other spec
        "broken-prod.rules.yaml": marker_line("prod", "batch-inference") + "groups: [\n",  # unreadable, not ours
    }
    for name, text in hand_written.items():
        (prom / name).write_text(text)
    text = (repo / "memprov.yaml").read_text()
    doc = text.index("  doc-embed:")
    (repo / "memprov.yaml").write_text(text[:doc] + text[text.index("  feature-batch:") :])  # doc-embed removed
    (repo / "environments" / "prod.yaml").write_text("description: Production.\n")
    p, results = apply_all(repo)
    assert [c for c in changes(p) if c[1] == "delete"] == [
        ("prometheus", "delete", "memprov-local-doc-embed"),
        ("prometheus", "delete", "memprov-local-doc-embed-slow"),
        ("grafana", "delete", "memprov-local-doc-embed"),
    ]
    assert all(outcome is Outcome.APPLIED for _, outcome, _ in results)
    assert not rules(repo, "doc-embed").exists()
    for name, text in hand_written.items():
        assert (prom / name).read_text() == text, name
    assert not plan(repo).has_changes


def test_an_unreadable_file_with_our_marker_is_ours(applied: Path) -> None:
    broken = rules(applied, "clv-daily")
    broken.write_text(marker_line("local", "batch-inference") + "groups: [\n")
    p = plan(applied)
    assert changes(p) == [("prometheus", "update", "memprov-local-clv-daily")]
    _, results = apply_all(applied)
    assert [outcome for _, outcome, _ in results] == [Outcome.APPLIED]
    assert not plan(applied).has_changes


def test_an_unowned_file_at_a_desired_path_is_a_conflict_until_forced(repo: Path) -> None:
    theirs = rules(repo)
    theirs.parent.mkdir(parents=True)
    theirs.write_text("groups:\n- name: theirs\n  rules: []\n")
    p = plan(repo)
    conflict = [c for c in p.changes if c.action is Action.CONFLICT]
    assert [(c.backend, c.key) for c in conflict] == [("prometheus", "memprov-local-clv-daily")]
    assert p.safety_problems() == [
        "prometheus: 1 resource(s) exist but are not managed by memprov (memprov-local-clv-daily); "
        "rename the job, remove them, or take them over with --force"
    ]
    assert "-  rules: []" in conflict[0].diff() or any(line.startswith("-") for line in conflict[0].diff())
    _, results = apply_all(repo, force=True)
    assert all(outcome is Outcome.APPLIED for _, outcome, _ in results)
    assert theirs.read_text().startswith(marker_line("local", "batch-inference"))
    assert not plan(repo).has_changes


def test_an_edited_owned_file_is_an_update_with_a_diff(applied: Path) -> None:
    path = rules(applied)
    original = path.read_text()
    path.write_text(original.replace("    for: 5m\n", "    for: 30m\n", 1))
    p = plan(applied)
    assert changes(p) == [("prometheus", "update", "memprov-local-clv-daily")]
    diff = p.actionable[0].diff()
    assert "-  for: 30m" in diff and "+  for: 5m" in diff
    apply_all(applied)
    assert path.read_text() == original


def test_equivalent_durations_are_not_an_update(applied: Path) -> None:
    path = rules(applied)
    path.write_text(path.read_text().replace("    for: 5m\n", "    for: 300s\n", 1))
    assert not plan(applied).has_changes  # normalised on both sides


def test_environment_output_dir_and_target_dir(repo: Path) -> None:
    (repo / "environments" / "staging.yaml").write_text(
        "output_dir: build/staging\ntargets:\n  prometheus: {type: files, dir: rules/staging}\n"
    )
    _, results = apply_all(repo, "staging")
    assert all(outcome is Outcome.APPLIED for _, outcome, _ in results)
    assert sorted(p.name for p in (repo / "rules" / "staging").iterdir()) == sorted(
        f"memprov-staging-{job}{part}.rules.yaml" for job in RULES for part in ("", "-slow")
    )
    assert (repo / "build" / "staging" / "alertmanager" / "alertmanager.yml").is_file()
    assert not (repo / "out").exists()


def test_a_relative_spec_path_writes_next_to_the_spec_once(tmp_path: Path) -> None:
    """``memprov --spec s/memprov.yaml apply`` run from the spec's parent writes ``s/out/local/``, not
    ``s/s/out/local/`` (the base directory used to be joined twice), through the real CLI."""
    repo = example_repo(tmp_path / "s")
    (repo / "environments" / "staging.yaml").write_text(
        "output_dir: build/staging\ntargets:\n  prometheus: {type: files, dir: rules/staging}\n"
    )
    done = memprov("--spec", "s/memprov.yaml", "apply", "--env", "local", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "files s/out/local/prometheus" in done.stdout
    assert sorted(p.name for p in (repo / "out" / "local" / "prometheus").iterdir()) == sorted(
        f"memprov-local-{job}{part}.rules.yaml" for job in RULES for part in ("", "-slow")
    )
    done = memprov("--spec", "s/memprov.yaml", "apply", "--env", "staging", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "files s/rules/staging" in done.stdout and "files s/build/staging/alertmanager" in done.stdout
    assert (repo / "rules" / "staging" / "memprov-staging-clv-daily.rules.yaml").is_file()
    assert (repo / "build" / "staging" / "alertmanager" / "alertmanager.yml").is_file()
    assert not (repo / "s").exists() and not (tmp_path / "out").exists() and not (tmp_path / "rules").exists()
    # and the re-plan, from another directory with another relative path, is empty
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = memprov("--spec", "../s/memprov.yaml", "plan", "--env", "local", "--detailed-exitcode", cwd=elsewhere)
    assert done.returncode == 0, done.stdout + done.stderr


def test_atomic_write_temporary_files_are_exclusive_and_swept_by_their_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioner.backends import files

    path = tmp_path / "f.yaml"
    seen: list[str] = []
    real_open = os.open

    def spy(name: str, flags: int, mode: int = 0o777) -> int:
        seen.append(os.path.basename(name))
        return real_open(name, flags, mode)

    monkeypatch.setattr(files.os, "open", spy)
    monkeypatch.setattr(files, "_tmp_numbers", iter([7, 8]))
    (tmp_path / f".memprov-f.yaml.{os.getpid()}-7.tmp").write_text("a killed write's leftover\n")
    old_umask = os.umask(0o077)
    try:
        atomic_write(path, "new\n", durable=False)
    finally:
        os.umask(old_umask)
    assert seen == [f".memprov-f.yaml.{os.getpid()}-7.tmp", f".memprov-f.yaml.{os.getpid()}-8.tmp"]
    assert path.read_text() == "new\n" and oct(path.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.glob(f"{files.TMP_PREFIX}*.tmp")) == [f".memprov-f.yaml.{os.getpid()}-7.tmp"]


def test_atomic_write_of_unencodable_text_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write(path, "bad \udc80 surrogate\n", durable=False)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.yaml"]  # no temporary file either


def test_atomic_write_makes_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "f.yaml"
    atomic_write(path, "x\n", durable=False)
    assert path.read_text() == "x\n"
    assert [p.name for p in path.parent.iterdir()] == ["f.yaml"]
