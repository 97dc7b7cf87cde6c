"""``memprov backtest``: when each alert of the rendered rules would have fired on past runs.

The rendered rule groups are evaluated over history by Prometheus itself (recording rules
inlined, ``query_range`` at the group's interval, Prometheus' ``for``/``keep_firing_for`` state
machine: :mod:`provisioner.analysis.evaluate`). Runs come from :mod:`provisioner.history.prometheus`; a run that
ended at its limit is an OOM kill. Per job and alert: firing episodes, OOM kills, how long
before each OOM the first warning or critical alert fired (lead time), episodes on runs that
finished without an OOM (false alarms, per 100 such runs), and flaps (the same alert and labels
firing again within ten minutes of resolving).

The state machine starts empty at the window's start, so the first minutes of the window may
see an alert later than Prometheus would have; the evaluation starts the longest ``for`` early.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from provisioner.analysis.evaluate.alerts import Episode, duration, evaluate_alert
from provisioner.analysis.evaluate.inline import inline_groups
from provisioner.history.prometheus import Querier, Run, read_runs
from provisioner.render.prometheus.rules import rule_groups
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

FLAP_WINDOW = 600.0
RUN_TAIL = 1800.0  # alerts evaluated this long after each run's end (OOM-killed reports, job-level alerts)
SCORED = ("warning", "critical")


@dataclass
class Oom:
    run: str
    at: float
    first_alert: str | None = None
    lead: float | None = None  # seconds before the OOM the first warning/critical episode started


@dataclass
class AlertStats:
    alert: str
    severity: str
    episodes: int = 0
    runs_fired: int = 0
    false_alarms: int = 0  # episodes on runs that finished without an OOM
    flaps: int = 0
    first: int = 0  # OOMs it was the first to warn of


@dataclass
class SeverityStats:
    """Every alert of one severity as one notification stream: overlapping episodes of a run merged."""

    severity: str
    false_alarms: int = 0  # merged episodes on runs that finished without an OOM
    runs_alerted: int = 0  # such runs with at least one


@dataclass
class JobResult:
    job: str
    runs: list[Run]
    episodes: list[Episode]
    ooms: list[Oom] = field(default_factory=list)
    alerts: dict[str, AlertStats] = field(default_factory=dict)
    severities: dict[str, SeverityStats] = field(default_factory=dict)

    @property
    def healthy_runs(self) -> int:
        return sum(not r.oom for r in self.runs)

    @property
    def false_alarms(self) -> int:
        return sum(a.false_alarms for a in self.alerts.values() if a.severity in SCORED)

    @property
    def false_alarm_rate(self) -> float | None:
        return 100 * self.false_alarms / self.healthy_runs if self.healthy_runs else None

    @property
    def caught(self) -> int:
        return sum(o.lead is not None for o in self.ooms)

    @property
    def median_lead(self) -> float | None:
        leads = [o.lead for o in self.ooms if o.lead is not None]
        return statistics.median(leads) if leads else None

    @property
    def flaps(self) -> int:
        return sum(a.flaps for a in self.alerts.values())


def windows(runs: Sequence[Run], start: float, end: float, before: float, after: float) -> list[tuple[float, float]]:
    """The stretches of ``[start, end]`` around runs (``before`` each start, ``after`` each end), merged.

    A batch job's alerts can only fire while it runs (and shortly after, ``keep_firing_for``), so
    the rules are evaluated there only: a year of daily one-hour runs is a year of hours, not of
    days.
    """
    out: list[tuple[float, float]] = []
    for run in sorted(runs, key=lambda r: r.start):
        lo, hi = max(start, run.start - before), min(end, run.end + after)
        if hi < lo:
            continue
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def evaluate_job(
    prom: Querier,
    spec: ResolvedSpec,
    job: ResolvedJob,
    runs: Sequence[Run],
    start: float,
    end: float,
    groups: list[dict[str, Any]] | None = None,
) -> list[Episode]:
    """Episodes of every alert of ``job``'s rule groups (``groups``: another revision's) around its runs."""
    groups = groups or rule_groups(spec, job)
    rules = inline_groups(groups)
    hold = max((duration(r.get("for")) for r, _ in rules), default=0.0)
    keep = max((duration(r.get("keep_firing_for")) for r, _ in rules), default=0.0)
    step = max((duration(i) for _, i in rules), default=spec.evaluation_interval)
    spans = windows(runs, start, end, hold + 2 * step, keep + hold + RUN_TAIL)
    episodes = [
        e for r, interval in rules for lo, hi in spans for e in evaluate_alert(prom, r, lo, hi, duration(interval))
    ]
    return sorted(episodes, key=lambda e: (e.start, e.alert, e.labels))


def owner_run(
    episode: Episode, runs: Sequence[Run], starts: Sequence[float], instance_keys: Sequence[str]
) -> Run | None:
    """The run an episode belongs to: the one of the instance it names, else the job's latest run started before."""
    labels = episode.label
    instance = tuple((k, labels[k]) for k in instance_keys if k in labels)
    if instance and len(instance) == len(instance_keys):
        for run in runs:
            if run.instance == instance and run.start - 600 <= episode.start <= run.end + FLAP_WINDOW:
                return run
    i = bisect.bisect_right(starts, episode.start) - 1
    return runs[i] if i >= 0 else None


def score(job: ResolvedJob, runs: list[Run], episodes: list[Episode], severities: dict[str, str]) -> JobResult:
    result = JobResult(job.id, runs, episodes)
    runs = sorted(runs, key=lambda r: r.start)
    starts = [r.start for r in runs]
    keys = list(job.sources.group_by)
    for name, severity in severities.items():
        result.alerts[name] = AlertStats(name, severity)
    fired: dict[str, set[str]] = {}
    owners: list[tuple[Episode, Run | None]] = [(e, owner_run(e, runs, starts, keys)) for e in episodes]
    for e, run in owners:
        stats = result.alerts.setdefault(e.alert, AlertStats(e.alert, e.severity))
        stats.episodes += 1
        if run is not None:
            fired.setdefault(e.alert, set()).add(run.name)
            if not run.oom and run.start <= e.start <= run.end + FLAP_WINDOW:
                stats.false_alarms += 1
    for name, names in fired.items():
        result.alerts[name].runs_fired = len(names)
    for severity in SCORED:
        sev = result.severities[severity] = SeverityStats(severity)
        for run in runs:
            if run.oom:
                continue
            mine = [e for e, owner in owners if owner is run and e.severity == severity]
            merged = _merged(e for e in mine if run.start <= e.start <= run.end + FLAP_WINDOW)
            sev.false_alarms += merged
            sev.runs_alerted += merged > 0
    last_end: dict[tuple[str, tuple[tuple[str, str], ...]], float | None] = {}
    for e in episodes:
        key = (e.alert, e.labels)
        previous = last_end.get(key)
        if key in last_end and previous is not None and e.start - previous <= FLAP_WINDOW:
            result.alerts[e.alert].flaps += 1
        last_end[key] = e.end
    for run in runs:
        if not run.oom:
            continue
        oom = Oom(run.name, run.end)
        before = [
            e
            for e, owner in owners
            if owner is run
            and e.severity in SCORED
            and run.start <= e.start <= run.end
            and (e.end is None or e.end > e.start)
        ]
        if before:
            first = min(before, key=lambda e: e.start)
            oom.first_alert, oom.lead = first.alert, run.end - first.start
            result.alerts[first.alert].first += 1
        result.ooms.append(oom)
    return result


def _merged(episodes: Iterable[Episode]) -> int:
    """How many notifications overlapping episodes make (an episode still firing swallows the rest)."""
    count, end, firing = 0, 0.0, False
    for e in sorted(episodes, key=lambda e: e.start):
        if count and (firing or e.start <= end):
            firing = firing or e.end is None
            end = max(end, e.end or end)
            continue
        count, end, firing = count + 1, e.end or e.start, e.end is None
    return count


def backtest(
    prom: Querier,
    spec: ResolvedSpec,
    jobs: Iterable[ResolvedJob],
    start: float,
    end: float,
    groups: dict[str, list[dict[str, Any]]] | None = None,
) -> list[JobResult]:
    """Runs, episodes and scores of each job (``groups``: rule groups to use instead of ``spec``'s, by job id)."""
    out = []
    for job in jobs:
        runs = read_runs(prom, spec, job, start, end)
        mine = (groups or {}).get(job.id) or rule_groups(spec, job)
        severities = {
            str(r["alert"]): str((r.get("labels") or {}).get("severity", ""))
            for g in mine
            for r in g["rules"]
            if "alert" in r
        }
        episodes = evaluate_job(prom, spec, job, runs, start, end, mine)
        out.append(score(job, runs, episodes, severities))
    return out
