"""Hand a Python job to memray: rewrite its command to record a capture, and read back which source
lines held the most memory at the peak.

``memray run`` tracks allocations inside the job's own interpreter (no extra process), so exit
codes, signals, the peak sampling and the guards see the same process tree, memray's tracker
included. Captures are streamed, not aggregated: a job killed by SIGKILL (an OOM kill, a
``SIGKILL`` guard) still leaves a readable capture, where an aggregated one is only written at
exit. memray itself is optional and imported only by :func:`summarize`.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOOL = "memray"
INSTALL = "pip install 'memprov[profile]'"
TOP = 10
_PYTHON = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?$")
_OPT_WITH_VALUE = ("-X", "-W", "--check-hash-based-pycs")


@dataclass(frozen=True)
class Profile:
    """What ``--profile`` asked for: ``memray``, ``memray,native``, ``memray,aggregate``."""

    native: bool = False
    aggregate: bool = False


def parse(text: str) -> Profile:
    """``memray[,native][,aggregate]``; ValueError otherwise."""
    tool, *flags = [part.strip() for part in text.split(",")]
    if tool != TOOL:
        raise ValueError(f"--profile {text}: the only profiler is memray (memray, memray,native, memray,aggregate)")
    unknown = set(flags) - {"native", "aggregate"}
    if unknown:
        raise ValueError(f"--profile {text}: unknown option {sorted(unknown)[0]!r}; use native and/or aggregate")
    return Profile(native="native" in flags, aggregate="aggregate" in flags)


def installed() -> bool:
    """memray importable here (where the capture is read)."""
    import importlib.util

    return importlib.util.find_spec(TOOL) is not None


def _shebang(path: str) -> list[str] | None:
    """The interpreter of a script whose ``#!`` line names Python, as an argv prefix."""
    try:
        with open(path, "rb") as f:
            first = f.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
    return words if words and _PYTHON.match(os.path.basename(words[0])) else None


def split(command: list[str]) -> tuple[list[str], list[str]]:
    """``(interpreter and its options, what memray runs)`` of a Python command; ValueError if not one.

    Python commands: ``python[3[.11]] [options] script.py|-m module|-c code …``, a ``*.py`` script,
    or an executable script whose ``#!`` line names Python.
    """
    exe = command[0]
    if _PYTHON.match(os.path.basename(exe)):
        i = 1
        while i < len(command):
            arg = command[i]
            if arg in ("-m", "-c") or not arg.startswith("-"):
                break
            if arg == "-":
                raise ValueError("the program comes from stdin; give a script, -m MODULE or -c CODE")
            i += 2 if arg in _OPT_WITH_VALUE else 1
        if i >= len(command):
            raise ValueError("no program: give a script, -m MODULE or -c CODE")
        return command[:i], command[i:]
    where = exe if "/" in exe else shutil.which(exe)
    if where:
        interpreter = _shebang(where)
        if interpreter is None and exe.endswith(".py"):
            interpreter = [sys.executable]
        if interpreter is not None:
            return interpreter, [where, *command[1:]]
    raise ValueError(
        f"{exe}: not a Python command; --profile memray needs `python script.py …`, `python -m module …`"
        " or a Python script (memray tracks the Python interpreter's allocations)"
    )


def wrap(command: list[str], capture: Path, profile: Profile) -> list[str]:
    """The command that runs ``command`` under ``memray run``, writing ``capture``."""
    interpreter, program = split(command)
    flags = ["-q", "-f", "-o", str(capture)]
    flags += ["--native"] if profile.native else []
    flags += ["--aggregate"] if profile.aggregate else []
    return [*interpreter, "-m", TOOL, "run", *flags, *program]


def location(frame: tuple[str, str, int] | None) -> str:
    """``file.py:12 in func``; ``<unknown>`` for an allocation with no Python frame."""
    if frame is None:
        return "<unknown>"
    func, file, line = frame
    return f"{file}:{line} in {func}"


def top_lines(records: Iterable[Any], n: int = TOP) -> list[dict[str, Any]]:
    """The ``n`` source lines holding the most bytes, by innermost Python frame, largest first.

    ``records`` are memray allocation records (``size``, ``n_allocations``, ``stack_trace()``).
    """
    lines: dict[str, list[int]] = {}
    for rec in records:
        stack = rec.stack_trace(max_stacks=1)
        total = lines.setdefault(location(stack[0] if stack else None), [0, 0])
        total[0] += rec.size
        total[1] += rec.n_allocations
    ranked = sorted(lines.items(), key=lambda kv: (-kv[1][0], kv[0]))[:n]
    return [{"location": loc, "bytes": size, "allocations": count} for loc, (size, count) in ranked]


def summarize(capture: Path, n: int = TOP) -> dict[str, Any]:
    """``{peak_bytes, top}`` of a capture, at its high-water mark; OSError/ValueError when unreadable."""
    import memray

    reader = memray.FileReader(str(capture))
    records = reader.get_high_watermark_allocation_records(merge_threads=True)
    return {"peak_bytes": reader.metadata.peak_memory, "top": top_lines(records, n)}


ATTACH_HINT = "install gdb (apt-get install gdb) or run with ptrace allowed"
YAMA = Path("/proc/sys/kernel/yama/ptrace_scope")
_CAP_SYS_PTRACE = 19


def _may_ptrace_any() -> bool:
    """This process holds CAP_SYS_PTRACE (root, or granted), which Yama's scopes 1 and 2 ask for."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return os.geteuid() == 0
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> _CAP_SYS_PTRACE & 1)
    return os.geteuid() == 0


def attach_blocker(yama: Path = YAMA) -> str | None:
    """Why ``memray attach`` cannot work here (no gdb/lldb, ptrace forbidden), or None."""
    if not (shutil.which("gdb") or shutil.which("lldb")):
        return f"attaching needs gdb or lldb, and neither is on PATH: {ATTACH_HINT}"
    try:
        scope = int(yama.read_text().strip())
    except (OSError, ValueError):  # no Yama: classic ptrace rules (same user may attach)
        return None
    if scope >= 3:
        return (
            f"ptrace is disabled on this host ({yama} is {scope}, until reboot): {ATTACH_HINT}, "
            "or profile the next run with memprov run --profile memray"
        )
    if scope >= 1 and not _may_ptrace_any():
        return (
            f"ptrace is restricted ({yama} is {scope}) and this process lacks CAP_SYS_PTRACE: {ATTACH_HINT} "
            "(as root, with CAP_SYS_PTRACE, or after sysctl kernel.yama.ptrace_scope=0)"
        )
    return None
