"""Hand-built runs for the baseline and backtest tests, with everything they need to know computed
here, from the samples, without memprov: peaks, OOM times, and when a threshold alert fires.

Runs of clv-daily (8 GiB limit, usual trough velocity 18 MiB/min), one a day at 02:00 UTC, one
sample every 30 s at a 7-second offset (so that which sample an evaluation sees is never a tie):

- healthy: a 3-minute model-load ramp, then a sawtooth (2-minute cycles, 400 MiB deep) whose
  troughs climb at the usual velocity for 80 minutes, peak scaled per run;
- surge (the design document's case study: 10x the records): from 20 minutes in, the troughs
  climb at 3x the usual velocity... and keep climbing until the limit: the OOM kill;
- leak: from 20 minutes in, the troughs climb at 1.8x the usual velocity until the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.history.promapi import Series

MI, GI = 2**20, 2**30
DAY = 86_400.0
T0 = 1_748_822_400.0 + 2 * 3600  # 2025-06-02 02:00 UTC
LIMIT = 8 * GI
V0 = 18 * MI / 60  # usual trough velocity, bytes/s
SCRAPE, OFFSET = 30.0, 7.0
LABELS = {"namespace": "batch", "container": "clv-scorer"}


@dataclass
class Trace:
    pod: str
    kind: str
    start: float
    samples: list[tuple[float, float]]

    @property
    def peak(self) -> float:
        return max(v for _, v in self.samples)

    @property
    def end(self) -> float:
        return self.samples[-1][0]

    @property
    def oom(self) -> bool:
        return self.kind in ("surge", "leak")


def trace(day: int, kind: str, scale: float = 1.0, onset: float = 20 * 60, factor: float = 3.0) -> Trace:
    start = T0 + day * DAY
    floor0 = 2.6 * GI * scale
    depth, period, ramp = 400 * MI, 120.0, 180.0
    samples: list[tuple[float, float]] = []
    t = start + OFFSET
    while True:
        u = t - start
        slope = V0 if kind == "healthy" or u < onset else factor * V0
        trough = floor0 + V0 * min(u, onset) + (slope * (u - onset) if u > onset else 0.0)
        value = trough * u / ramp if u < ramp else trough + depth * ((u - ramp) % period) / period
        if kind == "healthy" and u > 80 * 60:
            break
        if value >= LIMIT:  # the kernel kills it: the series ends with the last sample below the limit
            break
        samples.append((t, float(round(value))))
        t += SCRAPE
    return Trace(f"clv-daily-{day:03d}", kind, start, samples)


def series_of(traces: list[Trace]) -> list[Series]:
    out = []
    for tr in traces:
        labels = {**LABELS, "pod": tr.pod, "node": f"node-{tr.pod[-1]}"}
        out.append(Series.of("container_memory_working_set_bytes", labels, tr.samples))
        out.append(Series.of("container_spec_memory_limit_bytes", labels, [(t, float(LIMIT)) for t, _ in tr.samples]))
    return out


def threshold_alert_fires(
    tr: Trace, ratio: float, hold: float, step: float = 30.0, fresh: float = 90.0, window: float = 480.0
) -> float | None:
    """When memprov's usage alert fires on Prometheus' evaluation grid: at each evaluation ``T`` (a
    multiple of ``step``) the working set is the latest sample within ``fresh`` before it, the
    trough the lowest of those values over the evaluations of ``[T - window, T]`` (Prometheus 2
    includes both ends of a range), and the alert fires at the first ``T`` with ``trough / limit >
    ratio`` at every evaluation from ``T - hold`` on."""
    times = [t for t, _ in tr.samples]
    pending: float | None = None
    t = (tr.start // step) * step
    i = 0
    seen: dict[float, float] = {}  # evaluation time -> working set
    while t <= tr.end + fresh:
        while i + 1 < len(times) and times[i + 1] <= t:
            i += 1
        if times[i] <= t and t - times[i] <= fresh:
            seen[t] = tr.samples[i][1]
        recent = [v for u, v in seen.items() if t - window <= u <= t]
        active = t in seen and min(recent) / LIMIT > ratio
        if active:
            pending = t if pending is None else pending
            if t - pending >= hold:
                return t
        else:
            pending = None
        t += step
    return None
