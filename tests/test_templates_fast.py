"""Templates nobody overrides are not run: their data is built in Python. The shipped templates still
render exactly that data (through the real sandbox), overrides still go through the sandbox, and
rendering a spec without overrides never starts the sandbox's worker process."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.render.alertmanager import DEFAULT_MESSAGES, MESSAGES
from provisioner.render.grafana.panels import ABOUT, about_text, human
from provisioner.render.templating import render_data
from provisioner.spec.loader import environments, load
from provisioner.spec.resolved import ResolvedJob
from tests.helpers import ROOT, example_repo, memprov

SPEC = ROOT / "memprov.yaml"


def shipped_about(job: ResolvedJob, env: str) -> str:
    """The shipped about template, rendered in the sandbox as an override would be."""
    text: str = render_data(
        ABOUT,
        None,
        required=("text",),
        nested=False,
        job=job,
        env=env,
        limit_h=human(job.limit),
        warning_h=human(job.warning_bytes),
        critical_h=human(job.critical_bytes),
    )["text"]
    return text


def test_the_shipped_messages_template_renders_the_default_messages() -> None:
    for env in environments(SPEC):
        spec = load(SPEC, env)
        assert render_data(MESSAGES, None, required=("slack",), spec=spec) == DEFAULT_MESSAGES


def test_the_shipped_about_template_renders_the_default_text_for_every_example_job() -> None:
    seen = 0
    for env in environments(SPEC):
        for job in load(SPEC, env).jobs:
            assert about_text(job, env) == shipped_about(job, env), (env, job.id)
            seen += 1
    assert seen >= 20


TEXT = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=TEXT, description=TEXT, owner=TEXT, version=TEXT, limit=st.integers(2**20, 2**40))
def test_the_default_about_text_equals_the_template_for_any_text(
    name: str, description: str, owner: str, version: str, limit: int
) -> None:
    base = load(SPEC, "local").jobs[0]
    job = dataclasses.replace(
        base,
        name=name or "x",
        description=description,
        owner=owner,
        model_version=version,
        limit=limit,
        warning_bytes=limit * 8 // 10,
        critical_bytes=limit * 9 // 10,
    )
    assert about_text(job, "prod") == shipped_about(job, "prod")


def test_an_override_still_goes_through_the_sandbox(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    (repo / "templates" / "grafana").mkdir(parents=True)
    (repo / "templates" / "grafana" / "about.md.j2").write_text('text: [[ ("Ask " ~ job.owner) | yaml ]]\n')
    done = memprov("render", "--env", "local", "--out", str(tmp_path / "out"), cwd=repo)
    assert done.returncode == 0, done.stderr
    dashboard = (tmp_path / "out" / "grafana" / "dashboards").glob("*clv-daily*.json")
    assert '"content": "Ask data-eng"' in next(dashboard).read_text(encoding="utf-8")
    (repo / "templates" / "grafana" / "about.md.j2").write_text("text: [[ job.nosuch.x ]]\n")
    done = memprov("validate", "--env", "local", cwd=repo)
    assert done.returncode == 2 and "templates/grafana/about.md.j2:1: template error" in done.stderr


PROBE = """
import sys
from pathlib import Path
from provisioner.backends.artefacts import expected_tree, render_problems
from provisioner.render import sandbox
from provisioner.spec.loader import load
spec = load(Path(sys.argv[1]), sys.argv[2])
assert not render_problems(spec)
files = expected_tree(spec, Path(sys.argv[3]))
print(len(files), sandbox._WORKER.proc is None)
"""


def test_rendering_without_overrides_never_starts_the_sandbox(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    for env in ("local", "prod"):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, str(repo / "memprov.yaml"), env, str(tmp_path / "out")],
            capture_output=True,
            text=True,
            check=True,
        )
        count, idle = done.stdout.split()
        assert int(count) > 5 and idle == "True", done.stdout
