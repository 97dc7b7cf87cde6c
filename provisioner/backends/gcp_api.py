"""The live ``gcp`` target: alert policies in a Google Cloud project, through the real
``google-cloud-monitoring`` client over gRPC (imported lazily: it costs close to a second).

Reads list every policy of the project (the list filter's label syntax is not one to rely on, so
ownership is decided client-side from the user labels) and keep those whose display name starts
with ``memprov-<env>-``: memprov's own, and a look-alike only when the spec wants its display
name, so that the plan shows a conflict. Display names are not unique in Cloud Monitoring: a
second owned policy with the same display name (a create retried after it had in fact succeeded)
is listed under ``<display name>#<id>`` and so pruned. Update and delete re-read the policy by its
server-assigned name and refuse when it is no longer memprov's or was changed since the plan
(its ``mutationRecord``), unless ``apply --force``; an update keeps other people's user labels.

Errors: ``UNAVAILABLE``, ``RESOURCE_EXHAUSTED``, ``DEADLINE_EXCEEDED`` and ``INTERNAL`` are
:class:`~provisioner.core.errors.RetryableError` for the apply engine's backoff (the client's own
retries are off, so that one policy governs); anything else is an
:class:`~provisioner.core.errors.OperationError` saying what to check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from provisioner.backends.cloud import GuardedTarget
from provisioner.core import secrets
from provisioner.core.errors import OperationError, RetryableError
from provisioner.core.types import Duration, SecretRef
from provisioner.plan.contract import Backend, Target, TargetConfig
from provisioner.plan.model import Resource, canonical
from provisioner.spec.clouds import GCP_CHANNEL, GCP_PROJECT

ChannelName = Annotated[str, Field(pattern=GCP_CHANNEL)]


T = TypeVar("T")
DEFAULT_ENDPOINT = "monitoring.googleapis.com:443"
SCOPES = ["https://www.googleapis.com/auth/monitoring"]
PAGE_SIZE = 1000
UPDATE_MASK = (
    "display_name",
    "documentation",
    "user_labels",
    "conditions",
    "combiner",
    "enabled",
    "notification_channels",
    "alert_strategy",
    "severity",
)


class Channels(BaseModel):
    """Notification channels per severity; policies of a severity without one notify nobody (the plan says so)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    info: list[ChannelName] = []
    warning: list[ChannelName] = []
    critical: list[ChannelName] = []


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: Channels = Channels()
    auto_close: Duration = Field(
        default=1800.0, ge=1800, le=604800, description="close an incident after this long without data (30m to 7d)"
    )
    notification_rate_limit: Duration | None = Field(
        default=None,
        description="at most one notification per period (Cloud Monitoring applies it to log-based policies only)",
    )


class GcpConfig(TargetConfig, Policy):
    """``targets.gcp: {type: gcp, project, channels}``; credentials: Application Default Credentials."""

    type: Literal["gcp"]
    project: str = Field(pattern=GCP_PROJECT, description="the project that holds the alert policies")
    endpoint: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.-]+:\d{1,5}$",
        description="host:port; default monitoring.googleapis.com:443",
    )
    insecure: bool = Field(default=False, description="plaintext gRPC to endpoint (a local test server only)")
    access_token: SecretRef | None = Field(
        default=None, description="an OAuth access token ({env: NAME}) instead of Application Default Credentials"
    )
    timeout: float = Field(default=30.0, gt=0, le=300, description="seconds per request")


@dataclass(frozen=True)
class Live:
    """What the plan read about a live policy: its server-assigned name and last mutation."""

    name: str
    mutated: str


def error(where: str, exc: Exception, project: str) -> OperationError:
    """A google-api-core exception as memprov's error: retryable or not, with what to do."""
    from google.api_core import exceptions as g

    message = getattr(exc, "message", None) or str(exc)
    text = f"{where}: {type(exc).__name__} ({message})"
    if isinstance(exc, g.ResourceExhausted):
        return RetryableError(f"{text}; if it persists, check the Cloud Monitoring quotas of project {project}")
    if isinstance(exc, g.ServiceUnavailable | g.DeadlineExceeded | g.InternalServerError | g.RetryError):
        return RetryableError(text)
    if isinstance(exc, g.Unauthenticated):
        return OperationError(
            f"{text}; Google Cloud rejected the credentials: run `gcloud auth application-default login`, "
            "set GOOGLE_APPLICATION_CREDENTIALS, or check targets.gcp.access_token"
        )
    if isinstance(exc, g.PermissionDenied):
        return OperationError(
            f"{text}; grant roles/monitoring.alertPolicyEditor on project {project} to the account memprov "
            "runs as (monitoring.alertPolicies.list, create, update, delete)"
        )
    if isinstance(exc, g.InvalidArgument):
        return OperationError(f"{text}; Cloud Monitoring rejected the request")
    return OperationError(text)


def to_body(policy: Any) -> dict[str, Any]:
    """A proto-plus ``AlertPolicy`` as REST JSON: enum names, durations as ``"300s"``, defaults left out."""
    from google.cloud.monitoring_v3 import AlertPolicy
    from google.protobuf.json_format import MessageToDict

    body: dict[str, Any] = MessageToDict(AlertPolicy.pb(policy))
    return body


def to_policy(body: dict[str, Any], name: str = "") -> Any:
    """REST JSON as a proto-plus ``AlertPolicy`` (unknown fields are a bug in memprov: they raise)."""
    from google.cloud.monitoring_v3 import AlertPolicy
    from google.protobuf.json_format import ParseDict

    pb = ParseDict(body, AlertPolicy.pb()())
    if name:
        pb.name = name
    return AlertPolicy.wrap(pb)


def _auth_interceptor(credentials: Any) -> Any:
    """Adds ``authorization: Bearer <token>`` to every call on a plaintext channel (a local test server)."""
    import grpc

    class Details(grpc.ClientCallDetails):  # type: ignore[misc]
        def __init__(self, base: Any, metadata: list[tuple[str, str]]) -> None:
            self.method, self.timeout, self.metadata = base.method, base.timeout, metadata
            self.credentials = base.credentials
            self.wait_for_ready = getattr(base, "wait_for_ready", None)
            self.compression = getattr(base, "compression", None)

    class Auth(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            if not credentials.valid:
                from google.auth.transport.requests import Request

                credentials.refresh(Request())
            metadata = [*(details.metadata or ()), ("authorization", f"Bearer {credentials.token}")]
            return continuation(Details(details, metadata), request)

    return Auth()


class GcpTarget(GuardedTarget, Target):
    """Alert policies in one Google Cloud project."""

    NOUN: ClassVar[str] = "policy"
    SERVICE: ClassVar[str] = "Cloud Monitoring"
    MARKER: ClassVar[str] = "user labels"

    type: ClassVar[str] = "gcp"

    def __init__(self, owner: Backend, config: GcpConfig) -> None:
        self.owner, self.spec, self.config = owner, owner.spec, config
        self.parent = f"projects/{config.project}"
        self.prefix = f"memprov-{owner.spec.env}-"
        self._client: Any = None
        self._lock = threading.Lock()
        self._metric_client: Any = None
        self._uncertain: set[str] = set()  # creates that failed retryably: the next attempt checks first

    def describe(self) -> str:
        where = f" via {self.config.endpoint}" if self.config.endpoint else ""
        return f"gcp project {self.config.project}{where} (policies {self.prefix}*)"

    def _credentials(self) -> Any:
        if self.config.access_token is not None:
            import google.oauth2.credentials

            token = secrets.resolve(self.config.access_token) or ""
            return google.oauth2.credentials.Credentials(token=token)  # type: ignore[no-untyped-call]
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            credentials, _ = google.auth.default(scopes=SCOPES)
        except DefaultCredentialsError as e:
            raise OperationError(
                "Google Cloud: no Application Default Credentials found; run `gcloud auth application-default "
                "login`, set GOOGLE_APPLICATION_CREDENTIALS, or run where a service account is attached "
                f"({str(e).splitlines()[0]})"
            ) from e
        return credentials

    def _transport(self, transport_class: Any) -> Any:
        """A gRPC transport of ``transport_class`` to the configured endpoint, with credentials (a local
        plaintext server: an insecure channel that still sends ``authorization: Bearer …``)."""
        import grpc

        credentials = self._credentials()
        endpoint = self.config.endpoint or DEFAULT_ENDPOINT
        if self.config.insecure:
            channel = grpc.intercept_channel(grpc.insecure_channel(endpoint), _auth_interceptor(credentials))
            return transport_class(channel=channel)
        return transport_class(host=endpoint, credentials=credentials)

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud.monitoring_v3 import AlertPolicyServiceClient
                from google.cloud.monitoring_v3.services.alert_policy_service.transports import (
                    AlertPolicyServiceGrpcTransport,
                )

                self._client = AlertPolicyServiceClient(transport=self._transport(AlertPolicyServiceGrpcTransport))
            return self._client

    @property
    def metric_client(self) -> Any:
        """Cloud Monitoring's MetricService (time series, for ``memprov baseline --gcp``), same channel setup."""
        with self._lock:
            if self._metric_client is None:
                from google.cloud.monitoring_v3 import MetricServiceClient
                from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

                self._metric_client = MetricServiceClient(transport=self._transport(MetricServiceGrpcTransport))
            return self._metric_client

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """``fn(client)`` with Google API errors as memprov's."""
        from google.api_core.exceptions import GoogleAPIError

        client = self.client
        try:
            return fn(client)
        except GoogleAPIError as e:
            raise error(f"Cloud Monitoring {self.parent}: {what}", e, self.config.project) from e

    # --- reading -------------------------------------------------------------------------------
    def list_policies(self) -> list[dict[str, Any]]:
        request = {"name": self.parent, "page_size": PAGE_SIZE}
        timeout = self.config.timeout
        return self.call(
            "ListAlertPolicies",
            lambda c: [to_body(p) for p in c.list_alert_policies(request=request, retry=None, timeout=timeout)],
        )

    def _resource(self, body: dict[str, Any], key: str | None = None) -> Resource:
        labels = body.get("userLabels") or {}
        mutated = str((body.get("mutationRecord") or {}).get("mutateTime", ""))
        return Resource(
            "policy",
            key or str(body.get("displayName", "")),
            body,
            owned=self.owner.owns(body),
            job=labels.get("memprov-job"),
            title=str(labels.get("memprov-job") or ""),
            handle=Live(str(body.get("name", "")), mutated),
        )

    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        wanted = {r.key: canonical(self.owner.normalise(r.body)) for r in desired}
        groups: dict[str, list[Resource]] = {}
        for body in self.list_policies():
            if str(body.get("displayName", "")).startswith(self.prefix):
                r = self._resource(body)
                if r.owned or r.key in wanted:
                    groups.setdefault(r.key, []).append(r)
        found: list[Resource] = []
        for key, group in groups.items():
            # memprov's own before a look-alike; then the one already as desired; then the oldest
            group.sort(
                key=lambda r: (
                    not r.owned,
                    canonical(self.owner.normalise(r.body)) != wanted.get(key),
                    str((r.body.get("creationRecord") or {}).get("mutateTime", "")),
                    r.handle.name,
                )
            )
            found.append(group[0])
            for extra in group[1:]:  # an owned duplicate display name is listed on its own, to be pruned
                if extra.owned:
                    found.append(self._resource(extra.body, f"{key}#{extra.handle.name.rsplit('/', 1)[-1]}"))
        return sorted(found, key=lambda r: r.key)

    def current(self, live: Resource) -> Resource | None:
        """The policy as it is now, by its server-assigned name, or None when it is gone."""
        from google.api_core.exceptions import NotFound

        name = live.handle.name if isinstance(live.handle, Live) else ""
        try:
            body = self.call(
                f"GetAlertPolicy {live.key}",
                lambda c: to_body(c.get_alert_policy(name=name, retry=None, timeout=self.config.timeout)),
            )
        except OperationError as e:
            if isinstance(e.__cause__, NotFound):
                return None
            raise
        return self._resource(body, live.key)

    # --- writing -------------------------------------------------------------------------------
    def create(self, desired: Resource, *, force: bool = False) -> None:
        if desired.key in self._uncertain:  # the last attempt may have succeeded before it failed
            same = [p for p in self.list_policies() if p.get("displayName") == desired.key]
            if any(self.owner.owns(p) for p in same):
                self._uncertain.discard(desired.key)
                return
            if same:
                raise OperationError(
                    f"policy {desired.key} appeared in Cloud Monitoring after the plan, not managed by memprov; "
                    "nothing was written. Run memprov plan again to review it."
                )
        policy = to_policy(desired.body)
        try:
            self.call(
                f"CreateAlertPolicy {desired.key}",
                lambda c: c.create_alert_policy(
                    name=self.parent, alert_policy=policy, retry=None, timeout=self.config.timeout
                ),
            )
        except RetryableError:
            self._uncertain.add(desired.key)
            raise
        self._uncertain.discard(desired.key)

    def version(self, resource: Resource) -> str | None:
        return resource.handle.mutated if isinstance(resource.handle, Live) else None

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        self.check_takeover(live, force)
        now = self.current(live)
        self.check_unchanged(now, live, "updated", force)
        assert now is not None and isinstance(now.handle, Live)
        others = {k: v for k, v in (now.body.get("userLabels") or {}).items() if k != "managed-by"}
        others = {k: v for k, v in others.items() if not k.startswith("memprov-")}
        body = {**desired.body, "userLabels": {**others, **desired.body.get("userLabels", {})}}
        policy = to_policy(body, now.handle.name)
        from google.protobuf import field_mask_pb2

        mask = field_mask_pb2.FieldMask(paths=list(UPDATE_MASK))
        self.call(
            f"UpdateAlertPolicy {desired.key}",
            lambda c: c.update_alert_policy(
                alert_policy=policy, update_mask=mask, retry=None, timeout=self.config.timeout
            ),
        )

    def delete(self, live: Resource, *, force: bool = False) -> None:
        now = self.current(live)
        if not self.check_deletable(now, live, force):
            return
        assert now is not None
        name = now.handle.name if isinstance(now.handle, Live) else ""
        self.call(
            f"DeleteAlertPolicy {live.key}",
            lambda c: c.delete_alert_policy(name=name, retry=None, timeout=self.config.timeout),
        )
