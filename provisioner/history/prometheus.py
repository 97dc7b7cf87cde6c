"""Past runs of each job, from a Prometheus-compatible API, local series files, or a runs file.

A *run* is one instance of a job (a pod, a VM, a process group: the runtime's ``group_by``
labels) from its first to its last sample; a gap of more than two steps in its series starts a
new run (a restart after a pause, or the same pod name reused the next day).

From Prometheus, Mimir or Thanos the aggregation happens in PromQL: per instance and per
five-minute step, the peak (``max_over_time``, which sees every sample: the steps tile the
time line), the limit and the trough velocity (``deriv`` of the rolling minimum, as the growth
alert computes it). The window is read one day at a time and folded into per-run summaries,
so memory stays flat in the number of samples, whatever the history's length.

Local series files (OpenMetrics text, what ``promtool tsdb create-blocks-from openmetrics``
reads, optionally gzipped) are backfilled into a temporary Prometheus and read the same way. A
runs file (CSV or JSON: job, start, end, peak, optional outcome) is for teams without either.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from provisioner.core.errors import Problem, SpecError, UsageError
from provisioner.core.secrets import REDACTOR
from provisioner.core.units import format_duration, parse_size
from provisioner.history.promapi import Labels, PrometheusClient, Series, TempPrometheus
from provisioner.kinds import growth
from provisioner.run import history as run_history
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

STEP = 300.0  # resolution of the per-run summaries
DAY = 86_400.0
OOM_RATIO = 0.97  # a run whose last five minutes reached this share of its limit ended in an OOM kill
MAX_FILE_BYTES = 2 * 1024**3


class Querier(Protocol):
    """What history needs of a Prometheus: :class:`provisioner.history.promapi.PrometheusClient`."""

    def query_range(
        self, expr: str, start: float, end: float, step: float
    ) -> dict[Labels, list[tuple[float, float]]]: ...


@dataclass
class Run:
    """One run of a job: where, when, how high, how fast, and how it ended."""

    job: str
    instance: Labels  # the runtime's group_by labels (pod, instance, groupname…)
    start: float
    end: float
    peak: float
    limit: float | None = None
    node: str = ""
    velocities: list[float] = field(default_factory=list)  # trough velocity samples, bytes/s
    troughs: list[tuple[float, float]] = field(default_factory=list)  # (time, rolling minimum), settled steps
    peaks: list[tuple[float, float]] = field(default_factory=list)  # (time, peak of the step)
    bursts: list[float] = field(default_factory=list)  # per step: the fastest growth the alert rule saw, bytes/s
    spreads: list[float] = field(default_factory=list)  # per step: peak above trough over the trough window
    last_peak: float = 0.0  # peak of the last step seen: near the limit means an OOM kill
    outcome: str = ""  # ok | oom_killed | failed (from a runs file); "" = inferred
    step: float = 0.0  # the last five-minute step that saw the run (reading history)

    @property
    def name(self) -> str:
        return "/".join(v for _, v in self.instance) or self.job

    @property
    def oom(self) -> bool:
        if self.outcome:
            return self.outcome == "oom_killed"
        return self.limit is not None and self.limit > 0 and self.last_peak >= OOM_RATIO * self.limit

    @property
    def ok(self) -> bool:
        """A successful run: what a baseline is made of."""
        return self.outcome == "ok" if self.outcome else not self.oom

    @property
    def velocity(self) -> float | None:
        """Median trough velocity over the run (bytes/s), None without samples."""
        return statistics.median(self.velocities) if self.velocities else None

    @property
    def duration(self) -> float:
        return self.end - self.start


# --- PromQL --------------------------------------------------------------------------------------
_SELECTOR = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?$")


def over_time(fn: str, expr: str, window: float, resolution: float) -> str:
    """``fn_over_time`` of ``expr``: directly on a plain selector, else through a subquery."""
    w = _dur(window)
    if _SELECTOR.match(expr.strip()):
        return f"{fn}_over_time({expr}[{w}])"
    return f"{fn}_over_time(({expr})[{w}:{_dur(resolution)}])"


def _dur(seconds: float) -> str:

    return format_duration(seconds)


def queries(spec: ResolvedSpec, job: ResolvedJob, step: float = STEP, burst: str | None = None) -> dict[str, str]:
    """The PromQL the history of ``job`` is read with, per instance and step: peak, limit, trough
    velocity, the trough and the sawtooth's height over the trough window, and (``burst``, given by
    the caller: :func:`provisioner.analysis.baseline.burst_query`) the fastest growth the growth
    alert's own velocity series showed within the step."""
    src = job.sources
    keep = ", ".join(dict.fromkeys((*src.group_by, src.node_label)))
    scrape = spec.scrape_interval
    peak = f"max by ({keep}) ({over_time('max', src.working_set, step, scrape)})"
    trough = over_time("min", src.working_set, job.trough_window, scrape)
    top = over_time("max", src.working_set, job.trough_window, scrape)
    velocity = f"max by ({keep}) (deriv(({trough})[{_dur(growth.KIND.of(job).window)}:{_dur(scrape)}]))"
    out = {"peak": peak, "velocity": velocity, "trough": f"max by ({keep}) ({trough})"}
    out["spread"] = f"max by ({keep}) ({top} - {trough})"
    if burst is not None:
        out["burst"] = burst
    if (sampled := _first_selector(src.working_set)) is not None:  # exact first and last sample times
        stamps = f"(timestamp({sampled}))[{_dur(step)}:{_dur(scrape)}]"
        out["first"] = f"min by ({keep}) (min_over_time({stamps}))"
        out["last"] = f"max by ({keep}) (max_over_time({stamps}))"
    if src.limit:
        out["limit"] = f"max by ({keep}) ({over_time('max', src.limit, step, scrape)})"
    return out


def oom_source(prom: Querier, job: ResolvedJob, start: float, end: float) -> str:
    """Which OOM-kill series the job has in ``[start, end]``: ``events`` (the runtime's OOM counter),
    ``kube-state-metrics`` (terminated reason), ``both`` or ``none``; the rules render only those."""
    src = job.sources
    window = _dur(max(math.ceil((end - max(start, end - 400 * DAY)) / 3600) * 3600, 3600))
    found = []
    for name, selectors in (("events", [src.oom_events] if src.oom_events else []), ("ksm", src.oom_terminated)):
        if any(prom.query_range(f"count(last_over_time({sel}[{window}]))", end, end, 60.0) for sel in selectors):
            found.append(name)
    return {("events", "ksm"): "both", ("events",): "events", ("ksm",): "kube-state-metrics"}.get(tuple(found), "none")


_ANY_SELECTOR = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\{[^{}]*\}")


def _first_selector(expr: str) -> str | None:
    """The series whose sample times are the working set's: the expression itself when it is a selector,
    else its first selector (``MemTotal - MemAvailable``: both come from one scrape; a binary
    operation's result carries the evaluation time, not the samples' own)."""
    if _SELECTOR.match(expr.strip()):
        return expr.strip()
    found = _ANY_SELECTOR.search(expr)
    return found.group() if found else None


def _instance(labels: Labels, group_by: Sequence[str]) -> Labels:
    """The run's identity: its ``group_by`` labels, in the runtime's order (namespace, pod, container)."""
    found = dict(labels)
    return tuple((k, found[k]) for k in group_by if k in found)


def _chunks_with_data(
    prom: Querier, job: ResolvedJob, first: float, end: float, step: float, chunk: float
) -> set[float] | None:
    """End times of the chunks that hold samples of the job (one cheap query), so that a long,
    sparse window is not read chunk by chunk; None when the working set is not a plain selector."""
    ws = job.sources.working_set.strip()
    if not _SELECTOR.match(ws):
        return None
    found = prom.query_range(f"count(count_over_time({ws}[{_dur(chunk)}]))", first + chunk - step, end + chunk, chunk)
    return {t for samples in found.values() for t, _ in samples}


def read_runs(
    prom: Querier,
    spec: ResolvedSpec,
    job: ResolvedJob,
    start: float,
    end: float,
    step: float = STEP,
    chunk: float = DAY,
    burst: str | None = None,
) -> list[Run]:
    """The runs of ``job`` in ``[start, end]``, read one ``chunk`` at a time and folded (``burst``:
    see :func:`queries`)."""
    q = queries(spec, job, step, burst)
    src = job.sources
    open_runs: dict[Labels, Run] = {}
    done: list[Run] = []
    lo = math.floor(start / step) * step + step
    last = math.ceil(end / step) * step  # the step whose window holds the data's last samples
    busy = _chunks_with_data(prom, job, lo, last, step, chunk)
    while lo <= last:
        hi = min(lo + chunk - step, last)
        if busy is not None and not any(lo <= t <= hi + chunk for t in busy):
            for instance in list(open_runs):  # a whole quiet chunk: every open run is over
                done.append(open_runs.pop(instance))
            lo = hi + step
            continue
        peaks = prom.query_range(q["peak"], lo, hi, step)
        limits = prom.query_range(q["limit"], lo, hi, step) if "limit" in q else {}
        velocities = prom.query_range(q["velocity"], lo, hi, step)
        firsts = prom.query_range(q["first"], lo, hi, step) if "first" in q else {}
        lasts = prom.query_range(q["last"], lo, hi, step) if "last" in q else {}
        extra = {k: prom.query_range(q[k], lo, hi, step) for k in ("trough", "spread", "burst") if k in q}
        for labels, samples in sorted(peaks.items()):
            node = dict(labels).get(src.node_label, "")
            instance = _instance(labels, src.group_by)
            limit_at = dict(limits.get(labels, ()))
            first_at, last_at = dict(firsts.get(labels, ())), dict(lasts.get(labels, ()))
            for t, value in samples:
                run = open_runs.get(instance)
                if run is not None and t - run.step > 2 * step:  # a gap: that run is over
                    done.append(open_runs.pop(instance))
                    run = None
                if run is None:
                    begin = first_at.get(t, t - step)
                    run = open_runs[instance] = Run(job.id, instance, begin, t, value, node=node)
                run.step, run.end = t, last_at.get(t, t)
                run.peak, run.last_peak = max(run.peak, value), value
                run.peaks.append((t, value))
                limit = limit_at.get(t)
                run.limit = limit if limit is not None else (run.limit or float(job.limit))
                run.node = run.node or node
        for labels, samples in velocities.items():
            instance = _instance(labels, src.group_by)
            run = open_runs.get(instance)
            if run is None:
                continue
            g = growth.KIND.of(job)
            settled = run.start + g.warmup + g.window + job.trough_window
            run.velocities += [v for t, v in samples if settled <= t <= run.step and math.isfinite(v)]
        for kind, found in extra.items():
            for labels, samples in found.items():
                run = open_runs.get(_instance(labels, src.group_by))
                if run is None:
                    continue
                g = growth.KIND.of(job)
                settled = run.start + g.warmup + g.window + job.trough_window
                good = [(t, v) for t, v in samples if settled <= t <= run.step and math.isfinite(v)]
                if kind == "trough":
                    run.troughs += good
                elif kind == "spread":
                    run.spreads += [v for _, v in good]
                else:
                    run.bursts += [v for t, v in samples if run.start <= t <= run.step and math.isfinite(v)]
        for instance in [i for i, r in open_runs.items() if hi - r.step > 2 * step]:
            done.append(open_runs.pop(instance))
        lo = hi + step
    done += open_runs.values()
    return sorted(done, key=lambda r: (r.start, r.instance))


# --- local series files --------------------------------------------------------------------------
_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+(?P<ts>\S+))?\s*$"
)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


Where = tuple[str, int | None, str]  # file, line, key path: where a problem is


def _problem(message: str, where: Where) -> SpecError:
    return SpecError([Problem(message, *where)])


def _labels(text: str, where: Where) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m:
            raise _problem(f'cannot read the labels {{{text[:80]}}}; write name="value", …', where)
        out[m.group(1)] = m.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        pos = m.end()
    return out


def _open_text(path: Path) -> Iterator[str]:
    if not path.is_file():
        raise UsageError(f"{path}: no such file; give OpenMetrics text files (.om, .txt, optionally .gz)")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UsageError(f"{path}: larger than 2 GiB; split it by day")
    with path.open("rb") as raw, gzip.open(raw) if path.name.endswith(".gz") else raw as stream:
        try:
            yield from io.TextIOWrapper(stream, encoding="utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise UsageError(f"{path}: cannot read it ({e}); give OpenMetrics text, optionally gzipped") from None


def read_series_files(paths: Sequence[Path]) -> list[Series]:
    """Series from OpenMetrics / Prometheus text files with timestamps (seconds since the epoch)."""
    found: dict[tuple[str, Labels], list[tuple[float, float]]] = {}
    files: list[Path] = []
    for p in paths:
        files += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")) if p.is_dir() else [p]
    if not files:
        raise UsageError("no series files given; pass OpenMetrics files or a directory of them")
    for path in files:
        for n, line in enumerate(_open_text(path), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            where: Where = (str(path), n, "")
            m = _SAMPLE.match(line)
            if not m or m.group("ts") is None:
                raise _problem('expected `name{label="value",…} value timestamp` (timestamp in seconds)', where)
            try:
                value, ts = float(m.group("value")), float(m.group("ts"))
            except ValueError:
                raise _problem("the value and the timestamp must be numbers", where) from None
            labels = _labels(m.group("labels") or "", where)
            key = (m.group("name"), tuple(sorted(labels.items())))
            found.setdefault(key, []).append((ts, value))
    return [Series(name, labels, tuple(samples)) for (name, labels), samples in found.items()]


def span(series: Iterable[Series]) -> tuple[float, float]:
    """First and last sample time over all ``series``."""
    times = [t for s in series for t, _ in s.samples[:1] + s.samples[-1:]]
    if not times:
        raise UsageError("the series files hold no samples")
    ends = [max(t for t, _ in s.samples) for s in series if s.samples]
    starts = [min(t for t, _ in s.samples) for s in series if s.samples]
    return min(starts), max(ends)


@contextmanager
def local_prometheus(paths: Sequence[Path], scrape_interval: float) -> Iterator[tuple[Any, float, float]]:
    """A temporary Prometheus holding the series of ``paths``: ``(querier, first, last sample time)``."""

    series = read_series_files(paths)
    first, last = span(series)
    with TempPrometheus(lookback_delta=f"{round(1.5 * scrape_interval)}s") as prom:
        prom.backfill(series)
        prom.start()
        yield prom, first, last


@contextmanager
def remote_prometheus(url: str, headers: dict[str, str]) -> Iterator[tuple[Any, float, float]]:
    """A Prometheus-compatible API at ``url``: ``(querier, -inf, now)``."""

    if not re.match(r"^https?://", url):
        raise UsageError(f"--prometheus {url}: give an http:// or https:// URL")
    client = PrometheusClient(url, headers=headers)
    try:
        yield client, -math.inf, datetime.now(UTC).timestamp()
    finally:
        client.close()


# --- runs files ----------------------------------------------------------------------------------
RUN_FIELDS = ("job", "start", "end", "peak")
OUTCOMES = ("ok", "oom_killed", "failed", "killed", "incomplete")


def _time(value: object, where: Where) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _problem(f"{text!r} is not a time; use ISO 8601 (2026-11-02T02:00:00Z) or unix seconds", where) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _run_history(path: Path, env: str | None) -> list[tuple[Where, dict[str, Any]]]:
    """Rows from ``memprov run``'s history (a directory, or its ``runs.jsonl``), dead wrappers'
    heartbeats included as ``incomplete``; runs of other environments are left out."""

    try:
        records = run_history.read(path if path.is_dir() else path.parent)
    except ValueError as e:
        raise UsageError(str(e)) from None
    rows: list[tuple[Where, dict[str, Any]]] = []
    for file, line, r in records:
        if env is not None and r.get("env") not in (None, "", env):
            continue
        row = {"job": r.get("job"), "start": r.get("started_at"), "end": r.get("ended_at")}
        row |= {"peak": r.get("peak_rss_bytes"), "outcome": r.get("outcome"), "limit": r.get("limit_bytes")}
        rows.append(((file, line, ""), row | {"run": r.get("run_id"), "node": r.get("host")}))
    return rows


def read_runs_file(
    path: Path, jobs: Iterable[str], env: str | None = None, warn: Callable[[str], None] | None = None
) -> list[Run]:
    """Runs from a CSV (header ``job,start,end,peak[,outcome][,limit]``) or JSON (a list of objects) file,
    or from ``memprov run``'s history (its directory or ``runs.jsonl``; only ``env``'s runs when given).

    A history is shared by every wrapper on a node, so its runs of jobs the spec does not have are
    skipped, said through ``warn``; in a CSV/JSON file written for this spec they are errors."""
    known = set(jobs)
    skipped: dict[str, int] = {}
    history = path.is_dir() or path.suffix == ".jsonl"
    text = "" if history else "".join(_open_text(path))
    rows: list[tuple[Where, dict[str, Any]]] = []
    if history:
        rows = _run_history(path, env)
    elif path.suffix == ".json" or path.name.endswith(".json.gz"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise _problem(f"not valid JSON: {e.msg}", (str(path), e.lineno, "")) from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise _problem("expected a list of runs: [{job, start, end, peak}, …]", (str(path), 1, ""))
        rows = [((str(path), None, f"[{i}]"), r) for i, r in enumerate(data)]
    else:
        reader = csv.DictReader(io.StringIO(text))
        missing = [f for f in RUN_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise _problem(
                f"missing column(s) {', '.join(missing)}; the header is job,start,end,peak[,outcome]",
                (str(path), 1, ""),
            )
        rows = [((str(path), i + 2, ""), dict(r)) for i, r in enumerate(reader)]
    out: list[Run] = []
    problems: list[Problem] = []
    for where, row in rows:
        try:
            job = str(row.get("job", "")).strip()
            if history and job not in known:
                skipped[job] = skipped.get(job, 0) + 1
                continue
            if job not in known:
                hint = f"; known jobs: {', '.join(sorted(known))}" if known else ""
                raise _problem(f"unknown job {job!r}{hint}", where)
            start, end = _time(row.get("start"), where), _time(row.get("end"), where)
            if end < start:
                raise _problem("end is before start", where)
            try:
                peak = float(parse_size(row.get("peak")))
                limit = float(parse_size(row["limit"])) if row.get("limit") not in (None, "") else None
            except ValueError as e:
                raise _problem(str(e), where) from None
            outcome = str(row.get("outcome") or "ok").strip()
            if outcome not in OUTCOMES:
                raise _problem(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}", where)
            instance = (("run", str(row.get("run") or f"{job}@{int(start)}")),)
            out.append(Run(job, instance, start, end, peak, limit, str(row.get("node") or ""), outcome=outcome))
        except SpecError as e:
            problems += e.problems
    if problems:
        raise SpecError(problems)
    if skipped and warn is not None:
        names = ", ".join(f"{job!r} ({n})" for job, n in sorted(skipped.items()))
        warn(f"{path}: skipped {sum(skipped.values())} run(s) of job(s) the spec does not have: {names}")
    return sorted(out, key=lambda r: (r.start, r.job))


# --- where history comes from --------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """What the user pointed memprov at: a Prometheus-compatible URL, series files, or a runs file."""

    prometheus: str | None = None
    series: tuple[Path, ...] = ()
    runs: Path | None = None
    headers: tuple[tuple[str, str], ...] = ()
    cloud: str | None = None  # cloudwatch | azure | gcp: through the environment's target of that backend

    def describe(self) -> str:
        if self.cloud:
            return self.cloud
        if self.prometheus:
            return f"prometheus {self.prometheus}"
        if self.series:
            return "series " + ", ".join(str(p) for p in self.series)
        return f"runs file {self.runs}"


def source_of(
    prometheus: str | None,
    series: Sequence[Path],
    runs: Path | None,
    headers: Sequence[str],
    *,
    runs_ok: bool = True,
    clouds: Sequence[str] = (),
) -> Source:
    """Check that exactly one source is given (and the headers' form); ``runs_ok``: a runs file or a
    cloud (``clouds``: the cloud flags given, e.g. ``["azure"]``) will do (peaks only: no series to
    evaluate rules on)."""
    flags = [("--prometheus", prometheus), ("--series", series), ("--runs", runs), *((f"--{c}", True) for c in clouds)]
    given = [name for name, v in flags if v]
    allowed = "--prometheus URL, --series FILE…" + (", --runs FILE, --cloudwatch, --azure or --gcp" if runs_ok else "")
    if not runs_ok and runs:
        raise UsageError("a runs file has peaks only, no series to evaluate rules on; give --prometheus or --series")
    if len(given) != 1:
        what = "no source of history" if not given else f"{' and '.join(given)} together"
        raise UsageError(f"{what}: give one of {allowed}")
    pairs = []
    for h in headers:
        name, sep, value = h.partition(":")
        if not sep or not re.match(r"^[A-Za-z0-9-]+$", name.strip()):
            raise UsageError(f"--header {name.strip()!r}: write NAME: VALUE, e.g. 'X-Scope-OrgID: team-a'")
        pairs.append((name.strip(), value.strip()))
    return Source(prometheus, tuple(series), runs, tuple(pairs), clouds[0] if clouds else None)


@contextmanager
def open_querier(source: Source, scrape_interval: float) -> Iterator[tuple[Any, float, float]]:
    """``(querier, first, last)`` for a Prometheus or series-files source.

    A bearer token for the Prometheus comes from ``MEMPROV_PROMETHEUS_TOKEN`` (never a flag: flags
    end up in shell history and CI logs).
    """
    import os

    if source.prometheus:
        headers = dict(source.headers)
        token = os.environ.get("MEMPROV_PROMETHEUS_TOKEN")
        if token:
            REDACTOR.add(token)
            headers["Authorization"] = f"Bearer {token}"
        with remote_prometheus(source.prometheus, headers) as found:
            yield found
    else:
        with local_prometheus(source.series, scrape_interval) as found:
            yield found
