"""The live ``gcp`` target: alert policies in a Google Cloud project, through the real
``google-cloud-monitoring`` client over gRPC (imported lazily: it costs close to a second).

Reads list every policy of the project, page by page (each page one request; the list filter's
label syntax is not one to rely on, so ownership is decided client-side from the user labels), and
keep those whose display name starts with ``memprov-<env>-``: memprov's own, and a look-alike only
when the spec wants its display name, so that the plan shows a conflict. Display names are not
unique in Cloud Monitoring: a second owned policy with the same display name (someone's copy, or a
create sent twice) is listed under ``<display name>#<id>`` and so pruned. Update and delete re-read the policy by its
server-assigned name and refuse when it is no longer memprov's or was changed since the plan
(its ``mutationRecord``), unless ``apply --force`` or it already is as desired (memprov's own
earlier attempt); an update keeps other people's user labels.

Errors and retries: ``UNAVAILABLE``, ``RESOURCE_EXHAUSTED`` (with the server's ``RetryInfo``),
``DEADLINE_EXCEEDED`` and ``INTERNAL`` are transient, and every request is retried on its own by the
:class:`~provisioner.plan.retry.Grpc` rules (the client's own retries are off, so that one policy
governs). ``CreateAlertPolicy`` is not idempotent (the server names the policy): after a failure
that may have created it, memprov looks for it by display name before sending it again, so a retry
never makes a duplicate. A write that still fails is read back before it is reported. Anything
else is an :class:`~provisioner.core.errors.OperationError` saying what to check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from provisioner.backends.cloud import GuardedTarget
from provisioner.core import secrets
from provisioner.core.errors import OperationError
from provisioner.core.types import Duration, SecretRef
from provisioner.plan import retry
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


def _retry_info(exc: Exception) -> float | None:
    """The delay of a ``google.rpc.RetryInfo`` in the error's status details, in seconds."""
    from google.rpc import error_details_pb2

    for detail in getattr(exc, "details", None) or []:
        if isinstance(detail, error_details_pb2.RetryInfo):
            return float(detail.retry_delay.ToTimedelta().total_seconds())
    return None


def error(where: str, exc: Exception, project: str) -> OperationError:
    """A google-api-core exception as memprov's error: transient (retried, see
    :mod:`provisioner.plan.retry`) or not, with what to do."""
    from google.api_core import exceptions as g

    message = getattr(exc, "message", None) or str(exc)
    text = f"{where}: {type(exc).__name__} ({message})"
    if isinstance(exc, g.ResourceExhausted):
        return retry.Transient(
            f"{text}; if it persists, check the Cloud Monitoring quotas of project {project}",
            _retry_info(exc),
            throttled=True,
            unsure=False,
        )
    if isinstance(exc, g.ServiceUnavailable | g.DeadlineExceeded | g.InternalServerError | g.RetryError):
        return retry.Transient(text, _retry_info(exc))
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
        self.rules = retry.Grpc()

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

    def once(self, what: str, fn: Callable[[Any], T]) -> T:
        """One attempt of ``fn(client)`` (one request), with Google API errors as memprov's."""
        from google.api_core.exceptions import GoogleAPIError

        client = self.client
        try:
            return fn(client)
        except GoogleAPIError as e:
            raise error(f"Cloud Monitoring {self.parent}: {what}", e, self.config.project) from e

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """``fn(client)`` (one request), retried on its own by the gRPC rules."""
        return retry.request(self.rules, lambda: self.once(what, fn))

    # --- reading -------------------------------------------------------------------------------
    def list_policies(self, filter: str = "") -> list[dict[str, Any]]:
        """Every policy of the project (matching ``filter``), page by page, each page one request."""
        out: list[dict[str, Any]] = []
        token = ""
        while True:
            request = {"name": self.parent, "page_size": PAGE_SIZE, "page_token": token, "filter": filter}

            def one(c: Any, r: dict[str, Any] = request) -> Any:
                return c.list_alert_policies(request=r, retry=None, timeout=self.config.timeout)

            page = self.call("ListAlertPolicies", one)  # the pager holds the first page: reading it sends no more
            out += [to_body(p) for p in page.alert_policies]
            token = page.next_page_token
            if not token:
                return out

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
    def _created(self, desired: Resource) -> bool:
        """Whether a policy of memprov's with ``desired``'s display name exists (a create that landed)."""
        found = self.list_policies(filter=f'display_name = "{desired.key}"')
        same = [p for p in found if p.get("displayName") == desired.key]
        if same and not any(self.owner.owns(p) for p in same):
            raise OperationError(
                f"policy {desired.key} appeared in Cloud Monitoring after the plan, not managed by memprov; "
                "nothing was written. Run memprov plan again to review it."
            )
        return bool(same)

    def create(self, desired: Resource, *, force: bool = False) -> None:
        policy = to_policy(desired.body)
        retry.write(
            self.rules,
            lambda: self.once(
                f"CreateAlertPolicy {desired.key}",
                lambda c: c.create_alert_policy(
                    name=self.parent, alert_policy=policy, retry=None, timeout=self.config.timeout
                ),
            ),
            lambda: self._created(desired),
            resend=False,  # the server names each new policy: sending it again would make a second one
        )

    def version(self, resource: Resource) -> str | None:
        return resource.handle.mutated if isinstance(resource.handle, Live) else None

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        self.check_takeover(live, force)
        now = self.current(live)
        if now is not None and now.owned and self.same(now, desired):
            return  # already as desired: memprov's own earlier attempt
        self.check_unchanged(now, live, "updated", force)
        assert now is not None and isinstance(now.handle, Live)
        others = {k: v for k, v in (now.body.get("userLabels") or {}).items() if k != "managed-by"}
        others = {k: v for k, v in others.items() if not k.startswith("memprov-")}
        body = {**desired.body, "userLabels": {**others, **desired.body.get("userLabels", {})}}
        policy = to_policy(body, now.handle.name)
        from google.protobuf import field_mask_pb2

        mask = field_mask_pb2.FieldMask(paths=list(UPDATE_MASK))
        retry.write(
            self.rules,
            lambda: self.once(
                f"UpdateAlertPolicy {desired.key}",
                lambda c: c.update_alert_policy(
                    alert_policy=policy, update_mask=mask, retry=None, timeout=self.config.timeout
                ),
            ),
            lambda: self.same(self.current(live), desired),
        )

    def delete(self, live: Resource, *, force: bool = False) -> None:
        from google.api_core.exceptions import NotFound

        now = self.current(live)
        if not self.check_deletable(now, live, force):
            return
        assert now is not None
        name = now.handle.name if isinstance(now.handle, Live) else ""

        def once() -> None:
            try:
                self.once(
                    f"DeleteAlertPolicy {live.key}",
                    lambda c: c.delete_alert_policy(name=name, retry=None, timeout=self.config.timeout),
                )
            except OperationError as e:
                if not isinstance(e.__cause__, NotFound):  # gone: an earlier attempt of ours deleted it
                    raise

        retry.write(self.rules, once, lambda: self.current(live) is None)
