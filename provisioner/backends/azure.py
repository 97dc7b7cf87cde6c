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

from typing import Any, ClassVar

from provisioner.backends.azure_api import ActionGroups, AzureConfig, AzureTarget
from provisioner.backends.cloud import CloudBackend, CloudRenderer
from provisioner.backends.files import FILES, FilesConfig
from provisioner.core.extras import AZURE
from provisioner.plan.contract import Backend, TargetType
from provisioner.plan.model import Resource
from provisioner.render import azure as render

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


class AzureFilesConfig(FilesConfig):
    """``targets.azure: {type: files, dir, action_groups}``: the request bodies, with the groups they would use."""

    action_groups: ActionGroups = ActionGroups()


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


def _live(backend: Backend, config: AzureConfig) -> AzureTarget:
    return AzureTarget(backend, config)


class AzureBackend(CloudBackend):
    KIND = "metric-alert"
    RENDER: ClassVar[CloudRenderer] = render
    NO_RECEIVER = (
        "no action group for {severities}: those alert rules notify nobody; "
        "set targets.azure.action_groups in the environment file"
    )
    name = "azure"
    TARGETS: ClassVar[dict[str, TargetType[Any]]] = {
        "files": TargetType(AzureFilesConfig, FILES.build),
        "azure": TargetType(AzureConfig, _live, extra=AZURE),
    }

    @property
    def settings(self) -> AzureConfig | AzureFilesConfig:
        """The target's settings (receivers...), whichever target the environment names."""
        return self.config if isinstance(self.config, AzureConfig | AzureFilesConfig) else AzureFilesConfig()

    @property
    def groups(self) -> dict[str, str]:
        groups = self.settings.action_groups
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
