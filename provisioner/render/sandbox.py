"""The template sandbox: templates get plain data only, and run in a separate, limited process.

Templates (``templates/`` next to the spec) may come from an untrusted pull request and be
rendered by CI that holds secrets in its environment. So a template never sees a live object:
:func:`plain` turns the resolved spec into dicts, lists, strings and numbers (a ``Path`` becomes
its text). And it runs in a worker process (:mod:`provisioner.render.sandbox_worker`) started
with an empty environment and a 1 GiB address-space limit, inside jinja's immutable sandbox,
with ``range`` bounded, its output bounded (1 MiB) as it is produced and a timeout
(``MEMPROV_TEMPLATE_TIMEOUT`` seconds, default 10). The worker is started once per memprov
process and reused; a template that overruns the timeout gets it killed and restarted.
Every failure is a :class:`TemplateFailure` naming the template file and line.
"""

from __future__ import annotations

import atexit
import dataclasses
import enum
import functools
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel

from provisioner.core.types import Threshold

MAX_OUTPUT = 1024 * 1024
DEFAULT_TIMEOUT = 10.0
GRACE = 3.0  # the worker's own alarm reports the template line; after this longer wait, it is killed


class TemplateFailure(Exception):
    """A template could not be rendered: what went wrong, in which file and at which line."""

    def __init__(self, message: str, file: str | None, line: int | None) -> None:
        super().__init__(message)
        self.message, self.file, self.line = message, file, line


def plain(value: Any, text: Callable[[str], str] | None = None) -> Any:
    """``value`` as JSON-compatible data: dicts, lists, strings, numbers, booleans and None.

    Dataclasses and pydantic models become dicts of their fields (and, for dataclasses, their
    properties); paths and other objects become their text. ``text`` is applied to every string
    value (not to keys), e.g. to escape it for the templating language the output is read by.
    """
    if isinstance(value, str):
        return text(value) if text else value
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value, text)
    if isinstance(value, Threshold | PurePath):
        return plain(str(value), text)
    if isinstance(value, BaseModel):
        return {name: plain(getattr(value, name), text) for name in type(value).model_fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: plain(getattr(value, name), text) for name in _attributes(type(value))}
    if isinstance(value, Mapping):
        return {str(k): plain(v, text) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [plain(v, text) for v in sorted(value, key=str)]
    if isinstance(value, list | tuple):
        return [plain(v, text) for v in value]
    return plain(str(value), text)


@functools.cache
def _attributes(cls: type) -> tuple[str, ...]:
    """A dataclass's fields, then its properties."""
    props = [name for name, attr in vars(cls).items() if isinstance(attr, property)]
    return tuple(f.name for f in dataclasses.fields(cls)) + tuple(props)


def timeout() -> float:
    raw = os.environ.get("MEMPROV_TEMPLATE_TIMEOUT", "")
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


class _Worker:
    """One worker process, used by one thread at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        env = {
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LC_ALL": "C.UTF-8",
        }
        return subprocess.Popen(
            [sys.executable, "-P", "-m", "provisioner.render.sandbox_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd="/",
            close_fds=True,
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()

    def render(self, name: str, dirs: list[str], context: dict[str, Any], limit: float) -> dict[str, Any]:
        request = json.dumps(
            {"name": name, "dirs": dirs, "context": context, "timeout": limit, "max_output": MAX_OUTPUT},
            ensure_ascii=False,
        )
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = self._start()
            proc = self.proc
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(request.encode("utf-8") + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                self.stop()
                return {"error": "the template sandbox stopped unexpectedly", "file": None, "line": None}
            answer = _read_line(proc.stdout.fileno(), time.monotonic() + limit + GRACE)
            if answer is None:  # timed out without the worker noticing, or the worker died
                died = proc.poll() is not None
                self.stop()
                what = "crashed the template sandbox" if died else "took too long (a loop too large?)"
                return {"error": f"the template {what}", "file": None, "line": None}
            result: dict[str, Any] = json.loads(answer)
            return result


def _read_line(fd: int, deadline: float) -> bytes | None:
    """One line from ``fd``, or None at end of file or past ``deadline``."""
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        data += chunk
    return data


_WORKER = _Worker()
atexit.register(_WORKER.stop)


def render(name: str, dirs: list[str], context: dict[str, Any]) -> str:
    """Render template ``name`` (looked up in ``dirs``, in order) on plain ``context`` data.

    Raises :class:`TemplateFailure` for anything the template does wrong, ``TypeError`` when
    ``context`` is not plain data (a bug in memprov, not in the template).
    """
    json.dumps(context)  # plain data only: a live object here is memprov's bug
    answer = _WORKER.render(name, dirs, context, timeout())
    if "error" in answer:
        raise TemplateFailure(answer["error"], answer.get("file") or name, answer.get("line"))
    text: str = answer["text"]
    return text
