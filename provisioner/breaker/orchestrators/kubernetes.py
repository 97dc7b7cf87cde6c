"""Kubernetes Job: resize in place, or suspend → resize → resume, or a new Job, chosen by version and answers.

From the Kubernetes documentation (research note §A3): **R1** in-place resize — ``PATCH
pods/{pod}/resize`` (beta and on by default from 1.33, stable 1.35), verified through
``status.containerStatuses[].resources``; nothing is lost, but the Job's template keeps the old size.
**R2** (KEP-5440: beta 1.36, alpha 1.35 behind a gate) — ``spec.suspend: true`` (the active pods are
deleted after their grace period), wait for ``status.active == 0``, then one PATCH that raises the
template's memory *and* resumes, as the KEP advises. **R3** — suspend, create ``<job>-mp<n>`` from
the same spec with more memory (server-owned fields, the selector and the controller-uid labels
stripped, else 422), delete the old Job in the background. **notify only** — annotate the Job.
``auto`` tries R1 when pods run on >= 1.33; R2 on >= 1.35 (or when R1 is ``Infeasible``); otherwise,
or when the server refuses the template change (422: a 1.35 cluster without the gate), the
configured fallback. Every PATCH is a *strategic* merge patch with a fresh ``resourceVersion``:
an RFC 7386 merge patch would replace the whole ``containers`` list (research note said merge
patch; strategic is what ``kubectl patch`` sends), and the official Python client's default for a
dict body, ``application/json-patch+json``, is refused with 400. A 409 is retried after a re-read.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from provisioner.breaker.orchestrators.airflow import quantity
from provisioner.breaker.orchestrators.base import Call, HttpClient, Record, StepFailed, StepResult
from provisioner.breaker.planner import Decision, Observed
from provisioner.core.errors import OperationError
from provisioner.core.secrets import resolve
from provisioner.core.units import parse_size
from provisioner.spec.breaker import KubernetesConnection, KubernetesTarget

if TYPE_CHECKING:
    import httpx

STRATEGIC = "application/strategic-merge-patch+json"
ANN = "memprov.io/breaker-"
JOB_LABEL = "batch.kubernetes.io/job-name"
SERVER_OWNED = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink")
WAIT_INACTIVE, WAIT_RESIZE = 120.0, 20.0


class Fallback(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class Kubernetes(HttpClient):
    name = "kubernetes"

    def __init__(self, conn: KubernetesConnection, target: KubernetesTarget) -> None:

        token = resolve(conn.token) if conn.token else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        super().__init__(conn.url, headers=headers, verify=conn.ca_file or True)
        self.t = target
        self.what = f"Kubernetes {conn.url}"
        self.minor = 0

    @property
    def jobs(self) -> str:
        return f"/apis/batch/v1/namespaces/{self.t.namespace}/jobs"

    # --- observe -----------------------------------------------------------------------------------
    def _job(self) -> dict[str, Any]:
        got = self.get(f"{self.jobs}/{self.t.job_name}")
        if got.status_code == 200:
            return dict(got.json())
        newer = self.get(self.jobs, {"labelSelector": f"{ANN}of={self.t.job_name}"}).json().get("items") or []
        if not newer:
            raise OperationError(f"{self.what}: Job {self.t.namespace}/{self.t.job_name} not found ({got.status_code})")
        return dict(max(newer, key=lambda j: int(j["metadata"].get("annotations", {}).get(f"{ANN}bumps", 0))))

    def _container(self, spec: dict[str, Any]) -> dict[str, Any]:
        for c in spec.get("containers", []):
            if c.get("name") == self.t.container:
                return dict(c)
        raise OperationError(f"{self.what}: the Job's pods have no container {self.t.container!r}")

    def observe(self) -> Observed:
        version = self.get("/version").json()
        self.minor = int(str(version.get("minor", "0")).rstrip("+"))
        job = self._job()
        name = job["metadata"]["name"]
        pods = self.get(f"/api/v1/namespaces/{self.t.namespace}/pods", {"labelSelector": f"{JOB_LABEL}={name}"}).json()
        running = [p for p in pods.get("items", []) if p.get("status", {}).get("phase") == "Running"]
        res = self._container(job["spec"]["template"]["spec"]).get("resources") or {}
        limit = (res.get("limits") or {}).get("memory")
        ann = job["metadata"].get("annotations") or {}
        return Observed(
            run_id=ann.get(f"{ANN}root") or job["metadata"]["uid"],
            running=bool(running) and not job["spec"].get("suspend"),
            memory=parse_size(limit) if limit else None,
            handled=frozenset(filter(None, ann.get(f"{ANN}alerts", "").split(","))),
            remote_bumps=int(ann.get(f"{ANN}bumps", 0) or 0),
            details={
                "minor": self.minor,
                "job": job,
                "pods": [p["metadata"]["name"] for p in running],
                "guaranteed": any(p.get("status", {}).get("qosClass") == "Guaranteed" for p in running),
            },
        )

    # --- plan --------------------------------------------------------------------------------------
    def strategy(self, minor: int, pods: bool) -> str:
        if self.t.strategy != "auto":
            return self.t.strategy
        if minor >= 33 and pods:
            return "in_place"
        return "suspend_resize_resume" if minor >= 35 else self.t.fallback

    def plan(self, decision: Decision, observed: Observed, marker: str) -> list[Call]:
        d = observed.details
        job = d["job"]
        name = job["metadata"]["name"]
        marks = self._marks(observed, marker, decision)
        if decision.action == "pause":
            return [
                self._patch(
                    "suspend job", name, {"metadata": {"annotations": marks}, "spec": {"suspend": True}}, inactive=True
                )
            ]
        assert decision.memory_after is not None
        q = quantity(decision.memory_after)
        res = {"limits": {"memory": q}, **({"requests": {"memory": q}} if d.get("guaranteed") else {})}
        kind = self.strategy(int(d.get("minor", 0)), bool(d.get("pods")))
        self._pending = (marker, decision, res)
        return self.calls(kind, job, res, marks, d.get("pods", []), decision)

    def calls(
        self,
        kind: str,
        job: dict[str, Any],
        res: dict[str, Any],
        marks: dict[str, str],
        pods: list[str],
        decision: Decision,
    ) -> list[Call]:
        name = job["metadata"]["name"]
        containers = [{"name": self.t.container, "resources": res}]
        if kind == "in_place":
            resize = [
                Call(
                    f"resize pod {pod}",
                    f"PATCH /api/v1/namespaces/{self.t.namespace}/pods/{pod}/resize",
                    {"spec": {"containers": containers}},
                    content_type=STRATEGIC,
                    verify={"resized": pod, "memory": res["limits"]["memory"]},
                )
                for pod in pods
            ]
            return [
                *resize,
                self._patch(
                    "mark job (template unchanged: the next run gets the old size)",
                    name,
                    {"metadata": {"annotations": marks}},
                ),
            ]
        if kind == "suspend_resize_resume":
            body = {
                "metadata": {"annotations": marks},
                "spec": {"suspend": False, "template": {"spec": {"containers": containers}}},
            }
            return [
                self._patch("suspend job", name, {"spec": {"suspend": True}}, inactive=True),
                self._patch("resize template and resume", name, body, new_pods=res["limits"]["memory"]),
            ]
        if kind == "new_job":
            new = self._copy(job, res, marks, decision.bump_number)
            calls = (
                []
                if job["spec"].get("suspend")
                else [self._patch("suspend job", name, {"spec": {"suspend": True}}, inactive=True)]
            )
            return [
                *calls,
                Call(f"create job {new['metadata']['name']}", f"POST {self.jobs}", new, expect=(201,)),
                Call(
                    "delete old job",
                    f"DELETE {self.jobs}/{name}",
                    {"propagationPolicy": "Background"},
                    expect=(200, 202),
                ),
            ]
        note = {f"{ANN}notice": f"{decision.describe()}; no way to give it more memory on this cluster"[:250]}
        return [self._patch("annotate job (notify only)", name, {"metadata": {"annotations": {**marks, **note}}})]

    def _marks(self, observed: Observed, marker: str, decision: Decision) -> dict[str, str]:
        handled = sorted({*observed.handled, marker})[-20:]
        bumps = observed.remote_bumps + (1 if decision.action == "bump_and_resume" else 0)
        return {f"{ANN}alerts": ",".join(handled), f"{ANN}bumps": str(bumps), f"{ANN}root": str(observed.run_id)}

    def _patch(self, what: str, name: str, body: dict[str, Any], inactive: bool = False, new_pods: str = "") -> Call:
        verify: dict[str, Any] = {"fresh_rv": name}
        if inactive:
            verify["inactive"] = name
        if new_pods:
            verify["new_pods"] = name
            verify["memory"] = new_pods
        return Call(what, f"PATCH {self.jobs}/{name}", body, content_type=STRATEGIC, verify=verify)

    def _copy(self, job: dict[str, Any], res: dict[str, Any], marks: dict[str, str], n: int) -> dict[str, Any]:
        """The Job again, as a new object: server-owned fields, selector and controller-uid labels gone."""
        new = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": copy.deepcopy(job["metadata"]),
            "spec": copy.deepcopy(job["spec"]),
        }
        meta = new["metadata"]
        for key in SERVER_OWNED:
            meta.pop(key, None)
        base = meta.get("annotations", {}).get(f"{ANN}of") or self.t.job_name
        meta["name"] = f"{base}-mp{n}"
        meta.setdefault("labels", {})[f"{ANN}of"] = base
        meta["annotations"] = {**meta.get("annotations", {}), **marks, f"{ANN}of": base}
        spec = new["spec"]
        spec.pop("selector", None)
        spec["suspend"] = False
        labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
        for key in ("controller-uid", "batch.kubernetes.io/controller-uid", "job-name", JOB_LABEL):
            labels.pop(key, None)
        for c in spec["template"]["spec"]["containers"]:
            if c["name"] == self.t.container:
                c["resources"] = {
                    **c.get("resources", {}),
                    **{k: {**c.get("resources", {}).get(k, {}), **v} for k, v in res.items()},
                }
        return new

    # --- execute -----------------------------------------------------------------------------------
    def execute(self, calls: list[Call], start: int, record: Record) -> list[StepResult]:
        results: list[StepResult] = []
        i = start
        while i < len(calls):
            call, t0 = calls[i], time.monotonic()
            try:
                response, note = self._step(call)
            except Fallback as f:
                calls[i + 1 :] = self._fallback("in_place" if "resized" in call.verify else "suspend_resize_resume")
                result = StepResult(call.name, "fallback", round((time.monotonic() - t0) * 1000), f.why)
                record(i, result)
                results.append(result)
                i += 1
                continue
            except OperationError as e:
                raise StepFailed(f"{self.what}: step {i + 1} ({call.name}): {e}", i) from None
            result = StepResult(call.name, response.status_code, round((time.monotonic() - t0) * 1000), note)
            record(i, result)
            results.append(result)
            i += 1
        return results

    def _step(self, call: Call) -> tuple[httpx.Response, str]:
        for _attempt in range(4):
            if "fresh_rv" in call.verify:
                job = self.get(f"{self.jobs}/{call.verify['fresh_rv']}").json()
                body = copy.deepcopy(call.body)
                body.setdefault("metadata", {})["resourceVersion"] = job["metadata"]["resourceVersion"]
                call = Call(
                    call.name, call.op, body, call.params, call.content_type, call.mutating, call.expect, call.verify
                )
            response = self.request(call)
            if response.status_code != 409 or "fresh_rv" not in call.verify:
                break
        if response.status_code == 422 and "new_pods" in call.verify:
            raise Fallback(
                f"the server refused the template change (KEP-5440 off?): {response.json().get('message', '')[:200]}"
            )
        if response.status_code not in call.expect:
            raise OperationError(f"{call.op} answered {response.status_code}: {response.text[:300]}")
        return response, self._verify(call, response)

    def _verify(self, call: Call, response: httpx.Response) -> str:
        v, t0 = call.verify, time.monotonic()
        if "resized" in v:
            path = f"/api/v1/namespaces/{self.t.namespace}/pods/{v['resized']}"
            while time.monotonic() - t0 < WAIT_RESIZE:
                pod = self.get(path).json()
                conds = {c.get("type"): c.get("reason") for c in pod.get("status", {}).get("conditions", [])}
                if conds.get("PodResizePending") == "Infeasible":
                    raise Fallback("in-place resize is Infeasible on the pod's node")
                statuses: list[dict[str, Any]] = pod["status"].get("containerStatuses", [])
                status = next((c for c in statuses if c["name"] == self.t.container), {})
                if (status.get("resources") or {}).get("limits", {}).get("memory") == v["memory"]:
                    return f"running with {v['memory']} after {time.monotonic() - t0:.1f} s"
                time.sleep(0.3)
            raise Fallback(f"the resize was not actuated within {WAIT_RESIZE:g} s")
        if "inactive" in v:
            while time.monotonic() - t0 < WAIT_INACTIVE:
                job = self.get(f"{self.jobs}/{v['inactive']}").json()
                if not job.get("status", {}).get("active"):
                    return f"no active pods after {time.monotonic() - t0:.1f} s"
                time.sleep(0.2)
            raise OperationError(f"the Job still has active pods {WAIT_INACTIVE:g} s after being suspended")
        if "new_pods" in v:
            while time.monotonic() - t0 < WAIT_RESIZE:
                pods = self.get(
                    f"/api/v1/namespaces/{self.t.namespace}/pods", {"labelSelector": f"{JOB_LABEL}={v['new_pods']}"}
                ).json()
                limits = [
                    self._container(p["spec"]).get("resources", {}).get("limits", {}).get("memory")
                    for p in pods.get("items", [])
                ]
                if limits and all(m == v["memory"] for m in limits):
                    return f"{len(limits)} new pod(s) with {v['memory']}"
                time.sleep(0.2)
            raise OperationError(f"no pods with {v['memory']} {WAIT_RESIZE:g} s after the resume")
        return ""

    def _fallback(self, failed: str) -> list[Call]:
        """What to do after ``failed`` could not give the pods more memory, planned against the Job as it is now."""
        pending = getattr(self, "_pending", None)
        if pending is None:
            raise OperationError("a fallback after a restart of the breaker is not resumed automatically; act by hand")
        marker, decision, res = pending
        observed = self.observe()
        job = observed.details["job"]
        marks = self._marks(observed, marker, decision)
        if failed == "in_place" and self.t.strategy == "auto" and self.minor >= 35:
            return self.calls("suspend_resize_resume", job, res, marks, [], decision)
        if self.t.fallback == "notify_only":
            resume = [self._patch("resume unchanged", job["metadata"]["name"], {"spec": {"suspend": False}})]
            return [
                *(resume if job["spec"].get("suspend") else []),
                *self.calls("notify_only", job, res, marks, [], decision),
            ]
        return self.calls("new_job", job, res, marks, [], decision)

    _pending: tuple[str, Decision, dict[str, Any]] | None = None
