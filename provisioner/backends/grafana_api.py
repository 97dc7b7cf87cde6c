"""A small Grafana HTTP API client of our own (httpx), and the ``api`` target built on it.

Why not grafana-client: it replaces urllib3 with urllib3-future in the whole environment (see
API_CRIB). We need eight endpoints: search by tags (ANDed), dashboards by uid (get, save with a
commit message, delete) and folders (get, create). Errors become memprov's own: 401/403 and
other client errors are :class:`~provisioner.core.errors.OperationError` with a message that says
what to do, 429 and 5xx are :class:`~provisioner.core.errors.RetryableError` honouring
``Retry-After``, 412 is :class:`VersionConflict`, 404 is ``None``. The token comes from a
:class:`~provisioner.core.types.SecretRef`, is registered for redaction, and never appears in a
message.

The target reads live dashboards owned by memprov (tags ``managed-by:memprov``,
``memprov-env:<env>``, ``memprov-spec:<name>``) plus any dashboard whose uid the spec wants (a
look-alike it does not own is a conflict in the plan). Saves send the version read by the plan
with ``overwrite: false``, so that a dashboard edited in the UI since the plan is refused with
412 instead of silently overwritten; ``apply --force`` overwrites owned dashboards. Every request
is retried on its own (:mod:`provisioner.plan.retry`); a save whose answer was lost is read back,
and a 412 met by a dashboard that already is as desired (memprov's own earlier attempt) is success.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from provisioner.backends.http import HttpApi, NotFound
from provisioner.core import secrets
from provisioner.core.errors import MemprovError, OperationError
from provisioner.core.names import GRAFANA_UID_MAX, short_hash, slug
from provisioner.core.types import SecretRef
from provisioner.plan import retry
from provisioner.plan.contract import Target, TargetConfig
from provisioner.plan.model import Resource, canonical
from provisioner.render.grafana.panels import tags
from provisioner.spec.resolved import ResolvedSpec

if TYPE_CHECKING:
    import httpx

SEARCH_LIMIT = 5000
UID_LOOKUP_BATCH = 50


class GrafanaApiConfig(TargetConfig):
    """``targets.grafana: {type: api, url: ..., folder: ..., token: {env: GRAFANA_TOKEN}}``."""

    type: Literal["api"]
    url: str = Field(pattern=r"^https?://[^\s]+[^/\s]$", description="Grafana base URL, no trailing /")
    token: SecretRef = Field(description="service-account token: {env: GRAFANA_TOKEN} or {file: PATH}")
    folder: str | None = Field(default=None, min_length=1, description='folder title; default "memprov (<env>)"')
    folder_uid: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,40}$", description="default: derived")
    timeout: float = Field(default=10.0, gt=0, le=300, description="seconds per HTTP request")


class VersionConflict(OperationError):
    """412: the dashboard changed since it was read, or a dashboard with that uid/title exists."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class GrafanaClient(HttpApi):
    """The endpoints memprov uses, with Grafana's error semantics turned into memprov errors."""

    def __init__(self, url: str, token: str, timeout: float = 10.0, transport: Any = None) -> None:
        super().__init__(
            url,
            what="Grafana",
            token=token,
            headers={"Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self.url = url

    def error(self, code: int, where: str, response: httpx.Response) -> MemprovError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        detail = f" ({message})" if message else ""
        if code == 401:
            return OperationError(
                f"{where}: Grafana rejected the token (401 Unauthorized); check that the "
                "service-account token is valid and not expired"
            )
        if code == 403:
            return OperationError(
                f"{where}: the token is not allowed to do this (403 Forbidden){detail}; give the "
                "service account the Editor role (or dashboards:write and folders:create)"
            )
        if code == 412:
            status = str(body.get("status", "")) if isinstance(body, dict) else ""
            return VersionConflict(f"{where}: 412{detail}", status)
        return super().error(code, where, response)

    def _request(self, method: str, path: str, *, allow_404: bool = False, once: bool = False, **kw: Any) -> Any:
        """JSON of a 2xx answer; ``once``: a single attempt (the caller retries and verifies)."""
        try:
            send = self.send if once else self.request
            r = send(method, path, ok=tuple(range(200, 300)), **kw)
        except NotFound:
            if allow_404:
                return None
            raise
        return r.json() if r.content else {}

    # --- endpoints ------------------------------------------------------------------------------
    def search(self, tags: list[str] | None = None, uids: list[str] | None = None) -> list[dict[str, Any]]:
        """Dashboards (not folders) carrying every tag, or with one of the uids."""
        params: list[tuple[str, str | int]] = [("type", "dash-db"), ("limit", SEARCH_LIMIT)]
        params += [("tag", t) for t in tags or []] + [("dashboardUIDs", u) for u in uids or []]
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            hits = self._request("GET", "/api/search", params=[*params, ("page", page)])
            out += hits
            if len(hits) < SEARCH_LIMIT:
                return out
            page += 1

    def get_dashboard(self, uid: str) -> dict[str, Any] | None:
        """``{"dashboard": {...}, "meta": {...}}``, or None if there is no such dashboard."""
        found: dict[str, Any] | None = self._request("GET", f"/api/dashboards/uid/{uid}", allow_404=True)
        return found

    def save_dashboard(
        self, dashboard: dict[str, Any], *, folder_uid: str, message: str, overwrite: bool, once: bool = False
    ) -> dict[str, Any]:
        payload = {"dashboard": dashboard, "folderUid": folder_uid, "message": message, "overwrite": overwrite}
        saved: dict[str, Any] = self._request("POST", "/api/dashboards/db", once=once, json=payload)
        return saved

    def delete_dashboard(self, uid: str) -> bool:
        """True if deleted, False if it was already gone."""
        return self._request("DELETE", f"/api/dashboards/uid/{uid}", allow_404=True) is not None

    def get_folder(self, uid: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._request("GET", f"/api/folders/{uid}", allow_404=True)
        return found

    def create_folder(self, uid: str, title: str) -> dict[str, Any]:
        created: dict[str, Any] = self._request("POST", "/api/folders", json={"uid": uid, "title": title})
        return created


@dataclass(frozen=True)
class Live:
    """What the plan read about a live dashboard, for apply's optimistic concurrency."""

    version: int | None
    folder_uid: str


def folder_uid_for(title: str) -> str:
    full = slug(title)
    if len(full) <= GRAFANA_UID_MAX:
        return full
    return f"{full[: GRAFANA_UID_MAX - 9]}-{short_hash(full)}"


class GrafanaApiTarget(Target):
    """Dashboards in a live Grafana, through :class:`GrafanaClient`."""

    type: ClassVar[str] = "api"
    DETECTS_EDITS: ClassVar[bool] = True  # the dashboard version read by the plan is sent with every save

    def __init__(
        self,
        spec: ResolvedSpec,
        config: GrafanaApiConfig,
        transport: Any = None,
        normalise: Callable[[Any], Any] | None = None,
    ) -> None:
        self.spec, self.config, self._transport = spec, config, transport
        self.normalise = normalise or (lambda body: body)
        self.folder_title = config.folder or f"memprov ({spec.env})"
        self.folder_uid = config.folder_uid or folder_uid_for(self.folder_title)
        self._client: GrafanaClient | None = None
        self._lock = threading.Lock()
        self._folder_lock = threading.Lock()
        self._folder_ready = False

    def describe(self) -> str:
        return f"api {self.config.url} folder {self.folder_title!r}"

    @property
    def client(self) -> GrafanaClient:
        with self._lock:
            if self._client is None:
                token = secrets.resolve(self.config.token)
                assert token is not None  # required=True raises instead
                self._client = GrafanaClient(self.config.url, token, self.config.timeout, self._transport)
            return self._client

    @property
    def tags(self) -> list[str]:
        return tags(self.spec)

    def owns(self, dashboard: dict[str, Any]) -> bool:
        return set(self.tags) <= set(dashboard.get("tags") or [])

    def _resource(self, found: dict[str, Any]) -> Resource:
        dash, meta = found.get("dashboard") or {}, found.get("meta") or {}
        version = dash.get("version")
        return Resource(
            "dashboard",
            str(dash.get("uid")),
            dash,
            owned=self.owns(dash),
            title=str(dash.get("title", "")),
            handle=Live(version if isinstance(version, int) else None, str(meta.get("folderUid", ""))),
        )

    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        client, out = self.client, {}
        owned = sorted({str(h["uid"]) for h in client.search(tags=self.tags)})
        wanted = sorted({r.key for r in desired} - set(owned))
        for i in range(0, len(wanted), UID_LOOKUP_BATCH):  # look-alikes: a desired uid that exists unowned
            owned += sorted({str(h["uid"]) for h in client.search(uids=wanted[i : i + UID_LOOKUP_BATCH])})
        for uid in owned:
            found = client.get_dashboard(uid)
            if found is not None:  # deleted between search and get: not live
                out[uid] = self._resource(found)
        return [out[k] for k in sorted(out)]

    def _ensure_folder(self) -> None:
        """Create the folder if it is missing, once per apply (concurrent saves wait for it)."""
        with self._folder_lock:
            if self._folder_ready:
                return
            client = self.client
            if client.get_folder(self.folder_uid) is None:
                try:
                    client.create_folder(self.folder_uid, self.folder_title)
                except OperationError:
                    if client.get_folder(self.folder_uid) is None:  # not created concurrently by someone else
                        raise
            self._folder_ready = True

    def _message(self, verb: str, resource: Resource) -> str:
        where = f"environment {self.spec.env}, spec {self.spec.name}"
        return f"memprov apply: {verb} {resource.title or resource.key} ({where})"

    def already(self, desired: Resource) -> bool:
        """Whether Grafana already holds ``desired`` (memprov's, in its folder): a save that landed."""
        found = self.client.get_dashboard(desired.key)
        if found is None:
            return False
        dash = found.get("dashboard") or {}
        same = canonical(self.normalise(dash)) == canonical(self.normalise(desired.body))
        return same and self.owns(dash) and (found.get("meta") or {}).get("folderUid") == self.folder_uid

    def _save(self, desired: Resource, verb: str, version: int | None, overwrite: bool) -> None:
        self._ensure_folder()
        body = dict(desired.body)
        if version is not None:
            body["version"] = version
        message = self._message(verb, desired)
        retry.write(
            retry.HTTP,
            lambda: self.client.save_dashboard(
                body, folder_uid=self.folder_uid, message=message, overwrite=overwrite, once=True
            ),
            lambda: self.already(desired),
        )

    def create(self, desired: Resource, *, force: bool = False) -> None:
        try:
            self._save(desired, "create", None, overwrite=False)
        except VersionConflict as e:
            if self.already(desired):  # a save of ours whose answer was lost, then sent again
                return
            raise OperationError(
                f"dashboard {desired.key} appeared in Grafana after the plan ({e.status or 'exists'}); nothing was "
                "written. Run memprov plan again to review it."
            ) from None

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        if not live.owned and not force:
            raise OperationError(f"dashboard {desired.key} is not managed by memprov; pass --force to take it over")
        planned = live.handle.version if isinstance(live.handle, Live) else None
        overwrite = force and live.owned  # never blindly overwrite what memprov does not own
        try:
            self._save(desired, "update" if live.owned else "take over", planned, overwrite=overwrite)
        except VersionConflict as e:
            if self.already(desired):  # our own save landed before the conflict: it is as desired
                return
            raise OperationError(
                f"dashboard {desired.key} was changed in Grafana since the plan (planned against version "
                f"{planned}; {e.status or 'conflict'}); nothing was written. Review it with memprov plan, or "
                "apply --force to overwrite the edit."
            ) from None

    def delete(self, live: Resource, *, force: bool = False) -> None:
        planned = live.handle.version if isinstance(live.handle, Live) else None
        current = self.client.get_dashboard(live.key)
        if current is None:
            return
        version = (current.get("dashboard") or {}).get("version")
        if not force and planned is not None and version != planned:
            raise OperationError(
                f"dashboard {live.key} was changed in Grafana since the plan (version {planned} → {version}); "
                "it was not deleted. Review it with memprov plan, or apply --force to delete it anyway."
            )
        if not self.owns(current.get("dashboard") or {}):
            raise OperationError(f"dashboard {live.key} is no longer managed by memprov; it was not deleted")
        self.client.delete_dashboard(live.key)  # idempotent: a 404 on a retry means it is gone
