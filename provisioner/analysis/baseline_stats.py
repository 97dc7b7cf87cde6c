"""What one healthy run says about its job, for ``memprov baseline``: the shape the alerts compare with.

A healthy batch run's troughs (the rolling minimum that removes the sawtooth and transient
spikes) grow along a line for the whole run, as results accumulate. Per run, from its settled
trough samples (past the model load, before any restart: a trough under 80 % of the highest one
so far), a least-squares line gives where the troughs start (``floor``, at the age of one trough
window, where the rules' envelope starts) and how fast they grow (``velocity``); ``noise`` is how
far above its own line the run strays (a lagging garbage collector, say). From the per-step reads
of the history: ``burst``, the fastest growth the growth alert's own velocity series saw; the
sawtooth's usual height above the troughs; the peak over the run's last 15 minutes; its duration
and start weekday. Weekdays whose runs are all clearly longer or larger than the other days' (a
heavy day, seen on at least two weeks) are kept apart.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from provisioner.history.prometheus import Run

END_WINDOW = 900.0  # the end-of-run peak: over the run's last 15 minutes
RESTART_DROP = 0.8  # a trough under this share of the highest one so far: the container restarted
MIN_POINTS = 3  # trough samples needed to fit a line
HEAVY_RATIO = 1.2  # a weekday whose every run is this much longer (or larger) than the other days' median ...
MIN_WEEKS = 2  # ... on at least this many weeks


@dataclass(frozen=True)
class RunShape:
    duration: float  # seconds
    weekday: int  # 0 = Monday (UTC start)
    end_peak: float  # bytes
    floor: float | None = None  # bytes, the troughs' line at the age of one trough window
    velocity: float | None = None  # bytes/s, the line's slope
    noise: float | None = None  # bytes, the highest trough above the line
    burst: float | None = None  # bytes/s
    sawtooth: float | None = None  # bytes


def fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through ``(x, y)`` points: ``(intercept at x = 0, slope)``."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - slope * mx, slope


def shape_of(run: Run, trough_window: float) -> RunShape:
    """The shape of one run (the line fields stay None when it has too few settled troughs)."""
    start = datetime.fromtimestamp(run.start, UTC)
    tail = [v for t, v in run.peaks if t >= run.end - END_WINDOW]
    end_peak = max(tail) if tail else run.peak
    kept: list[tuple[float, float]] = []
    highest = 0.0
    for t, v in sorted(run.troughs):
        if v < RESTART_DROP * highest:
            break  # a restart: the rest of the run starts over
        highest = max(highest, v)
        kept.append((t - run.start - trough_window, v))
    floor = velocity = noise = None
    if len(kept) >= MIN_POINTS:
        floor, velocity = fit(kept)
        noise = max(0.0, max(v - (floor + velocity * x) for x, v in kept))
    positive = [b for b in run.bursts if math.isfinite(b)]
    return RunShape(
        duration=run.duration,
        weekday=start.weekday(),
        end_peak=end_peak,
        floor=floor,
        velocity=velocity,
        noise=noise,
        burst=max(positive) if positive else None,
        sawtooth=statistics.median(run.spreads) if run.spreads else None,
    )


def heavy_days(shapes: Sequence[RunShape]) -> set[int]:
    """Weekdays whose runs are clearly longer or larger than the other days', on two weeks or more."""
    out = set()
    for day in sorted({s.weekday for s in shapes}):
        mine = [s for s in shapes if s.weekday == day]
        others = [s for s in shapes if s.weekday != day]
        if len(mine) < MIN_WEEKS or len(others) < 2:
            continue
        for key in ("duration", "end_peak"):
            values = [getattr(s, key) for s in mine]
            usual = statistics.median(getattr(s, key) for s in others)
            if min(values) >= HEAVY_RATIO * usual:
                out.add(day)
    return out
