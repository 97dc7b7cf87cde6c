"""A deterministic synthetic run of each job, and the value of a dashboard query over it.

The preview draws what a dashboard would show during a typical run: the model loads (a ramp),
then chunks are processed (a sawtooth whose peaks creep from the baseline p50 towards the p95),
on two instances on two nodes, over the dashboards' default six hours. No randomness and no
clock: the same spec gives the same pictures. :func:`evaluate` recognises the recording-rule
series of :mod:`provisioner.kinds.series` in a panel's PromQL and returns the matching
synthetic series; it is a picture aid, not a PromQL engine.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

from provisioner.kinds import growth
from provisioner.kinds import series as s
from provisioner.spec.resolved import ResolvedJob

MINUTES = 360  # the dashboards' default range: now-6h
START, END = 30, 330  # the run, in minutes from the left edge
Series = list[float | None]


@dataclass(frozen=True)
class JobSample:
    """One job's synthetic run: per-instance working set (bytes) per minute, and its parameters."""

    job: ResolvedJob

    @property
    def limit(self) -> float:
        return float(self.job.limit)

    @property
    def p50(self) -> float:
        b = self.job.baseline
        return float(b.peak_p50) if b and b.peak_p50 else 0.55 * self.limit

    @property
    def p95(self) -> float:
        b = self.job.baseline
        return float(b.peak_p95) if b and b.peak_p95 else max(self.p50 * 1.1, 0.65 * self.limit)

    @property
    def baseline_velocity(self) -> float:
        """Bytes per second."""
        b = self.job.baseline
        return b.velocity / 60 if b and b.velocity else (self.p95 - self.p50) / (END - START) / 60

    def _instance(self, phase: float, scale: float) -> Series:
        out: Series = []
        period = max(2.0, self.job.trough_window / 60)  # one chunk per trough window, as the rules assume
        for t in range(MINUTES + 1):
            if not START <= t <= END:
                out.append(None)
                continue
            run = t - START
            load = min(1.0, run / 15)  # the model-load ramp
            peak = self.p50 * 0.9 + (self.p95 * 0.97 - self.p50 * 0.9) * run / (END - START)
            floor = 0.6 * peak
            saw = ((run + phase) % period) / period  # chunk after chunk: rise, then the GC frees it
            out.append(scale * load * (floor + (peak - floor) * saw))
        return out

    @cached_property
    def instances(self) -> list[Series]:
        period = max(2.0, self.job.trough_window / 60)
        return [self._instance(0, 1.0), self._instance(period / 2, 0.93)]

    @cached_property
    def troughs(self) -> list[Series]:
        window = max(1, round(self.job.trough_window / 60))
        return [
            [None if ws[t] is None else _min(ws[max(0, t - window) : t + 1]) for t in range(len(ws))]
            for ws in self.instances
        ]

    @cached_property
    def velocities(self) -> list[Series]:
        window = max(2, round(growth.KIND.of(self.job).window / 60))
        out = []
        for tr in self.troughs:
            row: Series = []
            for t in range(len(tr)):
                a, b = tr[max(0, t - window)], tr[t]
                row.append((b - a) / (window * 60) if a is not None and b is not None and t >= window else None)
            out.append(row)
        return out

    def time_to_oom(self, i: int) -> Series:
        out: Series = []
        for ws, v in zip(self.instances[i], self.velocities[i], strict=True):
            out.append((self.limit - ws) / v if ws is not None and v is not None and v > 0 else None)
        return out

    @cached_property
    def job_ws(self) -> Series:
        return [_max(vals) for vals in zip(*self.instances, strict=True)]

    @cached_property
    def zscore(self) -> Series:
        return [None if w is None else 0.9 * math.sin(t / 35) + 0.6 for t, w in enumerate(self.job_ws)]

    def constant(self, value: float) -> Series:
        return [value if w is not None else None for w in self.job_ws]


def _min(values: Series) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _max(values: tuple[float | None, ...] | Series) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _running_max(values: Series) -> Series:
    out: Series = []
    best: float | None = None
    for v in values:
        best = v if best is None or (v is not None and v > best) else best
        out.append(best)
    return out


INSTANCE_LABELS = (
    {"pod": "worker-0", "node": "node-a", "instance": "10.0.0.11"},
    {"pod": "worker-1", "node": "node-b", "instance": "10.0.0.12"},
)


def _legend(fmt: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), m.group(1)), fmt).strip() or "value"


def evaluate(expr: str, legend: str, sample: JobSample) -> list[tuple[str, Series]]:
    """The synthetic series a query returns for one job: ``[(name, values)]``."""
    job = sample.job
    labels = [
        {**lab, "container": job.id, "memprov_job": job.id, "namespace": "batch", "groupname": job.id}
        for lab in INSTANCE_LABELS
    ]
    per_instance = "by (memprov_job)" not in expr and not expr.startswith(("max(", "min(", "max_over_time"))

    def each(rows: list[Series]) -> list[tuple[str, Series]]:
        if per_instance:
            return [(_legend(legend, lab), row) for lab, row in zip(labels, rows, strict=True)]
        agg = _min if expr.startswith("min") or "min by" in expr else _max
        return [(_legend(legend, labels[0]), [agg(list(v)) for v in zip(*rows, strict=True)])]

    constant = re.search(r"vector\(([-+\d.e]+)\)", expr)
    if s.TROUGH in expr and s.VELOCITY in expr:  # time to the limit at the troughs' trend
        return each([sample.time_to_oom(0), sample.time_to_oom(1)])
    if s.VELOCITY in expr and s.LIMIT in expr:  # growth per hour as a share of the limit
        return each([[None if v is None else 3600 * v / sample.limit for v in row] for row in sample.velocities])
    if s.BASELINE_VELOCITY in expr or (constant and "velocity" in legend):
        factor = re.match(r"\s*([\d.]+)\s*\*", expr)
        usual = float(constant.group(1)) if constant else sample.baseline_velocity
        return [(legend, sample.constant(usual * (float(factor.group(1)) if factor else 1.0)))]
    if s.VELOCITY in expr:
        return each(sample.velocities)
    if s.HIST_MEAN in expr:
        return [(_legend(legend, labels[0]), sample.zscore)]
    if s.JOB_WS in expr and (s.BASELINE_PEAK in expr or constant):  # peak in range / p95
        return [(legend, [None if v is None else v / sample.p95 for v in _running_max(sample.job_ws)])]
    if s.BASELINE_PEAK in expr:
        return [(legend, sample.constant(sample.p95))]
    if constant:
        return [(legend, sample.constant(float(constant.group(1))))]
    if s.JOB_WS in expr:
        return [(legend or "peak", _running_max(sample.job_ws) if "max_over_time" in expr else sample.job_ws)]
    if s.WS in expr and s.LIMIT in expr and "group_left" in expr:  # share of the limit
        if "by (memprov_job)" in expr:
            return [(_legend(legend, labels[0]), [None if v is None else v / sample.limit for v in sample.job_ws])]
        return each([[None if v is None else v / sample.limit for v in ws] for ws in sample.instances])
    if s.LIMIT in expr and s.WS in expr:  # headroom
        return [(legend or "headroom", [None if v is None else sample.limit - v for v in sample.job_ws])]
    if s.LIMIT in expr:
        return [(legend, sample.constant(sample.limit))]
    if s.WS in expr:
        return each(sample.instances)
    return []
