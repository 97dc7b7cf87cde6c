"""Memory guards: act when the job reaches a share of its limit, before the kernel's OOM killer.

``--guard 95%:SIGTERM`` signals the job's process group once its memory reaches 95 % of the
limit; ``90%:SIGUSR1`` is a checkpoint signal (the job keeps running); ``90%:run:COMMAND`` runs a
hook (``/bin/sh -c``) with ``MEMPROV_JOB``, ``MEMPROV_RUN_ID``, ``MEMPROV_PID``,
``MEMPROV_MEMORY_BYTES`` and ``MEMPROV_LIMIT_BYTES`` in its environment. A size works in place of
the share (``7Gi:SIGTERM``). Each guard acts once per run.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from provisioner.core.units import parse_size

STOPPING = {signal.SIGTERM, signal.SIGKILL, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGABRT}
_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass
class Guard:
    """One threshold and what to do when the job's memory reaches it."""

    text: str
    share: float | None = None  # of the limit
    size: int | None = None  # absolute bytes
    signal: signal.Signals | None = None
    command: str | None = None
    fired_at: float | None = None  # seconds into the run

    @property
    def stops(self) -> bool:
        """A guard that ends the job (as opposed to a checkpoint signal or a hook)."""
        return self.signal in STOPPING

    def threshold(self, limit: int | None) -> int | None:
        if self.size is not None:
            return self.size
        return int(self.share * limit) if self.share is not None and limit else None


def parse(text: str) -> Guard:
    """``95%:SIGTERM``, ``90%:USR1``, ``7Gi:SIGKILL`` or ``90%:run:COMMAND``; ValueError says how to write it."""
    level, sep, action = text.partition(":")
    if not sep or not action.strip():
        raise ValueError(f"--guard {text!r}: write SHARE:ACTION, e.g. 95%:SIGTERM, 90%:SIGUSR1 or 90%:run:COMMAND")
    guard = Guard(text)
    m = _SHARE.match(level)
    if m:
        guard.share = float(m.group(1)) / 100
        if not 0 < guard.share <= 1:
            raise ValueError(f"--guard {text!r}: the share must be above 0% and at most 100%")
    elif level.strip().isdigit():
        raise ValueError(f"--guard {text!r}: write the level as a share (95%) or a size with a unit (7Gi)")
    else:
        try:
            guard.size = parse_size(level)
        except ValueError as e:
            raise ValueError(f"--guard {text!r}: {level!r} is neither a share (95%) nor a size (7Gi): {e}") from None
    if action.startswith("run:"):
        guard.command = action[4:].strip()
        if not guard.command:
            raise ValueError(f"--guard {text!r}: give the command after run:")
        return guard
    name = action.strip().upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        guard.signal = signal.Signals[name]
    except KeyError:
        raise ValueError(
            f"--guard {text!r}: {action!r} is not a signal name (SIGTERM, SIGKILL, SIGUSR1…) nor run:COMMAND"
        ) from None
    return guard
