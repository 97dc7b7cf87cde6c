"""The breaker's arithmetic, decisions and receiver, against the Airflow 2 fake (validated by v1.yaml).

``breaker serve`` runs as a real process; its orchestrator is the fake Airflow 2 API, whose request
log is the proof of what was (and was not) sent.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provisioner.breaker.planner import Alert, Observed, Past, bump, decide
from provisioner.spec.breaker import Breaker
from tests.breaker_helpers import TOKEN, Serve, alert, audit, env_yaml, free_port, make_repo, payload
from tests.fakes.airflow2 import FakeAirflow2
from tests.helpers import memprov

GI, MI = 2**30, 2**20


# --- arithmetic and decisions (pure) ---------------------------------------------------------------
def test_bump_arithmetic() -> None:
    assert bump(8 * GI, 1.5, 512 * MI, 32 * GI) == 12 * GI
    assert bump(1 * GI, 1.2, 512 * MI, 32 * GI) == 1536 * MI  # min_step wins over the factor
    assert bump(1 * GI, 1.5, 512 * MI, 32 * GI) == 1536 * MI
    assert bump(20 * GI, 2.0, 512 * MI, 32 * GI) == 32 * GI  # capped
    assert bump(1000 * MI + 1, 1.1, 1, 32 * GI) == 1101 * MI  # rounded up to a whole MiB


def _breaker(**kw: object) -> Breaker:
    raw = {
        "orchestrator": "airflow",
        "max_memory": "16Gi",
        "airflow": {"dag_id": "d", "task_id": "t", "memory_variable": "v"},
    }
    return Breaker.model_validate({**raw, **kw})


ALERT = Alert("BatchJobMemoryTimeToOOM", "firing", "fp", "2026-12-02T10:00:00Z", {})
RUNNING = Observed(run_id="run-1", running=True, memory=8 * GI)


def test_decisions_refuse_with_their_reason() -> None:
    b = _breaker(max_bumps=2, cooldown="30m")
    ok = decide(b, ALERT, RUNNING, Past(), 10_000.0, 8 * GI)
    assert (ok.outcome, ok.memory_before, ok.memory_after, ok.bump_number) == ("act", 8 * GI, 12 * GI, 1)
    cooling = decide(b, ALERT, RUNNING, Past(1, 10_000.0 - 600), 10_000.0, 8 * GI)
    assert cooling.outcome == "refused" and cooling.reason.startswith(
        "cooldown: the last action on this job was 10m ago"
    )
    spent = decide(b, ALERT, RUNNING, Past(2, 0.0), 10_000.0, 8 * GI)
    assert spent.outcome == "refused" and "max_bumps" in spent.reason
    remote = decide(b, ALERT, Observed("run-1", True, 8 * GI, remote_bumps=2), Past(), 10_000.0, 8 * GI)
    assert remote.outcome == "refused" and "max_bumps" in remote.reason  # the orchestrator's marker counts too
    cap = decide(b, ALERT, Observed("run-1", True, 16 * GI), Past(), 10_000.0, 8 * GI)
    assert cap.outcome == "refused" and cap.reason.startswith("at the cap")
    idle = decide(b, ALERT, Observed(None, False, 8 * GI), Past(), 10_000.0, 8 * GI)
    assert idle.outcome == "refused" and "nothing is running" in idle.reason
    seen = decide(b, ALERT, Observed("run-1", True, 8 * GI, handled=frozenset({ALERT.key})), Past(), 10_000.0, 8 * GI)
    assert seen.outcome == "ignored"
    assert decide(_breaker(action="pause"), ALERT, RUNNING, Past(), 0, 8 * GI).memory_after == 8 * GI


AIRFLOW = "airflow: {dag_id: d, task_id: t, memory_variable: v}"


# --- spec validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "orchestrator: airflow\nmax_memory: 32Gi\nbump: {factor: 1.05}\n" + AIRFLOW,
            ":17: jobs.j.breaker.bump.factor: must be at least 1.1, got 1.05",
        ),
        (
            "orchestrator: airflow\nmax_memory: 4Gi\nairflow: {dag_id: d, task_id: t, memory_variable: v}",
            ":14: jobs.j.breaker: max_memory 4Gi is below the job's memory limit 8Gi",
        ),
        (
            "orchestrator: airflow\nmax_memory: 32Gi\nmax_bumps: 6\n" + AIRFLOW,
            ":17: jobs.j.breaker.max_bumps: must be at most 5, got 6",
        ),
        (
            "orchestrator: airflow\nmax_memory: 32Gi\ncooldown: 30 minutes\n" + AIRFLOW,
            ":17: jobs.j.breaker.cooldown:",
        ),
        (
            "orchestrator: argo\nmax_memory: 32Gi",
            ':15: jobs.j.breaker.orchestrator: "argo" is not one of airflow, kubernetes, kfp or aws_batch',
        ),
        (
            "orchestrator: kubernetes\nmax_memory: 32Gi",
            ":14: jobs.j.breaker: orchestrator kubernetes needs breaker.kubernetes: {namespace, job_name, container",
        ),
        (
            "orchestrator: airflow\nmax_memory: 32GB\nairflow: {dag_id: d, task_id: t, memory_variable: v}",
            ':16: jobs.j.breaker.max_memory: "32GB" is not a size; use 32Gi',
        ),
        (
            "orchestrator: airflow\nmax_memory: 32Gi\nairflow: {dag_id: d, task_id: t, memory_variable: v, pool: x}",
            ":17: jobs.j.breaker.airflow.pool: unknown key 'pool'; allowed here: dag_id, task_id, memory_variable",
        ),
    ],
)
def test_breaker_spec_errors_point_at_the_line(tmp_path: Path, block: str, message: str) -> None:
    repo = make_repo(tmp_path, {"j": block})
    result = memprov("validate", "--env", "test", cwd=repo)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"memprov.yaml{message}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_dry_run_defaults_to_true_and_connections_are_required(tmp_path: Path) -> None:
    block = "orchestrator: airflow\nmax_memory: 32Gi\nairflow: {dag_id: d, task_id: t, memory_variable: v}"
    b = Breaker.model_validate(
        {
            "orchestrator": "airflow",
            "max_memory": "32Gi",
            "airflow": {"dag_id": "d", "task_id": "t", "memory_variable": "v"},
        }
    )
    assert b.dry_run is True
    repo = make_repo(tmp_path, {"j": block}, env_yaml="breaker: {listen: '127.0.0.1:9095'}\n")
    result = memprov("validate", "--env", "test", cwd=repo)
    assert result.returncode == 2
    assert "jobs.j.breaker: orchestrator airflow needs breaker.airflow (how to reach it)" in result.stderr


# --- the receiver ----------------------------------------------------------------------------------
AIRFLOW2_BREAKER = """\
orchestrator: airflow
on: [time_to_oom, usage]
max_memory: 32Gi
dry_run: {dry}
airflow: {{dag_id: clv_daily, task_id: score, memory_variable: memprov.clv-daily.memory_limit}}
"""


@pytest.fixture
def fake2() -> Iterator[FakeAirflow2]:
    fake = FakeAirflow2()
    fake.add_running("clv_daily", "scheduled__2026-12-02", "score")
    yield fake
    fake.close()
    assert fake.invalid == [], fake.invalid  # every request and response matched v1.yaml


def serve_for(tmp: Path, fake: FakeAirflow2, dry: bool = False, **kw: str) -> tuple[Serve, Path]:
    port, state = free_port(), tmp / "state"
    conn = f"airflow: {{url: '{fake.url}', api: v1, username: admin, password: {{env: AIRFLOW2_PASSWORD}}}}"
    repo = make_repo(
        tmp / "repo", {"clv-daily": AIRFLOW2_BREAKER.format(dry=str(dry).lower())}, env_yaml=env_yaml(port, state, conn)
    )
    return Serve(repo, "test", port, extra_env={"AIRFLOW2_PASSWORD": "fake-airflow2-password"}, **kw), state


def test_auth_and_input_limits(tmp_path: Path, fake2: FakeAirflow2) -> None:
    serve, state = serve_for(tmp_path, fake2)
    serve.start()
    try:
        good = payload(alert("clv-daily"))
        assert serve.post(good, token=None).status_code == 401
        assert serve.post(good, token="wrong-token-wrong-token-wrong").status_code == 401
        assert serve.post(good, token=TOKEN[:-1]).status_code == 401
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        assert httpx.post(f"{serve.url}/alerts", content=b"{not json", headers=headers).status_code == 400
        assert serve.post({**good, "version": "3"}).status_code == 422
        assert serve.post({**good, "alerts": [{"labels": {}}]}).status_code == 422
        big = b'{"version": "4", "alerts": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
        assert httpx.post(f"{serve.url}/alerts", content=big, headers=headers).status_code == 413
        refused = [
            alert("no-such-job"),
            alert("clv-daily", env="prod"),
            alert("clv-daily", namespace="other-namespace"),
            alert("clv-daily", dag_id="someone_elses_dag"),
            alert("clv-daily", name="BatchJobMemoryWarning"),
            alert("clv-daily", memprov_breaker="off"),
        ]
        r = serve.post(payload(*refused))
        assert r.status_code == 200 and {d["outcome"] for d in r.json()["decisions"]} == {"refused"}
        resolved = serve.post(payload(alert("clv-daily", status="resolved")))
        assert resolved.json()["decisions"] == [{"job": "clv-daily", "outcome": "ignored"}]
    finally:
        log = serve.stop()
    assert fake2.log == []  # not one orchestrator call, not even a read
    reasons = [r["reason"] for r in audit(state)]
    assert any("not a job of the spec" in r for r in reasons)
    assert any("contradicts the spec (namespace='batch')" in r for r in reasons)
    assert any("contradicts the spec (dag_id='clv_daily')" in r for r in reasons)
    assert TOKEN not in log and TOKEN not in (state / "audit.jsonl").read_text()


def test_dry_run_plans_every_call_and_sends_no_mutating_request(tmp_path: Path, fake2: FakeAirflow2) -> None:
    serve, state = serve_for(tmp_path, fake2, dry=True)
    serve.start()
    try:
        assert serve.post(payload(alert("clv-daily"))).json()["decisions"][0]["outcome"] == "dry_run"
    finally:
        serve.stop()
    assert fake2.log and fake2.mutating == []
    [record] = audit(state)
    assert [(c["call"], c["op"].split()[0]) for c in record["planned"]] == [
        ("pause DAG", "PATCH"),
        ("note task instance", "PATCH"),
        ("fail task instance", "PATCH"),
        ("set memory variable", "POST"),
        ("clear task instance", "POST"),
        ("unpause DAG", "PATCH"),
    ]
    assert record["planned"][2]["body"] == {"dry_run": False, "new_state": "failed"}
    assert record["memory"] == {"before": 8 * GI, "after": 12 * GI}


def test_airflow2_bump_and_resume_then_duplicates_are_no_ops(tmp_path: Path, fake2: FakeAirflow2) -> None:
    serve, state = serve_for(tmp_path, fake2)
    serve.start()
    try:
        first = serve.post(payload(alert("clv-daily")))
        assert first.json()["decisions"] == [{"job": "clv-daily", "outcome": "acted"}]
        again = serve.post(payload(alert("clv-daily")))
        assert again.json()["decisions"] == [{"job": "clv-daily", "outcome": "duplicate"}]
    finally:
        serve.stop()
    ti = fake2.state.tis[("clv_daily", "scheduled__2026-12-02", "score")]
    assert (ti["state"], ti["try_number"]) == ("running", 2)
    assert fake2.state.variables["memprov.clv-daily.memory_limit"]["value"] == "12Gi"
    assert fake2.state.paused["clv_daily"] is False
    assert "memprov-breaker:a1b2c3d4e5f60718@2026-12-02T10:00:00.000Z" in ti["note"]
    assert [f"{r.method} {r.path}" for r in fake2.mutating] == [
        "PATCH /api/v1/dags/clv_daily",
        "PATCH /api/v1/dags/clv_daily/dagRuns/scheduled__2026-12-02/taskInstances/score/setNote",
        "PATCH /api/v1/dags/clv_daily/dagRuns/scheduled__2026-12-02/taskInstances/score",
        "POST /api/v1/variables",
        "POST /api/v1/dags/clv_daily/clearTaskInstances",
        "PATCH /api/v1/dags/clv_daily",
    ]
    assert fake2.mutating[0].query == {"update_mask": ["is_paused"]}
    outcomes = [r["outcome"] for r in audit(state)]
    assert outcomes == ["acted", "duplicate"]


def test_serve_starts_without_cloud_sdks(tmp_path: Path, fake2: FakeAirflow2) -> None:
    serve, _ = serve_for(tmp_path, fake2)
    probe = (
        "import sys, runpy; sys.argv = ['memprov', 'breaker', 'serve', '--env', 'test'];"
        "import threading, os, signal;"
        "import time, urllib.request\n"
        "def stop():\n"
        "    deadline = time.monotonic() + 60\n"
        "    while time.monotonic() < deadline:\n"
        "        try:\n"
        f"            urllib.request.urlopen('{serve.url}/-/healthy', timeout=1); break\n"
        "        except Exception: time.sleep(0.1)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "threading.Thread(target=stop, daemon=True).start()"
        "\ntry:\n runpy.run_module('provisioner', run_name='__main__')\nexcept SystemExit: pass\n"
        "sdks = ('boto3', 'botocore', 'google', 'azure', 'kubernetes');"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in sdks))"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=serve.repo,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "MEMPROV_BREAKER_TOKEN": TOKEN},
    )
    assert "LOADED []" in out.stdout, out.stdout + out.stderr
    serve.start()  # it serves: how fast is measured by bench/run.py against a reference, not by a timed test
    print(f"\nbreaker serve: start to /-/healthy in {serve.started_in:.2f} s")
    serve.stop()


def test_plan_notes_history_and_breaker_plan(tmp_path: Path, fake2: FakeAirflow2) -> None:
    serve, state = serve_for(tmp_path, fake2, dry=True)
    env = {"MEMPROV_BREAKER_TOKEN": TOKEN, "AIRFLOW2_PASSWORD": "fake-airflow2-password"}
    plan = memprov("plan", "--env", "test", "--backend", "alertmanager", cwd=serve.repo, env=env)
    assert plan.returncode == 0, plan.stderr
    note = next(line for line in plan.stdout.splitlines() if "breaker clv-daily" in line)
    assert (
        "[DRY RUN (dry_run: true, no mutating request)] on critical time_to_oom, usage via memprov-breaker-test" in note
    )
    assert "memory 8Gi -> 12Gi on a first bump" in note and "state lost: the task's in-process progress" in note
    (tmp_path / "alert.json").write_text(json.dumps(payload(alert("clv-daily"), alert("nobody"))))
    dry = memprov(
        "breaker",
        "plan",
        "--env",
        "test",
        "--alert",
        str(tmp_path / "alert.json"),
        "--format",
        "json",
        cwd=serve.repo,
        env=env,
    )
    assert dry.returncode == 0, dry.stderr
    rows = json.loads(dry.stdout)
    assert [r["outcome"] for r in rows] == ["act", "refused"]
    assert [c["op"].split()[0] for c in rows[0]["calls"]] == ["PATCH", "PATCH", "PATCH", "POST", "POST", "PATCH"]
    assert fake2.mutating == []  # breaker plan only reads
    serve.start()
    try:
        serve.post(payload(alert("clv-daily")))
        serve.post(payload(alert("clv-daily", status="resolved")))
    finally:
        serve.stop()
    table = memprov("breaker", "history", "--env", "test", cwd=serve.repo, env=env)
    assert (
        table.returncode == 0 and "clv-daily  BatchJobMemoryTimeToOOM  dry_run (dry run)  8Gi -> 12Gi" in table.stdout
    )
    md = memprov(
        "breaker", "history", "--env", "test", "--job", "clv-daily", "--format", "markdown", cwd=serve.repo, env=env
    )
    assert md.stdout.startswith("| time | job | alert | outcome | memory | calls | reason |")
    assert len(md.stdout.splitlines()) == 4
    js = json.loads(memprov("breaker", "history", "--env", "test", "--format", "json", cwd=serve.repo, env=env).stdout)
    assert [r["outcome"] for r in js] == ["dry_run", "ignored"]
    everything = (state / "audit.jsonl").read_text() + plan.stdout + dry.stdout + table.stdout
    assert TOKEN not in everything and "fake-airflow2-password" not in everything


def test_serve_refuses_a_missing_or_short_token(tmp_path: Path, fake2: FakeAirflow2) -> None:
    serve, _ = serve_for(tmp_path, fake2)
    missing = memprov(
        "breaker", "serve", "--env", "test", cwd=serve.repo, env={"MEMPROV_BREAKER_TOKEN": ""}, timeout=30
    )
    assert missing.returncode == 2 and "must be at least 16 characters" in missing.stderr
    no_block = memprov("breaker", "serve", "--env", "local", cwd=serve.repo, timeout=30)
    assert no_block.returncode == 2 and "has no breaker: block" in no_block.stderr
