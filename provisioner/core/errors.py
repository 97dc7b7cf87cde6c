"""The one error hierarchy: the library raises these, the CLI turns them into messages and exit codes.

Every user-facing error says what is wrong, where (``file:line: key.path``) and how to fix it.
Exit codes: 0 ok, 1 operation failed, 2 invalid input or usage, 3 changes present
(``plan --detailed-exitcode``), 4 internal error (a bug in memprov), 130 interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_CHANGES = 3
EXIT_BUG = 4
EXIT_INTERRUPTED = 130


def dotted(path: Iterable[str | int]) -> str:
    """``('jobs', 'clv-daily', 'memory', 'limit')`` -> ``jobs.clv-daily.memory.limit``; indexes as ``[0]``."""
    out = ""
    for p in path:
        p = p if isinstance(p, int) or p.isprintable() else json.dumps(p)  # a key hiding a line break
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def describe(value: object) -> str:
    """A value as the user wrote it, for messages: ``"8GB"``, ``3``, ``true``, ``a mapping``, ``an empty value``."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple, set)):
        return "a list"
    return repr(value)


@dataclass(frozen=True)
class Problem:
    """One located problem in the user's input."""

    message: str
    file: str | None = None
    line: int | None = None
    path: str = ""

    def render(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"


class MemprovError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = EXIT_FAILED

    def render(self) -> str:
        return str(self)


@dataclass
class SpecError(MemprovError):
    """The spec or an overlay is invalid; carries every problem found, each with its location."""

    problems: list[Problem] = field(default_factory=list)
    exit_code = EXIT_INVALID

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class UsageError(MemprovError):
    """The command line asks for something that cannot be done (unknown environment, bad flag)."""

    exit_code = EXIT_INVALID


class OperationError(MemprovError):
    """An operation against a target failed (network, permissions, conflicts)."""

    exit_code = EXIT_FAILED


class RetryableError(OperationError):
    """A transient failure (throttling, 5xx, timeouts) worth retrying with backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'thresholds'?)`` when a close candidate exists, else ``""``."""
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
