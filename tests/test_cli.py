"""Every verb and every exit code through the real entry point, on a copy of the example repository."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from provisioner.core.yamlio import loads
from tests.helpers import example_repo, memprov

JOBS = ("clv-daily", "image-embed", "doc-embed", "feature-batch")
ENVS = ("aws", "azure", "dev", "gcp", "local", "prod", "staging")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_repo(tmp_path / "repo")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- help, usage, completion ------------------------------------------------------------------------
def test_help_lists_every_verb_and_the_exit_codes(tmp_path: Path) -> None:
    result = memprov("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: memprov ")
    for verb in ("validate", "render", "plan", "apply", "lint", "schema", "init"):
        assert f"  {verb} " in result.stdout
    text = " ".join(result.stdout.split())
    for code in ("0 ok", "1 operation failed", "2 invalid input or usage", "3 changes present", "4 internal error"):
        assert code in text
    assert "130 interrupted" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan", "--format", "xml"), "Invalid value for '--format'"),
        (("plan", "--nope"), "No such option: --nope"),
        (("frobnicate",), "No such command 'frobnicate'"),
        (("apply", "--concurrency", "0"), "Invalid value for '--concurrency'"),
    ],
)
def test_bad_flags_are_usage_errors(repo: Path, args: tuple[str, ...], message: str) -> None:
    result = memprov(*args, cwd=repo)
    assert result.returncode == 2
    assert message in result.stderr


def test_show_completion_bash_prints_a_completion_script(tmp_path: Path) -> None:
    result = memprov("--show-completion", "bash", cwd=tmp_path, env={"SHELL": "/bin/bash"})
    assert result.returncode == 0
    assert "complete -o default -F _memprov_completion memprov" in result.stdout


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [("memprov pl", "1", ["plan"]), ("memprov plan --env ", "3", list(ENVS)), ("memprov plan -b gr", "3", ["grafana"])],
)
def test_completion_completes_verbs_environments_and_backends(
    repo: Path, words: str, cword: str, expected: list[str]
) -> None:
    env = {"_MEMPROV_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    result = memprov(cwd=repo, env=env)
    assert result.returncode == 0
    assert result.stdout.split() == expected


# --- validate ---------------------------------------------------------------------------------------
def test_validate_ok(repo: Path) -> None:
    result = memprov("validate", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "✓ memprov.yaml is valid for aws, azure, dev, gcp, local, prod, staging (4 jobs)\n"


def test_validate_reports_file_line_and_exits_2(repo: Path) -> None:
    edit(repo / "environments" / "prod.yaml", "memory: {limit: 32Gi}", "memory: {limit: 32GB}")
    result = memprov("validate", cwd=repo)
    assert result.returncode == 2
    assert result.stderr == (
        'error: environments/prod.yaml:8: jobs.doc-embed.memory.limit: "32GB" is not a size; use 32Gi or 34359738368\n'
    )
    assert result.stdout == ""


def test_validate_unknown_environment_exits_2(repo: Path) -> None:
    result = memprov("validate", "--env", "prdo", cwd=repo)
    assert result.returncode == 2
    assert result.stderr == (
        "error: unknown environment 'prdo' (did you mean 'prod'?); available: aws, azure, dev, gcp, local, prod, "
        "staging (add environments/prdo.yaml to create it)\n"
    )


def test_spec_option_and_environment_variable(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert memprov("--spec", str(repo / "memprov.yaml"), "validate", "--env", "local", cwd=elsewhere).returncode == 0
    via_env = memprov("validate", "--env", "local", cwd=elsewhere, env={"MEMPROV_SPEC": str(repo / "memprov.yaml")})
    assert via_env.returncode == 0, via_env.stderr


# --- render -----------------------------------------------------------------------------------------
def test_render_writes_the_committed_dashboards_then_check_passes(repo: Path) -> None:
    result = memprov("render", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert f"{len(ENVS) * (len(JOBS) + 1)} file(s) written." in result.stdout
    for env in ENVS:
        names = sorted(p.name for p in (repo / "dashboards" / env).iterdir())
        assert names == sorted(f"memprov-{env}-{job}.json" for job in (*JOBS, "overview"))
        for name in names:
            json.loads((repo / "dashboards" / env / name).read_text())
    again = memprov("render", cwd=repo)
    assert "Everything was already up to date." in again.stdout
    check = memprov("render", "--check", cwd=repo)
    assert check.returncode == 0
    assert check.stdout == "✓ rendered artefacts are up to date (aws, azure, dev, gcp, local, prod, staging)\n"


def test_render_check_shows_a_readable_diff_after_a_spec_change(repo: Path) -> None:
    assert memprov("render", cwd=repo).returncode == 0
    before = snapshot(repo / "dashboards")
    edit(repo / "memprov.yaml", "limit: 8Gi", "limit: 10Gi")
    result = memprov("render", "--check", "--env", "local", cwd=repo)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "stale: dashboards/local/memprov-local-clv-daily.json (differs from the spec)" in lines
    assert "  --- memprov-local-clv-daily.json (committed)" in lines
    assert any(line.startswith("  -") and "(8GiB)" in line for line in lines)
    assert any(line.startswith("  +") and "(10GiB)" in line for line in lines)
    assert lines[-1].endswith("file(s) out of date; run `memprov render` and commit the result.")
    assert snapshot(repo / "dashboards") == before  # --check writes nothing


def test_render_check_reports_a_missing_file(repo: Path) -> None:
    assert memprov("render", cwd=repo).returncode == 0
    (repo / "dashboards" / "prod" / "memprov-prod-image-embed.json").unlink()
    result = memprov("render", "--check", cwd=repo)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "missing: dashboards/prod/memprov-prod-image-embed.json (not rendered yet)",
        "1 file(s) out of date; run `memprov render` and commit the result.",
    ]


def test_render_check_reports_a_removed_job_as_extra_and_render_removes_it(repo: Path) -> None:
    assert memprov("render", cwd=repo).returncode == 0
    text = (repo / "memprov.yaml").read_text()
    (repo / "memprov.yaml").write_text(text[: text.index("  doc-embed:")])
    (repo / "environments" / "prod.yaml").write_text("description: Production.\n")
    hand_written = repo / "dashboards" / "local" / "my-own.json"
    hand_written.write_text('{"title": "mine"}\n')
    result = memprov("render", "--check", "--env", "local", cwd=repo)
    assert result.returncode == 1
    extra = "extra: dashboards/local/memprov-local-doc-embed.json (generated for a job that is no longer in the spec)"
    assert extra in result.stdout.splitlines()
    assert "my-own.json" not in result.stdout  # not generated by memprov: not ours to judge
    fixed = memprov("render", "--env", "local", cwd=repo)
    assert fixed.returncode == 0
    assert not (repo / "dashboards" / "local" / "memprov-local-doc-embed.json").exists()
    assert hand_written.exists()
    assert memprov("render", "--check", "--env", "local", cwd=repo).returncode == 0


def test_render_out_writes_every_backend_for_one_environment(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "artefacts"
    result = memprov("render", "--env", "local", "--out", str(out), cwd=repo)
    assert result.returncode == 0, result.stderr
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(
        [
            "alertmanager/alertmanager.yml",
            "grafana/provisioning/memprov-local.yaml",
            *(f"grafana/dashboards/memprov-local-{job}.json" for job in (*JOBS, "overview")),
            *(f"prometheus/memprov-local-{job}{part}.rules.yaml" for job in JOBS for part in ("", "-slow")),
        ]
    )
    rules = loads((out / "prometheus" / "memprov-local-clv-daily.rules.yaml").read_text(), "rules").data
    assert rules["groups"][0]["name"] == "memprov-local-clv-daily"
    assert memprov("render", "--env", "local", "--out", str(out), "--check", cwd=repo).returncode == 0
    assert not (repo / "dashboards").exists()  # --out does not touch the committed dashboards


def test_render_out_needs_one_environment(repo: Path, tmp_path: Path) -> None:
    result = memprov("render", "--out", str(tmp_path / "x"), cwd=repo)
    assert result.returncode == 2
    assert result.stderr == "error: --out writes one environment; add --env ENV\n"


def test_a_file_in_the_way_is_an_operation_failure_not_a_bug(repo: Path) -> None:
    (repo / "dashboards").write_text("not a directory\n")
    result = memprov("render", "--env", "local", cwd=repo)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Not a directory" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


# --- plan -------------------------------------------------------------------------------------------
def test_plan_text(repo: Path) -> None:
    result = memprov("plan", "--env", "local", cwd=repo)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "memprov plan · environment local · spec batch-inference"
    assert "prometheus → files out/local/prometheus" in lines
    assert "  + rule-group memprov-local-clv-daily  (Customer lifetime value (daily))" in lines
    assert "Plan: 15 to create, 0 to update, 0 to delete, 0 unchanged." in lines
    assert any(line.startswith("Checksum ") for line in lines)
    assert not (repo / "out").exists()  # plan never writes


def test_plan_markdown_has_the_table(repo: Path) -> None:
    result = memprov("plan", "--env", "local", "--format", "markdown", cwd=repo)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "### memprov plan for `local`"
    assert "| backend | target | create | update | delete | unchanged |" in lines
    assert "| prometheus | `files out/local/prometheus` | 8 | 0 | 0 | 0 |" in lines
    assert "| grafana | `files out/local/grafana` | 6 | 0 | 0 | 0 |" in lines  # 4 dashboards, 1 provider
    assert lines[-1].startswith("Apply exactly this plan: `memprov apply --env local --checksum ")


def test_plan_json_parses_and_matches_the_text_checksum(repo: Path) -> None:
    data = json.loads(memprov("plan", "--env", "local", "--format", "json", cwd=repo).stdout)
    assert data["counts"] == {"create": 15, "update": 0, "delete": 0, "no-op": 0, "conflict": 0}
    assert data["has_changes"] is True
    assert [b["backend"] for b in data["backends"]] == ["prometheus", "alertmanager", "grafana"]
    text = memprov("plan", "--env", "local", cwd=repo).stdout
    assert f"Checksum {data['checksum']}" in text


def test_plan_for_one_backend(repo: Path) -> None:
    data = json.loads(memprov("plan", "--env", "local", "-b", "alertmanager", "--format", "json", cwd=repo).stdout)
    assert [b["backend"] for b in data["backends"]] == ["alertmanager"]
    unknown = memprov("plan", "--env", "local", "-b", "grafna", cwd=repo)
    assert unknown.returncode == 2
    assert "unknown backend 'grafna' (did you mean 'grafana'?)" in unknown.stderr


def test_plan_detailed_exitcode_then_apply_then_nothing_to_do(repo: Path) -> None:
    assert memprov("plan", "--env", "local", "--detailed-exitcode", cwd=repo).returncode == 3
    applied = memprov("apply", "--env", "local", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 15 of 15 changes applied, 0 failed, 0 not attempted." in applied.stdout
    assert (repo / "out" / "local" / "alertmanager" / "alertmanager.yml").is_file()
    again = memprov("plan", "--env", "local", "--detailed-exitcode", cwd=repo)
    assert again.returncode == 0
    assert "Plan: 0 to create, 0 to update, 0 to delete, 15 unchanged." in again.stdout
    nothing = memprov("apply", "--env", "local", "--yes", cwd=repo)
    assert nothing.returncode == 0 and "Nothing to do." in nothing.stdout


# --- apply ------------------------------------------------------------------------------------------
def test_apply_without_yes_and_without_a_terminal_refuses(repo: Path) -> None:
    result = memprov("apply", "--env", "local", cwd=repo, input="y\n")
    assert result.returncode == 2
    assert result.stderr.startswith("error: apply needs confirmation: run it in a terminal or pass --yes")
    assert not (repo / "out").exists()


def test_apply_with_the_reviewed_checksum(repo: Path) -> None:
    checksum = json.loads(memprov("plan", "--env", "local", "--format", "json", cwd=repo).stdout)["checksum"]
    result = memprov("apply", "--env", "local", "--checksum", checksum, "--yes", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "15 of 15 changes applied" in result.stdout


def test_apply_with_a_stale_checksum_changes_nothing(repo: Path) -> None:
    checksum = json.loads(memprov("plan", "--env", "local", "--format", "json", cwd=repo).stdout)["checksum"]
    edit(repo / "memprov.yaml", "limit: 16Gi", "limit: 20Gi")
    result = memprov("apply", "--env", "local", "--checksum", checksum, "--yes", cwd=repo)
    assert result.returncode == 1
    assert "error: the plan changed since it was reviewed" in result.stderr
    assert "nothing was changed" in result.stderr
    assert not (repo / "out").exists()


def test_apply_refuses_to_take_over_unowned_files_without_force(repo: Path) -> None:
    mine = repo / "out" / "local" / "alertmanager" / "alertmanager.yml"
    mine.parent.mkdir(parents=True)
    mine.write_text("route: {receiver: me}\nreceivers: [{name: me}]\n")
    result = memprov("apply", "--env", "local", "--yes", cwd=repo)
    assert result.returncode == 1
    assert "refusing to apply (nothing was changed)" in result.stderr
    assert "alertmanager: 1 resource(s) exist but are not managed by memprov (alertmanager)" in result.stderr
    assert mine.read_text() == "route: {receiver: me}\nreceivers: [{name: me}]\n"
    assert not (repo / "out" / "local" / "prometheus").exists()
    forced = memprov("apply", "--env", "local", "--yes", "--force", cwd=repo)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert mine.read_text().startswith("# Generated by memprov")


# --- lint, schema, init -----------------------------------------------------------------------------
def test_lint_ok(repo: Path) -> None:
    result = memprov("lint", cwd=repo)
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1].startswith("✓ no errors")


def test_lint_finds_a_warning_threshold_too_high(repo: Path) -> None:
    edit(repo / "memprov.yaml", "{warning: 75%, critical: 90%}", "{warning: 95%, critical: 97%}")
    result = memprov("lint", "--env", "local", cwd=repo)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("error: [local] jobs.image-embed.memory.thresholds.warning: warning at 95% of the limit")
    assert lines[-1].startswith("2 error(s)")


def test_schema_is_json_schema_that_accepts_the_example(repo: Path) -> None:
    result = memprov("schema", cwd=repo)
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert "jobs" in schema["properties"] and "version" in schema["required"]
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    example = loads((repo / "memprov.yaml").read_text(), "memprov.yaml").data
    assert not list(validator.iter_errors(example))
    example["jobs"]["clv-daily"]["colour"] = "blue"
    assert list(validator.iter_errors(example))  # extra keys are refused by editors too
    env_schema = json.loads(memprov("schema", "--environment", cwd=repo).stdout)
    jsonschema.Draft202012Validator.check_schema(env_schema)
    for env in ENVS:
        data = loads((repo / "environments" / f"{env}.yaml").read_text(), env).data
        assert not list(jsonschema.Draft202012Validator(env_schema).iter_errors(data)), env


def test_init_scaffolds_a_repository_that_validates_and_is_up_to_date(tmp_path: Path) -> None:
    result = memprov("init", "monitoring", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    new = tmp_path / "monitoring"
    for rel in ("memprov.yaml", "environments/local.yaml", "environments/prod.yaml", "templates/README.md"):
        assert (new / rel).is_file(), rel
    assert len(list((new / "dashboards").rglob("*.json"))) == len(ENVS) * (len(JOBS) + 1)
    assert memprov("validate", cwd=new).returncode == 0
    assert memprov("render", "--check", cwd=new).returncode == 0
    again = memprov("init", "monitoring", cwd=tmp_path)
    assert again.returncode == 2
    assert "memprov.yaml already exists; pass --force to overwrite it" in again.stderr
    assert memprov("init", "monitoring", "--force", cwd=tmp_path).returncode == 0


# --- internal errors --------------------------------------------------------------------------------
def test_an_internal_error_exits_4_with_a_report_hint_and_no_traceback(repo: Path, tmp_path: Path) -> None:
    """A failure memprov does not expect surfaces as an internal error: the path this test is about. The
    trigger is a third-party library breaking (grafanalib, made to raise by a ``sitecustomize`` on the
    path): template errors, the former trigger, are now reported as template problems (exit 2)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import grafanalib.core\n\n\ndef broken(self):\n    raise RuntimeError('grafanalib broke')\n\n\n"
        "grafanalib.core.Dashboard.to_json_data = broken\n"
    )
    result = memprov("plan", "--env", "local", cwd=repo, env={"PYTHONPATH": str(hook)})
    assert result.returncode == 4
    assert result.stderr.splitlines() == [
        "error: internal error: RuntimeError: grafanalib broke",
        "This is a bug in memprov. Re-run with MEMPROV_DEBUG=1 for the traceback and report it.",
    ]
    assert "Traceback" not in result.stdout + result.stderr
    debug = memprov("plan", "--env", "local", cwd=repo, env={"MEMPROV_DEBUG": "1", "PYTHONPATH": str(hook)})
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_strict_refuses_kinds_a_backend_approximates_before_reading_anything(tmp_path: Path) -> None:
    """plan/apply --strict: every approximated or unsupported kind is an error at its job (exit 2);
    the aws environment's CloudWatch targets are never contacted (no credentials here), and an
    local environment's Prometheus expresses every kind natively but the OOM kills of a job with no OOM series."""
    repo = example_repo(tmp_path)
    for args in (["plan"], ["apply", "--yes"]):
        result = memprov(*args, "--env", "aws", "--strict", cwd=repo)
        assert result.returncode == 2, result.stdout + result.stderr
        line = next(i for i, t in enumerate((repo / "memprov.yaml").read_text().splitlines(), 1) if "clv-daily:" in t)
        assert (
            f"error: memprov.yaml:{line}: jobs.clv-daily: growth is approximated on cloudwatch (RATE() of per-period "
            "troughs" in result.stderr
        )
        assert "oom_killed is approximated on cloudwatch" in result.stderr and "Traceback" not in result.stderr
    local = memprov("plan", "--env", "local", "--strict", cwd=repo)  # Prometheus: native, where series exist
    assert local.returncode == 2, local.stderr
    assert [line.split(": ", 3)[2:] for line in local.stderr.splitlines()] == [
        [
            "jobs.feature-batch",
            "oom_killed is unsupported on prometheus (the runtime has no OOM-kill series for this job; set "
            "metrics.oom_events to one); --strict refuses it: mend what the reason says, disable the kind for this "
            "job, leave prometheus out of its backends, or plan without --strict",
        ]
    ]
