"""A faithful fake of the parts of the Kubernetes API the breaker uses, with a version switch.

No kube-apiserver can run here (research note §A3), so this fake enforces the rules the breaker
depends on, each from the Kubernetes documentation:
- bearer token, else 401 (API access control);
- ``PATCH`` content types: ``application/merge-patch+json`` (RFC 7386: lists are *replaced*),
  ``application/strategic-merge-patch+json`` (``containers`` merged by ``name``), and
  ``application/json-patch+json`` only with a list body (400 otherwise: the official Python client's
  default for a dict body); anything else 415 ("Update API Objects in Place Using kubectl patch");
- optimistic concurrency: a ``metadata.resourceVersion`` that is not the current one is 409;
- the Job's pod template is immutable (422 "field is immutable"), except container resources while
  the Job is suspended *and* has no active pods, from 1.36 (beta, KEP-5440; 1.35 only with the
  ``MutableJobPodResourcesForSuspendedJobs`` gate); limits must stay >= requests;
- ``spec.suspend: true`` deletes the active pods after their grace period (``status.active`` drops
  to 0, condition ``Suspended``); resuming creates pods from the (new) template (KEP-2232);
- ``pods/{name}/resize`` exists from 1.33 (beta, on by default; alpha gate before, so 404); only
  resources may change; a memory limit may not be lowered unless ``resizePolicy`` is
  ``RestartContainer``; the QoS class may not change; an ``infeasible`` knob leaves the resize
  ``PodResizePending``/``Infeasible`` with the status unchanged (KEP-1287, "Resize CPU and Memory
  Resources assigned to Containers");
- a created Job may not carry a ``spec.selector`` unless ``manualSelector`` (422 "`selector` not
  auto-generated"), nor a ``resourceVersion``; list calls honour equality ``labelSelector`` s.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from provisioner.core.units import parse_size
from tests.fakes.kubernetes_rules import (
    ApiError,
    check_limits,
    merge_patch,
    qos,
    resources_only,
    selects,
    strategic_merge,
    strip_resources,
)

MERGE, STRATEGIC, JSONPATCH = (
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
)
JOB_LABEL, UID_LABEL = "batch.kubernetes.io/job-name", "batch.kubernetes.io/controller-uid"


@dataclass
class Req:
    method: str
    path: str
    content_type: str
    body: Any


class FakeKubernetes:
    def __init__(
        self, version: str = "1.36", token: str = "fake-k8s-token", gates: tuple[str, ...] = (), grace: float = 0.4
    ) -> None:
        self.version, self.token, self.gates, self.grace = version, token, set(gates), grace
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.log: list[Req] = []
        self.infeasible = False  # resizes are accepted into spec but never actuated
        self.conflict_next_patch = False  # a concurrent writer bumps the resourceVersion first
        self._rv = 100
        self.lock = threading.RLock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])

    @property
    def mutating(self) -> list[Req]:
        return [r for r in self.log if r.method != "GET"]

    def rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    # --- fixtures --------------------------------------------------------------------------------
    def add_job(
        self,
        ns: str,
        name: str,
        container: str,
        memory: str,
        *,
        guaranteed: bool = False,
        policy: str = "NotRequired",
        pods: int = 1,
    ) -> None:
        uid = str(uuid.uuid4())
        res = {
            "limits": {"cpu": "1", "memory": memory},
            "requests": {"cpu": "1", "memory": memory if guaranteed else "1Gi"},
        }
        tmpl = {
            "metadata": {"labels": {JOB_LABEL: name, UID_LABEL: uid, "controller-uid": uid, "app": name}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": container,
                        "image": "example/scorer:1",
                        "resources": res,
                        "resizePolicy": [{"resourceName": "memory", "restartPolicy": policy}],
                    }
                ],
            },
        }
        self.jobs[(ns, name)] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": uid,
                "resourceVersion": self.rv(),
                "labels": {"app": name},
                "annotations": {},
            },
            "spec": {
                "parallelism": pods,
                "suspend": False,
                "selector": {"matchLabels": {UID_LABEL: uid}},
                "template": tmpl,
            },
            "status": {"active": 0, "conditions": []},
        }
        self._start_pods(ns, name)

    def _start_pods(self, ns: str, name: str) -> None:
        job = self.jobs[(ns, name)]
        for _ in range(job["spec"].get("parallelism", 1)):
            pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
            tmpl = copy.deepcopy(job["spec"]["template"])
            statuses = [
                {"name": c["name"], "ready": True, "resources": copy.deepcopy(c.get("resources", {}))}
                for c in tmpl["spec"]["containers"]
            ]
            self.pods[(ns, pod_name)] = {
                "metadata": {
                    "name": pod_name,
                    "namespace": ns,
                    "labels": tmpl["metadata"]["labels"],
                    "resourceVersion": self.rv(),
                    "uid": str(uuid.uuid4()),
                },
                "spec": tmpl["spec"],
                "status": {
                    "phase": "Running",
                    "qosClass": qos(tmpl["spec"]["containers"]),
                    "containerStatuses": statuses,
                    "conditions": [],
                },
            }
        job["status"]["active"] = job["spec"].get("parallelism", 1)

    def job_pods(self, ns: str, name: str) -> list[dict[str, Any]]:
        return [p for (n, _), p in self.pods.items() if n == ns and p["metadata"]["labels"].get(JOB_LABEL) == name]

    # --- the API -----------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], ctype: str, body: Any) -> tuple[int, Any]:
        p = path.strip("/").split("/")
        if path == "/version":
            return 200, {"major": "1", "minor": str(self.minor), "gitVersion": f"v{self.version}.0"}
        if p[:3] == ["apis", "batch", "v1"] and p[3] == "namespaces" and p[5] == "jobs":
            ns = p[4]
            if len(p) == 6:
                if method == "GET":
                    return 200, {
                        "kind": "JobList",
                        "items": [j for (n, _), j in self.jobs.items() if n == ns and selects(query, j)],
                    }
                if method == "POST":
                    return 201, self._create_job(ns, body)
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
            key = (ns, p[6])
            if key not in self.jobs:
                raise ApiError(404, "NotFound", f'jobs.batch "{p[6]}" not found')
            if method == "GET":
                return 200, self.jobs[key]
            if method == "PATCH":
                return 200, self._patch_job(key, ctype, body)
            if method == "DELETE":
                policy = (body or {}).get("propagationPolicy", "Background")
                del self.jobs[key]
                if policy in ("Background", "Foreground"):
                    for pod in self.job_pods(*key):
                        del self.pods[(ns, pod["metadata"]["name"])]
                return 200, {"kind": "Status", "status": "Success"}
        if p[:2] == ["api", "v1"] and p[2] == "namespaces" and p[4] == "pods":
            ns = p[3]
            if len(p) == 5 and method == "GET":
                return 200, {
                    "kind": "PodList",
                    "items": [x for (n, _), x in self.pods.items() if n == ns and selects(query, x)],
                }
            key = (ns, p[5])
            if key not in self.pods:
                raise ApiError(404, "NotFound", f'pods "{p[5]}" not found')
            if len(p) == 6 and method == "GET":
                return 200, self.pods[key]
            if len(p) == 7 and p[6] == "resize" and method == "PATCH":
                if self.minor < 33:  # alpha gate off by default before 1.33: no such subresource
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return 200, self._resize(key, ctype, body)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _apply(self, obj: dict[str, Any], ctype: str, body: Any) -> dict[str, Any]:
        if ctype == JSONPATCH:
            if not isinstance(body, list):
                raise ApiError(
                    400, "BadRequest", "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
                )
            raise ApiError(422, "Invalid", "this fake does not apply JSON patches; memprov never sends them")
        if ctype == MERGE:
            new = merge_patch(obj, body)
        elif ctype == STRATEGIC:
            new = strategic_merge(obj, body)
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                f"{JSONPATCH}, {MERGE}, {STRATEGIC}",
            )
        want = (body.get("metadata") or {}).get("resourceVersion")
        if self.conflict_next_patch:
            self.conflict_next_patch = False
            obj["metadata"]["resourceVersion"] = self.rv()
        if want is not None and want != obj["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                "Operation cannot be fulfilled: the object has been modified; "
                "please apply your changes to the latest version and try again",
            )
        return new

    def _patch_job(self, key: tuple[str, str], ctype: str, body: Any) -> dict[str, Any]:
        old = self.jobs[key]
        new = self._apply(old, ctype, body)
        name = key[1]
        if new["spec"]["selector"] != old["spec"]["selector"]:
            raise ApiError(
                422, "Invalid", f'Job.batch "{name}" is invalid: spec.selector: Invalid value: field is immutable'
            )
        if new["spec"]["template"] != old["spec"]["template"]:
            gate = self.minor >= 36 or (self.minor == 35 and "MutableJobPodResourcesForSuspendedJobs" in self.gates)
            allowed = gate and old["spec"].get("suspend") and old["status"].get("active", 0) == 0
            if not allowed or not resources_only(old["spec"]["template"], new["spec"]["template"]):
                raise ApiError(
                    422,
                    "Invalid",
                    f'Job.batch "{name}" is invalid: spec.template: Invalid value: ...: field is immutable',
                )
            check_limits(new["spec"]["template"]["spec"]["containers"], "spec.template.spec.containers")
        new["metadata"]["resourceVersion"] = self.rv()
        new["status"] = old["status"]
        self.jobs[key] = new
        if new["spec"].get("suspend") and not old["spec"].get("suspend"):
            self._suspend(key)
        elif old["spec"].get("suspend") and not new["spec"].get("suspend"):
            new["status"]["conditions"] = [{"type": "Suspended", "status": "False", "reason": "JobResumed"}]
            self._start_pods(*key)
        return new

    def _suspend(self, key: tuple[str, str]) -> None:
        """Active pods get SIGTERM and their grace period, then are gone; status follows."""
        doomed = [p["metadata"]["name"] for p in self.job_pods(*key)]

        def finish() -> None:
            with self.lock:
                for name in doomed:
                    self.pods.pop((key[0], name), None)
                if key in self.jobs:
                    self.jobs[key]["status"]["active"] = 0
                    self.jobs[key]["status"]["conditions"] = [
                        {"type": "Suspended", "status": "True", "reason": "JobSuspended"}
                    ]

        threading.Timer(self.grace, finish).start()

    def _create_job(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        if spec.get("selector") and not spec.get("manualSelector"):
            raise ApiError(
                422,
                "Invalid",
                f'Job.batch "{meta.get("name")}" is invalid: '
                "spec.selector: Invalid value: ...: `selector` not auto-generated",
            )
        labels = (spec.get("template", {}).get("metadata") or {}).get("labels") or {}
        if UID_LABEL in labels or "controller-uid" in labels:
            raise ApiError(
                422,
                "Invalid",
                "spec.template.metadata.labels: Invalid value: ...: `selector` does not match template `labels`",
            )
        check_limits(spec["template"]["spec"]["containers"], "spec.template.spec.containers")
        if (ns, meta["name"]) in self.jobs:
            raise ApiError(409, "AlreadyExists", f'jobs.batch "{meta["name"]}" already exists')
        uid = str(uuid.uuid4())
        spec["selector"] = {"matchLabels": {UID_LABEL: uid}}
        spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(
            {JOB_LABEL: meta["name"], UID_LABEL: uid, "controller-uid": uid}
        )
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {**meta, "namespace": ns, "uid": uid, "resourceVersion": self.rv()},
            "spec": spec,
            "status": {"active": 0, "conditions": []},
        }
        self.jobs[(ns, meta["name"])] = job
        if not spec.get("suspend"):
            self._start_pods(ns, meta["name"])
        return job

    def _resize(self, key: tuple[str, str], ctype: str, body: Any) -> dict[str, Any]:
        pod = self.pods[key]
        new = self._apply(pod, ctype, body)
        if strip_resources(new["spec"]) != strip_resources(pod["spec"]):
            raise ApiError(
                422, "Invalid", f'Pod "{key[1]}" is invalid: spec: Forbidden: only cpu and memory resources are mutable'
            )
        check_limits(new["spec"]["containers"], "spec.containers")
        for i, (a, b) in enumerate(zip(pod["spec"]["containers"], new["spec"]["containers"], strict=True)):
            before, after = (
                (a.get("resources") or {}).get("limits", {}).get("memory"),
                (b.get("resources") or {}).get("limits", {}).get("memory"),
            )
            policy = {r["resourceName"]: r["restartPolicy"] for r in a.get("resizePolicy", [])}.get(
                "memory", "NotRequired"
            )
            if before and after and parse_size(after) < parse_size(before) and policy != "RestartContainer":
                raise ApiError(
                    422,
                    "Invalid",
                    f'Pod "{key[1]}" is invalid: spec.containers[{i}].resources.limits[memory]: Forbidden: '
                    "memory limits cannot be decreased unless resizePolicy is RestartContainer",
                )
        if qos(new["spec"]["containers"]) != pod["status"]["qosClass"]:
            raise ApiError(
                422,
                "Invalid",
                f'Pod "{key[1]}" is invalid: spec: Forbidden: Pod QOS Class may not change as a result of resizing',
            )
        pod["spec"] = new["spec"]
        pod["metadata"]["resourceVersion"] = self.rv()
        if self.infeasible:
            pod["status"]["conditions"] = [
                {
                    "type": "PodResizePending",
                    "status": "True",
                    "reason": "Infeasible",
                    "message": "Node didn't have enough capacity: memory",
                }
            ]
        else:
            pod["status"]["conditions"] = []
            for status, c in zip(pod["status"]["containerStatuses"], new["spec"]["containers"], strict=True):
                status["resources"] = copy.deepcopy(c.get("resources", {}))
        return pod


def _handler(fake: FakeKubernetes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _do(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            fake.log.append(Req(self.command, url.path, ctype, body))
            try:
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                with fake.lock:
                    code, out = fake.handle(self.command, url.path, parse_qs(url.query), ctype, body)
            except ApiError as e:
                code, out = (
                    e.code,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "message": e.message,
                        "reason": e.reason,
                        "code": e.code,
                    },
                )
            data = json.dumps(out).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _do

    return Handler


def wait(predicate: Any, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
