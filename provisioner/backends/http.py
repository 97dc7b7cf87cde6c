"""A small HTTP client for the APIs memprov talks to (Prometheus, Mimir/Cortex ruler,
Alertmanager, Grafana).

It maps HTTP outcomes onto memprov's errors once, for every backend: 401/403 are permanent
failures that say which credential to check, 404 is :class:`NotFound` (or ``None`` when the
caller allows it), 429 and 5xx (and timeouts and connection failures) are transient
(:class:`~provisioner.plan.retry.Transient`, honouring ``Retry-After``), and every request is
retried on its own by :func:`provisioner.plan.retry.request` under the ``Http`` rules (``send`` is
one attempt, for a write the caller verifies itself). An API with its own semantics subclasses
:class:`HttpApi` and overrides :meth:`HttpApi.error`. httpx is imported lazily.
"""

from __future__ import annotations

import email.utils
import time
from typing import TYPE_CHECKING, Any

from provisioner.core.errors import MemprovError, OperationError
from provisioner.core.secrets import resolve
from provisioner.core.types import SecretRef
from provisioner.plan import retry

if TYPE_CHECKING:
    import httpx


class NotFound(OperationError):
    """The API answered 404."""


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), capped at a minute."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), 60.0)


class HttpApi:
    """One API endpoint: base URL, auth and extra headers, errors mapped for the engine."""

    def __init__(
        self,
        base_url: str,
        *,
        what: str,
        token: SecretRef | str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        transport: Any = None,
    ) -> None:
        import httpx

        self.what = what
        all_headers = {"User-Agent": "memprov", **(headers or {})}
        if token is not None:
            value = resolve(token) if isinstance(token, SecretRef) else token
            all_headers["Authorization"] = f"Bearer {value}"
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=all_headers, timeout=timeout, transport=transport
        )

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        """One request, retried on its own when it fails transiently (see :mod:`provisioner.plan.retry`)."""
        return retry.request(retry.HTTP, lambda: self.send(method, path, ok=ok, **kwargs))

    def send(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        """One attempt: the response if its status is in ``ok``, else the error it means."""
        import httpx

        where = f"{self.what}: {method} {self.client.base_url}{path}"
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as e:
            raise retry.Transient(f"{where} timed out") from e
        except httpx.ConnectError as e:  # nothing was sent
            raise retry.Transient(f"{where}: cannot connect ({type(e).__name__}); check the URL", unsure=False) from e
        except httpx.TransportError as e:  # reset or closed while sending or waiting: it may have been carried out
            raise retry.Transient(f"{where}: the connection failed ({type(e).__name__}: {e})") from e
        if response.status_code in ok:
            return response
        raise self.error(response.status_code, where, response)

    def error(self, code: int, where: str, response: httpx.Response) -> MemprovError:
        """The error for a failed response; subclasses add their API's own meanings."""
        detail = response.text.strip().replace("\n", " ")[:200]
        if code in (401, 403):
            return OperationError(
                f"{where} -> HTTP {code}: {'not authenticated' if code == 401 else 'not allowed'}; "
                f"check the credentials configured for this target ({detail})"
            )
        if code == 404:
            return NotFound(f"{where} -> HTTP 404: not found ({detail})")
        if code == 429 or code >= 500:
            return retry.Transient(
                f"{where} -> HTTP {code} ({detail})",
                retry_after(response.headers.get("Retry-After")),
                throttled=code == 429,
                unsure=code not in (429, 503),  # 503: not handled now (RFC 9110 §15.6.4); others may have been
            )
        return OperationError(f"{where} -> HTTP {code}: {detail}")

    def close(self) -> None:
        self.client.close()
