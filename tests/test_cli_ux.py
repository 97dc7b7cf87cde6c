"""How the CLI behaves for a person at a terminal and for a script: global options after the verb,
NO_COLOR (no-color.org) and --no-color, the confirmation prompt and its exit code, and a plan
that cannot be applied because a backend's live state could not be read.

Terminal tests run the real entry point on a pseudo-terminal, as a person's shell would.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import example_repo, memprov

ESC = "\x1b["


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_repo(tmp_path / "repo")


def on_terminal(
    *args: str, cwd: Path, env: dict[str, str] | None = None, answer: bytes | None = None, timeout: float = 120
) -> tuple[int, str]:
    """Run ``memprov ARGS`` with stdin, stdout and stderr on a pseudo-terminal; type ``answer`` when it asks."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "MEMPROV_DEBUG")}
    full_env.update({"TERM": "xterm-256color", "COLUMNS": "200"}, **(env or {}))
    main, side = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "provisioner", *args], cwd=cwd, env=full_env, stdin=side, stdout=side, stderr=side
    )
    os.close(side)
    out = b""
    asked = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            if answer is not None and not asked and b"[y/n]" in out:
                os.write(main, answer)
                asked = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    return code, out.decode(errors="replace").replace("\r\n", "\n")


# --- global options after the verb -------------------------------------------------------------------
def test_global_options_are_accepted_after_the_verb(repo: Path, tmp_path: Path) -> None:
    applied = memprov("apply", "--no-color", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    spec = str(repo / "memprov.yaml")
    planned = memprov("plan", "--spec", spec, "--no-color", cwd=elsewhere)
    assert planned.returncode == 0, planned.stderr
    assert "memprov plan · environment local" in planned.stdout
    # given twice, the later one wins (before the verb: the default or MEMPROV_SPEC)
    later = memprov("--spec", "nope.yaml", "validate", "-s", spec, cwd=elsewhere)
    assert later.returncode == 0, later.stderr
    missing = memprov("--spec", spec, "validate", "--spec=nope.yaml", cwd=elsewhere)
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr
    # a sub-verb takes them too: the error is the breaker's, not "No such option"
    breaker = memprov("breaker", "history", "--no-color", cwd=repo)
    assert breaker.returncode == 2 and "no breaker: block" in breaker.stderr


def test_run_keeps_what_follows_the_command_for_the_job(repo: Path, tmp_path: Path) -> None:
    """``memprov run`` (the fast path) takes --spec among its own options; after ``--`` all is the job's."""
    other = example_repo(tmp_path / "other")
    (other / "memprov.yaml").write_text(
        (other / "memprov.yaml").read_text().replace("  clv-daily:\n", "  clv-hourly:\n", 1)
    )
    env = {"MEMPROV_DEBUG": ""}
    job = memprov(
        "run", "--job", "clv-daily", "--cgroup", "none", "--", "echo", "--no-color", "--spec", "x", cwd=repo, env=env
    )
    assert job.returncode == 0, job.stderr
    assert job.stdout.strip() == "--no-color --spec x"
    spec = str(other / "memprov.yaml")
    refused = memprov("run", "--spec", spec, "--no-color", "--job", "clv-daily", "--", "true", cwd=repo, env=env)
    assert refused.returncode == 2, refused.stderr
    assert "has no such job" in refused.stderr and "clv-hourly" in refused.stderr
    ran = memprov("run", "--job", "clv-hourly", f"--spec={spec}", "--cgroup", "none", "--", "true", cwd=repo)
    assert ran.returncode == 0, ran.stderr


# --- colour --------------------------------------------------------------------------------------------
def test_a_terminal_gets_styles_unless_no_color_says_otherwise(repo: Path) -> None:
    code, text = on_terminal("plan", cwd=repo)
    assert code == 0 and ESC in text, text[:500]
    for args, env in (
        (("plan",), {"NO_COLOR": "1"}),
        (("plan", "--no-color"), {}),
        (("--no-color", "plan"), {}),
        (("plan", "--env", "nope"), {"NO_COLOR": "yes"}),  # errors too
        (("plan", "--nope"), {"NO_COLOR": "1"}),  # usage errors too
    ):
        code, text = on_terminal(*args, cwd=repo, env=env)
        assert ESC not in text, (args, env, text[:500])  # no colour, and no bold or dim either
        assert "memprov" in text or "rror" in text
    # an empty NO_COLOR is not set (no-color.org); --color wins over NO_COLOR
    code, text = on_terminal("plan", cwd=repo, env={"NO_COLOR": ""})
    assert ESC in text
    code, text = on_terminal("plan", "--color", cwd=repo, env={"NO_COLOR": "1"})
    assert ESC in text


# --- the confirmation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("answer", [b"n\r", b"\x04"], ids=["no", "end-of-input"])
def test_declining_the_prompt_changes_nothing_and_exits_1(repo: Path, answer: bytes) -> None:
    code, text = on_terminal("apply", "--backend", "alertmanager", "--no-color", cwd=repo, answer=answer)
    assert "Apply 1 change to local? [y/n]" in text, text
    assert "Cancelled; nothing was changed." in text
    assert code == 1
    assert not (repo / "out").exists()


def test_accepting_the_prompt_applies(repo: Path) -> None:
    code, text = on_terminal("apply", "--backend", "alertmanager", "--no-color", cwd=repo, answer=b"y\r")
    assert code == 0, text
    assert "Apply complete: 1 of 1 change applied" in text
    assert (repo / "out" / "local" / "alertmanager" / "alertmanager.yml").is_file()


def test_apply_yes_does_not_print_the_checksum_hint(repo: Path) -> None:
    result = memprov("apply", "--yes", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "Checksum " in result.stdout  # what it applies is still identified
    assert "Apply exactly this plan" not in result.stdout
    assert "Apply complete: 15 of 15 changes applied" in result.stdout


# --- a plan that cannot be applied ---------------------------------------------------------------------
def test_a_plan_with_an_unread_backend_says_it_cannot_be_applied(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prod's Grafana is read through the API with GRAFANA_TOKEN; without it, that backend is not read."""
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    env: dict[str, str] = {}
    text = memprov("plan", "--env", "prod", cwd=repo, env=env)
    assert text.returncode == 1
    assert "! cannot read live state: environment variable GRAFANA_TOKEN" in text.stdout
    assert "not counted: grafana (live state not read)" in text.stdout
    assert "This plan cannot be applied" in text.stdout
    assert "Apply exactly this plan" not in text.stdout and "--checksum" not in text.stdout
    markdown = memprov("plan", "--env", "prod", "--format", "markdown", cwd=repo, env=env)
    assert markdown.returncode == 1
    assert "⚠️ not counted: grafana" in markdown.stdout and "⛔ This plan cannot be applied" in markdown.stdout
    assert "| grafana |" in markdown.stdout and "| — | — | — | — |" in markdown.stdout
    assert "Apply exactly this plan" not in markdown.stdout
    data = json.loads(memprov("plan", "--env", "prod", "--format", "json", cwd=repo, env=env).stdout)
    assert data["unread"] == ["grafana"] and data["applicable"] is False
    refused = memprov("apply", "--env", "prod", "--yes", cwd=repo, env=env)
    assert refused.returncode == 1 and "nothing was changed" in refused.stderr
    assert not (repo / "out" / "prod").exists()
