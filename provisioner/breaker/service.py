"""The breaker's pipeline for one webhook delivery: screen → ledger → observe → decide → act → audit.

For each alert of an Alertmanager v4 payload: resolved alerts are audited and left alone; alerts
that fail :func:`~provisioner.breaker.planner.screen` are refused before any orchestrator call; a
delivery already in the ledger is a duplicate (no call at all), unless its sequence stopped
half-way, which is then resumed from the recorded step. Otherwise the orchestrator is read, the
planner decides, the delivery is claimed in the ledger *before* the first mutating call, the
calls are sent (or, in a dry run, only listed), and one audit line records it all. Actions are
serialised: the breaker acts rarely, and two deliveries of the same alert must never race.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from provisioner.breaker.audit import Audit
from provisioner.breaker.ledger import Ledger
from provisioner.breaker.orchestrators.airflow import Airflow
from provisioner.breaker.orchestrators.airflow2 import Airflow2
from provisioner.breaker.orchestrators.aws_batch import AwsBatch
from provisioner.breaker.orchestrators.base import Call, Client, StepFailed, StepResult
from provisioner.breaker.orchestrators.kfp import Kfp
from provisioner.breaker.orchestrators.kubernetes import Kubernetes
from provisioner.breaker.planner import Alert, Decision, Past, decide, screen
from provisioner.core.errors import MemprovError, OperationError
from provisioner.core.secrets import resolve
from provisioner.spec.breaker import (
    AirflowTarget,
    AwsBatchTarget,
    Breaker,
    BreakerSettings,
    KfpTarget,
    KubernetesTarget,
    active,
)
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

ClientFactory = Callable[[ResolvedSpec, ResolvedJob], Client]


def expected_labels(job: ResolvedJob | None, breaker: Breaker | None) -> dict[str, str]:
    """Alert labels that, when present, must match the spec: the job's selector and its target."""
    if job is None or breaker is None:
        return {}
    out = {k: v for k, v in (("namespace", job.selector.namespace), ("container", job.selector.container)) if v}
    target = breaker.target.model_dump()
    out |= {k: str(target[k]) for k in ("dag_id", "task_id", "job_name", "job_queue", "namespace") if k in target}
    return out


def settings_of(spec: ResolvedSpec) -> BreakerSettings:
    settings = spec.environment.breaker
    if settings is None:
        raise OperationError(
            f"environment {spec.env} has no breaker: block; add one to environments/{spec.env}.yaml "
            "(listen, token, and how to reach the orchestrators)"
        )
    return settings


def make_client(spec: ResolvedSpec, job: ResolvedJob) -> Client:
    """The orchestrator client for a job (SDKs and httpx are imported by a client when it first calls)."""
    breaker, settings = job.breaker, settings_of(spec)
    assert breaker is not None
    missing = OperationError(f"job {job.id}: environment {spec.env} has no breaker.{breaker.orchestrator} block")
    target = breaker.target
    if isinstance(target, AirflowTarget):
        if settings.airflow is None:
            raise missing
        client = Airflow if settings.airflow.api == "v2" else Airflow2
        return client(settings.airflow, target, resolve(settings.airflow.password) or "")
    if isinstance(target, KubernetesTarget):
        if settings.kubernetes is None:
            raise missing
        return Kubernetes(settings.kubernetes, target)
    if isinstance(target, KfpTarget):
        if settings.kfp is None:
            raise missing
        return Kfp(settings.kfp, target)
    if isinstance(target, AwsBatchTarget):
        if settings.aws_batch is None:
            raise missing
        return AwsBatch(settings.aws_batch, target)
    raise AssertionError(f"no client for orchestrator {breaker.orchestrator}")  # pragma: no cover - the spec's Literal


class Service:
    """Everything ``breaker serve`` does with a parsed payload; the HTTP layer is in server.py."""

    def __init__(
        self,
        spec: ResolvedSpec,
        state_dir: Path,
        *,
        read_only: bool = False,
        client_factory: ClientFactory = make_client,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.settings = settings_of(spec)
        self.ledger = Ledger(state_dir / "ledger.sqlite")
        self.audit = Audit(state_dir / "audit.jsonl")
        self.read_only = read_only or not self.settings.enabled
        self.client_factory = client_factory
        self.now = now
        self._lock = threading.Lock()
        self._received = time.monotonic()
        self.jobs = {j.id: j for j in spec.jobs}

    def close(self) -> None:
        self.ledger.close()

    def handle(self, payload: Mapping[str, Any], received: float | None = None) -> list[dict[str, Any]]:
        """Decide on every alert of one delivery; returns the audit records written.

        ``received``: ``time.monotonic()`` when the delivery arrived (steps record the time since).
        """
        with self._lock:
            self._received = time.monotonic() if received is None else received
            return [self._one(Alert.from_payload(raw), payload) for raw in payload.get("alerts", [])]

    # --- one alert ---------------------------------------------------------------------------------
    def _one(self, alert: Alert, payload: Mapping[str, Any]) -> dict[str, Any]:
        job_id = alert.labels.get("memprov_job", "")
        job = self.jobs.get(job_id)
        breaker = job.breaker if job is not None and active(self.settings, job.breaker) else None
        base: dict[str, Any] = {
            "env": self.spec.env,
            "job": job_id,
            "alert": {
                "name": alert.name,
                "fingerprint": alert.fingerprint,
                "startsAt": alert.starts_at,
                "status": alert.status,
                "value": alert.annotations.get("current", ""),
                "limit": alert.annotations.get("limit", ""),
            },
            "receiver": payload.get("receiver", ""),
            "groupKey": payload.get("groupKey", ""),
        }
        if alert.status != "firing":
            return self.audit.write({**base, "outcome": "ignored", "reason": f"alert is {alert.status}: no action"})
        if breaker is not None:
            base |= {"orchestrator": breaker.orchestrator, "target": breaker.target.model_dump()}
            base["dry_run"] = breaker.dry_run
        expect = expected_labels(job, breaker)
        reason = screen(alert, self.spec.env, job.id if job else None, breaker, expect)
        if reason is not None:
            return self.audit.write({**base, "outcome": "refused", "reason": reason, "steps": []})
        assert job is not None and breaker is not None
        known = self.ledger.get(alert.key)
        if known is not None and known.final:
            return self.audit.write(
                {**base, "outcome": "duplicate", "reason": f"already handled ({known.status}): no call", "steps": []}
            )
        try:
            client = self.client_factory(self.spec, job)
        except MemprovError as e:
            return self.audit.write(
                {**base, "outcome": "failed", "reason": "cannot reach the orchestrator", "error": e.render()}
            )
        try:
            if known is not None:  # a sequence that stopped half-way: resume it from the recorded step
                calls = [Call.from_dict(c) for c in known.calls]
                return self._run(
                    base, client, alert, job, breaker, known.decision, calls, known.steps_done, known.run_id
                )
            return self._decide_and_act(base, client, alert, job, breaker)
        finally:
            client.close()

    def _decide_and_act(
        self, base: dict[str, Any], client: Client, alert: Alert, job: ResolvedJob, breaker: Breaker
    ) -> dict[str, Any]:
        try:
            observed = client.observe()
        except MemprovError as e:
            return self.audit.write(
                {**base, "outcome": "failed", "reason": "could not read the orchestrator", "error": e.render()}
            )
        bumps, last = self.ledger.past(job.id, observed.run_id)
        decision = decide(breaker, alert, observed, Past(bumps, last), self.now(), job.limit)
        record = {**base, "run_id": observed.run_id, "strategy": decision.action, **_memory(decision)}
        if decision.outcome != "act":  # nothing was done: a later delivery is judged afresh (cooldown ends...)
            outcome = "refused" if decision.outcome == "refused" else "duplicate"
            return self.audit.write({**record, "outcome": outcome, "reason": decision.reason, "steps": []})
        calls = [] if decision.action == "notify_only" else client.plan(decision, observed, alert.key)
        planned = [c.as_dict() for c in calls]
        if breaker.dry_run or self.read_only:
            why = "dry_run: true" if breaker.dry_run else "read-only: the breaker is switched off"
            self.ledger.claim(alert.key, job.id, observed.run_id, "dry_run", asdict(decision), planned)
            return self.audit.write(
                {
                    **record,
                    "outcome": "dry_run",
                    "reason": f"{decision.reason}; {why}: no mutating request sent",
                    "planned": [_shown(c) for c in calls],
                    "steps": [],
                }
            )
        if not self.ledger.claim(alert.key, job.id, observed.run_id, "claimed", asdict(decision), planned):
            return self.audit.write(
                {**record, "outcome": "duplicate", "reason": "claimed by another delivery", "steps": []}
            )
        return self._run(base, client, alert, job, breaker, asdict(decision), calls, 0, observed.run_id)

    def _run(
        self,
        base: dict[str, Any],
        client: Client,
        alert: Alert,
        job: ResolvedJob,
        breaker: Breaker,
        decision: Mapping[str, Any],
        calls: list[Call],
        start: int,
        run_id: str | None,
    ) -> dict[str, Any]:
        steps: list[StepResult] = []

        def done(i: int, result: StepResult) -> None:
            result = replace(result, since_delivery_ms=round((time.monotonic() - self._received) * 1000))
            steps.append(result)
            self.ledger.step_done(alert.key, i + 1)

        record = {**base, "run_id": run_id, "strategy": decision.get("action"), **_memory(decision)}
        if start:
            record["resumed_from_step"] = start + 1
        try:
            client.execute(calls, start, done)
        except StepFailed as e:
            self.ledger.finish(alert.key, "failed")
            return self.audit.write(
                {
                    **record,
                    "outcome": "failed",
                    "reason": decision.get("reason", ""),
                    "error": e.render(),
                    "steps": [asdict(s) for s in steps],
                    "planned": [_shown(c) for c in calls],
                }
            )
        except MemprovError as e:
            self.ledger.finish(alert.key, "failed")
            return self.audit.write(
                {**record, "outcome": "failed", "error": e.render(), "steps": [asdict(s) for s in steps]}
            )
        self.ledger.finish(alert.key, "done")
        bumped = decision.get("action") == "bump_and_resume"
        self.ledger.acted(job.id, run_id, bumped, decision.get("memory_before"), decision.get("memory_after"))
        return self.audit.write(
            {**record, "outcome": "acted", "reason": decision.get("reason", ""), "steps": [asdict(s) for s in steps]}
        )


def _memory(decision: Decision | Mapping[str, Any]) -> dict[str, Any]:
    d = asdict(decision) if isinstance(decision, Decision) else decision
    return {"memory": {"before": d.get("memory_before"), "after": d.get("memory_after")}}


def _shown(call: Call) -> dict[str, Any]:
    return {"call": call.name, "op": call.op, "params": dict(call.params), "body": call.body, "mutating": call.mutating}
