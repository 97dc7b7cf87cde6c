"""The breaker's Kubernetes Job strategies against the faithful fake API (tests/fakes/kubernetes.py).

R1 in-place resize (>= 1.33), R2 suspend → resize → resume (1.36), R3 a new Job (1.34 refuses the
template change), notify only; a 409 retried with a fresh resourceVersion; and proof that the fake
refuses what the real server refuses (the official client's json-patch default for a dict body, an
RFC 7386 merge patch that would replace the containers list).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provisioner.breaker.orchestrators.kubernetes import Kubernetes
from provisioner.breaker.planner import Alert, Past, decide
from provisioner.spec.breaker import Breaker, KubernetesConnection
from tests.fakes.kubernetes import JSONPATCH, MERGE, STRATEGIC, FakeKubernetes

GI = 2**30
ALERT = Alert("BatchJobMemoryTimeToOOM", "firing", "fp01", "2026-12-02T10:00:00Z", {})


@pytest.fixture
def k8s(request: pytest.FixtureRequest) -> Iterator[FakeKubernetes]:
    version, gates = getattr(request, "param", ("1.36", ()))
    fake = FakeKubernetes(version=version, gates=gates, grace=0.4)
    fake.add_job("batch", "clv-daily", "scorer", "8Gi")
    yield fake
    fake.close()


def run(fake: FakeKubernetes, monkeypatch: pytest.MonkeyPatch, **target: Any) -> tuple[list[Any], Kubernetes]:
    monkeypatch.setenv("K8S_TOKEN", fake.token)
    breaker = Breaker.model_validate(
        {
            "orchestrator": "kubernetes",
            "max_memory": "32Gi",
            "dry_run": False,
            "kubernetes": {"namespace": "batch", "job_name": "clv-daily", "container": "scorer", **target},
        }
    )
    client = Kubernetes(KubernetesConnection(url=fake.url, token={"env": "K8S_TOKEN"}), breaker.kubernetes)  # type: ignore[arg-type]
    observed = client.observe()
    decision = decide(breaker, ALERT, observed, Past(), 0.0, 8 * GI)
    assert (decision.outcome, decision.memory_after) == ("act", 12 * GI)
    calls = client.plan(decision, observed, ALERT.key)
    results = client.execute(calls, 0, lambda i, r: None)
    client.close()
    return results, client


def container(obj: dict[str, Any]) -> dict[str, Any]:
    return (
        obj["spec"]["template"]["spec"]["containers"][0] if "template" in obj["spec"] else obj["spec"]["containers"][0]
    )


def test_r1_in_place_resize_keeps_the_pod(k8s: FakeKubernetes, monkeypatch: pytest.MonkeyPatch) -> None:
    [pod_before] = k8s.job_pods("batch", "clv-daily")
    results, _ = run(k8s, monkeypatch)
    assert [r.call.split(" (")[0] for r in results] == [f"resize pod {pod_before['metadata']['name']}", "mark job"]
    [pod] = k8s.job_pods("batch", "clv-daily")
    assert pod["metadata"]["uid"] == pod_before["metadata"]["uid"]  # the same pod: nothing restarted
    assert pod["status"]["containerStatuses"][0]["resources"]["limits"]["memory"] == "12Gi"
    assert pod["status"]["containerStatuses"][0]["resources"]["requests"]["memory"] == "1Gi"  # Burstable stays so
    job = k8s.jobs[("batch", "clv-daily")]
    assert container(job)["resources"]["limits"]["memory"] == "8Gi"  # R1 leaves the template: the next run is 8Gi
    assert job["metadata"]["annotations"]["memprov.io/breaker-bumps"] == "1"
    assert {r.content_type for r in k8s.mutating} == {STRATEGIC}
    resize = next(r for r in k8s.mutating if r.path.endswith("/resize"))
    assert resize.body == {"spec": {"containers": [{"name": "scorer", "resources": {"limits": {"memory": "12Gi"}}}]}}


@pytest.mark.parametrize("k8s", [("1.36", ())], indirect=True)
def test_r1_infeasible_falls_back_to_r2_suspend_resize_resume(
    k8s: FakeKubernetes, monkeypatch: pytest.MonkeyPatch
) -> None:
    k8s.infeasible = True
    [old] = k8s.job_pods("batch", "clv-daily")
    results, _ = run(k8s, monkeypatch)
    assert results[0].status == "fallback" and "Infeasible" in results[0].note
    assert [r.call for r in results[1:]] == ["suspend job", "resize template and resume"]
    job = k8s.jobs[("batch", "clv-daily")]
    assert container(job)["resources"]["limits"]["memory"] == "12Gi" and job["spec"]["suspend"] is False
    [new] = k8s.job_pods("batch", "clv-daily")
    assert (
        new["metadata"]["uid"] != old["metadata"]["uid"] and container(new)["resources"]["limits"]["memory"] == "12Gi"
    )
    # the template change was one PATCH that also resumed, sent only once the suspended Job had no active pods
    [resize_and_resume] = [
        r for r in k8s.mutating if r.path.endswith("/jobs/clv-daily") and "template" in r.body.get("spec", {})
    ]
    assert resize_and_resume.body["spec"]["suspend"] is False


@pytest.mark.parametrize("k8s", [("1.34", ())], indirect=True)
def test_r2_refused_on_1_34_falls_back_to_a_new_job(k8s: FakeKubernetes, monkeypatch: pytest.MonkeyPatch) -> None:
    results, _ = run(k8s, monkeypatch, strategy="suspend_resize_resume")
    assert [(r.call, r.status) for r in results] == [
        ("suspend job", 200),
        ("resize template and resume", "fallback"),
        ("create job clv-daily-mp1", 201),
        ("delete old job", 200),
    ]
    assert "field is immutable" in results[1].note
    assert ("batch", "clv-daily") not in k8s.jobs
    new = k8s.jobs[("batch", "clv-daily-mp1")]
    assert container(new)["resources"]["limits"]["memory"] == "12Gi"
    assert new["metadata"]["annotations"]["memprov.io/breaker-bumps"] == "1"
    assert [p["metadata"]["name"].startswith("clv-daily-mp1") for p in k8s.job_pods("batch", "clv-daily-mp1")] == [True]


@pytest.mark.parametrize("k8s", [("1.32", ())], indirect=True)
def test_old_cluster_with_notify_only_fallback_only_annotates(
    k8s: FakeKubernetes, monkeypatch: pytest.MonkeyPatch
) -> None:
    results, _ = run(k8s, monkeypatch, fallback="notify_only")
    assert [r.call for r in results] == ["annotate job (notify only)"]
    job = k8s.jobs[("batch", "clv-daily")]
    assert "no way to give it more memory" in job["metadata"]["annotations"]["memprov.io/breaker-notice"]
    assert job["spec"]["suspend"] is False and len(k8s.job_pods("batch", "clv-daily")) == 1


@pytest.mark.parametrize("k8s", [("1.35", ())], indirect=True)
def test_1_35_without_the_gate_refuses_and_the_fallback_takes_over(
    k8s: FakeKubernetes, monkeypatch: pytest.MonkeyPatch
) -> None:
    k8s.infeasible = True  # R1 infeasible → R2 (1.35 might have the gate) → 422 → new Job
    results, _ = run(k8s, monkeypatch)
    assert [r.status for r in results] == ["fallback", 200, "fallback", 201, 200]
    assert ("batch", "clv-daily-mp1") in k8s.jobs


def test_conflict_is_retried_with_a_fresh_resource_version(
    k8s: FakeKubernetes, monkeypatch: pytest.MonkeyPatch
) -> None:
    k8s.conflict_next_patch = True
    results, _ = run(k8s, monkeypatch, strategy="suspend_resize_resume")
    assert [r.status for r in results] == [200, 200]
    patches = [r for r in k8s.mutating if r.path.endswith("/jobs/clv-daily")]
    assert len(patches) == 3  # the first was refused with 409, re-read, sent again
    assert patches[0].body["metadata"]["resourceVersion"] != patches[1].body["metadata"]["resourceVersion"]


def test_fake_refuses_what_the_real_server_refuses(k8s: FakeKubernetes) -> None:
    auth = {"Authorization": f"Bearer {k8s.token}"}
    job = f"{k8s.url}/apis/batch/v1/namespaces/batch/jobs/clv-daily"
    body = {"spec": {"suspend": True}}
    # the official Python client picks application/json-patch+json for a dict body unless told otherwise
    assert httpx.patch(job, json=body, headers={**auth, "Content-Type": JSONPATCH}).status_code == 400
    assert httpx.patch(job, json=body, headers={**auth, "Content-Type": "application/json"}).status_code == 415
    assert httpx.patch(job, json=body, headers={"Content-Type": STRATEGIC}).status_code == 401
    [pod] = k8s.job_pods("batch", "clv-daily")
    resize = f"{k8s.url}/api/v1/namespaces/batch/pods/{pod['metadata']['name']}/resize"
    lists = {"spec": {"containers": [{"name": "scorer", "resources": {"limits": {"memory": "12Gi"}}}]}}
    merge = httpx.patch(resize, json=lists, headers={**auth, "Content-Type": MERGE})
    # RFC 7386 replaced the whole list: the image and resizePolicy are gone, which a resize may not change
    assert merge.status_code == 422 and "only cpu and memory resources are mutable" in merge.json()["message"]
    lower = {"spec": {"containers": [{"name": "scorer", "resources": {"limits": {"memory": "4Gi"}}}]}}
    down = httpx.patch(resize, json=lower, headers={**auth, "Content-Type": STRATEGIC})
    assert down.status_code == 422
    assert "memory limits cannot be decreased unless resizePolicy is RestartContainer" in down.json()["message"]
    template = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "scorer", "resources": {"limits": {"memory": "12Gi"}}}]}}
        }
    }
    running = httpx.patch(job, json=template, headers={**auth, "Content-Type": STRATEGIC})
    assert running.status_code == 422 and "field is immutable" in running.json()["message"]
    # suspended but its pods still terminating: still immutable (status.active must be 0)
    assert (
        httpx.patch(job, json={"spec": {"suspend": True}}, headers={**auth, "Content-Type": STRATEGIC}).status_code
        == 200
    )
    assert httpx.patch(job, json=template, headers={**auth, "Content-Type": STRATEGIC}).status_code == 422
