"""Secret references: resolution from the environment or files, and redaction of their values.

memprov never writes a secret into a rendered file, a plan or a log. Every value it resolves is
registered with the :data:`REDACTOR`, and everything the CLI prints passes through it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.core.errors import OperationError

if TYPE_CHECKING:  # the CLI's console redacts through this module at start-up: no pydantic there
    from provisioner.core.types import SecretRef

MIN_SECRET_LEN = 4


class Redactor:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) >= MIN_SECRET_LEN:
            with self._lock:
                self._values.add(value)

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, "***")
        return text


REDACTOR = Redactor()


def resolve(ref: SecretRef, *, required: bool = True) -> str | None:
    """The secret's value, registered for redaction; None if absent and not required."""
    if ref.env:
        value = os.environ.get(ref.env)
        if value is None:
            if required:
                raise OperationError(
                    f"environment variable {ref.env} is not set; export it (the value is "
                    "a secret, so memprov never reads it from the spec)"
                )
            return None
    else:
        try:
            value = Path(str(ref.file)).read_text(encoding="utf-8").strip()
        except OSError as e:
            if required:
                raise OperationError(f"secret file {ref.file}: {e.strerror}") from e
            return None
    REDACTOR.add(value)
    return value


def register_env(refs: list[SecretRef]) -> None:
    """Register the values of every referenced environment variable that is set, for redaction."""
    for ref in refs:
        if ref.env and os.environ.get(ref.env):
            REDACTOR.add(os.environ[ref.env])
