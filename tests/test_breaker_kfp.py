"""The breaker against the Kubeflow Pipelines run API fake: terminate, then a new run with more memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provisioner.breaker.orchestrators.kfp import Kfp
from provisioner.breaker.planner import Alert, Past, decide
from provisioner.spec.breaker import Breaker, KfpConnection
from tests.fakes.kfp import FakeKfp, wait_state

ALERT = Alert("BatchJobMemoryTimeToOOM", "firing", "fp03", "2026-12-02T10:00:00Z", {})


@pytest.fixture
def kfp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKfp]:
    fake = FakeKfp()
    monkeypatch.setenv("KFP_TOKEN", fake.token)
    yield fake
    fake.close()


def client_for(fake: FakeKfp) -> tuple[Kfp, Breaker]:
    breaker = Breaker.model_validate(
        {
            "orchestrator": "kfp",
            "max_memory": "32Gi",
            "max_bumps": 2,
            "cooldown": "1s",
            "dry_run": False,
            "kfp": {"experiment_id": "exp-1", "pipeline_id": "clv-pipeline", "memory_parameter": "score_memory"},
        }
    )
    return Kfp(KfpConnection(url=fake.url, token={"env": "KFP_TOKEN"}), breaker.kfp), breaker  # type: ignore[arg-type]


def test_terminate_and_rerun_with_a_larger_memory_parameter(kfp: FakeKfp) -> None:
    kfp.add_run("exp-1", "other-pipeline", {"score_memory": "2Gi"})
    old = kfp.add_run("exp-1", "clv-pipeline", {"score_memory": "8Gi", "date": "2026-12-02"})
    client, breaker = client_for(kfp)
    observed = client.observe()
    assert (observed.run_id, observed.running, observed.memory) == (old, True, 8 * 2**30)
    decision = decide(breaker, ALERT, observed, Past(), 0.0, 8 * 2**30)
    results = client.execute(client.plan(decision, observed, ALERT.key), 0, lambda i, r: None)
    assert [(r.call, r.status) for r in results] == [
        ("terminate run", 200),
        ("create run clv-daily-2026-12-02-mp1", 200),
    ]
    assert wait_state(kfp, old, "CANCELED")
    [new] = [r for r in kfp.runs.values() if r["display_name"].endswith("-mp1")]
    assert new["runtime_config"]["parameters"] == {"score_memory": "12Gi", "date": "2026-12-02"}
    assert new["pipeline_version_reference"] == {"pipeline_id": "clv-pipeline", "pipeline_version_id": "v7"}
    # the next alert on the new run knows the chain: same root run, one bump done, this alert handled
    again = client.observe()
    assert (again.run_id, again.remote_bumps, again.memory) == (old, 1, 12 * 2**30)
    assert ALERT.key in again.handled
    second = decide(
        breaker,
        Alert("BatchJobMemoryTimeToOOM", "firing", "fp04", "2026-12-02T11:00:00Z", {}),
        again,
        Past(),
        10.0,
        8 * 2**30,
    )
    assert (second.outcome, second.memory_after, second.bump_number) == ("act", 18 * 2**30, 2)
    assert [f"{r.method} {r.path}" for r in kfp.mutating] == [
        f"POST /apis/v2beta1/runs/{old}:terminate",
        "POST /apis/v2beta1/runs",
    ]
    client.close()


def test_nothing_running_is_refused_without_a_call(kfp: FakeKfp) -> None:
    kfp.add_run("exp-1", "clv-pipeline", {"score_memory": "8Gi"}, state="SUCCEEDED")
    client, breaker = client_for(kfp)
    observed = client.observe()
    decision = decide(breaker, ALERT, observed, Past(), 0.0, 8 * 2**30)
    assert decision.outcome == "refused" and "nothing is running" in decision.reason
    assert kfp.mutating == []
    client.close()
