"""Deterministic names and uids derived from environment, job and alert kind.

Everything memprov creates is named from the spec alone, so that a re-render names the same
resources and ``plan`` can match desired with live without any state file.
"""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "memprov"
JOB_ID_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
GRAFANA_UID_MAX = 40


def short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def resource_name(env: str, job: str, *parts: str) -> str:
    """``memprov-prod-clv-daily-usage-critical``."""
    return "-".join(("memprov", env, job, *parts))


def dashboard_uid(env: str, job: str | None = None) -> str:
    """Grafana uid (at most 40 characters): readable when it fits, hash-truncated when not."""
    full = f"memprov-{env}-{job}" if job else f"memprov-{env}-overview"
    if len(full) <= GRAFANA_UID_MAX:
        return full
    digest = short_hash(full)
    return f"{full[: GRAFANA_UID_MAX - len(digest) - 1]}-{digest}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "dashboard"


def ownership_tags(env: str, spec_name: str) -> dict[str, str]:
    """Marker carried by everything memprov creates (tags / labels / user_labels)."""
    return {"managed-by": MANAGED_BY, "memprov-env": env, "memprov-spec": spec_name}
