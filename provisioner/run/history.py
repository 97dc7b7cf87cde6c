"""The run history: one JSON line per run in ``<dir>/runs.jsonl``, plus a heartbeat per live run.

Many wrappers may share one history (a node running several jobs, a shared volume): each line
is written with one ``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``, so
lines never interleave. While a run lives, ``<dir>/running/<run id>.json`` holds its record so
far (peak included), replaced atomically every few seconds: when the kernel kills the wrapper
together with the job (Kubernetes ``memory.oom.group``), that file survives, and readers report
the run as ``incomplete`` with its peak so far. The next wrapper moves such leftovers into
``runs.jsonl``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

SCHEMA = "memprov.run/v1"
RUNS = "runs.jsonl"
RUNNING = "running"
STALE_AFTER = 60.0  # a heartbeat from another host older than this belongs to a dead wrapper
OUTCOMES = ("ok", "failed", "oom_killed", "killed", "incomplete")


def new_run_id() -> str:
    """Sortable by start time, unique across hosts: ``<ms since epoch, hex>-<8 random hex>``."""
    return f"{int(time.time() * 1000):011x}-{os.urandom(4).hex()}"


def process_start(pid: int) -> str:
    """The kernel's start time of ``pid`` (clock ticks since boot): tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rfind(b")") + 2 :].split()[19].decode()
    except (OSError, IndexError):
        return ""


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()


def append(directory: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one line, safely against concurrent writers."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, _line(record))
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock


def heartbeat(directory: Path, record: dict[str, Any]) -> None:
    """Replace the live run's heartbeat file atomically (write, fsync, rename)."""
    running = directory / RUNNING
    running.mkdir(parents=True, exist_ok=True)
    target = running / f"{record['run_id']}.json"
    tmp = running / f".{record['run_id']}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(_line(record))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)


def finish(directory: Path, record: dict[str, Any]) -> None:
    """Append the final record and drop the heartbeat."""
    append(directory, record)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(directory / RUNNING / f"{record['run_id']}.json")


def _stale(record: dict[str, Any], now: float) -> bool:
    """The wrapper that wrote this heartbeat is gone (same host: its pid is; else: it is silent)."""
    wrapper = record.get("wrapper") or {}
    if record.get("host") == socket.gethostname() and isinstance(wrapper.get("pid"), int):
        return process_start(wrapper["pid"]) != wrapper.get("start")
    return now - float(record.get("heartbeat_at_unix") or 0) > STALE_AFTER


def _leftovers(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    out: list[tuple[Path, dict[str, Any]]] = []
    running = directory / RUNNING
    if not running.is_dir():
        return out
    now = time.time()
    for path in sorted(running.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced, or not ours
        if isinstance(record, dict) and _stale(record, now):
            out.append((path, {**record, "outcome": "incomplete"}))
    return out


def adopt_leftovers(directory: Path) -> int:
    """Move heartbeats of dead wrappers into ``runs.jsonl`` as ``incomplete``; how many."""
    found = _leftovers(directory)
    if not found:
        return 0
    fd = os.open(directory / RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    moved = 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for path, record in found:
            if not path.exists():  # another wrapper adopted it first
                continue
            os.write(fd, _line(record))
            os.unlink(path)
            moved += 1
        os.fsync(fd)
    finally:
        os.close(fd)
    return moved


def read(directory: Path) -> list[tuple[str, int | None, dict[str, Any]]]:
    """Every finished run and every dead wrapper's last heartbeat: ``(file, line, record)``.

    Raises ``ValueError`` with ``file:line`` for a line that is not a JSON object.
    """
    out: list[tuple[str, int | None, dict[str, Any]]] = []
    runs = directory / RUNS
    if runs.is_file():
        with open(runs, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as e:
                    raise ValueError(f"{runs}:{n}: not a JSON object ({e})") from None
                if not isinstance(record, dict):
                    raise ValueError(f"{runs}:{n}: not a JSON object")
                out.append((str(runs), n, record))
    out += [(str(path), None, record) for path, record in _leftovers(directory)]
    return out
