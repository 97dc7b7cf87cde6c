"""The ``gcp`` backend: per job, the Cloud Monitoring alert policies of every alert kind.

A resource's body is the exact ``AlertPolicy`` (REST JSON; see :mod:`provisioner.render.gcp`),
whatever the target: ``files`` writes one JSON policy per file under ``out/<env>/gcp/`` (the
embedded default; nothing needs Google Cloud), ``gcp`` applies them to a project through the
real client over gRPC (:mod:`provisioner.backends.gcp_api`). A policy's key is its display name
(``memprov-<env>-<job>-<kind>``); the resource name (``projects/P/alertPolicies/ID``) is assigned
by the server and kept as the live resource's handle. Both sides are normalised with the same
function: server-owned fields (``name``, ``creationRecord``, ``mutationRecord``, the conditions'
names) dropped, as are the default values ``MessageToDict`` leaves out, and only memprov's own
user labels compared (someone else's ``cost-centre`` label on a policy is not drift).
Ownership: the user labels ``managed-by: memprov``, ``memprov-env`` and ``memprov-spec``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from provisioner.backends.cloud import CloudBackend, CloudRenderer
from provisioner.backends.files import FILES, FilesConfig
from provisioner.backends.gcp_api import GcpConfig, GcpTarget, Policy
from provisioner.core.extras import GCP
from provisioner.plan.contract import Backend, TargetType
from provisioner.plan.model import Resource
from provisioner.render import gcp as render

SERVER_OWNED = ("name", "creationRecord", "mutationRecord")


class GcpFilesConfig(FilesConfig, Policy):
    """``targets.gcp: {type: files, dir, channels}``: the policies, with the channels they would use."""


def _owned_label(key: str) -> bool:
    return key == "managed-by" or key.startswith("memprov-")


def _prune(value: Any) -> Any:
    """Default values dropped (as ``MessageToDict`` leaves them out), numbers as floats."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {}, 0, False) or k == "enabled"}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def normalise_policy(body: Any) -> Any:
    """The fields memprov sends, written one way: desired and live policies compare equal when they mean the same."""
    if not isinstance(body, dict) or "displayName" not in body:
        return body
    out = {k: v for k, v in body.items() if k not in SERVER_OWNED}
    out["conditions"] = [{k: v for k, v in c.items() if k != "name"} for c in out.get("conditions", [])]
    out["userLabels"] = {k: v for k, v in sorted((out.get("userLabels") or {}).items()) if _owned_label(k)}
    out.setdefault("enabled", True)
    return _prune(out)


def labels_of(body: Any) -> dict[str, str]:
    labels = body.get("userLabels") if isinstance(body, dict) else None
    return {str(k): str(v) for k, v in (labels or {}).items()}


def _live(backend: Backend, config: GcpConfig) -> GcpTarget:
    return GcpTarget(backend, config)


class GcpBackend(CloudBackend):
    KIND = "policy"
    RENDER: ClassVar[CloudRenderer] = render
    NO_RECEIVER = (
        "no notification channel for {severities}: those policies notify nobody; "
        "set targets.gcp.channels in the environment file"
    )
    name = "gcp"
    TARGETS: ClassVar[dict[str, TargetType[Any]]] = {
        "files": TargetType(GcpFilesConfig, FILES.build),
        "gcp": TargetType(GcpConfig, _live, extra=GCP),
    }

    @property
    def settings(self) -> GcpConfig | GcpFilesConfig:
        """The target's settings (receivers...), whichever target the environment names."""
        return self.config if isinstance(self.config, GcpConfig | GcpFilesConfig) else GcpFilesConfig()

    @property
    def channels(self) -> dict[str, list[str]]:
        channels = self.settings.channels
        return {k: list(v) for k, v in channels.model_dump().items() if v}

    def render(self) -> list[Resource]:
        config = self.settings
        return [
            Resource("policy", p["displayName"], p, job=job.id, title=job.name)
            for job in self.spec.jobs_using(self.name)
            for p in render.policies(self.spec, job, self.channels, config.auto_close, config.notification_rate_limit)
        ]

    def normalise(self, body: Any) -> Any:
        return normalise_policy(body)

    def labels(self, body: Any) -> dict[str, str]:
        return labels_of(body)

    def receivers(self) -> set[str]:
        return set(self.channels)

    def extra_notes(self) -> list[str]:
        if self.settings.notification_rate_limit is not None:
            return [
                "notification_rate_limit is sent, but Cloud Monitoring applies it to log-based policies only; "
                "metric policies notify once per incident and auto_close ends incidents"
            ]
        return []
