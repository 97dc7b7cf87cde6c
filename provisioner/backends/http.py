"""A small HTTP client for the APIs memprov talks to (Prometheus, Mimir/Cortex ruler, Alertmanager).

It maps HTTP outcomes onto memprov's errors once, for every backend: 401/403 are permanent
failures that say which credential to check, 404 is :class:`NotFound`, 429 and 5xx (and
connection failures) are :class:`RetryableError` honouring ``Retry-After``, so that the apply
engine retries them with backoff. httpx is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provisioner.errors import OperationError, RetryableError
from provisioner.secrets import resolve
from provisioner.spec.types import SecretRef

if TYPE_CHECKING:
    import httpx


class NotFound(OperationError):
    """The API answered 404."""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None


class HttpApi:
    """One API endpoint: base URL, auth and extra headers, errors mapped for the engine."""

    def __init__(
        self,
        base_url: str,
        *,
        what: str,
        token: SecretRef | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        import httpx

        self.what = what
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {resolve(token)}"
        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=all_headers, timeout=timeout)

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as e:
            raise RetryableError(f"{self.what}: {method} {path} timed out") from e
        except httpx.TransportError as e:
            raise RetryableError(f"{self.what}: cannot reach {self.client.base_url} ({type(e).__name__})") from e
        code = response.status_code
        if code in ok:
            return response
        detail = response.text.strip().replace("\n", " ")[:200]
        where = f"{self.what}: {method} {path} -> HTTP {code}"
        if code in (401, 403):
            raise OperationError(
                f"{where}: {'not authenticated' if code == 401 else 'not allowed'}; check the "
                f"credentials configured for this target ({detail})"
            )
        if code == 404:
            raise NotFound(f"{where}: not found ({detail})")
        if code == 429 or code >= 500:
            raise RetryableError(f"{where} ({detail})", _retry_after(response))
        raise OperationError(f"{where}: {detail}")

    def close(self) -> None:
        self.client.close()
