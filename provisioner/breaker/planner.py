"""What the breaker decides, as pure functions: screening an alert, the bump arithmetic, the decision.

Nothing here does I/O. :func:`screen` refuses alerts that must not reach an orchestrator (unknown
job, another environment, labels that contradict the spec's target) before anything is called;
:func:`decide` takes the job's breaker, the alert, what the orchestrator reported
(:class:`Observed`) and what the ledger remembers (:class:`Past`), and returns a :class:`Decision`.
Bump = max(current x factor, current + min_step), rounded up to a MiB, capped at ``max_memory``
(the VPA's and Kestra's rule of thumb); at the cap, after ``max_bumps`` or inside ``cooldown`` the
outcome is ``refused`` with the reason, and people are still paged through the normal route.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from provisioner.core.units import format_duration, format_size
from provisioner.spec.breaker import LABEL, TRIGGER_ALERTS, Breaker

MI = 2**20
Outcome = Literal["act", "refused", "ignored"]


@dataclass(frozen=True)
class Alert:
    """One alert of an Alertmanager v4 webhook payload."""

    name: str
    status: str
    fingerprint: str
    starts_at: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The alert's identity across Alertmanager's retries and repeats."""
        return f"{self.fingerprint}@{self.starts_at}"

    @classmethod
    def from_payload(cls, raw: Mapping[str, Any]) -> Alert:
        labels = raw.get("labels") or {}
        return cls(
            name=str(labels.get("alertname", "")),
            status=str(raw.get("status", "")),
            fingerprint=str(raw.get("fingerprint", "")),
            starts_at=str(raw.get("startsAt", "")),
            labels={str(k): str(v) for k, v in labels.items()},
            annotations={str(k): str(v) for k, v in (raw.get("annotations") or {}).items()},
        )


@dataclass(frozen=True)
class Observed:
    """What the orchestrator says about the job right now (read with GETs only)."""

    run_id: str | None  # the orchestrator's identity of the run at risk (dag_run_id, Job uid, Batch job chain...)
    running: bool
    memory: int | None  # bytes the next attempt would get today
    handled: frozenset[str] = frozenset()  # alert keys the orchestrator-side marker says were acted on
    remote_bumps: int = 0  # bumps the orchestrator-side marker counts for this run
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Past:
    """What the ledger remembers: bumps of this run, the job's last action (for the cooldown)."""

    bumps_done: int = 0
    last_action_at: float | None = None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    action: str
    reason: str
    memory_before: int | None = None
    memory_after: int | None = None
    bump_number: int = 0

    def describe(self) -> str:
        mem = ""
        if self.memory_before is not None and self.memory_after is not None and self.memory_after != self.memory_before:
            mem = f" {format_size(self.memory_before)} -> {format_size(self.memory_after)}"
        return f"{self.outcome}: {self.action}{mem} ({self.reason})"


def bump(current: int, factor: float, min_step: int, cap: int) -> int:
    """``ceil_MiB(max(current x factor, current + min_step))``, at most ``cap``."""
    raw = max(current * factor, current + min_step)
    return min(cap, math.ceil(raw / MI) * MI)


def screen(
    alert: Alert, env: str, job_id: str | None, breaker: Breaker | None, expect: Mapping[str, str]
) -> str | None:
    """Why this alert must not reach an orchestrator, or None. ``expect``: labels the spec pins down."""
    labels = alert.labels
    if labels.get("memprov_env") != env:
        return f"memprov_env={labels.get('memprov_env', '')!r}: this breaker serves environment {env!r}"
    if job_id is None:
        return f"memprov_job={labels.get('memprov_job', '')!r} is not a job of the spec"
    if breaker is None:
        return f"job {job_id} has no breaker in this environment"
    if labels.get(LABEL) != "on":
        return f"the alert lacks {LABEL}=\"on\": memprov's rules set it only on the breaker's critical alerts"
    if labels.get("severity") != "critical":
        return f"severity={labels.get('severity', '')!r}: only critical alerts trigger the breaker"
    allowed = {TRIGGER_ALERTS[k] for k in breaker.on}
    if alert.name not in allowed:
        return f"alert {alert.name} is not one of the job's triggers ({', '.join(sorted(allowed))})"
    for key, want in expect.items():
        got = labels.get(key)
        if got is not None and got != want:
            return f"label {key}={got!r} contradicts the spec ({key}={want!r}); refusing to act on another target"
    return None


def decide(breaker: Breaker, alert: Alert, observed: Observed, past: Past, now: float, default_memory: int) -> Decision:
    """The breaker's decision for one firing alert; pure."""
    action = breaker.action
    before = observed.memory if observed.memory is not None else default_memory
    if alert.key in observed.handled:
        return Decision("ignored", action, "already acted on (the orchestrator carries the marker)", before, before)
    if not observed.running:
        return Decision("refused", action, "nothing is running: no run of the job to act on", before, before)
    if action == "notify_only":
        return Decision("act", action, "notify only: recorded, no orchestrator change", before, before)
    if past.last_action_at is not None and now - past.last_action_at < breaker.cooldown:
        left = breaker.cooldown - (now - past.last_action_at)
        return Decision(
            "refused",
            action,
            f"cooldown: the last action on this job was {format_duration(round(now - past.last_action_at))} ago, "
            f"{format_duration(breaker.cooldown)} must pass ({format_duration(max(1, round(left)))} left)",
            before,
            before,
        )
    if action == "pause":
        return Decision("act", action, "stop the run and hold it for a person", before, before)
    done = max(past.bumps_done, observed.remote_bumps)
    if done >= breaker.max_bumps:
        return Decision(
            "refused", action, f"max_bumps: this run was already bumped {done} time(s) (max {breaker.max_bumps})"
        )
    if before >= breaker.max_memory:
        return Decision(
            "refused",
            action,
            f"at the cap: the job already has {format_size(before)}, max_memory is {format_size(breaker.max_memory)}",
            before,
            before,
        )
    after = bump(before, breaker.bump.factor, breaker.bump.min_step, breaker.max_memory)
    capped = " (capped at max_memory)" if after == breaker.max_memory else ""
    return Decision(
        "act", action, f"bump {done + 1} of at most {breaker.max_bumps}{capped}", before, after, bump_number=done + 1
    )
