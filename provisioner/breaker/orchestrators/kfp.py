"""Kubeflow Pipelines (API ``v2beta1``): terminate the run, start a new run with a larger memory parameter.

KFP has no pause and no resume with new resources (research note §A1). A component's memory can be
a pipeline parameter (``set_memory_limit`` accepts one in KFP v2, kubeflow/pipelines #7046), so the
breaker terminates the running run (``POST /apis/v2beta1/runs/{run_id}:terminate``) and creates a new
run of the same pipeline version with ``runtime_config.parameters[<memory_parameter>]`` raised
(``POST /apis/v2beta1/runs``; RunServiceApi reference). Components that completed are taken from
KFP's cache when the pipeline was compiled with caching on (the default), so only the running
component's work is lost. The run at risk is the newest ``RUNNING`` run of the target pipeline in
the target experiment; the new run's description carries the chain's root run and bump count.
"""

from __future__ import annotations

import json
from typing import Any

from provisioner.breaker.orchestrators.airflow import quantity
from provisioner.breaker.orchestrators.base import Call, HttpClient
from provisioner.breaker.planner import Decision, Observed
from provisioner.core.errors import OperationError
from provisioner.core.secrets import resolve
from provisioner.core.units import parse_size
from provisioner.spec.breaker import KfpConnection, KfpTarget

API = "/apis/v2beta1"
MARK = "memprov-breaker "


class Kfp(HttpClient):
    name = "kfp"

    def __init__(self, conn: KfpConnection, target: KfpTarget) -> None:

        token = resolve(conn.token) if conn.token else None
        super().__init__(conn.url, headers={"Authorization": f"Bearer {token}"} if token else {})
        self.t = target
        self.what = f"Kubeflow Pipelines {conn.url}"

    def observe(self) -> Observed:
        predicate = {"predicates": [{"key": "state", "operation": "EQUALS", "string_value": "RUNNING"}]}
        got = self.get(
            f"{API}/runs",
            {"experiment_id": self.t.experiment_id, "filter": json.dumps(predicate), "sort_by": "created_at desc"},
        )
        if got.status_code != 200:
            raise OperationError(f"{self.what}: listing runs answered {got.status_code}: {got.text[:200]}")
        runs = [
            r
            for r in got.json().get("runs") or []
            if (r.get("pipeline_version_reference") or {}).get("pipeline_id") == self.t.pipeline_id
        ]
        if not runs:
            return Observed(run_id=None, running=False, memory=None)
        run = runs[0]
        value = ((run.get("runtime_config") or {}).get("parameters") or {}).get(self.t.memory_parameter)
        try:
            memory = parse_size(str(value)) if value is not None else None
        except ValueError:
            memory = None
        mark = _mark(run.get("description") or "")
        return Observed(
            run_id=mark.get("root", run["run_id"]),
            running=run.get("state") == "RUNNING",
            memory=memory,
            handled=frozenset(filter(None, mark.get("alerts", "").split(","))),
            remote_bumps=int(mark.get("bumps", 0)),
            details={"run": run},
        )

    def plan(self, decision: Decision, observed: Observed, marker: str) -> list[Call]:
        run = observed.details["run"]
        terminate = Call("terminate run", f"POST {API}/runs/{run['run_id']}:terminate", {})
        if decision.action != "bump_and_resume":
            return [terminate]
        assert decision.memory_after is not None
        n = observed.remote_bumps + 1
        mark = {
            "root": str(observed.run_id),
            "bumps": str(n),
            "alerts": ",".join(sorted({*observed.handled, marker})[-5:]),
        }
        config: dict[str, Any] = dict(run.get("runtime_config") or {})
        config["parameters"] = {
            **(config.get("parameters") or {}),
            self.t.memory_parameter: quantity(decision.memory_after),
        }
        new = {
            "display_name": f"{_base(run.get('display_name') or run['run_id'])}-mp{n}",
            "description": MARK + json.dumps(mark, sort_keys=True),
            "experiment_id": self.t.experiment_id,
            "pipeline_version_reference": run["pipeline_version_reference"],
            "runtime_config": config,
        }
        return [terminate, Call(f"create run {new['display_name']}", f"POST {API}/runs", new)]


def _base(name: str) -> str:
    head, sep, tail = name.rpartition("-mp")
    return head if sep and tail.isdigit() else name


def _mark(description: str) -> dict[str, str]:
    if not description.startswith(MARK):
        return {}
    try:
        found = json.loads(description[len(MARK) :])
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
