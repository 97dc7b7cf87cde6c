"""Scoring firing episodes against the traces' ground truth, per alert and per group of alerts.

Only ``warning`` and ``critical`` alerts count, and not ``oom_killed`` (it reports the kill after
the fact). An episode belongs to the run of the pod it names; an alert without a pod label (a
job-level one) belongs to the job's run that started last before it fired. Only runs of the scored
days count. A *view* is a set of alerts scored as one: a single alert, or "any warning", "any
critical", "any alert" (the episodes of its alerts on one run merged where they overlap, as one
notification would be). For each view:

- an incident is *caught* when an episode of one of the view's alerts starts on its run between the
  onset and the OOM; the lead is OOM minus the first such start, the best possible lead OOM minus
  the onset (misses count as a lead of 0 in the fractions);
- a *false alarm* is an episode on a healthy run (per 100 healthy runs); *healthy runs alerted*
  counts the runs with at least one;
- a *flap* is an episode that starts within 10 minutes after the previous one of the same alert and
  labels (or, in a merged view, of the same run) resolved, per 100 scored runs;
- drift runs are counted apart: *warned* (a warning of the view fired) and *paged* (a critical);
- an *outside-run* episode starts more than two minutes after the last sample of the series it
  names (its pod; for a job-level alert, the run), or where no run is.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracegen import INCIDENTS, MIN, Run

COUNTED = ("warning", "critical")
NOT_COUNTED_KINDS = ("oom_killed",)
FLAP_GAP = 10 * MIN
OUTSIDE_SLACK = 2 * MIN
TARGET_FRACTION = 0.70  # mean lead / best possible lead, surges and leaks, misses as 0
TARGET_WARNINGS, TARGET_CRITICALS, TARGET_FLAPS = 1.0, 0.3, 1.0  # per 100 healthy (or all) runs


@dataclass(frozen=True)
class Ep:
    """One firing episode, as the benchmark keeps it (plain data, JSON-friendly)."""

    alert: str
    severity: str
    pod: str  # "" for job-level alerts
    job: str
    key: str  # the alert's identity (labels), to find flaps
    start: float
    end: float | None  # None: still firing at the end of the evaluation

    def as_list(self) -> list[Any]:
        return [self.alert, self.severity, self.pod, self.job, self.key, self.start, self.end]


@dataclass
class Tally:
    """The counts of one view over some runs; tallies of several seeds add up."""

    caught: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INCIDENTS, 0))
    incidents: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INCIDENTS, 0))
    leads: list[float] = field(default_factory=list)  # minutes, caught surges and leaks
    fractions: list[float] = field(default_factory=list)  # lead / best, surges and leaks, misses as 0
    healthy: int = 0
    false_alarms: int = 0
    healthy_alerted: int = 0
    runs: int = 0
    flaps: int = 0
    drift: int = 0
    drift_warned: int = 0
    drift_paged: int = 0
    outside: int = 0

    def add(self, other: Tally) -> None:
        for k in INCIDENTS:
            self.caught[k] += other.caught[k]
            self.incidents[k] += other.incidents[k]
        self.leads += other.leads
        self.fractions += other.fractions
        for name in ("healthy", "false_alarms", "healthy_alerted", "runs", "flaps", "drift"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.drift_warned += other.drift_warned
        self.drift_paged += other.drift_paged
        self.outside += other.outside

    # --- the figures -----------------------------------------------------------------------------
    def per100(self, n: int, of: int) -> float:
        return 100 * n / of if of else 0.0

    @property
    def surge_leak(self) -> tuple[int, int]:
        return self.caught["surge"] + self.caught["leak"], self.incidents["surge"] + self.incidents["leak"]

    @property
    def mean_fraction(self) -> float | None:
        return statistics.fmean(self.fractions) if self.fractions else None

    @property
    def false_alarm_rate(self) -> float:
        return self.per100(self.false_alarms, self.healthy)

    @property
    def flap_rate(self) -> float:
        return self.per100(self.flaps, self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def counted(e: Ep) -> bool:
    return e.severity in COUNTED


class Truth:
    """Which run and which series an episode belongs to."""

    def __init__(self, runs: Sequence[Run]) -> None:
        self.pod_run = {p.name: r for r in runs for p in r.pods}
        self.pod_end = {p.name: p.samples[-1][0] for r in runs for p in r.pods if p.samples}
        self.by_job: dict[str, list[Run]] = defaultdict(list)
        for r in sorted(runs, key=lambda r: r.start):
            self.by_job[r.job].append(r)
        self.starts = {job: [r.start for r in rs] for job, rs in self.by_job.items()}

    def run_of(self, e: Ep) -> Run | None:
        if e.pod:
            return self.pod_run.get(e.pod)
        i = bisect.bisect_right(self.starts.get(e.job, []), e.start) - 1
        return self.by_job[e.job][i] if i >= 0 else None

    def outside(self, e: Ep, run: Run | None) -> bool:
        if run is None:
            return True
        end = self.pod_end.get(e.pod, run.end) if e.pod else run.end
        return e.start > end + OUTSIDE_SLACK or e.start < run.start


def _merge(episodes: Iterable[Ep]) -> list[tuple[float, float | None]]:
    """Overlapping firing intervals joined (an open one, end None, swallows everything after it)."""
    out: list[tuple[float, float | None]] = []
    for e in sorted(episodes, key=lambda e: e.start):
        if out:
            start, end = out[-1]
            if end is None or e.start <= end:
                out[-1] = (start, None if end is None or e.end is None else max(end, e.end))
                continue
        out.append((e.start, e.end))
    return out


def _flaps(intervals: Sequence[tuple[float, float | None]]) -> int:
    n = 0
    for (_, prev_end), (start, _) in itertools.pairwise(intervals):
        if prev_end is not None and start - prev_end <= FLAP_GAP:
            n += 1
    return n


def tally(episodes: Sequence[Ep], runs: Sequence[Run], scored: Sequence[Run], merged: bool) -> Tally:
    """The tally of one view (``episodes``: already only the view's counted ones) over ``scored`` runs."""
    truth = Truth(runs)
    wanted = {id(r) for r in scored}
    per_run: dict[int, list[Ep]] = defaultdict(list)
    out = Tally(runs=len(scored))
    for e in episodes:
        run = truth.run_of(e)
        if run is not None and id(run) not in wanted:
            continue
        if run is None:
            continue  # before any run of the job: not on a scored day either
        if truth.outside(e, run):
            out.outside += 1
        per_run[id(run)].append(e)
    for run in scored:
        eps = per_run.get(id(run), [])
        if run.kind in INCIDENTS:
            assert run.onset is not None and run.oom is not None
            out.incidents[run.kind] += 1
            starts = [e.start for e in eps if run.onset <= e.start <= run.oom]
            lead = run.oom - min(starts) if starts else None
            if lead is not None:
                out.caught[run.kind] += 1
            if run.kind in ("surge", "leak"):
                out.fractions.append((lead or 0.0) / (run.oom - run.onset))
                if lead is not None:
                    out.leads.append(lead / MIN)
        elif run.kind == "drift":
            out.drift += 1
            out.drift_warned += any(e.severity == "warning" for e in eps)
            out.drift_paged += any(e.severity == "critical" for e in eps)
        else:
            out.healthy += 1
            n = len(_merge(eps)) if merged else len(eps)
            out.false_alarms += n
            out.healthy_alerted += n > 0
        if merged:
            out.flaps += _flaps(_merge(eps))
        else:
            by_key: dict[str, list[Ep]] = defaultdict(list)
            for e in eps:
                by_key[e.key].append(e)
            for group in by_key.values():
                out.flaps += _flaps([(e.start, e.end) for e in sorted(group, key=lambda e: e.start)])
    return out


def views(episodes: Sequence[Ep], alerts: Sequence[str]) -> dict[str, tuple[list[Ep], bool]]:
    """The views of one rule set: "any alert", "any warning", "any critical", then each alert."""
    mine = [e for e in episodes if counted(e)]
    out: dict[str, tuple[list[Ep], bool]] = {
        "any alert": (mine, True),
        "any warning": ([e for e in mine if e.severity == "warning"], True),
        "any critical": ([e for e in mine if e.severity == "critical"], True),
    }
    for name in alerts:
        out[name] = ([e for e in mine if e.alert == name], False)
    return out


def score_seed(
    rule_sets: dict[str, list[Ep]], alerts: dict[str, list[str]], runs: Sequence[Run], first_day: int
) -> dict[str, dict[str, dict[str, Tally]]]:
    """``{rule set: {view: {"all" | regime: Tally}}}`` for the runs of ``first_day`` on."""
    scored = [r for r in runs if r.day >= first_day]
    regimes = sorted({r.regime for r in runs})
    out: dict[str, dict[str, dict[str, Tally]]] = {}
    for name, episodes in rule_sets.items():
        out[name] = {}
        for view, (eps, merged) in views(episodes, alerts[name]).items():
            row = {"all": tally(eps, runs, scored, merged)}
            for regime in regimes:
                row[regime] = tally(eps, runs, [r for r in scored if r.regime == regime], merged)
            out[name][view] = row
    return out
