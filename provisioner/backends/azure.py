"""The ``azure`` backend: per job, Azure Monitor metric alert rules of every alert kind it can express.

A resource's body is the exact ARM request body of ``PUT .../metricAlerts/<name>`` (see
:mod:`provisioner.render.azure`), whatever the target: ``files`` writes one JSON request body
per rule under ``out/<env>/azure/`` (the embedded default; nothing needs Azure), ``azure``
applies them to a resource group (:mod:`provisioner.backends.azure_api`). Both sides are
normalised with the same function: only what memprov sends (server-owned ``id``, ``type``,
``lastUpdatedTime``, ``isMigrated`` dropped), thresholds as floats, resource ids compared
case-insensitively as ARM does, and only memprov's own tags compared (someone else's cost tags
are not drift). Ownership: the tags ``managed-by: memprov``, ``memprov-env`` and
``memprov-spec``, plus the name prefix ``memprov-<env>-``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from provisioner.backends.base import Resource, Target
from provisioner.backends.cloud import CloudBackend
from provisioner.backends.files import FilesConfig
from provisioner.core.types import SecretRef
from provisioner.render import azure as render
from provisioner.spec.environment import (
    AZURE_ACTION_GROUP_PATTERN,
    AZURE_RESOURCE_GROUP_PATTERN,
    AZURE_UUID_PATTERN,
    HTTPS_URL_PATTERN,
)
from provisioner.spec.resolved import ResolvedSpec

ACTION_GROUP = AZURE_ACTION_GROUP_PATTERN
UUID = AZURE_UUID_PATTERN
RESOURCE_GROUP = AZURE_RESOURCE_GROUP_PATTERN
PROPERTIES = (  # what memprov sends; everything else ARM returns is server-owned
    "description",
    "severity",
    "enabled",
    "scopes",
    "evaluationFrequency",
    "windowSize",
    "targetResourceType",
    "targetResourceRegion",
    "criteria",
    "autoMitigate",
    "actions",
)


class ActionGroups(BaseModel):
    """Action group resource id per severity; rules of a severity without one notify nobody (the plan says so)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    info: str | None = Field(default=None, pattern=ACTION_GROUP)
    warning: str | None = Field(default=None, pattern=ACTION_GROUP)
    critical: str | None = Field(default=None, pattern=ACTION_GROUP)


class AzureFilesConfig(FilesConfig):
    """``targets.azure: {type: files, dir, action_groups}``: the request bodies, with the groups they would use."""

    action_groups: ActionGroups = ActionGroups()


class AzureConfig(BaseModel):
    """``targets.azure: {type: azure, subscription_id, resource_group, action_groups}``; credentials:
    azure-identity's ``DefaultAzureCredential`` (environment, workload identity, managed identity,
    ``az login``), or ``token``: a bearer token reference (e.g. from ``az account get-access-token``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["azure"]
    subscription_id: str = Field(pattern=UUID, description="the subscription of the resource group")
    resource_group: str = Field(pattern=RESOURCE_GROUP, description="where the alert rules are created")
    action_groups: ActionGroups = ActionGroups()
    endpoint: str = Field(default="https://management.azure.com", pattern=HTTPS_URL_PATTERN, description="ARM endpoint")
    ca_bundle: str | None = Field(default=None, min_length=1, description="CA bundle (PEM) to verify the endpoint")
    token: SecretRef | None = Field(default=None, description="a bearer token instead of DefaultAzureCredential")
    timeout: float = Field(default=30.0, gt=0, le=300, description="seconds per request")


PERIODS = ("numberOfEvaluationPeriods", "minFailingPeriodsToAlert")


def _own_tags(tags: Any) -> dict[str, str]:
    if not isinstance(tags, dict):
        return {}
    return {str(k): str(v) for k, v in sorted(tags.items()) if k == "managed-by" or str(k).startswith("memprov-")}


def _floats(value: Any) -> Any:
    """Thresholds as floats, failing periods as ints, action group ids lower-cased: what ARM or the SDK may
    write differently but means the same."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "threshold" and isinstance(v, int | float) and not isinstance(v, bool):
                out[k] = float(v)
            elif k in PERIODS and isinstance(v, float) and v.is_integer():  # the SDK types them as numbers
                out[k] = int(v)
            elif k == "actionGroupId" and isinstance(v, str):
                out[k] = v.lower()
            elif k == "webHookProperties" and not v:
                continue
            else:
                out[k] = _floats(v)
        return out
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return value


def normalise_rule(body: Any) -> Any:
    """The fields memprov sends, written one way: desired and live bodies compare equal when they mean the same."""
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        return body
    props = body["properties"]
    out: dict[str, Any] = {}
    for key in PROPERTIES:
        value = props.get(key)
        if value in (None, [], ""):
            continue
        if key == "scopes":
            value = sorted(str(s).lower() for s in value)
        out[key] = _floats(value)
    return {"location": str(body.get("location", "")).lower(), "tags": _own_tags(body.get("tags")), "properties": out}


def tags_of(body: Any) -> dict[str, str]:
    tags = body.get("tags") if isinstance(body, dict) else None
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


class AzureBackend(CloudBackend):
    KIND = "metric-alert"
    RENDER: ClassVar[ModuleType] = render
    NO_RECEIVER = (
        "no action group for {severities}: those alert rules notify nobody; "
        "set targets.azure.action_groups in the environment file"
    )
    name = "azure"
    TARGETS: ClassVar[dict[str, type[BaseModel]]] = {"files": AzureFilesConfig, "azure": AzureConfig}

    @classmethod
    def make_target(cls, spec: ResolvedSpec, config: BaseModel) -> Target:
        from provisioner.backends.azure_api import AzureTarget

        if not isinstance(config, AzureConfig):  # pragma: no cover - the registry builds files targets
            raise TypeError(f"unexpected target config {type(config).__name__}")
        return AzureTarget(spec, config)

    @property
    def config(self) -> AzureConfig | AzureFilesConfig | None:
        config = self.spec.targets.get(self.name)
        return config if isinstance(config, AzureConfig | AzureFilesConfig) else None

    @property
    def groups(self) -> dict[str, str]:
        groups = self.config.action_groups if self.config else ActionGroups()
        return {k: v for k, v in groups.model_dump().items() if v}

    def render(self) -> list[Resource]:
        return [
            Resource("metric-alert", r["name"], r["body"], job=job.id, title=job.name)
            for job in self.spec.jobs_using(self.name)
            for r in render.rules(self.spec, job, self.groups)
        ]

    def normalise(self, body: Any) -> Any:
        return normalise_rule(body)

    def labels(self, body: Any) -> dict[str, str]:
        return tags_of(body)

    def receivers(self) -> set[str]:
        return set(self.groups)
