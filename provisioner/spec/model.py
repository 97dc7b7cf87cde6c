"""The spec model (``memprov.yaml``): pydantic v2 models, ``extra="forbid"`` everywhere.

These models check structure and types only; rules that span fields (warning below critical,
thresholds under the limit, routes naming known channels) live in :mod:`provisioner.spec.resolve`,
which can point at the exact key that is wrong. Overlay merge rules are declared per field with
:class:`~provisioner.spec.merge.Merge` markers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema, field_validator

from provisioner.core.types import Duration, SecretRef, Size, Strict, ThresholdValue
from provisioner.kinds.anomaly import Anomaly
from provisioner.kinds.baseline import BaselineAlert
from provisioner.kinds.growth import Growth
from provisioner.kinds.time_to_oom import TimeToOom
from provisioner.kinds.usage import Usage
from provisioner.spec.breaker import PATTERN_HELP as BREAKER_PATTERN_HELP
from provisioner.spec.breaker import Breaker
from provisioner.spec.clouds import PATTERN_HELP as CLOUD_PATTERN_HELP
from provisioner.spec.clouds import Aws, Azure, Gcp
from provisioner.spec.labels import AlertLabelName, LabelName, Regex
from provisioner.spec.merge import Merge

BACKEND_PATTERN = r"^[a-z][a-z0-9_]{0,30}$"
BackendName = Annotated[str, Field(pattern=BACKEND_PATTERN)]
"""A backend's name; which names exist is the registry's to say (provisioner.backends.registry.configure)."""
Runtime = Literal["kubernetes", "vm", "process"]
Severity = Literal["info", "warning", "critical"]


NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"
CHANNEL_PATTERN = r"^[#@]?[\w.-]+$"
URL_PATTERN = r"^https?://[^\s]+$"
METRIC_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
PATTERN_HELP = {
    NAME_PATTERN: "use lowercase letters, digits and '-', starting with a letter, at most 31 characters",
    CHANNEL_PATTERN: "use a channel name such as #ml-platform or @someone (letters, digits, '-', '_', '.')",
    URL_PATTERN: "use an http:// or https:// URL without spaces",
    METRIC_PATTERN: "use a Prometheus metric name (letters, digits, '_' and ':', not starting with a digit)",
    BACKEND_PATTERN: "use a backend name such as prometheus, grafana or cloudwatch (lowercase letters)",
}
"""How to write a value that must match a pattern; the loader says this instead of the regex."""
PATTERN_HELP.update(CLOUD_PATTERN_HELP)
PATTERN_HELP.update(BREAKER_PATTERN_HELP)


# --- notifications -------------------------------------------------------------------------
class Slack(Strict):
    type: Literal["slack"]
    channel: str = Field(pattern=CHANNEL_PATTERN, description="Slack channel, e.g. #ml-platform")
    webhook_url: SecretRef
    send_resolved: bool = True


class PagerDuty(Strict):
    type: Literal["pagerduty"]
    routing_key: SecretRef
    send_resolved: bool = True


class Opsgenie(Strict):
    type: Literal["opsgenie"]
    api_key: SecretRef
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P2"
    team: str | None = None


class Webhook(Strict):
    type: Literal["webhook"]
    url: str = Field(pattern=URL_PATTERN, description="endpoint URL (not a secret)")
    bearer_token: SecretRef | None = None
    max_alerts: int = Field(default=0, ge=0)
    send_resolved: bool = True


Notification = Annotated[Slack | PagerDuty | Opsgenie | Webhook, Field(discriminator="type")]


ChannelNames = Annotated[
    list[str],
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            "description": "a notification channel name, or a list of them",
        }
    ),
]


class Route(Strict):
    """Which notification channels receive each severity."""

    info: ChannelNames = []
    warning: ChannelNames = []
    critical: ChannelNames = []

    @field_validator("info", "warning", "critical", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


# --- alert settings: each kind's own model lives in its module under provisioner.kinds -----------
class Thresholds(Strict):
    warning: ThresholdValue
    critical: ThresholdValue


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class WeekdayBaseline(Strict):
    """Runs starting on one weekday, when the history shows that they differ (a heavy day)."""

    runs: int = Field(ge=0)
    duration_p50: Duration | None = None
    duration_max: Duration | None = None
    end_peak_p50: Size | None = None
    end_peak_max: Size | None = None


class Baseline(Strict):
    """What past successful runs did (written by ``memprov baseline`` or by hand); sizes in bytes,
    velocities in bytes per minute, durations as 90m or 2h."""

    runs: int | None = Field(default=None, ge=0)
    peak_p50: Size | None = None
    peak_p95: Size | None = None
    peak_p99: Size | None = None
    peak_max: Size | None = None
    velocity: Size | None = Field(default=None, description="usual growth of the troughs, bytes per minute")
    velocity_p90: Size | None = Field(default=None, description="per-run growth of the troughs: 90th percentile")
    velocity_max: Size | None = Field(default=None, description="per-run growth of the troughs: the fastest run")
    duration_p50: Duration | None = Field(default=None, description="how long a healthy run lasts: median")
    duration_p95: Duration | None = None
    duration_max: Duration | None = Field(default=None, description="the longest healthy run")
    end_peak_p50: Size | None = Field(default=None, description="peak over the last 15 minutes of healthy runs")
    end_peak_p95: Size | None = None
    end_peak_max: Size | None = None
    floor: Size | None = Field(default=None, description="healthy runs' troughs at the start (upper quartile)")
    floor_velocity: Size | None = Field(
        default=None, description="healthy runs' trough growth per minute, upper quartile: the envelope's slope"
    )
    floor_noise: Size | None = Field(
        default=None, description="how far healthy troughs stray above their own trend (upper quartile)"
    )
    burst: Size | None = Field(
        default=None, description="fastest trough growth per minute over one growth window of a healthy run"
    )
    sawtooth: Size | None = Field(default=None, description="usual height of the peaks above the troughs")
    weekdays: dict[Weekday, WeekdayBaseline] = Field(
        default={}, description="weekdays whose runs differ (heavy days), only where the history shows it"
    )
    oom_source: Literal["events", "kube-state-metrics", "both", "none"] | None = Field(
        default=None, description="which OOM-kill series exist for the job (none: no OOM rule is rendered)"
    )


class Metrics(Strict):
    """PromQL metric names; defaults depend on the runtime."""

    working_set: str | None = Field(default=None, pattern=METRIC_PATTERN)
    limit: str | None = Field(default=None, pattern=METRIC_PATTERN)
    oom_events: str | None = Field(default=None, pattern=METRIC_PATTERN)


TROUGH_HELP = (
    "rolling-minimum window that removes the sawtooth of chunked loading and GC and transient spikes "
    "(>= one period, longer than a spike)"
)


class Defaults(Strict):
    scrape_interval: Duration = 30.0
    evaluation_interval: Duration | None = None
    trough_window: Duration = Field(default=480.0, description=TROUGH_HELP)
    thresholds: Thresholds = Thresholds(warning="80%", critical="90%")
    usage: Usage = Usage()
    growth: Growth = Growth()
    time_to_oom: TimeToOom = TimeToOom()
    anomaly: Anomaly = Anomaly()
    baseline_alert: BaselineAlert = BaselineAlert()
    route: Route = Route()
    backends: Annotated[list[BackendName], Merge.REPLACE] = ["prometheus", "alertmanager", "grafana"]
    runbook_url: str = Field(
        default="https://runbooks.example.com/memprov/{job}",
        pattern=URL_PATTERN,
        description="runbook link; {job} and {env} are filled in",
    )
    labels: dict[AlertLabelName, str] = {}
    gcp: Gcp = Gcp()
    aws: Aws = Aws()
    azure: Azure = Azure()


class Model(Strict):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


class Memory(Strict):
    limit: Size
    baseline: Baseline | None = None
    thresholds: Thresholds | None = None


LabelMatch = Annotated[Regex, Field(min_length=1)]


class Selector(Strict):
    """Label matchers that pick the job's series; values are exact unless given as ``{regex: ...}``."""

    namespace: str | None = None
    container: str | None = None
    pod: str | None = None
    instance: str | None = None
    groupname: str | None = Field(default=None, description="process-exporter group (process runtime)")
    regex: dict[LabelName, LabelMatch] = {}


class Job(Strict):
    name: str | None = None
    description: str = ""
    owner: str = Field(min_length=1)
    team: str | None = None
    model: Model
    runtime: Runtime = "kubernetes"
    selector: Selector = Selector()
    memory: Memory
    trough_window: Duration | None = Field(default=None, description=TROUGH_HELP)
    usage: Usage | None = None
    growth: Growth | None = None
    time_to_oom: TimeToOom | None = None
    anomaly: Anomaly | None = None
    baseline_alert: BaselineAlert | None = None
    route: Route | None = None
    backends: Annotated[list[BackendName] | None, Merge.REPLACE] = None
    runbook_url: str | None = Field(default=None, pattern=URL_PATTERN)
    metrics: Metrics = Metrics()
    labels: dict[AlertLabelName, str] = {}
    gcp: Gcp | None = None
    aws: Aws | None = None
    azure: Azure | None = None
    breaker: Breaker | None = Field(default=None, description="act on the orchestrator when an OOM is coming")


class Spec(Strict):
    """The whole ``memprov.yaml``."""

    version: Annotated[Literal[1], Merge.IMMUTABLE]
    name: Annotated[str, Merge.IMMUTABLE] = Field(
        default="memprov", pattern=NAME_PATTERN, description="spec name, part of ownership markers"
    )
    include: Annotated[list[str], Merge.IMMUTABLE] = Field(
        default=["jobs/*.yaml"],
        description="files of more jobs (globs relative to the spec), each holding jobs: {<id>: ...}",
    )
    defaults: Defaults = Defaults()
    notifications: dict[str, Notification] = {}
    jobs: Annotated[dict[str, Job], Merge.KEYS_EXISTING] = {}
