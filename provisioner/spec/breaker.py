"""The breaker's spec: ``jobs.<id>.breaker`` (what to do for one job) and the environment's
``breaker:`` block (where ``breaker serve`` listens, its token, how to reach each orchestrator).

A job's breaker is *active* in an environment only when that environment has a ``breaker:`` block
with ``enabled: true`` (the default once the block exists): only then are its critical rules
labelled ``memprov_breaker="on"`` and routed to the breaker. ``dry_run`` defaults to true.
:data:`STRATEGIES` is the one table of what each orchestrator can do and what state it loses; the
plan notes and the README are written from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from provisioner.core.types import Duration, SecretRef, Size
from provisioner.core.units import format_size

Orchestrator = Literal["airflow", "kubernetes", "kfp", "aws_batch"]
ORCHESTRATORS: tuple[str, ...] = Orchestrator.__args__  # type: ignore[attr-defined]
Action = Literal["notify_only", "pause", "bump_and_resume"]
TriggerKind = Literal["time_to_oom", "usage"]
TRIGGER_ALERTS = {"time_to_oom": "BatchJobMemoryTimeToOOM", "usage": "BatchJobMemoryCritical"}
LABEL = "memprov_breaker"

K8S_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
AIRFLOW_ID = r"^[A-Za-z0-9_.-]{1,250}$"
HTTP_URL = r"^https?://[^\s]+[^/\s]$"
HOST_PORT = r"^[A-Za-z0-9.:\[\]-]+:\d{1,5}$"
PATTERN_HELP = {
    K8S_NAME: "use a Kubernetes name (lowercase letters, digits, '-' and '.')",
    AIRFLOW_ID: "use an Airflow id (letters, digits, '_', '.', '-')",
    HTTP_URL: "use an http:// or https:// URL without a trailing /",
    HOST_PORT: "use HOST:PORT, e.g. 127.0.0.1:9095",
}

# What each orchestrator allows, per action, and what state a run loses (research note §A1, and the
# orchestrators' documentation cited in each module).
STRATEGIES: dict[str, dict[str, str]] = {
    "airflow": {
        "bump_and_resume": "pause the DAG, mark the running task instance failed (its process is stopped), "
        "set the memory Variable its container_resources template reads, clear it, unpause: the next try runs",
        "pause": "pause the DAG and mark the running task instance failed; a person clears it",
        "loses": "the task's in-process progress; upstream results and XComs are kept",
    },
    "kubernetes": {
        "bump_and_resume": "in-place resize of the running pods (Kubernetes >= 1.33, nothing lost); else suspend, "
        "raise the template's memory and resume in one PATCH (KEP-5440, 1.36, or 1.35 with the gate); "
        "else a new Job <name>-mp<n> with more memory, or notify only, as configured",
        "pause": "suspend the Job (its active pods are deleted)",
        "loses": "nothing with an in-place resize; otherwise everything not checkpointed "
        "(an Indexed Job keeps its completed indexes when suspended and resumed)",
    },
    "kfp": {
        "bump_and_resume": "terminate the run, start a new run of the same pipeline version with a larger memory "
        "parameter (caching on: completed components are reused)",
        "pause": "terminate the run",
        "loses": "the running component; cached components are reused by the new run",
    },
    "aws_batch": {
        "bump_and_resume": "TerminateJob, then SubmitJob of the same definition with a MEMORY override",
        "pause": "TerminateJob (AWS Batch never retries a terminated job)",
        "loses": "the whole job attempt (AWS_BATCH_JOB_ATTEMPT lets an application resume from a checkpoint)",
    },
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class Bump(Strict):
    """New memory = max(current x ``factor``, current + ``min_step``), rounded up to MiB, capped at max_memory."""

    factor: float = Field(default=1.5, ge=1.1, le=4, description="multiply the memory by this (>= 1.1)")
    min_step: Size = Field(default=512 * 2**20, description="raise it by at least this much")


class AirflowTarget(Strict):
    dag_id: str = Field(pattern=AIRFLOW_ID)
    task_id: str = Field(pattern=AIRFLOW_ID)
    memory_variable: str = Field(
        pattern=AIRFLOW_ID, description="the Variable the task's container_resources reads, e.g. memprov.<job>.memory"
    )


class KubernetesTarget(Strict):
    namespace: str = Field(pattern=K8S_NAME)
    job_name: str = Field(pattern=K8S_NAME, description="the batch/v1 Job")
    container: str = Field(pattern=K8S_NAME)
    strategy: Literal["auto", "in_place", "suspend_resize_resume", "new_job"] = "auto"
    fallback: Literal["new_job", "notify_only"] = Field(
        default="new_job", description="when neither in-place resize nor a suspended resize is possible"
    )


class KfpTarget(Strict):
    experiment_id: str = Field(min_length=1, max_length=128)
    pipeline_id: str = Field(min_length=1, max_length=128)
    memory_parameter: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")


class AwsBatchTarget(Strict):
    job_queue: str = Field(min_length=1, max_length=1600)
    job_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$", description="the job's name (no run suffix)")


class Breaker(Strict):
    """``jobs.<id>.breaker``: which alerts may act on the job, how, and within which limits."""

    orchestrator: Orchestrator
    on: list[TriggerKind] = Field(default=["time_to_oom"], min_length=1, description="critical alerts that trigger it")
    action: Action = "bump_and_resume"
    bump: Bump = Bump()
    max_memory: Size = Field(description="never give the job more than this")
    max_bumps: int = Field(default=2, ge=0, le=5, description="per run of the job")
    cooldown: Duration = Field(default=1800.0, description="no second action on the job within this")
    dry_run: bool = Field(default=True, description="plan and audit the calls, send no mutating request")
    airflow: AirflowTarget | None = None
    kubernetes: KubernetesTarget | None = None
    kfp: KfpTarget | None = None
    aws_batch: AwsBatchTarget | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Breaker:
        for name in ORCHESTRATORS:
            block = getattr(self, name)
            if name == self.orchestrator and block is None:
                fields = ", ".join(TARGET_MODELS[name].model_fields)
                raise ValueError(f"orchestrator {name} needs breaker.{name}: {{{fields}}}; add it")
            if name != self.orchestrator and block is not None:
                raise ValueError(f"breaker.{name} is set but orchestrator is {self.orchestrator}; remove it")
        if len(set(self.on)) != len(self.on):
            raise ValueError("breaker.on lists a kind twice; list each of time_to_oom, usage once")
        return self

    @property
    def target(self) -> BaseModel:
        block = getattr(self, self.orchestrator)
        assert isinstance(block, BaseModel)
        return block


TARGET_MODELS: dict[str, type[BaseModel]] = {
    "airflow": AirflowTarget,
    "kubernetes": KubernetesTarget,
    "kfp": KfpTarget,
    "aws_batch": AwsBatchTarget,
}


# --- the environment's ``breaker:`` block ---------------------------------------------------
class AirflowConnection(Strict):
    url: str = Field(pattern=HTTP_URL, description="Airflow's base URL (the API server)")
    api: Literal["v2", "v1"] = Field(default="v2", description="v2: Airflow 3 (/api/v2); v1: Airflow 2 (/api/v1)")
    username: str = Field(min_length=1)
    password: SecretRef


class KubernetesConnection(Strict):
    url: str = Field(pattern=HTTP_URL, description="the API server")
    token: SecretRef | None = Field(default=None, description="a service-account token with patch on jobs and pods")
    ca_file: str | None = Field(default=None, description="CA bundle of the API server (https)")


class KfpConnection(Strict):
    url: str = Field(pattern=HTTP_URL, description="the KFP API server (ml-pipeline), e.g. http://ml-pipeline:8888")
    token: SecretRef | None = None


class AwsBatchConnection(Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
    endpoint_url: str | None = Field(default=None, pattern=HTTP_URL, description="override the endpoint (tests)")


class BreakerSettings(Strict):
    """The environment's ``breaker:`` block; its presence activates the jobs' breakers there."""

    enabled: bool = Field(default=True, description="false: the kill switch; nothing is routed to the breaker")
    listen: str = Field(default="127.0.0.1:9095", pattern=HOST_PORT, description="where `breaker serve` listens")
    url: str | None = Field(
        default=None, pattern=HTTP_URL, description="what Alertmanager posts to; default http://<listen>/alerts"
    )
    token: SecretRef = Field(
        default=SecretRef(env="MEMPROV_BREAKER_TOKEN"),
        description="bearer token Alertmanager sends (credentials_file) and serve checks",
    )
    state_dir: str | None = Field(default=None, description="ledger and audit; default .memprov/breaker/<env>")
    group_wait: Duration = Field(default=5.0, description="Alertmanager's group_wait on the breaker route")
    airflow: AirflowConnection | None = None
    kubernetes: KubernetesConnection | None = None
    kfp: KfpConnection | None = None
    aws_batch: AwsBatchConnection | None = None

    @property
    def webhook_url(self) -> str:
        return self.url or f"http://{self.listen}/alerts"


def check(breaker: Breaker, limit: int, backends: tuple[str, ...], enabled_kinds: dict[str, bool]) -> list[str]:
    """Rules that span the breaker and the rest of its job; each problem as a message."""
    out = []
    if breaker.max_memory < limit:
        out.append(
            f"max_memory {format_size(breaker.max_memory)} is below the job's memory limit {format_size(limit)}; "
            "the breaker could never give it more: raise max_memory"
        )
    missing = [b for b in ("prometheus", "alertmanager") if b not in backends]
    if missing:
        out.append(
            f"the breaker is triggered by memprov's Prometheus alerts through Alertmanager; "
            f"add {' and '.join(missing)} to the job's backends"
        )
    for kind in breaker.on:
        if not enabled_kinds.get(kind, False):
            out.append(f"breaker.on lists {kind}, but the job's {kind} alerts are disabled; enable them or remove it")
    return out


def connection_missing(breaker: Breaker, settings: BreakerSettings) -> str | None:
    """What the environment's breaker block lacks to reach this job's orchestrator, or None."""
    if getattr(settings, breaker.orchestrator) is None:
        return (
            f"orchestrator {breaker.orchestrator} needs breaker.{breaker.orchestrator} (how to reach it) "
            "in the environment file's breaker: block"
        )
    return None


def active(settings: BreakerSettings | None, breaker: Breaker | None) -> bool:
    """True when the job has a breaker and the environment runs one (a ``breaker:`` block, enabled)."""
    return breaker is not None and settings is not None and settings.enabled


def rule_labels(settings: BreakerSettings | None, breaker: Breaker | None, severity: str, kind: str) -> dict[str, str]:
    """``{memprov_breaker: "on"}`` for the critical rules of the kinds the job's breaker acts on."""
    if active(settings, breaker) and severity == "critical" and breaker is not None and kind in breaker.on:
        return {LABEL: "on"}
    return {}
