"""Issue 16, as an attacker would try it: a spec and templates from an untrusted pull request, rendered
and planned by CI that holds secrets in its environment.

Each case of the issue is driven through the real ``memprov`` entry point and asserts the exact
refusal (exit 2, ``file:line: key: message``), or, where the input is legitimate but dangerous
(user text reaching Prometheus' Go templates), that real ``promtool`` reads it back literally.
Secret files, the empty ``--checksum`` and the apply lock are in ``tests/test_security_apply.py``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from pathlib import Path

import pytest

from provisioner.backends.artefacts import render_problems
from provisioner.core.errors import SpecError
from provisioner.core.yamlio import dumps, loads
from provisioner.render import sandbox
from provisioner.render.gotext import literal
from provisioner.spec.loader import load
from provisioner.spec.model import Job, Metrics, Selector
from provisioner.spec.promql_check import parse_problem, source_problems
from tests.helpers import example_repo, memprov

SECRET = "xoxb-very-secret-webhook-value"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_repo(tmp_path / "repo")


def edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` in ``path``; returns the 1-based line where ``new`` starts."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def refused(repo: Path, *lines: str, verb: str = "validate", env: str = "local") -> None:
    args = ["render", "--out", "out"] if verb == "render" else [verb]  # render --out renders every backend
    result = memprov(*args, "--env", env, cwd=repo, env={"SLACK_WEBHOOK_URL": SECRET})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"error: {line}" for line in lines]
    assert "Traceback" not in result.stderr


NOT_A_NAME = "is not a Prometheus label name; use letters, digits and '_', not starting with a digit"
INJECTION = 'pod=~".*"} or vector(1) or x{y'


# --- 1. PromQL injection through selector.regex keys ------------------------------------------------
@pytest.mark.parametrize("verb", ["validate", "lint", "render", "plan", "apply"])
def test_regex_key_injection_is_refused_by_every_verb(repo: Path, verb: str) -> None:
    line = edit(
        repo / "memprov.yaml",
        "selector: {namespace: batch, container: clv-scorer}",
        "selector: {namespace: batch, container: c, regex: {'pod=~\".*\"} or vector(1) or x{y': a}}",
    )
    refused(
        repo,
        f"memprov.yaml:{line}: jobs.clv-daily.selector.regex.{INJECTION}: {json.dumps(INJECTION)} {NOT_A_NAME}",
        verb=verb,
    )
    assert not (repo / "out").exists() and not (repo / "dashboards").exists()


def test_a_key_that_slipped_past_validation_is_still_caught_and_blamed(repo: Path) -> None:
    """The second line: if a matcher that breaks PromQL ever reached the source series, the parse check names
    its key (an injection that still parses is the label-name check's to refuse, above)."""
    job = load(repo / "memprov.yaml").jobs[0]
    raw = Selector.model_construct(namespace="batch", container="c", regex={"bad key": "a"}, pod=None)
    from provisioner.spec.sources import sources

    spec_job = Job.model_construct(selector=raw, metrics=Metrics(), runtime="kubernetes")
    bad = sources("kubernetes", raw, spec_job.metrics, job.id)
    [(path, message)] = source_problems(("jobs", job.id), spec_job, bad)
    assert path == ("jobs", job.id, "selector", "regex", "bad key")
    assert "makes the PromQL expression" in message and "fix the value" in message


def test_validate_parses_every_rendered_rule_and_blames_the_job(repo: Path) -> None:
    spec = load(repo / "memprov.yaml")
    assert render_problems(spec) == []
    job = spec.jobs[0]
    broken = dataclasses.replace(job, sources=dataclasses.replace(job.sources, working_set="x{", ws_selectors=("x{",)))
    problems = render_problems(dataclasses.replace(spec, jobs=(broken, *spec.jobs[1:])))
    assert problems and {(p.file, p.line, p.path) for p in problems} == {("memprov.yaml", 32, "jobs.clv-daily")}
    assert problems[0].message.startswith("the rendered rule memprov:memory_working_set:bytes is not valid PromQL")


@pytest.mark.integration
@pytest.mark.parametrize(
    "expr",
    ['x{a="\ufffd"}', 'x{a="a\\"b"}', 'x{a=~"(a|b)+"}', "x{", 'x{a=~"(unclosed["}', 'x{a="\\q"}', "sum(x) by (a) > 0"],
)
def test_the_parse_check_agrees_with_promtool(expr: str, tmp_path: Path) -> None:
    """The in-process parser against promtool, on what memprov could write: quote() must make both accept."""
    from provisioner.core.promql import quote

    rules = tmp_path / "r.yml"
    rules.write_text(dumps({"groups": [{"name": "g", "rules": [{"record": "r", "expr": expr}]}]}))
    accepted = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True).returncode == 0
    if "\ufffd" in expr:  # promtool's lexer refuses U+FFFD raw; quote() escapes it
        assert not accepted
        expr = "x{a=" + quote("\ufffd") + "}"
        rules.write_text(dumps({"groups": [{"name": "g", "rules": [{"record": "r", "expr": expr}]}]}))
        accepted = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True).returncode == 0
    assert accepted == (parse_problem(expr) is None), expr


REGEXES = [
    "(a|b)+", "(unclosed[", "a(?=b)", r"(a)\1", r"\C", r"\\C", "a{1001}", "a{2,1000}", "x{2,1}", "(?P<n>a)",
    "(?<n>a)", r"\pL+", "[[:alpha:]]", r"\Q.*\E", "(?i)abc", "a**", r"\z", r"\Z", "(?U)a+", "[z-a]", "\\",
]  # fmt: skip


@pytest.mark.integration
def test_the_regex_check_agrees_with_promtool(tmp_path: Path) -> None:
    """RE2 as memprov checks it against Prometheus' Go regexp, as promtool parses it in a matcher."""
    from provisioner.core.promql import quote
    from provisioner.spec.labels import regex_problem

    disagree = []
    for pattern in REGEXES:
        expr = f"x{{a=~{quote(pattern)}}}"
        rules = tmp_path / "r.yml"
        rules.write_text(dumps({"groups": [{"name": "g", "rules": [{"record": "r", "expr": expr}]}]}))
        accepted = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True).returncode == 0
        if accepted != (regex_problem(pattern) is None):
            disagree.append((pattern, accepted))
    assert disagree == []


# --- 2. the template sandbox ---------------------------------------------------------------------------
def template(repo: Path, text: str, name: str = "alertmanager/messages.yaml.j2") -> Path:
    path = repo / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def no_secret_anywhere(repo: Path) -> None:
    for path in repo.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


@pytest.mark.parametrize("verb", ["validate", "render", "plan"])
def test_templates_get_plain_data_not_paths(repo: Path, verb: str) -> None:
    template(repo, "x: [[ spec.spec_file.parent.joinpath('/proc/self/environ').read_text() ]]\n")
    refused(
        repo,
        "templates/alertmanager/messages.yaml.j2:1: template error: 'str object' has no attribute 'parent'; "
        "fix the template",
        verb=verb,
    )
    no_secret_anywhere(repo)


def test_the_context_is_json_data(repo: Path) -> None:
    spec = load(repo / "memprov.yaml", "prod")
    data = sandbox.plain({"spec": spec, "job": spec.jobs[0]})
    assert json.loads(json.dumps(data)) == data
    assert data["spec"]["spec_file"] == str(repo / "memprov.yaml")
    assert data["job"]["thresholds"]["warning"] == "1.5x p95" and data["job"]["warning_ratio"] == 0.75
    with pytest.raises(TypeError):
        sandbox.render("x", [], {"p": repo})  # a live object never reaches the worker


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "x: [[ range(100000000) | list | length ]]\n",
            "range() of 100000000 items; templates may loop over at most 10000",
        ),
        (
            "x: [[ {}.__class__.__base__.__subclasses__() ]]\n",
            "access to attribute '__class__' of 'dict' object is unsafe.",
        ),
        ("x: [[ ''.__class__ ]]\n", "access to attribute '__class__' of 'str' object is unsafe."),
        ("[% macro r() %][[ r() ]][% endmacro %]x: [[ r() ]]\n", "the template recurses too deeply"),
        ("[% include '/proc/self/environ' %]\n", "template '/proc/self/environ' not found"),
        ("x: [[ nothing ]]\n", "'nothing' is undefined"),
        ("x: [[ 1 // 0 ]]\n", "ZeroDivisionError: integer division or modulo by zero"),
    ],
)
def test_template_errors_exit_2_with_file_and_line(repo: Path, text: str, message: str) -> None:
    template(repo, text)
    refused(repo, f"templates/alertmanager/messages.yaml.j2:1: template error: {message}; fix the template")


def test_output_is_bounded_early(repo: Path) -> None:
    template(repo, "slack: {}\n\nx: [[ 'x'*100000000 ]]\n")
    start = time.monotonic()
    refused(
        repo,
        "templates/alertmanager/messages.yaml.j2:1: template error: the template writes more than 1024 KiB, "
        "the most a template may; fix the template",
    )
    assert time.monotonic() - start < 15


def test_memory_is_bounded(repo: Path) -> None:
    template(repo, "[% macro d(s, n) %][[ d(s ~ s, n - 1) if n else s | length ]][% endmacro %]\nx: [[ d('x', 40) ]]\n")
    refused(
        repo,
        "templates/alertmanager/messages.yaml.j2:1: template error: the template needs more memory than the sandbox "
        "allows (a string or list too large?); fix the template",
    )


def test_time_is_bounded(repo: Path) -> None:
    template(
        repo,
        "slack: {}\n[% for i in range(10000) %][% for j in range(10000) %][% for k in range(10000) %]"
        "[% endfor %][% endfor %][% endfor %]\n",
    )
    start = time.monotonic()
    result = memprov("validate", "--env", "local", cwd=repo, env={"MEMPROV_TEMPLATE_TIMEOUT": "1"})
    assert time.monotonic() - start < 10
    assert result.returncode == 2
    assert result.stderr == (
        "error: templates/alertmanager/messages.yaml.j2:2: template error: the template took too long "
        "(a loop too large?); fix the template\n"
    )


def test_a_template_linking_out_of_its_directory_is_refused(repo: Path) -> None:
    template(repo, "x: '[% include 'alertmanager/env.j2' %]'\n")
    (repo / "templates" / "alertmanager" / "env.j2").symlink_to("/proc/self/environ")
    result = memprov("render", "--env", "local", "--out", "out", cwd=repo, env={"SLACK_WEBHOOK_URL": SECRET})
    assert result.returncode == 2
    assert result.stderr.startswith("error: templates/alertmanager/messages.yaml.j2:1: template error: template ")
    assert "outside its directory: refused; fix the template" in result.stderr
    no_secret_anywhere(repo)


def test_the_result_must_be_texts(repo: Path) -> None:
    template(repo, "slack: 3\npagerduty: {description: x}\n")
    refused(
        repo,
        "templates/alertmanager/messages.yaml.j2: the template's result must map slack to a mapping of texts "
        "(name: text) (quote texts with |yaml); fix the template",
    )


def test_the_worker_holds_no_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Even an escape from jinja's sandbox would find an empty environment in the worker process."""
    monkeypatch.setenv("SLACK_WEBHOOK_URL", SECRET)
    sandbox._WORKER.stop()  # a fresh worker, started while the secret is in our environment
    (tmp_path / "t.j2").write_text("[[ 1 + 1 ]]")
    assert sandbox.render("t.j2", [str(tmp_path)], {}) == "2"
    proc = sandbox._WORKER.proc
    assert proc is not None
    environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
    assert SECRET.encode() not in environ and b"SLACK_WEBHOOK_URL" not in environ


# --- 3. user text reaching Prometheus templates --------------------------------------------------------
NASTY = ['x {{ query "up" }} {{', "{{ unclosed", "}} closing", "ends with {", "{{{ triple", "{{- trim -}}", "a { b } c"]


@pytest.mark.integration
def test_escaped_text_renders_literally_in_prometheus(tmp_path: Path) -> None:
    """Real promtool evaluates alerts whose labels and annotations are escaped user text."""
    rules = [
        {
            "alert": f"Literal{i}",
            "expr": "vector(1)",
            "labels": {"text": literal(t)},
            "annotations": {"text": literal(t)},
        }
        for i, t in enumerate(NASTY)
    ]
    (tmp_path / "rules.yml").write_text(dumps({"groups": [{"name": "g", "rules": rules}]}))
    alerts = [
        {
            "eval_time": "1m",
            "alertname": f"Literal{i}",
            "exp_alerts": [{"exp_labels": {"text": t}, "exp_annotations": {"text": t}}],
        }
        for i, t in enumerate(NASTY)
    ]
    test = {"rule_files": ["rules.yml"], "tests": [{"interval": "1m", "input_series": [], "alert_rule_test": alerts}]}
    (tmp_path / "test.yml").write_text(dumps(test))
    result = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_literal_round_trips() -> None:
    from provisioner.render.gotext import rendered

    for text in [*NASTY, '{{ "{{" }}', "", "no braces"]:
        assert rendered(literal(text)) == text
    assert literal("no braces") == "no braces" and literal("a{{b") == 'a{{ "{{" }}b'


@pytest.mark.integration
def test_memprov_test_passes_with_braces_in_labels(repo: Path) -> None:
    """promtool test rules compares the labels Prometheus expanded with what memprov expects: literally."""
    edit(repo / "memprov.yaml", "owner: data-eng", "owner: '{{ data-eng'")
    result = memprov("test", "--env", "local", "--job", "clv-daily", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_user_text_in_alerts_is_escaped_and_promtool_accepts_it(repo: Path) -> None:
    name = 'x {{ query "up" }} {{'
    edit(repo / "memprov.yaml", "name: Customer lifetime value (daily)", f"name: '{name}'")
    edit(repo / "memprov.yaml", "owner: data-eng", "owner: '{{ unclosed'")
    edit(repo / "memprov.yaml", "runtime: kubernetes", "runtime: kubernetes\n    labels: {tier: '{{ unclosed'}")
    assert memprov("validate", cwd=repo).returncode == 0
    assert memprov("render", "--env", "local", "--out", "out", cwd=repo).returncode == 0
    path = repo / "out" / "prometheus" / "memprov-local-clv-daily.rules.yaml"
    check = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    alerts = [r for r in loads(path.read_text(), "rules").data["groups"][0]["rules"] if "alert" in r]
    assert alerts and all(a["annotations"]["job_name"] == literal(name) for a in alerts)
    assert all(a["labels"]["owner"] == literal("{{ unclosed") == a["labels"]["tier"] for a in alerts)
    assert all(a["annotations"]["summary"].startswith(literal(name) + ":") for a in alerts)


def test_bad_label_names_and_regexes_are_refused(repo: Path) -> None:
    line = edit(
        repo / "memprov.yaml",
        "selector: {namespace: batch, container: clv-scorer}",
        "selector: {namespace: batch, container: clv-scorer, regex: {pod: '(unclosed['}}\n"
        "    labels: {'bad key': x, __name__: y}",
    )
    refused(
        repo,
        f'memprov.yaml:{line}: jobs.clv-daily.selector.regex.pod: "(unclosed[" is not a regular expression '
        "Prometheus accepts (RE2 syntax): missing ]: [; fix it",
        f'memprov.yaml:{line + 1}: jobs.clv-daily.labels.bad key: "bad key" {NOT_A_NAME} (e.g. "bad_key")',
        f'memprov.yaml:{line + 1}: jobs.clv-daily.labels.__name__: "__name__": label names starting with "__" '
        "are reserved for Prometheus' internal use; rename it",
    )


# --- 4. reserved labels ------------------------------------------------------------------------------------
def test_users_cannot_set_memprovs_own_labels(repo: Path) -> None:
    line = edit(
        repo / "memprov.yaml",
        "  backends: [prometheus",
        "  labels: {severity: critical, memprov_job: other}\n  backends: [prometheus",
    )
    refused(
        repo,
        f'memprov.yaml:{line}: defaults.labels.severity: label "severity" is set by memprov (info, warning, critical) '
        "and Alertmanager routes and inhibits on it; remove it (who is notified is set under route:)",
        f'memprov.yaml:{line}: defaults.labels.memprov_job: label "memprov_job": names starting with "memprov_" are '
        "memprov's own (routing, grouping and inhibition match on them); rename it",
    )


def test_nor_in_an_environment(repo: Path) -> None:
    line = edit(
        repo / "environments" / "prod.yaml", "labels: {cluster: prod-eks}", "labels: {cluster: prod-eks, team: x}"
    )
    refused(
        repo,
        f'environments/prod.yaml:{line}: labels.team: label "team" is set by memprov on every alert from the '
        "job's team: key; set that instead",
        env="prod",
    )


# --- 7. URLs -------------------------------------------------------------------------------------------------
def test_runbook_urls_are_http_only(repo: Path) -> None:
    line = edit(
        repo / "memprov.yaml",
        "runbook_url: https://runbooks.example.com/memprov/{job}",
        'runbook_url: "javascript:alert(1)//{job}"',
    )
    job_line = edit(
        repo / "memprov.yaml", "    owner: vision", "    owner: vision\n    runbook_url: 'data:text/html,x'"
    )
    refused(
        repo,
        f'memprov.yaml:{line}: defaults.runbook_url: "javascript:alert(1)//{{job}}" is not allowed here; '
        "use an http:// or https:// URL without spaces",
        f'memprov.yaml:{job_line + 1}: jobs.image-embed.runbook_url: "data:text/html,x" is not allowed here; '
        "use an http:// or https:// URL without spaces",
    )


def test_spec_errors_are_spec_errors_in_the_library(repo: Path) -> None:
    edit(repo / "memprov.yaml", "container: clv-scorer}", "container: clv-scorer, regex: {pod: 'a(?=b)'}}")
    with pytest.raises(SpecError, match=r"invalid perl operator: \(\?="):
        load(repo / "memprov.yaml")
