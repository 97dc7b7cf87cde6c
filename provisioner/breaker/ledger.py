"""The breaker's durable memory (SQLite, WAL): which alerts it has handled, and what each run got.

Idempotency has two keys. ``deliveries`` is keyed by the alert's identity (fingerprint + startsAt):
Alertmanager retries a webhook on 5xx and re-sends every ``repeat_interval``, and a restart of
``breaker serve`` must not forget, so a delivery is *claimed* (committed) before any orchestrator
call, its planned calls are stored, and each completed step is recorded — a half-done sequence is
resumed from the recorded step by the next delivery, never started again. ``runs`` is keyed by
(job, run identity) and counts the bumps of that run; the job's last action drives the cooldown.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    alert_key TEXT PRIMARY KEY, job TEXT NOT NULL, run_id TEXT, status TEXT NOT NULL,
    decision TEXT NOT NULL, calls TEXT NOT NULL, steps_done INTEGER NOT NULL DEFAULT 0,
    claimed_at REAL NOT NULL, finished_at REAL
);
CREATE TABLE IF NOT EXISTS runs (
    job TEXT NOT NULL, run_id TEXT NOT NULL, bumps_done INTEGER NOT NULL DEFAULT 0,
    memory_before INTEGER, memory_after INTEGER, last_action_at REAL,
    PRIMARY KEY (job, run_id)
);
"""
FINAL = ("done", "refused", "ignored", "dry_run")


@dataclass(frozen=True)
class Delivery:
    alert_key: str
    job: str
    run_id: str | None
    status: str  # claimed | done | failed | refused | ignored | dry_run
    decision: dict[str, Any]
    calls: list[dict[str, Any]]
    steps_done: int

    @property
    def final(self) -> bool:
        return self.status in FINAL


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a claimed delivery survives a power cut
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def get(self, alert_key: str) -> Delivery | None:
        with self._lock:
            row = self._db.execute(
                "SELECT alert_key, job, run_id, status, decision, calls, steps_done FROM deliveries WHERE alert_key=?",
                (alert_key,),
            ).fetchone()
        if row is None:
            return None
        return Delivery(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]), row[6])

    def claim(
        self, alert_key: str, job: str, run_id: str | None, status: str, decision: dict[str, Any], calls: list[Any]
    ) -> bool:
        """Record a delivery before acting on it; False if another delivery of it got there first."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO deliveries (alert_key, job, run_id, status, decision, calls, claimed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (alert_key, job, run_id, status, json.dumps(decision), json.dumps(calls), time.time()),
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def step_done(self, alert_key: str, steps_done: int) -> None:
        with self._lock:
            self._db.execute("UPDATE deliveries SET steps_done=? WHERE alert_key=?", (steps_done, alert_key))

    def finish(self, alert_key: str, status: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET status=?, finished_at=? WHERE alert_key=?", (status, time.time(), alert_key)
            )

    def past(self, job: str, run_id: str | None) -> tuple[int, float | None]:
        """(bumps of this run, the job's last action time)."""
        with self._lock:
            bumps = self._db.execute(
                "SELECT bumps_done FROM runs WHERE job=? AND run_id=?", (job, run_id or "")
            ).fetchone()
            last = self._db.execute("SELECT max(last_action_at) FROM runs WHERE job=?", (job,)).fetchone()
        return (bumps[0] if bumps else 0), (last[0] if last else None)

    def acted(self, job: str, run_id: str | None, bumped: bool, before: int | None, after: int | None) -> None:
        """An action was taken on (job, run): count a bump if it was one, restart the cooldown."""
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (job, run_id, bumps_done, memory_before, memory_after, last_action_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job, run_id) DO UPDATE SET"
                " bumps_done = bumps_done + excluded.bumps_done, memory_after = excluded.memory_after,"
                " last_action_at = excluded.last_action_at",
                (job, run_id or "", 1 if bumped else 0, before, after, time.time()),
            )

    def count(self, status: str | None = None) -> int:
        with self._lock:
            if status is None:
                return int(self._db.execute("SELECT count(*) FROM deliveries").fetchone()[0])
            return int(self._db.execute("SELECT count(*) FROM deliveries WHERE status=?", (status,)).fetchone()[0])
