"""Scoring firing episodes against the traces' ground truth, and the Markdown tables of the benchmark.

Only warning and critical alerts count (an ``info`` alert pages nobody), and not ``oom_killed``
(it reports the kill after the fact). An episode belongs to the run whose pod it names; an alert
without a pod label (a job-level one: baseline, anomaly) belongs to the job's run that started
last before it fired. For each rule set:

- an incident is *caught* when an episode of its run starts between the onset and the OOM; the
  lead time is OOM minus the first such start, the best possible lead is OOM minus onset;
- a *false alarm* is an episode of a healthy or spiky run (per 100 such runs);
- a *flap* is an episode of the same alert and labels that starts within 10 minutes after the
  previous one resolved;
- drift runs are counted apart: warned (a warning fired) and paged (a critical fired).
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracegen import HEALTHY, INCIDENTS, MIN, Run

from provisioner.analysis.evaluate.alerts import Episode

COUNTED_SEVERITIES = ("warning", "critical")
NOT_COUNTED_KINDS = ("oom_killed",)
FLAP_GAP = 10 * MIN
TARGET_FRACTION, TARGET_FALSE_ALARMS = 0.7, 1.0


@dataclass
class Catch:
    run: Run
    first: Episode | None  # the first episode of the run starting in [onset, oom]
    alerts: list[str]  # every alert that fired in the window, in order

    @property
    def lead(self) -> float | None:
        return None if self.first is None or self.run.oom is None else self.run.oom - self.first.start

    @property
    def best(self) -> float:
        assert self.run.oom is not None and self.run.onset is not None
        return self.run.oom - self.run.onset

    @property
    def fraction(self) -> float | None:
        return None if self.lead is None else self.lead / self.best


@dataclass
class Score:
    name: str
    catches: list[Catch] = field(default_factory=list)
    false_alarms: list[tuple[Episode, Run]] = field(default_factory=list)
    healthy_runs: Counter[str] = field(default_factory=Counter)
    flaps: list[tuple[Episode, Run]] = field(default_factory=list)
    drift: dict[str, set[str]] = field(default_factory=lambda: {"warning": set(), "critical": set()})
    drift_runs: int = 0
    drift_episodes: list[tuple[Episode, Run]] = field(default_factory=list)
    unattributed: int = 0
    episodes: int = 0

    def caught(self, kinds: Iterable[str]) -> tuple[int, int]:
        rows = [c for c in self.catches if c.run.kind in kinds]
        return sum(c.first is not None for c in rows), len(rows)

    def median(self, what: str, kinds: Sequence[str] = INCIDENTS, missed_as_zero: bool = False) -> float | None:
        values = []
        for c in self.catches:
            if c.run.kind in kinds:
                value = c.lead if what == "lead" else c.fraction
                if value is not None or missed_as_zero:
                    values.append(value or 0.0)
        return statistics.median(values) if values else None

    def false_alarm_rate(self) -> float:
        runs = sum(self.healthy_runs.values())
        return 100 * len(self.false_alarms) / runs if runs else 0.0


def counted(e: Episode) -> bool:
    return e.severity in COUNTED_SEVERITIES and e.label.get("memprov_kind") not in NOT_COUNTED_KINDS


class Attribution:
    """Which run an episode belongs to: by pod, else the job's latest run started before it."""

    def __init__(self, runs: Sequence[Run]) -> None:
        self.by_pod = {r.pod: r for r in runs}
        self.by_job: dict[str, list[Run]] = defaultdict(list)
        for r in sorted(runs, key=lambda r: r.start):
            self.by_job[r.job].append(r)
        self.starts = {job: [r.start for r in rs] for job, rs in self.by_job.items()}

    def __call__(self, e: Episode) -> Run | None:
        labels = e.label
        if "pod" in labels:
            return self.by_pod.get(labels["pod"])
        job = labels.get("memprov_job", "")
        i = bisect.bisect_right(self.starts.get(job, []), e.start) - 1
        return self.by_job[job][i] if i >= 0 else None


def score(name: str, episodes: Sequence[Episode], runs: Sequence[Run]) -> Score:
    scored_runs = [r for r in runs if r.scored]
    result = Score(name)
    result.healthy_runs = Counter(r.kind for r in scored_runs if r.kind in HEALTHY)
    result.drift_runs = sum(r.kind == "drift" for r in scored_runs)
    attribute = Attribution(runs)
    per_run: dict[str, list[Episode]] = defaultdict(list)
    for e in episodes:
        if not counted(e):
            continue
        run = attribute(e)
        if run is None or not run.scored:
            result.unattributed += run is None
            continue
        result.episodes += 1
        per_run[run.pod].append(e)
        if run.kind in HEALTHY:
            result.false_alarms.append((e, run))
        elif run.kind == "drift":
            result.drift[e.severity].add(run.pod)
            result.drift_episodes.append((e, run))
    for run in scored_runs:
        if run.incident:
            assert run.onset is not None and run.oom is not None
            window = sorted((e for e in per_run[run.pod] if run.onset <= e.start <= run.oom), key=lambda e: e.start)
            alerts = list(dict.fromkeys(e.alert for e in window))
            result.catches.append(Catch(run, window[0] if window else None, alerts))
    by_identity: dict[tuple[str, Any], list[tuple[Episode, Run]]] = defaultdict(list)
    for pod, eps in per_run.items():
        for e in eps:
            by_identity[(e.alert, e.labels)].append((e, attribute.by_pod[pod]))
    for series in by_identity.values():
        series.sort(key=lambda x: x[0].start)
        for (prev, _), (nxt, flapping) in itertools.pairwise(series):
            if prev.end is not None and nxt.start - prev.end <= FLAP_GAP:
                result.flaps.append((nxt, flapping))
    return result
