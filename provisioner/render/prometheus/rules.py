"""Prometheus recording and alerting rules for each job: a fast group and, when needed, a slow one.

The fast group (at the evaluation interval) first normalises every runtime to the same
per-instance series (working set, limit) labelled ``memprov_job``/``memprov_env``, then derives
the few series the alerts share: the troughs (rolling minimum over ``trough_window``: the
sawtooth of chunked loading and garbage collection, and transient spikes, removed), the run's
age, and the troughs' velocity once the run has settled. Raw series are read only through
``last_over_time(...[3 scrape intervals])``, so a rule sees a run for exactly as long as it is
scraped, whatever the look-back delta, and every derived series ends with the run: alerts stop
when the run stops. The slow group (every five minutes) holds what moves slowly: the anomaly
reference of previous weeks, the history fallbacks of a job without a baseline, the time-to-OOM
warning tier and the OOM-kill report. Everything learnt from past runs is a constant from the
baseline (:class:`~provisioner.kinds.base.Track`); each alert kind (:mod:`provisioner.kinds`)
writes its own alerts. Names: :mod:`provisioner.kinds.series`.

Why the growth and time-to-OOM rules look at *troughs*: a batch run ramps up while the model
loads, then saw-tooths as chunks load and the garbage collector frees them. ``deriv`` or
``predict_linear`` over the raw working set sees every rising edge as a surge and fires on
every healthy run. The rolling minimum over one sawtooth period (the trough) rises only when
memory is really retained, so its slope is the run's true growth; the warm-up is skipped by
requiring the run to be older than ``warmup`` plus the trough and slope windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from provisioner.core.names import MANAGED_BY
from provisioner.core.promql import duration, number
from provisioner.kinds import ALL as KINDS
from provisioner.kinds import anomaly, baseline, growth, time_to_oom
from provisioner.kinds import series as s
from provisioner.kinds.base import DROP_RATIO, FALL_RATIO, Alert, Facts, KindDef, RuleContext, Track
from provisioner.render.gotext import literal_values
from provisioner.render.prometheus.texts import alert_texts, context_annotations
from provisioner.spec.breaker import rule_labels
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

HISTORY = 14 * 86400.0  # seconds of history the slow group reads when the spec has no baseline
AGE_CAP_MIN = 6 * 3600.0  # the run's age is counted over at least 6 hours ...
AGE_CAP_FACTOR = 2.0  # ... and twice the longest healthy run
MIN_PROMETHEUS = "2.42"  # keep_firing_for
ALERTS = {k.kind.value: k.names for k in KINDS}  # kind -> the alert names it may write, in rendering order


def group_name(spec: ResolvedSpec, job: ResolvedJob) -> str:
    return f"memprov-{spec.env}-{job.id}"


def slow_group_name(spec: ResolvedSpec, job: ResolvedJob) -> str:
    return f"memprov-{spec.env}-{job.id}-slow"


def facts(spec: ResolvedSpec, job: ResolvedJob) -> Facts:
    """The job's memory facts, as its kinds were derived from."""
    b = job.baseline
    return Facts(
        limit=job.limit,
        warning_bytes=job.warning_bytes,
        critical_bytes=job.critical_bytes,
        peak_p50=b.peak_p50 if b else None,
        peak_p95=b.peak_p95 if b else None,
        usual_velocity=job.usual_velocity,
        trough_window=job.trough_window,
        evaluation_interval=spec.evaluation_interval,
        sources=job.sources,
        scrape_interval=spec.scrape_interval,
        history=job.history,
    )


def track(spec: ResolvedSpec, job: ResolvedJob) -> Track:
    """What the job's kinds share: how its series are read, and its healthy track."""
    g, t, a = growth.KIND.of(job), time_to_oom.KIND.of(job), baseline.KIND.of(job)
    h = job.history
    longest = max([h.duration_max or 0.0, *h.weekday_durations.values()])
    return Track(
        fresh=3 * spec.scrape_interval,
        slope_window=g.window,
        trend_window=t.window,
        settle=g.warmup + job.trough_window + g.window,
        age_cap=max(AGE_CAP_MIN, math.ceil(AGE_CAP_FACTOR * longest / 3600) * 3600.0),
        sawtooth=float(h.sawtooth or 0),
        usual=job.usual_velocity,
        floor=a.floor,
        envelope=a.envelope,
        envelope_margin=a.margin,
        p95=float(a.p95) if a.p95 is not None else None,
        factor=a.factor,
        duration=h.duration_max,
        weekday_durations=h.weekday_durations,
        min_remaining=t.min_remaining,
    )


def context(spec: ResolvedSpec, job: ResolvedJob) -> RuleContext:
    """The helpers the job's kinds write their rules with."""
    return RuleContext(spec.env, job.id, facts(spec, job), track(spec, job))


def recordings(ctx: RuleContext, job: ResolvedJob) -> list[dict[str, Any]]:
    """The fast group's shared series: working set, limit, troughs, the run's age, the troughs' slopes."""
    src, t, ref = job.sources, ctx.track, ctx.ref
    keep = ", ".join(dict.fromkeys((*src.group_by, src.node_label)))
    fresh = duration(t.fresh)
    recent = src.recent(fresh)
    if job.runtime == "process":  # memprov run exports 0 between runs: a run is where it is above 0
        recent = f"{recent} > 0"
    limit_src = src.recent_limit(fresh)
    limit = (
        f"max by ({ctx.by}) ({limit_src})"
        if limit_src
        else f"max by ({ctx.by}) ({ref(s.WS)}) * 0 + {job.limit}"  # no limit series: the spec's
    )
    ws, trough, age = ref(s.WS), ref(s.TROUGH), ref(s.AGE)
    interval = ctx.facts.evaluation_interval
    out = [
        ctx.record(s.WS, f"max by ({keep}) (\n  {recent}\n)"),
        ctx.record(s.LIMIT, limit),
        ctx.record(s.TROUGH, f"min_over_time({ws}[{ctx.trough}])\nand\n{ws}"),
        ctx.record(s.AGE, f"count_over_time({ws}[{duration(t.age_cap)}]) * {number(interval)}\nand\n{ws}"),
    ]
    for name, window in ((s.VELOCITY, t.slope_window), (s.TREND, t.trend_window)):
        if name == s.TREND and ctx.slope != s.TREND:
            continue
        span = duration(job.trough_window + window)
        settled = (  # past the model load, and no restart within the trough and slope windows: no deep
            # dip of the working set, and the troughs not below where they were (memory given back)
            f"and {age} >= {number(t.settle)}\n"
            f"and min_over_time({ws}[{span}]) > {number(DROP_RATIO)} * {trough}\n"
            f"and {trough} > {number(FALL_RATIO)} * max_over_time({trough}[{span}])"
        )
        out.append(ctx.record(name, f"deriv({trough}[{duration(window)}])\n{settled}"))
    out.append(ctx.record(s.JOB_WS, f"max by (memprov_job, memprov_env) ({ws})"))
    return out


def slow_recordings(ctx: RuleContext, job: ResolvedJob) -> list[dict[str, Any]]:
    """History fallbacks of a job without a baseline: the usual velocity, the p95 peak of recent runs."""
    t, out = ctx.track, []
    h = duration(HISTORY)
    if t.usual is None and (growth.KIND.of(job).enabled or time_to_oom.KIND.of(job).enabled):
        expr = f"quantile(0.5, quantile_over_time(0.5, {ctx.ref(s.VELOCITY)}[{h}]))"
        out.append(ctx.record(s.BASELINE_VELOCITY, expr))
    if not t.has_envelope and t.p95 is None and (baseline.KIND.of(job).enabled or time_to_oom.KIND.of(job).enabled):
        expr = f"quantile(0.95, max_over_time({ctx.ref(s.WS)}[{h}]))"
        out.append(ctx.record(s.BASELINE_PEAK, expr, quantile="0.95"))
    return out


@dataclass(frozen=True)
class JobRules:
    """A job's rules before labels and texts: what both the rendered groups and validate's parse see."""

    fast: list[dict[str, Any]]  # recording rules of the fast group
    slow: list[dict[str, Any]]  # recording rules of the slow group
    alerts: list[tuple[KindDef[Any, Any], Alert]]


def job_rules(spec: ResolvedSpec, job: ResolvedJob) -> JobRules:
    """Every rule of the job's groups, in rendering order, without labels and texts."""
    ctx = context(spec, job)
    fast, slow = recordings(ctx, job), slow_recordings(ctx, job)
    enabled = [(k, k.of(job)) for k in KINDS if k.of(job).enabled]
    for kind, params in enabled:
        fast += kind.recordings(ctx, params)
        slow += kind.slow_recordings(ctx, params)
    alerts = [(kind, a) for kind, params in enabled for a in kind.alerts(ctx, params)]
    return JobRules(fast, slow, alerts)


def context_labels(spec: ResolvedSpec, job: ResolvedJob, severity: str, kind: str) -> dict[str, str]:
    """Labels every alert carries: who, what, where; used for routing, grouping and inhibition."""
    return {
        "severity": severity,
        "memprov_kind": kind,
        "memprov_job": job.id,
        "memprov_env": spec.env,
        "team": job.team,
        "owner": job.owner,
        "model": job.model_name,
        "model_version": job.model_version,
        "managed_by": MANAGED_BY,
        **job.labels,
        **rule_labels(spec.environment.breaker, job.breaker, severity, kind),
    }


def _rule(spec: ResolvedSpec, job: ResolvedJob, kind: str, alert: Alert, texts: dict[str, str]) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr, "for": duration(alert.hold)}
    if alert.keep:
        rule["keep_firing_for"] = duration(alert.keep)
    rule["labels"] = literal_values(context_labels(spec, job, alert.severity, kind))  # Go-templated
    rule["annotations"] = {**context_annotations(spec, job, alert.scope), **texts}
    return rule


def rule_groups(spec: ResolvedSpec, job: ResolvedJob) -> list[dict[str, Any]]:
    """The job's rule groups: the fast one (recordings, then alerts), then the slow one if it has rules
    (recordings first: its alerts read them)."""
    found, texts = job_rules(spec, job), alert_texts(spec, job)
    fast, slow = list(found.fast), list(found.slow)
    for kind, alert in found.alerts:
        (slow if alert.slow else fast).append(_rule(spec, job, kind.kind.value, alert, texts.get(alert.name, {})))
    groups = [{"name": group_name(spec, job), "interval": duration(spec.evaluation_interval), "rules": fast}]
    if slow:
        interval = duration(context(spec, job).track.slow_interval)
        groups.append({"name": slow_group_name(spec, job), "interval": interval, "rules": slow})
    return groups


def rule_group(spec: ResolvedSpec, job: ResolvedJob) -> dict[str, Any]:
    """The job's fast group (see :func:`rule_groups` for all of them)."""
    return rule_groups(spec, job)[0]


def alert_names(job: ResolvedJob) -> list[str]:
    """Alert names the job's groups may contain, given which kinds are enabled."""
    names = [n for k in KINDS if k.of(job).enabled and k.unexpressed(k.of(job)) is None for n in k.names]
    if time_to_oom.KIND.of(job).warning_horizon is None and "BatchJobMemoryTimeToOOMWarning" in names:
        names.remove("BatchJobMemoryTimeToOOMWarning")
    return names


def retention_needed(spec: ResolvedSpec, job: ResolvedJob) -> list[tuple[str, float, str]]:
    """How much history the job's rules read: ``(setting, seconds, what needs it)``, longest first."""
    t, a, out = track(spec, job), anomaly.KIND.of(job), []
    out.append(("trough_window", t.age_cap, "the run's age (the envelope, the projection's end) is counted over it"))
    if a.enabled:
        out.append(("anomaly.min_weeks", a.min_weeks * a.compare + a.window, "the anomaly alert needs that many weeks"))
        out.append(("anomaly.weeks", a.weeks * a.compare + a.window, "older weeks are compared with when present"))
    if t.usual is None or (not t.has_envelope and t.p95 is None):
        out.append(("memory.baseline", HISTORY, "without a baseline, the usual velocity and p95 are learnt from it"))
    return sorted(out, key=lambda x: -x[1])
