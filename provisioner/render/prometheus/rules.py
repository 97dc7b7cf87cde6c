"""Prometheus recording and alerting rules for each job (one rule group per job).

Recording rules first normalise every runtime to the same per-instance series (working set,
limit, usage ratio) labelled ``memprov_job``/``memprov_env``; each alert kind
(:mod:`provisioner.kinds`) then writes its alerts against those, so one set of alert expressions
serves Kubernetes, VMs and processes. Names: :mod:`provisioner.kinds.series`.

Why the growth and time-to-OOM rules look at *troughs*: a batch run ramps up while the model
loads, then saw-tooths as chunks load and the garbage collector frees them. ``deriv`` or
``predict_linear`` over the raw working set sees every rising edge as a surge and fires on
every healthy run. The rolling minimum over one sawtooth period (the trough) rises only when
memory is really retained, so its slope is the run's true growth; the warm-up is skipped by
requiring the instance to have existed for ``warmup`` plus the slope window.
"""

from __future__ import annotations

from typing import Any

from provisioner.core.names import MANAGED_BY
from provisioner.core.promql import duration, number
from provisioner.kinds import ALL as KINDS
from provisioner.kinds import growth, time_to_oom
from provisioner.kinds import series as s
from provisioner.kinds.base import Alert, Facts, RuleContext
from provisioner.render.gotext import literal_values
from provisioner.render.prometheus.texts import alert_texts, context_annotations
from provisioner.spec.breaker import rule_labels
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

HISTORY = "14d"  # history used when the spec gives no baseline


def group_name(spec: ResolvedSpec, job: ResolvedJob) -> str:
    return f"memprov-{spec.env}-{job.id}"


def context(spec: ResolvedSpec, job: ResolvedJob) -> RuleContext:
    """The helpers the job's kinds write their rules with."""
    b = job.baseline
    facts = Facts(
        limit=job.limit,
        warning_bytes=job.warning_bytes,
        critical_bytes=job.critical_bytes,
        peak_p50=b.peak_p50 if b else None,
        peak_p95=b.peak_p95 if b else None,
        usual_velocity=job.usual_velocity,
        trough_window=job.trough_window,
        evaluation_interval=spec.evaluation_interval,
        sources=job.sources,
    )
    return RuleContext(spec.env, job.id, facts, settle=growth.KIND.of(job).warmup)


def recordings(ctx: RuleContext, job: ResolvedJob) -> list[dict[str, Any]]:
    """The job's shared series: working set, limit, ratio, troughs, their slopes, baselines."""
    src, ref = job.sources, ctx.ref
    keep = ", ".join(dict.fromkeys((*src.group_by, src.node_label)))
    if src.limit:
        limit = f"max by ({ctx.by}) ({src.limit})"
    else:  # no limit series for this runtime: the spec's limit, on the working set's label set
        limit = f"max by ({ctx.by}) ({src.working_set}) * 0 + {job.limit}"
    out = [
        ctx.record(s.WS, f"max by ({keep}) ({src.working_set})"),
        ctx.record(s.LIMIT, limit),
        ctx.record(s.RATIO, f"{ref(s.WS)}\n  / on ({ctx.by}) group_left\n{ref(s.LIMIT)}"),
        ctx.record(s.TROUGH, f"min_over_time({ref(s.WS)}[{ctx.trough}])"),
        ctx.record(s.VELOCITY, f"deriv({ref(s.TROUGH)}[{duration(growth.KIND.of(job).window)}])"),
        ctx.record(s.TREND, f"deriv({ref(s.TROUGH)}[{duration(time_to_oom.KIND.of(job).window)}])"),
        ctx.record(  # headroom from the sawtooth's estimated peak (2 x mean - floor): robust to spikes
            s.TIME_TO_OOM,
            f"(\n  {ref(s.LIMIT)}\n    - on ({ctx.by}) group_right()\n"
            f"  (2 * avg_over_time({ref(s.WS)}[{ctx.trough}]) - {ref(s.TROUGH)})\n)\n"
            f"/ ({ref(s.TREND)} > 0)",
        ),
        ctx.record(s.JOB_WS, f"max by (memprov_job, memprov_env) ({ref(s.WS)})"),
        ctx.record(s.JOB_VELOCITY, f"max by (memprov_job, memprov_env) ({ref(s.VELOCITY)})"),
    ]
    b = job.baseline
    for quantile, value in (("0.5", b.peak_p50 if b else None), ("0.95", b.peak_p95 if b else None)):
        expr = (
            f"vector({value})" if value is not None else f"quantile_over_time({quantile}, {ref(s.JOB_WS)}[{HISTORY}])"
        )
        out.append(ctx.record(s.BASELINE_PEAK, expr, quantile=quantile))
    velocity = (
        f"vector({number(job.usual_velocity)})"
        if job.usual_velocity is not None
        else f"quantile_over_time(0.5, {ref(s.JOB_VELOCITY)}[{HISTORY}])"
    )
    out.append(ctx.record(s.BASELINE_VELOCITY, velocity))
    return out


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


def rule_group(spec: ResolvedSpec, job: ResolvedJob) -> dict[str, Any]:
    """The job's rule group: the shared recording rules, each enabled kind's recordings, then the alerts."""
    ctx = context(spec, job)
    texts = alert_texts(spec, job)
    rules = recordings(ctx, job)
    enabled = [(k, k.of(job)) for k in KINDS if k.of(job).enabled]
    for kind, params in enabled:
        rules += kind.recordings(ctx, params)
    for kind, params in enabled:
        rules += [_rule(spec, job, kind.kind.value, a, texts.get(a.name, {})) for a in kind.alerts(ctx, params)]
    return {"name": group_name(spec, job), "interval": duration(spec.evaluation_interval), "rules": rules}


def alert_names(job: ResolvedJob) -> list[str]:
    """Alert names the job's group may contain, given which kinds are enabled."""
    return [n for k in KINDS if k.of(job).enabled for n in k.names]
