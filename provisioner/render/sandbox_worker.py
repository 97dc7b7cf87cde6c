"""The template sandbox's worker process: renders jinja2 templates on plain data, within limits.

Run by :mod:`provisioner.render.sandbox` as ``python -m provisioner.render.sandbox_worker``,
with an empty environment (no secrets to read even through a sandbox escape), an address-space
limit, and an alarm per request. It reads one JSON request per line on stdin and answers one
JSON line on stdout: ``{"text": ...}`` or ``{"error": ..., "file": ..., "line": ...}``.
Templates run in jinja's ``ImmutableSandboxedEnvironment`` (no access to private attributes,
no mutation of data) with ``range`` bounded, ``lipsum`` removed, the output bounded while it is
produced, and template files that are symlinks out of their directory refused. Imports only
jinja2 and the standard library (plus the tiny :mod:`provisioner.core.promql` quoting function).
"""

from __future__ import annotations

import functools
import json
import os
import resource
import signal
import sys
import traceback
from collections.abc import Iterator
from typing import Any

from provisioner.core.promql import quote

MAX_RANGE = 10_000
MEMORY_LIMIT = 1024 * 1024 * 1024  # address space of the worker: a string bomb fails with MemoryError


class RenderTimeout(Exception):
    """The per-request alarm went off."""


class TooMuchOutput(Exception):
    """The template wrote more than the request allows; ``lineno`` is where it was writing."""

    def __init__(self, message: str, lineno: int | None) -> None:
        super().__init__(message)
        self.lineno = lineno


def _yaml_str(value: object) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def _safe_range(*args: int) -> range:
    from jinja2.exceptions import SecurityError

    r = range(*args)
    if len(r) > MAX_RANGE:
        raise SecurityError(f"range() of {len(r)} items; templates may loop over at most {MAX_RANGE}")
    return r


@functools.lru_cache(maxsize=8)
def _environment(dirs: tuple[str, ...]) -> Any:
    from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class ConfinedLoader(FileSystemLoader):
        """A template file must really live in its directory: a symlink pointing out of it is refused."""

        def get_source(self, environment: Any, template: str) -> Any:
            source, filename, uptodate = super().get_source(environment, template)
            real = os.path.realpath(filename)
            if not any(real.startswith(os.path.realpath(d) + os.sep) for d in self.searchpath):
                raise SecurityError(f"template {template} is a link to {real}, outside its directory: refused")
            return source, filename, uptodate

    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader([ConfinedLoader(d) for d in dirs]),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
    )
    env.filters["yaml"] = _yaml_str
    env.filters["promql"] = quote
    env.globals["range"] = _safe_range
    env.globals.pop("lipsum", None)
    return env


def _where(exc: BaseException, dirs: tuple[str, ...]) -> tuple[str | None, int | None]:
    """The template file and line an exception was raised at (jinja rewrites tracebacks to point there)."""
    lineno = getattr(exc, "lineno", None)
    filename = getattr(exc, "filename", None)
    if filename and lineno:
        return filename, lineno
    if isinstance(exc, TooMuchOutput):
        return None, lineno
    roots = tuple(os.path.realpath(d) + os.sep for d in dirs)
    found = (filename, lineno)
    for frame, line in traceback.walk_tb(exc.__traceback__):  # no source lines read: works out of memory too
        if os.path.realpath(frame.f_code.co_filename).startswith(roots):
            found = (frame.f_code.co_filename, line)
    return found


def _message(exc: BaseException) -> str:
    from jinja2 import TemplateNotFound, TemplatesNotFound

    if isinstance(exc, RenderTimeout | TooMuchOutput):
        return str(exc)
    if isinstance(exc, TemplateNotFound) and not isinstance(exc, TemplatesNotFound):
        return f"template {exc.name!r} not found"
    if isinstance(exc, MemoryError):
        return "the template needs more memory than the sandbox allows (a string or list too large?)"
    if isinstance(exc, RecursionError):
        return "the template recurses too deeply"
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text if type(exc).__module__.startswith("jinja2") else f"{type(exc).__name__}: {text}"


def _chunks(template: Any, context: dict[str, Any], limit: int) -> Iterator[str]:
    total = 0
    gen = template.generate(**context)
    for chunk in gen:
        total += len(chunk)
        if total > limit:
            inner = getattr(gen, "gi_yieldfrom", None)  # the compiled template, paused where it wrote
            frame = getattr(inner, "gi_frame", None)
            lineno = template.get_corresponding_lineno(frame.f_lineno) if frame else None
            gen.close()
            raise TooMuchOutput(f"the template writes more than {limit // 1024} KiB, the most a template may", lineno)
        yield chunk


def render(request: dict[str, Any]) -> dict[str, Any]:
    dirs = tuple(request["dirs"])
    name = request["name"]
    timeout = float(request["timeout"])
    template = None
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        template = _environment(dirs).get_template(name)
        text = "".join(_chunks(template, request["context"], int(request["max_output"])))
    except BaseException as exc:  # everything a template can cause is reported, never raised
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        file, line = _where(exc, dirs)
        file = file or getattr(template, "filename", None)
        return {"error": _message(exc), "file": file, "line": line}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {"text": text}


def _alarm(signum: int, frame: object) -> None:
    raise RenderTimeout("the template took too long (a loop too large?)")


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for line in sys.stdin:
        try:
            answer = render(json.loads(line))
        except MemoryError:
            answer = {"error": _message(MemoryError()), "file": None, "line": None}
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
