"""The live ``azure`` target: metric alert rules in one resource group, through azure-mgmt-monitor
(imported lazily, as are azure-core and azure-identity).

Reads list the resource group's metric alerts, page by page (``metricAlerts`` api-version
2018-03-01 returns them in one page), each page one request; a rule is memprov's when its tags
say so for this environment and spec (``managed-by``, ``memprov-env``, ``memprov-spec``), and a
look-alike without them is returned only when the spec wants its name, so that the plan shows a
conflict. Create refuses to
overwrite a rule that appeared since the plan (``PUT`` is an upsert); update and delete re-read
the rule and refuse when it is no longer memprov's or was changed since the plan
(``lastUpdatedTime``), unless ``apply --force`` or it already is as desired (memprov's own
earlier attempt). ARM's ``PUT`` replaces the tags, so an update writes memprov's tags anew and
keeps everyone else's.

Credentials: azure-identity's ``DefaultAzureCredential``, or a bearer token from
``targets.azure.token``. Errors and retries: 408, 429 and 5xx (the codes azure-core retries) and
connection failures are transient, and every request is retried on its own by the
:class:`~provisioner.plan.retry.Arm` rules, honouring ARM's ``Retry-After`` (azure-core's own
retries are off, so that one policy governs); a write that still fails is read back before it is
reported. 401 and 403 say what to check; anything else is an
:class:`~provisioner.core.errors.OperationError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from provisioner.backends.cloud import GuardedTarget
from provisioner.backends.http import retry_after
from provisioner.core.errors import OperationError
from provisioner.core.secrets import resolve
from provisioner.core.types import SecretRef
from provisioner.plan import retry
from provisioner.plan.contract import Backend, Target, TargetConfig
from provisioner.plan.model import Resource
from provisioner.spec.environment import (
    AZURE_ACTION_GROUP_PATTERN,
    AZURE_RESOURCE_GROUP_PATTERN,
    AZURE_UUID_PATTERN,
    HTTPS_URL_PATTERN,
)

T = TypeVar("T")
DEFAULT_ENDPOINT = "https://management.azure.com"
ROLE = "Monitoring Contributor (Microsoft.Insights/metricAlerts/read, write and delete)"


class ActionGroups(BaseModel):
    """Action group resource id per severity; rules of a severity without one notify nobody (the plan says so)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    info: str | None = Field(default=None, pattern=AZURE_ACTION_GROUP_PATTERN)
    warning: str | None = Field(default=None, pattern=AZURE_ACTION_GROUP_PATTERN)
    critical: str | None = Field(default=None, pattern=AZURE_ACTION_GROUP_PATTERN)


class AzureConfig(TargetConfig):
    """``targets.azure: {type: azure, subscription_id, resource_group, action_groups}``; credentials:
    azure-identity's ``DefaultAzureCredential`` (environment, workload identity, managed identity,
    ``az login``), or ``token``: a bearer token reference (e.g. from ``az account get-access-token``)."""

    type: Literal["azure"]
    subscription_id: str = Field(pattern=AZURE_UUID_PATTERN, description="the subscription of the resource group")
    resource_group: str = Field(pattern=AZURE_RESOURCE_GROUP_PATTERN, description="where the alert rules are created")
    action_groups: ActionGroups = ActionGroups()
    endpoint: str = Field(default="https://management.azure.com", pattern=HTTPS_URL_PATTERN, description="ARM endpoint")
    ca_bundle: str | None = Field(default=None, min_length=1, description="CA bundle (PEM) to verify the endpoint")
    token: SecretRef | None = Field(default=None, description="a bearer token instead of DefaultAzureCredential")
    timeout: float = Field(default=30.0, gt=0, le=300, description="seconds per request")


@dataclass(frozen=True)
class Live:
    """What the plan read about a live rule, to detect changes made since."""

    id: str
    updated: str  # properties.lastUpdatedTime


class StaticToken:
    """A ``TokenCredential`` for a bearer token obtained elsewhere (``az account get-access-token``)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


def error(where: str, exc: Exception) -> OperationError:
    """An azure-core exception as memprov's error: retryable or not, with what to do."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.identity import CredentialUnavailableError

    if isinstance(exc, CredentialUnavailableError):
        return OperationError(
            f"{where}: no Azure credentials found; run `az login`, set AZURE_TENANT_ID/AZURE_CLIENT_ID/"
            "AZURE_CLIENT_SECRET, run where a managed or workload identity is available, or set targets.azure.token"
        )
    if isinstance(exc, HttpResponseError):
        status = int(exc.status_code or 0)
        code = str(getattr(exc.error, "code", "") or "")
        message = str(getattr(exc.error, "message", "") or exc.reason or "").replace("\n", " ")[:300]
        text = f"{where} -> HTTP {status}" + (f" {code}" if code else "") + (f" ({message})" if message else "")
        if status == 401 or (isinstance(exc, ClientAuthenticationError) and not status):
            detail = text if status else f"{where}: cannot get an Azure token ({str(exc)[:300]})"
            return OperationError(
                f"{detail}; Azure rejected the credentials: check `az login`, the AZURE_* variables or "
                "targets.azure.token (and that it is a token for https://management.azure.com)"
            )
        if status == 403:
            return OperationError(f"{text}; grant {ROLE} on the resource group to the identity memprov runs as")
        if status in (408, 429) or (status >= 500 and status not in (501, 505)):
            return retry.Transient(text, _retry_after(exc), throttled=status == 429, unsure=status not in (429, 503))
        if status == 409:
            return OperationError(f"{text}; another change to this rule is in progress: run memprov plan again")
        return OperationError(text)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):  # not sent / sent but no answer
        text = f"{where}: cannot reach Azure Resource Manager ({type(exc).__name__}: {exc})"
        return retry.Transient(text, unsure=isinstance(exc, ServiceResponseError))
    return OperationError(f"{where}: {type(exc).__name__}: {exc}")


def _retry_after(exc: Exception) -> float | None:
    """ARM's wait: ``Retry-After`` (seconds or a date), else ``retry-after-ms``/``x-ms-retry-after-ms``."""
    response = getattr(exc, "response", None)
    headers = {str(k).lower(): str(v) for k, v in (getattr(response, "headers", None) or {}).items()}
    if "retry-after" in headers:
        return retry_after(headers["retry-after"])
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if name in headers:
            ms = retry_after(headers[name])
            return None if ms is None else ms / 1000.0
    return None


class AzureTarget(GuardedTarget, Target):
    """Metric alert rules in one Azure resource group."""

    NOUN: ClassVar[str] = "metric alert"
    SERVICE: ClassVar[str] = "Azure"
    MARKER: ClassVar[str] = "tags"

    type: ClassVar[str] = "azure"

    def __init__(self, owner: Backend, config: AzureConfig) -> None:
        self.owner, self.spec, self.config = owner, owner.spec, config
        self.prefix = f"memprov-{owner.spec.env}-"
        self._client: Any = None
        self._lock = threading.Lock()
        self.rules = retry.Arm()

    def describe(self) -> str:
        c = self.config
        where = f" via {c.endpoint}" if c.endpoint != DEFAULT_ENDPOINT else ""
        return f"azure {c.resource_group}{where} (metric alerts {self.prefix}*)"

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from azure.mgmt.monitor import MonitorManagementClient

                c = self.config
                credential: Any
                if c.token is not None:
                    credential = StaticToken(resolve(c.token) or "")  # required: raises when unset
                else:
                    from azure.identity import DefaultAzureCredential

                    credential = DefaultAzureCredential()
                self._client = MonitorManagementClient(
                    credential,
                    c.subscription_id,
                    base_url=c.endpoint,
                    connection_verify=c.ca_bundle or True,
                    retry_total=0,  # no azure-core retries: the engine retries, honouring Retry-After
                    connection_timeout=c.timeout,
                    read_timeout=c.timeout,
                    user_agent="memprov",
                )
            return self._client

    def once(self, what: str, fn: Callable[[], T]) -> T:
        """One attempt of ``fn`` (one request), with azure-core errors as memprov's."""
        from azure.core.exceptions import AzureError

        try:
            return fn()
        except AzureError as e:
            raise error(f"Azure {self.config.resource_group}: {what}", e) from e

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` (one request), retried on its own by ARM's rules."""
        return retry.request(self.rules, lambda: self.once(what, fn))

    # --- reading -------------------------------------------------------------------------------
    def _resource(self, alert: Any) -> Resource:
        body = alert.serialize(keep_readonly=True)
        tags = body.get("tags") or {}
        return Resource(
            "metric-alert",
            str(alert.name),
            body,
            owned=self.owner.owns(body),
            job=tags.get("memprov-job"),
            title=str(tags.get("memprov-job") or ""),
            handle=Live(str(alert.id or ""), str(body.get("properties", {}).get("lastUpdatedTime", ""))),
        )

    def list_alerts(self) -> list[Any]:
        """The resource group's metric alerts, page by page, each page one request."""
        rg, out, token = self.config.resource_group, [], None
        while True:

            def page(after: str | None = token) -> tuple[list[Any], str | None]:
                pages = self.client.metric_alerts.list_by_resource_group(rg).by_page(continuation_token=after)
                found = list(next(pages, []))
                return found, pages.continuation_token

            found, token = self.call("list metric alerts", page)
            out += found
            if not token:
                return out

    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        alerts = self.list_alerts()
        wanted = {r.key for r in desired}
        out = [self._resource(a) for a in alerts]
        return sorted((r for r in out if r.owned or r.key in wanted), key=lambda r: r.key)

    def current(self, name: str) -> Resource | None:
        """The rule as it is now, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        rg = self.config.resource_group
        try:
            alert = self.call(f"get {name}", lambda: self._get(rg, name))
        except OperationError as e:
            if isinstance(e.__cause__, ResourceNotFoundError):
                return None
            raise
        return self._resource(alert)

    def _get(self, rg: str, name: str) -> Any:
        return self.client.metric_alerts.get(rg, name)

    # --- writing -------------------------------------------------------------------------------
    def _put(self, desired: Resource) -> None:
        from azure.mgmt.monitor.models import MetricAlertResource

        rule = MetricAlertResource.deserialize(desired.body)
        rg = self.config.resource_group
        retry.write(
            self.rules,
            lambda: self.once(
                f"put {desired.key}", lambda: self.client.metric_alerts.create_or_update(rg, desired.key, rule)
            ),
            lambda: self.same(self.current(desired.key), desired),
        )

    def create(self, desired: Resource, *, force: bool = False) -> None:
        now = self.current(desired.key)
        if now is not None and not now.owned:
            raise OperationError(
                f"metric alert {desired.key} appeared in {self.config.resource_group} after the plan, not managed "
                "by memprov; nothing was written. Run memprov plan again to review it."
            )
        if self.same(now, desired):  # ours already (a put of ours that landed): nothing to send
            return
        self._put(desired)

    def version(self, resource: Resource) -> str | None:
        return resource.handle.updated if isinstance(resource.handle, Live) else None

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        self.check_takeover(live, force)
        now = self.current(desired.key)
        if now is not None and now.owned and self.same(now, desired):
            return  # already as desired: memprov's own earlier attempt
        self.check_unchanged(now, live, "updated", force)
        assert now is not None
        # PUT replaces the tags: keep other people's (cost centres...) and write memprov's own anew
        theirs = {
            k: v for k, v in (now.body.get("tags") or {}).items() if k != "managed-by" and not k.startswith("memprov-")
        }
        self._put(Resource(desired.kind, desired.key, {**desired.body, "tags": {**theirs, **desired.body["tags"]}}))

    def delete(self, live: Resource, *, force: bool = False) -> None:
        if not self.check_deletable(self.current(live.key), live, force):
            return
        rg = self.config.resource_group
        retry.write(  # idempotent: ARM answers 204 when it is gone already
            self.rules,
            lambda: self.once(f"delete {live.key}", lambda: self.client.metric_alerts.delete(rg, live.key)),
            lambda: self.current(live.key) is None,
        )
