"""The breaker's audit log: one JSON line per decision, appended and fsynced, secrets redacted.

Every delivery the breaker looks at leaves a line — acted, refused (and why), duplicate, resolved,
dry run — with the alert's identity, the orchestrator's target, the planned or executed calls
with their statuses and durations, and the memory before and after. ``memprov breaker history``
reads it back as a table, Markdown or JSON.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provisioner.core.secrets import REDACTOR


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return REDACTOR(value)
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


class Audit:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append ``record`` (with a ``ts``) as one line, durably; returns what was written."""
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **_redact(record)}
        data = (json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return line


def read(path: Path, job: str | None = None) -> Iterator[dict[str, Any]]:
    """Records of the audit log, oldest first (only ``job``'s when given); unreadable lines are skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for text in fh:
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if isinstance(record, dict) and (job is None or record.get("job") == job):
                yield record
