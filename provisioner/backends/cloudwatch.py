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

from typing import Any, ClassVar

from pydantic import Field

from provisioner.backends.cloud import CloudBackend, CloudRenderer
from provisioner.backends.cloudwatch_api import CloudWatchConfig, CloudWatchTarget, Sns
from provisioner.backends.files import FILES, FilesConfig
from provisioner.core.extras import AWS
from provisioner.plan.contract import Backend, TargetType
from provisioner.plan.model import Resource
from provisioner.render import cloudwatch as render

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


class CloudWatchFilesConfig(FilesConfig):
    """``targets.cloudwatch: {type: files, dir, sns}``: the request bodies, with the topics they would use."""

    sns: Sns = Sns()
    notify_ok: bool = Field(default=True, description="also notify the topic when the alarm returns to OK")


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


def _live(backend: Backend, config: CloudWatchConfig) -> CloudWatchTarget:
    return CloudWatchTarget(backend, config)


class CloudWatchBackend(CloudBackend):
    KIND = "alarm"
    RENDER: ClassVar[CloudRenderer] = render
    NO_RECEIVER = (
        "no SNS topic for {severities}: those alarms notify nobody; set targets.cloudwatch.sns in the environment file"
    )
    name = "cloudwatch"
    TARGETS: ClassVar[dict[str, TargetType[Any]]] = {
        "files": TargetType(CloudWatchFilesConfig, FILES.build),
        "cloudwatch": TargetType(CloudWatchConfig, _live, extra=AWS),
    }

    @property
    def settings(self) -> CloudWatchConfig | CloudWatchFilesConfig:
        """The target's settings (receivers...), whichever target the environment names."""
        return (
            self.config
            if isinstance(self.config, CloudWatchConfig | CloudWatchFilesConfig)
            else CloudWatchFilesConfig()
        )

    @property
    def topics(self) -> dict[str, str]:
        sns = self.settings.sns
        return {k: v for k, v in sns.model_dump().items() if v}

    def render(self) -> list[Resource]:
        notify_ok = self.settings.notify_ok
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
