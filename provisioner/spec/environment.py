"""The environment file (``environments/<env>.yaml``): targets, links and overrides.

Keys ``defaults``, ``jobs`` and ``notifications`` are overlays merged into the spec (see
:mod:`provisioner.spec.merge`); the rest configures the environment itself. Each backend's
``targets.<backend>`` block is validated by that backend's own target model, so that a new
backend brings its targets with it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from provisioner.spec.breaker import BreakerSettings
from provisioner.spec.labels import AlertLabelName
from provisioner.spec.model import PATTERN_HELP as SPEC_PATTERN_HELP
from provisioner.spec.model import BackendName

OVERLAY_KEYS = ("defaults", "jobs", "notifications")
SPEC_ONLY_KEYS = ("version", "name")  # an overlay may not change these; the merger says so
ENV_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,19}$"
UID_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"
GRAFANA_URL_PATTERN = r"^https?://[^\s]+[^/\s]$"
SNS_ARN_PATTERN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}$"
AWS_REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$"
AZURE_ACTION_GROUP_PATTERN = (
    r"(?i)^/subscriptions/[0-9a-f-]{36}/resourceGroups/[-A-Za-z0-9_.()]{1,90}/providers/microsoft\.insights/"
    r"actionGroups/[-A-Za-z0-9_.]{1,260}$"
)
AZURE_UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
AZURE_RESOURCE_GROUP_PATTERN = r"^[-A-Za-z0-9_.()]{1,90}$"
HTTPS_URL_PATTERN = r"^https://[^\s]+[^/\s]$"
PATTERN_HELP = {
    **SPEC_PATTERN_HELP,
    UID_PATTERN: "use letters, digits, '_' and '-', at most 40 characters",
    GRAFANA_URL_PATTERN: "use an http:// or https:// URL without a trailing /",
    SNS_ARN_PATTERN: "use an SNS topic ARN, e.g. arn:aws:sns:eu-west-1:123456789012:ml-oncall",
    AWS_REGION_PATTERN: "use an AWS region name, e.g. eu-west-1",
    AZURE_ACTION_GROUP_PATTERN: "use an action group resource id, e.g. /subscriptions/<uuid>/resourceGroups/rg/"
    "providers/Microsoft.Insights/actionGroups/ml-oncall",
    AZURE_UUID_PATTERN: "use a subscription id (a UUID)",
    AZURE_RESOURCE_GROUP_PATTERN: "use a resource group name (letters, digits, '_', '-', '.', '(', ')')",
    HTTPS_URL_PATTERN: "use an https:// URL without a trailing /",
}


class Datasource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["prometheus"] = "prometheus"
    uid: str = Field(default="prometheus", pattern=UID_PATTERN)


class Environment(BaseModel):
    """Environment settings other than the overlay keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    output_dir: str | None = Field(
        default=None, description="where files targets write; default out/<env> next to the spec"
    )
    grafana_url: str = Field(
        default="http://localhost:3000",
        pattern=GRAFANA_URL_PATTERN,
        description="base URL used for dashboard links in alerts (no trailing /)",
    )
    datasource: Datasource = Datasource()
    labels: dict[AlertLabelName, str] = Field(default={}, description="labels added to every alert of this environment")
    targets: dict[BackendName, dict[str, Any]] = Field(
        default={}, description="per backend: {type: files|...} and that target's settings"
    )
    breaker: BreakerSettings | None = Field(
        default=None, description="memprov breaker serve: listen address, token, orchestrators; activates breakers"
    )
    # overlays, validated as part of the merged spec
    defaults: dict[str, Any] = {}
    jobs: dict[str, Any] = {}
    notifications: dict[str, Any] = {}
