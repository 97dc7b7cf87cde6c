"""A real, temporary Prometheus on 127.0.0.1 that holds series backfilled from memory.

Series are written as OpenMetrics text and turned into TSDB blocks by ``promtool tsdb
create-blocks-from openmetrics`` while the server is stopped; the server then answers
``query`` and ``query_range`` (and evaluates rule files in real time, if given any). What
promtool 2.42 really does, checked by hand: it refuses a file without the final ``# EOF``,
silently drops a sample older than the previous one of the same series, does not insist on
``# TYPE`` lines, and re-reads the whole file once per two-hour block (five weeks of 150,000
samples: 26 s in one file). Hence the text is written the way the OpenMetrics specification
asks (one ``# TYPE`` per family, families grouped, each series sorted by time) and one file per
UTC day is converted (days are multiples of the two-hour block size, so the blocks never
overlap), several at a time (five weeks, twice the samples: 6 s). Retention is a century, because
retention counts back from the newest block and must never delete backfilled history, and the
look-back delta is short and explicit: a backfilled series has no staleness markers, so a
series that stops (a killed container) stays visible for the look-back delta, where a scraped
Prometheus would drop it at the next scrape. :class:`PrometheusClient` is the query API
alone, for a Prometheus that runs elsewhere.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from provisioner.core import tools
from provisioner.core.errors import OperationError

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
MAX_STEPS = 10_000  # Prometheus refuses a query_range of more than 11,000 steps
DAY = 86_400
_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def labels_of(mapping: Mapping[str, str]) -> Labels:
    """The canonical, hashable form of a label set (sorted pairs)."""
    return tuple(sorted(mapping.items()))


@dataclass(frozen=True)
class Series:
    """One series: metric name, labels and ``(unix seconds, value)`` samples in any order."""

    name: str
    labels: Labels
    samples: tuple[tuple[float, float], ...]

    @classmethod
    def of(cls, name: str, labels: Mapping[str, str], samples: Iterable[tuple[float, float]]) -> Series:
        return cls(name, labels_of(labels), tuple(samples))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _timestamp(t: float) -> str:
    ms = round(t * 1000)
    return str(ms // 1000) if ms % 1000 == 0 else f"{ms / 1000:.3f}"


def _check(series: Series) -> None:
    if not _NAME_RE.match(series.name):
        raise ValueError(f"{series.name!r} is not a valid metric name")
    for key, _ in series.labels:
        if not _LABEL_RE.match(key) or key.startswith("__"):
            raise ValueError(f"{series.name}: {key!r} is not a valid label name")


def openmetrics(series: Iterable[Series]) -> str:
    """OpenMetrics text of ``series`` (all typed gauge), as promtool's backfill wants it.

    Families are grouped and sorted, each series' samples sorted by time; of two samples with
    the same timestamp the last one given wins (promtool would keep the first).
    """
    families: dict[str, dict[Labels, dict[int, float]]] = {}
    for s in series:
        _check(s)
        points = families.setdefault(s.name, {}).setdefault(s.labels, {})
        for t, v in s.samples:
            points[round(t * 1000)] = v
    out: list[str] = []
    for name in sorted(families):
        out.append(f"# TYPE {name} gauge")
        for labels, points in sorted(families[name].items()):
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            head = f"{name}{{{body}}}" if body else name
            out.extend(f"{head} {_value(v)} {_timestamp(ms / 1000)}" for ms, v in sorted(points.items()))
    out.append("# EOF")
    return "\n".join(out) + "\n"


def split_by_day(series: Iterable[Series]) -> dict[int, list[Series]]:
    """Series cut at UTC midnights: ``{day number: series with that day's samples}``."""
    days: dict[int, list[Series]] = {}
    for s in series:
        parts: dict[int, list[tuple[float, float]]] = {}
        for t, v in s.samples:
            parts.setdefault(math.floor(t / DAY), []).append((t, v))
        for day, samples in parts.items():
            days.setdefault(day, []).append(Series(s.name, s.labels, tuple(samples)))
    return days


def backfill(series: Iterable[Series], data_dir: Path, workers: int | None = None) -> int:
    """Write ``series`` as TSDB blocks into ``data_dir`` (one promtool run per day); returns samples written."""
    data_dir.mkdir(parents=True, exist_ok=True)
    days = split_by_day(series)
    work = Path(tempfile.mkdtemp(prefix="memprov-backfill-"))
    try:
        files = []
        for day, chunk in sorted(days.items()):
            path = work / f"{day}.om"
            path.write_text(openmetrics(chunk), encoding="utf-8")
            files.append(path)

        def convert(path: Path) -> str:
            args = ("tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(data_dir))
            result = tools.run("promtool", *args)
            return "" if result.returncode == 0 else f"{path.name}: {result.stderr.strip()[-1500:]}"

        with ThreadPoolExecutor(max_workers=workers or 2 * (os.cpu_count() or 1)) as pool:
            errors = [e for e in pool.map(convert, files) if e]
        if errors:
            raise OperationError("promtool could not backfill the series: " + "; ".join(errors[:3]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sum(len(s.samples) for chunk in days.values() for s in chunk)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def steps(start: float, end: float, step: float) -> Iterator[tuple[float, float]]:
    """``[start, end]`` cut into query_range windows of at most :data:`MAX_STEPS` steps each."""
    lo = start
    while lo <= end + 1e-9:
        hi = min(end, lo + step * (MAX_STEPS - 1))
        yield lo, hi
        lo = hi + step


class PrometheusClient:
    """The HTTP query API of a Prometheus at ``url`` (or of anything that speaks it, e.g. Thanos)."""

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 600) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=dict(headers or {}), timeout=httpx.Timeout(timeout, connect=5)
        )

    def close(self) -> None:
        self._http.close()

    def ready(self) -> bool:
        """Whether ``/-/ready`` answers 200 (a connection failure is "not yet")."""
        import httpx

        try:
            return self._http.get("/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def api(self, path: str, method: str = "POST", **params: Any) -> Any:
        """``data`` of a successful API answer; queries are POSTed as forms, so that long ones fit."""
        import httpx

        form = {k: str(v) for k, v in params.items()}
        try:
            if method == "GET":
                response = self._http.get(path, params=form)
            else:
                response = self._http.post(path, data=form)
        except httpx.HTTPError as e:
            raise OperationError(f"prometheus at {self.url} did not answer {path}: {e}") from e
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            what = body.get("error") or response.text[:500]
            query = str(params.get("query", ""))[:300]
            raise OperationError(f"prometheus {path} failed ({response.status_code}): {what} (query: {query})")
        return body["data"]

    def query(self, expr: str, at: float) -> dict[Labels, float]:
        """Instant query at ``at``: value per label set."""
        data = self.api("/api/v1/query", query=expr, time=_timestamp(at))
        if data["resultType"] == "scalar":
            return {(): float(data["result"][1])}
        return {labels_of(item["metric"]): float(item["value"][1]) for item in data["result"]}

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict[Labels, list[tuple[float, float]]]:
        """``expr`` at ``start, start + step, … <= end``: samples per label set.

        Windows of at most :data:`MAX_STEPS` steps are queried one after the other and joined.
        """
        out: dict[Labels, list[tuple[float, float]]] = {}
        for lo, hi in steps(start, end, step):
            data = self.api("/api/v1/query_range", query=expr, start=_timestamp(lo), end=_timestamp(hi), step=step)
            for item in data["result"]:
                samples = out.setdefault(labels_of(item["metric"]), [])
                samples.extend((float(t), float(v)) for t, v in item["values"])
        return out

    def rule_groups(self) -> list[dict[str, Any]]:
        """The loaded rule groups as ``/api/v1/rules`` reports them (health, duration, …)."""
        groups: list[dict[str, Any]] = self.api("/api/v1/rules", method="GET")["groups"]
        return groups


class TempPrometheus:
    """A Prometheus of our own in a temp dir; backfill, then start, then query.

    ``with TempPrometheus(lookback_delta="45s") as prom: prom.backfill(series); prom.start()``.
    Backfilling a running server restarts it (Prometheus reads blocks written behind its back
    only at start-up). Leaving the ``with`` block stops the server and deletes the directory.
    """

    def __init__(
        self,
        *,
        rule_files: Sequence[Path] = (),
        evaluation_interval: str = "30s",
        lookback_delta: str = "1m",
        query_timeout: str = "10m",
        workdir: Path | None = None,
        scrape_configs: str = "",
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="memprov-prom-", dir=workdir))
        self.data_dir = self.dir / "data"
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.evaluation_interval = evaluation_interval
        self.lookback_delta = lookback_delta
        self.query_timeout = query_timeout
        self.scrape_configs = scrape_configs  # YAML text of a scrape_configs: block, for live targets
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: PrometheusClient | None = None

    def __enter__(self) -> TempPrometheus:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def backfill(self, series: Iterable[Series]) -> int:
        """Add ``series`` to the TSDB (restarting the server if it runs); returns samples written."""
        was_running = self._proc is not None
        self.stop()
        written = backfill(series, self.data_dir)
        if was_running:
            self.start()
        return written

    def start(self, timeout: float = 60) -> None:
        """Start the server on a free port and wait until ``/-/ready`` answers 200."""
        if self._proc is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "prometheus.yml"
        files = "".join(f"\n  - {str(p)!r}" for p in self.rule_files)
        config.write_text(
            f"global:\n  evaluation_interval: {self.evaluation_interval}\nrule_files:{files or ' []'}\n"
            + self.scrape_configs,
            encoding="utf-8",
        )
        for _ in range(3):  # the free port may be taken by someone else before Prometheus binds it
            if self._launch(config, timeout):
                return
        raise OperationError(f"prometheus found no free port: {self.log_tail()}")

    def _launch(self, config: Path, timeout: float) -> bool:
        """One start-up attempt; False when the port was taken meanwhile."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log_path = self.dir / "prometheus.log"
        logged = log_path.stat().st_size if log_path.exists() else 0
        args = [
            tools.which("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.data_dir}",
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--query.lookback-delta={self.lookback_delta}",
            f"--query.timeout={self.query_timeout}",
            "--log.level=warn",
        ]
        with log_path.open("ab") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=log, cwd=self.dir)
        self._client = PrometheusClient(self.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                output = log_path.read_bytes()[logged:].decode(errors="replace")
                if "address already in use" in output:
                    return False
                raise OperationError(f"prometheus exited at start-up: {output.strip()[-2000:]}")
            if self._client.ready():
                return True
            time.sleep(0.05)
        self.stop()
        raise OperationError(f"prometheus was not ready within {timeout:.0f}s: {self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        path = self.dir / "prometheus.log"
        return path.read_text(errors="replace")[-chars:].strip() if path.exists() else ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s); the data directory is kept."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def close(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- HTTP API (while running) -------------------------------------------------------
    @property
    def client(self) -> PrometheusClient:
        if self._client is None:
            raise OperationError("prometheus is not running; call start() first")
        return self._client

    def query(self, expr: str, at: float) -> dict[Labels, float]:
        return self.client.query(expr, at)

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict[Labels, list[tuple[float, float]]]:
        return self.client.query_range(expr, start, end, step)

    def rule_groups(self) -> list[dict[str, Any]]:
        return self.client.rule_groups()
