"""The ``cloudwatch`` backend: per job, the CloudWatch metric alarms of every alert kind.

A resource's body is the exact ``PutMetricAlarm`` request (see :mod:`provisioner.render.cloudwatch`),
whatever the target: ``files`` writes one JSON request body per alarm under
``out/<env>/cloudwatch/`` (the embedded default; nothing needs AWS), ``cloudwatch`` applies them
to a live account (:mod:`provisioner.backends.cloudwatch_api`). Both sides are normalised with
the same function: only the fields memprov sends, server-owned fields (ARN, state, timestamps)
dropped, the empty ``Metrics``/``Dimensions`` lists CloudWatch returns for the other alarm shape
dropped, dimensions sorted, and only memprov's own tags compared (someone else's cost tags on
an alarm are not drift). Ownership: the tags ``managed-by: memprov``, ``memprov-env`` and
``memprov-spec`` on the alarm (in the files target, in the request body), plus the name prefix
``memprov-<env>-``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from provisioner.backends.base import Resource, Target
from provisioner.backends.cloud import CloudBackend
from provisioner.backends.files import FilesConfig
from provisioner.render import cloudwatch as render
from provisioner.spec.environment import AWS_REGION_PATTERN, SNS_ARN_PATTERN
from provisioner.spec.resolved import ResolvedSpec

SNS_ARN = SNS_ARN_PATTERN
REGION = AWS_REGION_PATTERN
FIELDS = (  # what PutMetricAlarm takes and memprov sends; everything else describe_alarms returns is server-owned
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
    "Tags",
)


class Sns(BaseModel):
    """SNS topic ARN per severity; alarms of a severity without a topic notify nobody (the plan says so)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    info: str | None = Field(default=None, pattern=SNS_ARN)
    warning: str | None = Field(default=None, pattern=SNS_ARN)
    critical: str | None = Field(default=None, pattern=SNS_ARN)


class CloudWatchFilesConfig(FilesConfig):
    """``targets.cloudwatch: {type: files, dir, sns}``: the request bodies, with the topics they would use."""

    sns: Sns = Sns()
    notify_ok: bool = Field(default=True, description="also notify the topic when the alarm returns to OK")


class CloudWatchConfig(BaseModel):
    """``targets.cloudwatch: {type: cloudwatch, region, sns, endpoint_url}``; credentials: the standard AWS chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["cloudwatch"]
    region: str = Field(pattern=REGION, description="e.g. eu-west-1")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", description="e.g. a VPC endpoint")
    profile: str | None = Field(default=None, min_length=1, description="AWS profile; default: the standard chain")
    sns: Sns = Sns()
    notify_ok: bool = Field(default=True, description="also notify the topic when the alarm returns to OK")
    timeout: float = Field(default=10.0, gt=0, le=300, description="seconds per request")


def _sorted_dims(dims: Any) -> Any:
    if isinstance(dims, list):
        return sorted(dims, key=lambda d: str(d.get("Name")) if isinstance(d, dict) else "")
    return dims


def _query(q: Any) -> Any:
    if not isinstance(q, dict):
        return q
    out = {k: v for k, v in q.items() if v not in (None, [], "")}
    out.setdefault("ReturnData", True)  # CloudWatch's default when absent
    stat = out.get("MetricStat")
    if isinstance(stat, dict) and isinstance(stat.get("Metric"), dict):
        metric = dict(stat["Metric"])
        metric["Dimensions"] = _sorted_dims(metric.get("Dimensions") or [])
        out["MetricStat"] = {**stat, "Metric": metric}
    return out


def _owned_tag(key: str) -> bool:
    return key == "managed-by" or key.startswith("memprov-")


def normalise_alarm(body: Any) -> Any:
    """The fields memprov sends, written one way: desired and live bodies compare equal when they mean the same."""
    if not isinstance(body, dict) or "AlarmName" not in body:
        return body
    out: dict[str, Any] = {}
    for key in FIELDS:
        value = body.get(key)
        if value in (None, [], ""):
            continue
        if key == "Dimensions":
            value = _sorted_dims(value)
        elif key == "Metrics":
            value = [_query(q) for q in value]
        elif key == "Threshold":
            value = float(value)
        elif key == "Tags":
            value = sorted(
                (t for t in value if isinstance(t, dict) and _owned_tag(str(t.get("Key")))),
                key=lambda t: str(t.get("Key")),
            )
        out[key] = value
    out.setdefault("ActionsEnabled", True)
    return out


def tags_of(body: Any) -> dict[str, str]:
    tags = body.get("Tags") if isinstance(body, dict) else None
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags or [] if isinstance(t, dict) and "Key" in t}


class CloudWatchBackend(CloudBackend):
    KIND = "alarm"
    RENDER: ClassVar[ModuleType] = render
    NO_RECEIVER = (
        "no SNS topic for {severities}: those alarms notify nobody; set targets.cloudwatch.sns in the environment file"
    )
    name = "cloudwatch"
    TARGETS: ClassVar[dict[str, type[BaseModel]]] = {"files": CloudWatchFilesConfig, "cloudwatch": CloudWatchConfig}

    @classmethod
    def make_target(cls, spec: ResolvedSpec, config: BaseModel) -> Target:
        from provisioner.backends.cloudwatch_api import CloudWatchTarget

        if not isinstance(config, CloudWatchConfig):  # pragma: no cover - the registry builds files targets
            raise TypeError(f"unexpected target config {type(config).__name__}")
        return CloudWatchTarget(spec, config)

    @property
    def config(self) -> CloudWatchConfig | CloudWatchFilesConfig | None:
        config = self.spec.targets.get(self.name)
        return config if isinstance(config, CloudWatchConfig | CloudWatchFilesConfig) else None

    @property
    def topics(self) -> dict[str, str]:
        sns = self.config.sns if self.config else Sns()
        return {k: v for k, v in sns.model_dump().items() if v}

    def render(self) -> list[Resource]:
        notify_ok = self.config.notify_ok if self.config else True
        return [
            Resource("alarm", a["AlarmName"], a, job=job.id, title=job.name)
            for job in self.spec.jobs_using(self.name)
            for a in render.alarms(self.spec, job, self.topics, notify_ok)
        ]

    def normalise(self, body: Any) -> Any:
        return normalise_alarm(body)

    def labels(self, body: Any) -> dict[str, str]:
        return tags_of(body)

    def receivers(self) -> set[str]:
        return set(self.topics)
