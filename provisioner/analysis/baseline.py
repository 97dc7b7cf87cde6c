"""``memprov baseline``: per-job statistics of past successful runs, proposed thresholds, and
``baselines/<env>.yaml``.

The design document's first step: record the peak memory of each job over representative runs
and define a "normal" range from it. Per job: the successful runs observed, their peak p50, p95,
p99 and max, the usual growth velocity of the troughs (median over runs) and its spread, when
runs usually start and how long they last, their end-of-run peaks, and the healthy *envelope* the
alerts judge a run against (where healthy runs' troughs start and how fast they grow, how far
they stray, their fastest burst, the sawtooth's height: :mod:`provisioner.analysis.baseline_stats`),
apart for weekdays whose runs are clearly heavier. Thresholds are proposed with the design document's rules of thumb
(a warning about 1.5x the p95 peak, between 75 and 80 % of the limit, never 95 %; critical
three quarters of the way from the warning to the limit: p95 4 GiB and an 8 GiB limit give
6 GiB and 7.5 GiB), and jobs whose limit is too tight or too loose for what they use are flagged.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from provisioner.analysis.baseline_stats import RunShape, heavy_days, shape_of
from provisioner.analysis.evaluate.inline import inline_expr
from provisioner.core.units import format_duration, format_size, parse_size
from provisioner.history.prometheus import STEP, Run
from provisioner.kinds import series as s
from provisioner.render.prometheus.rules import rule_groups
from provisioner.spec.model import WEEKDAYS
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

MI, GI = 2**20, 2**30
WEAK_RUNS = 10  # fewer successful runs than this: the percentiles say little
WARN_FACTOR = 1.5  # warning at 1.5x the p95 peak (the design document: p95 4 GiB -> 6 GiB)
WARN_MIN, WARN_MAX = 0.75, 0.80  # ... but between 75 and 80 % of the limit
CRIT_MAX = 0.94  # critical at most 94 % of the limit (the design document: 7.5 GiB of 8)
TIGHT = 0.80  # the largest peak above 80 % of the limit: no room for a warning before the OOM
LOOSE = 0.40  # p99 under 40 % of the limit: most of the reservation is never used
ENVELOPE_Q = 0.75  # the envelope from the upper quartile of runs: one odd run in the history does not widen it


def burst_query(spec: ResolvedSpec, job: ResolvedJob, step: float = STEP) -> str:
    """The highest value the rules' own settled trough velocity took within each ``step`` (their
    recording rules inlined), per instance: what ``baseline.burst`` is learnt from."""
    src = job.sources
    keep = ", ".join(dict.fromkeys((*src.group_by, src.node_label)))
    velocity = inline_expr(rule_groups(spec, job), f'{s.VELOCITY}{{memprov_job="{job.id}", memprov_env="{spec.env}"}}')
    span = f"{format_duration(step)}:{format_duration(spec.evaluation_interval)}"
    return f"max by ({keep}) (max_over_time(({velocity})[{span}]))"


def quantile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), for q in [0, 1]."""
    s = sorted(values)
    if not s:
        raise ValueError("no values")
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def size_text(n: float) -> str:
    """A size for a reviewer: ``3.78Gi`` (to 0.01 GiB) above 1 GiB, else whole MiB (at least 1Mi)."""
    if n >= GI:
        return f"{n / GI:.2f}".rstrip("0").rstrip(".") + "Gi"
    return f"{max(1, round(n / MI))}Mi"


def round_size(n: float) -> int:
    """``n`` rounded as :func:`size_text` shows it: what the spec will read back."""
    return parse_size(size_text(n))


@dataclass
class JobBaseline:
    job: str
    limit: int
    runs: int = 0  # successful runs the percentiles come from
    failed: int = 0  # runs that ended in an OOM kill or failed
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    velocity: float | None = None  # bytes per minute
    start_hours: tuple[float, float] | None = None  # usual start, UTC hours (p10, p90)
    duration: tuple[float, float] | None = None  # minutes (p50, p90)
    durations: tuple[float, float, float] | None = None  # seconds: p50, p95, max (of the days not apart)
    end_peaks: tuple[float, float, float] | None = None  # bytes: p50, p95, max
    velocities: tuple[float, float] | None = None  # per-run velocity p90 and max, bytes per minute
    floor: float | None = None  # the envelope: bytes, bytes per minute, bytes
    floor_velocity: float | None = None
    floor_noise: float | None = None
    burst: float | None = None  # bytes per minute
    sawtooth: float | None = None  # bytes
    weekdays: dict[str, dict[str, float | int]] = field(default_factory=dict)
    oom_source: str | None = None  # events | kube-state-metrics | both | none (None: unknown)
    warning: int | None = None  # proposed thresholds, bytes
    critical: int | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def weak(self) -> bool:
        return self.runs < WEAK_RUNS


def _hours(runs: Sequence[Run]) -> tuple[float, float]:
    """Usual start time of day (UTC hours, p10 and p90), on the circle: a job at 23:50 and 00:10 starts at midnight."""
    hours = [datetime.fromtimestamp(r.start, UTC) for r in runs]
    values = [h.hour + h.minute / 60 for h in hours]
    angle = math.atan2(
        sum(math.sin(v / 24 * 2 * math.pi) for v in values), sum(math.cos(v / 24 * 2 * math.pi) for v in values)
    )
    centre = (angle / (2 * math.pi) * 24) % 24
    shifted = [((v - centre + 12) % 24) - 12 for v in values]  # distance from the centre, -12..12
    return (centre + quantile(shifted, 0.1)) % 24, (centre + quantile(shifted, 0.9)) % 24


def compute(job: ResolvedJob, runs: Iterable[Run], oom_source: str | None = None) -> JobBaseline:
    """The baseline of ``job`` from its runs (successful ones only for the percentiles)."""
    all_runs = list(runs)
    ok = [r for r in all_runs if r.ok]
    out = JobBaseline(job.id, job.limit, runs=len(ok), failed=len(all_runs) - len(ok), oom_source=oom_source)
    if not ok:
        out.flags.append("no successful run in the window: no baseline")
        return out
    peaks = [r.peak for r in ok]
    out.p50, out.p95, out.p99, out.max = (quantile(peaks, q) for q in (0.5, 0.95, 0.99, 1.0))
    velocities = [v for r in ok if (v := r.velocity) is not None]
    if velocities:
        out.velocity = max(0.0, statistics.median(velocities)) * 60
    out.start_hours = _hours(ok)
    minutes = [r.duration / 60 for r in ok]
    out.duration = (quantile(minutes, 0.5), quantile(minutes, 0.9))
    _shapes(out, [shape_of(r, job.trough_window) for r in ok])
    _propose(out)
    return out


def _shapes(b: JobBaseline, shapes: list[RunShape]) -> None:
    """Durations, end peaks, velocities and the envelope from the runs' shapes; heavy weekdays apart."""
    heavy = heavy_days(shapes)
    for day in sorted(heavy):
        mine = [s for s in shapes if s.weekday == day]
        b.weekdays[WEEKDAYS[day]] = {
            "runs": len(mine),
            "duration_p50": quantile([s.duration for s in mine], 0.5),
            "duration_max": max(s.duration for s in mine),
            "end_peak_p50": quantile([s.end_peak for s in mine], 0.5),
            "end_peak_max": max(s.end_peak for s in mine),
        }
    usual = [s for s in shapes if s.weekday not in heavy] or shapes
    b.durations = tuple(quantile([s.duration for s in usual], q) for q in (0.5, 0.95, 1.0))  # type: ignore[assignment]
    b.end_peaks = tuple(quantile([s.end_peak for s in shapes], q) for q in (0.5, 0.95, 1.0))  # type: ignore[assignment]
    lines = [s for s in shapes if s.velocity is not None and s.floor is not None]
    if lines:
        slopes = [max(0.0, s.velocity or 0.0) for s in lines]
        b.velocity = statistics.median(slopes) * 60  # the runs' own lines: steadier than slope samples
        b.velocities = (quantile(slopes, 0.9) * 60, max(slopes) * 60)
        b.floor = quantile([s.floor or 0.0 for s in lines], ENVELOPE_Q)
        b.floor_velocity = quantile(slopes, ENVELOPE_Q) * 60
        b.floor_noise = quantile([s.noise or 0.0 for s in lines], ENVELOPE_Q)
    bursts = [s.burst for s in shapes if s.burst is not None]
    if bursts:
        b.burst = max(0.0, quantile(bursts, ENVELOPE_Q)) * 60
    sawtooth = [s.sawtooth for s in shapes if s.sawtooth is not None]
    if sawtooth:
        b.sawtooth = statistics.median(sawtooth)


def _propose(b: JobBaseline) -> None:
    """Thresholds from the rules of thumb, and flags for limits that do not fit the job."""
    assert b.p95 is not None and b.max is not None and b.p99 is not None
    limit = b.limit
    warning = min(max(WARN_FACTOR * b.p95, WARN_MIN * limit), WARN_MAX * limit)
    b.warning = round_size(warning)
    b.critical = round_size(min(b.warning + 0.75 * (limit - b.warning), CRIT_MAX * limit))
    if b.weak:
        b.flags.append(f"weak baseline: {b.runs} successful run(s); collect at least {WEAK_RUNS}")
    if b.max >= TIGHT * limit or WARN_FACTOR * b.p95 > WARN_MAX * limit:
        need = round_size(max(b.max / 0.75, WARN_FACTOR * b.p95 / WARN_MAX))
        b.flags.append(
            f"limit too tight: peaks reach {format_size(b.max)}B (p95 {format_size(b.p95)}B) of "
            f"{format_size(limit)}B, no room to warn before the OOM; raise the limit to about {format_size(need)}B"
        )
    elif b.p99 < LOOSE * limit and not b.weak:
        fit = round_size(max(b.max / 0.6, WARN_FACTOR * b.p95 / WARN_MIN))
        b.flags.append(
            f"limit too loose: p99 {format_size(b.p99)}B is under {LOOSE:.0%} of {format_size(limit)}B; "
            f"about {format_size(fit)}B would do"
        )


def yaml_text(
    baselines: Sequence[JobBaseline], header: Sequence[str], kept: Mapping[str, Mapping[str, object]] | None = None
) -> str:
    """``baselines/<env>.yaml``: deterministic, one block per job, context as comments; ``kept``: blocks
    of jobs not measured this time, carried over as they were."""
    blocks = {b.job: _block(b) for b in baselines}
    for job, block in (kept or {}).items():
        values = [
            f"    {k}: {v}" for k, v in block.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)
        ]
        blocks[job] = [f"  {job}:  # kept from the previous baseline: not measured this time", *values]
    lines = [*(f"# {h}" for h in header), "jobs:"]
    for job in sorted(blocks):
        lines += blocks[job]
    return "\n".join(lines) + "\n"


def _block(b: JobBaseline) -> list[str]:
    """One measured job's block."""
    if b.p50 is None or b.p95 is None or b.p99 is None or b.max is None:
        return [f"  # {b.job}: no successful run in the window"]
    context = [f"{b.runs} successful run(s)"]
    if b.failed:
        context.append(f"{b.failed} OOM-killed or failed")
    if b.start_hours:
        lo, hi = (_clock(h) for h in b.start_hours)
        context.append(f"usually starting {lo}–{hi} UTC" if lo != hi else f"usually starting around {lo} UTC")
    if b.duration:
        context.append(f"{b.duration[0]:.0f} min (p90 {b.duration[1]:.0f})")
    lines = [f"  {b.job}:  # {', '.join(context)}"]
    if b.warning and b.critical:
        lines.append(
            f"    # proposed thresholds: warning {size_text(b.warning)}, critical {size_text(b.critical)} "
            f"(limit {format_size(b.limit)})"
        )
    lines += [f"    # {flag}" for flag in b.flags]
    lines.append(f"    runs: {b.runs}")
    for key, value in (("peak_p50", b.p50), ("peak_p95", b.p95), ("peak_p99", b.p99), ("peak_max", b.max)):
        lines.append(f"    {key}: {size_text(value)}")
    if b.velocity is not None and b.velocity >= 1:
        lines.append(f"    velocity: {_rate(b.velocity)}  # growth of the troughs per minute")
    if b.velocities:
        lines += [f"    velocity_p90: {_rate(b.velocities[0])}", f"    velocity_max: {_rate(b.velocities[1])}"]
    if b.durations:
        lines += [f"    duration_{k}: {_minutes(v)}" for k, v in zip(("p50", "p95", "max"), b.durations, strict=True)]
    if b.end_peaks:
        lines += [f"    end_peak_{k}: {size_text(v)}" for k, v in zip(("p50", "p95", "max"), b.end_peaks, strict=True)]
    if b.floor is not None and b.floor_velocity is not None:
        lines.append("    # the envelope: troughs of healthy runs start at floor and grow floor_velocity a minute")
        lines += [f"    floor: {size_text(b.floor)}", f"    floor_velocity: {_rate(b.floor_velocity)}"]
        lines.append(f"    floor_noise: {_rate(b.floor_noise or 0.0)}")
    if b.burst is not None:
        lines.append(f"    burst: {_rate(b.burst)}  # fastest trough growth per minute over one growth window")
    if b.sawtooth is not None:
        lines.append(f"    sawtooth: {_rate(b.sawtooth)}  # peaks above the troughs")
    if b.weekdays:
        lines.append("    weekdays:  # heavier days, kept apart")
        for day, w in b.weekdays.items():
            lines.append(
                f"      {day}: {{runs: {w['runs']}, duration_p50: {_minutes(w['duration_p50'])}, "
                f"duration_max: {_minutes(w['duration_max'])}, end_peak_p50: {size_text(w['end_peak_p50'])}, "
                f"end_peak_max: {size_text(w['end_peak_max'])}}}"
            )
    if b.oom_source is not None:
        lines.append(f"    oom_source: {b.oom_source}  # which OOM-kill series exist")
    return lines


def _rate(n: float) -> str:
    """A velocity or a small size, to three significant digits (``1.43Mi``, ``412Ki``, whole bytes
    under 1 KiB): the envelope's slope times hours of a run must not drift with rounding."""
    for unit, scale in (("Gi", GI), ("Mi", MI), ("Ki", 1024.0)):
        if n >= scale:
            v = n / scale
            text = f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"
            return (text.rstrip("0").rstrip(".") if "." in text else text) + unit
    return str(round(n))


def _minutes(seconds: float) -> str:
    return format_duration(60 * math.ceil(seconds / 60))


def _clock(hours: float) -> str:
    minutes = round(hours * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
