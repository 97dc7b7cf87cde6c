"""Retries with exponential backoff and full jitter, honouring a service's ``Retry-After``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from provisioner.core.errors import OperationError, RetryableError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying :class:`RetryableError` with exponential backoff and full jitter."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except RetryableError as e:
                if attempt == self.attempts:
                    raise OperationError(f"{e} (gave up after {attempt} attempts)") from e
                delay = (
                    e.retry_after
                    if e.retry_after is not None
                    else random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
