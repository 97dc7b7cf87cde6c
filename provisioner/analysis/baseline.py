"""``memprov baseline``: per-job statistics of past successful runs, proposed thresholds, and
``baselines/<env>.yaml``.

The design document's first step: record the peak memory of each job over representative runs
and define a "normal" range from it. Per job: the successful runs observed, their peak p50, p95,
p99 and max, the usual growth velocity of the troughs (median over runs), when runs usually
start and how long they last. Thresholds are proposed with the design document's rules of thumb
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

from provisioner.core.units import format_size, parse_size
from provisioner.history.prometheus import Run
from provisioner.spec.resolved import ResolvedJob

MI, GI = 2**20, 2**30
WEAK_RUNS = 10  # fewer successful runs than this: the percentiles say little
WARN_FACTOR = 1.5  # warning at 1.5x the p95 peak (the design document: p95 4 GiB -> 6 GiB)
WARN_MIN, WARN_MAX = 0.75, 0.80  # ... but between 75 and 80 % of the limit
CRIT_MAX = 0.94  # critical at most 94 % of the limit (the design document: 7.5 GiB of 8)
TIGHT = 0.80  # the largest peak above 80 % of the limit: no room for a warning before the OOM
LOOSE = 0.40  # p99 under 40 % of the limit: most of the reservation is never used


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


def compute(job: ResolvedJob, runs: Iterable[Run]) -> JobBaseline:
    """The baseline of ``job`` from its runs (successful ones only for the percentiles)."""
    all_runs = list(runs)
    ok = [r for r in all_runs if r.ok]
    out = JobBaseline(job.id, job.limit, runs=len(ok), failed=len(all_runs) - len(ok))
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
    _propose(out)
    return out


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
        per_minute = size_text(b.velocity) if b.velocity >= MI else str(round(b.velocity))
        lines.append(f"    velocity: {per_minute}  # growth of the troughs per minute")
    return lines


def _clock(hours: float) -> str:
    minutes = round(hours * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
