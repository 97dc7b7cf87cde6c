"""Prometheus recording and alerting rules for each job (one rule group per job).

Recording rules first normalise every runtime to the same per-instance series (working set,
limit, usage ratio) labelled ``memprov_job``/``memprov_env``; alerts are written against those,
so one set of alert expressions serves Kubernetes, VMs and processes. Names: :mod:`series`.

Why the growth and time-to-OOM rules look at *troughs*: a batch run ramps up while the model
loads, then saw-tooths as chunks load and the garbage collector frees them. ``deriv`` or
``predict_linear`` over the raw working set sees every rising edge as a surge and fires on
every healthy run. The rolling minimum over one sawtooth period (the trough) rises only when
memory is really retained, so its slope is the run's true growth; the warm-up is skipped by
requiring the instance to have existed for ``warmup`` plus the slope window.
"""

from __future__ import annotations

from typing import Any

from provisioner.core.errors import Problem, SpecError
from provisioner.core.names import MANAGED_BY
from provisioner.core.units import format_duration, format_size
from provisioner.kinds import series as s
from provisioner.render.templating import render_data
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

ALERTS = {  # kind -> alert names, in rendering order
    "usage": ("BatchJobMemoryWarning", "BatchJobMemoryCritical"),
    "growth": ("BatchJobMemoryGrowthFast",),
    "time_to_oom": ("BatchJobMemoryTimeToOOMWarning", "BatchJobMemoryTimeToOOM"),
    "baseline": ("BatchJobMemoryAboveBaseline",),
    "anomaly": ("BatchJobMemoryAnomaly",),
    "oom_killed": ("BatchJobOOMKilled",),
}
JOB_VELOCITY = "memprov:job_memory_trough_velocity:bytes_per_second"
HIST_MEAN = "memprov:job_memory_history_mean:bytes"
HIST_SD = "memprov:job_memory_history_stddev:bytes"
HISTORY = "14d"  # history used when the spec gives no baseline
ANNOTATIONS = "prometheus/annotations.yaml.j2"
KEEP_USAGE = 300.0  # keep_firing_for of the usage alerts: a sawtooth dipping under the line is not a recovery
KEEP_TREND = 600.0  # ... of the trend alerts (growth, time to OOM): a slope estimate wobbles
KEEP_ANOMALY = 600.0


def growth_floor(job: ResolvedJob) -> float:
    """Bytes per second below which growth never alerts: ``growth.min_velocity``, or the limit per 6 hours.

    Slower growth is what the time-to-OOM warning tier is for; below this, for a job that usually
    barely grows, "3x faster than usual" is within the noise of the slope.
    """
    g = job.growth
    return (g.min_velocity if g.min_velocity is not None else job.limit / 360) / 60


def group_name(spec: ResolvedSpec, job: ResolvedJob) -> str:
    return f"memprov-{spec.env}-{job.id}"


def _num(x: float) -> str:
    """A PromQL number literal, short and exact enough."""
    return f"{x:.6g}" if abs(x) < 1e15 else f"{x:.0f}"


def _dur(seconds: float) -> str:
    return format_duration(seconds)


class _Rules:
    """Builds one job's rule group; a class only to share the job's selector and labels."""

    def __init__(self, spec: ResolvedSpec, job: ResolvedJob) -> None:
        self.spec, self.job = spec, job
        self.labels = {"memprov_job": job.id, "memprov_env": spec.env}
        self.sel = "{" + ", ".join(f'{k}="{v}"' for k, v in self.labels.items()) + "}"
        self.by = ", ".join(job.sources.group_by)
        self.trough = _dur(job.trough_window)
        self.texts = render_data(ANNOTATIONS, spec.base_dir / "templates", **_context(job))
        missing = [n for n in alert_names(job) if not isinstance(self.texts, dict) or n not in self.texts]
        if missing:  # a copy of the template from an older memprov, most likely
            raise SpecError(
                [
                    Problem(
                        f"no summary/description for {', '.join(missing)}; add an entry per alert "
                        "(see the template memprov ships, or `memprov init` a scratch directory to get a copy)",
                        ANNOTATIONS,
                    )
                ]
            )

    def ref(self, name: str) -> str:
        return f"{name}{self.sel}"

    def record(self, name: str, expr: str, **extra: str) -> dict[str, Any]:
        return {"record": name, "expr": expr, "labels": {**self.labels, **extra}}

    # --- recording rules ------------------------------------------------------------------
    def recordings(self) -> list[dict[str, Any]]:
        job, src = self.job, self.job.sources
        keep = ", ".join(dict.fromkeys((*src.group_by, src.node_label)))
        if src.limit:
            limit = f"max by ({self.by}) ({src.limit})"
        else:  # no limit series for this runtime: the spec's limit, on the working set's label set
            limit = f"max by ({self.by}) ({src.working_set}) * 0 + {job.limit}"
        out = [
            self.record(s.WS, f"max by ({keep}) ({src.working_set})"),
            self.record(s.LIMIT, limit),
            self.record(s.RATIO, f"{self.ref(s.WS)}\n  / on ({self.by}) group_left\n{self.ref(s.LIMIT)}"),
            self.record(s.TROUGH, f"min_over_time({self.ref(s.WS)}[{self.trough}])"),
            self.record(s.VELOCITY, f"deriv({self.ref(s.TROUGH)}[{_dur(job.growth.window)}])"),
            self.record(s.TREND, f"deriv({self.ref(s.TROUGH)}[{_dur(job.time_to_oom.window)}])"),
            self.record(  # headroom from the sawtooth's estimated peak (2 x mean - floor): robust to spikes
                s.TIME_TO_OOM,
                f"(\n  {self.ref(s.LIMIT)}\n    - on ({self.by}) group_right()\n"
                f"  (2 * avg_over_time({self.ref(s.WS)}[{self.trough}]) - {self.ref(s.TROUGH)})\n)\n"
                f"/ ({self.ref(s.TREND)} > 0)",
            ),
            self.record(s.JOB_WS, f"max by (memprov_job, memprov_env) ({self.ref(s.WS)})"),
            self.record(JOB_VELOCITY, f"max by (memprov_job, memprov_env) ({self.ref(s.VELOCITY)})"),
        ]
        b = job.baseline
        for quantile, value in (("0.5", b.peak_p50 if b else None), ("0.95", b.peak_p95 if b else None)):
            expr = (
                f"vector({value})"
                if value is not None
                else f"quantile_over_time({quantile}, {self.ref(s.JOB_WS)}[{HISTORY}])"
            )
            out.append(self.record(s.BASELINE_PEAK, expr, quantile=quantile))
        velocity = (
            f"vector({_num(b.velocity / 60)})"
            if b and b.velocity is not None
            else f"quantile_over_time(0.5, {self.ref(JOB_VELOCITY)}[{HISTORY}])"
        )
        out.append(self.record(s.BASELINE_VELOCITY, velocity))
        if job.anomaly.enabled:
            out += self._anomaly()
        return out

    def _anomaly(self) -> list[dict[str, Any]]:
        """Mean and spread of the same window in previous weeks, then the z-score against them.

        The spread combines the variation within each past window (the sawtooth) and between
        weeks; it is floored at ``min_stddev`` x the usual level so that a job that barely
        varied does not alert on a 2 % change.
        """
        a = self.job.anomaly
        w = _dur(a.window)
        offsets = [_dur(a.compare * k) for k in range(1, a.weeks + 1)]
        means = [f"avg_over_time({self.ref(s.JOB_WS)}[{w}] offset {o})" for o in offsets]
        sds = [f"stddev_over_time({self.ref(s.JOB_WS)}[{w}] offset {o})" for o in offsets]
        n = _num(a.weeks)
        mean = self.ref(HIST_MEAN)
        within = "\n    + ".join(f"{sd} ^ 2" for sd in sds)
        across = "\n    + ".join(f"({m} - {mean}) ^ 2" for m in means)
        floor = f"{_num(a.min_stddev)} * {mean}"
        return [
            self.record(HIST_MEAN, "(\n  " + "\n  + ".join(means) + f"\n) / {n}"),
            self.record(HIST_SD, f"sqrt(\n  (\n    {within}\n  ) / {n}\n  + (\n    {across}\n  ) / {n}\n)"),
            self.record(
                s.ZSCORE,
                f"(avg_over_time({self.ref(s.JOB_WS)}[{w}]) - {mean})\n/ (({self.ref(HIST_SD)} > {floor}) or {floor})",
            ),
        ]

    # --- alerts ------------------------------------------------------------------------------
    def alert(self, name: str, kind: str, severity: str, expr: str, hold: float, keep: float = 0) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": name, "expr": expr, "for": _dur(hold)}
        if keep:
            rule["keep_firing_for"] = _dur(keep)
        rule["labels"] = context_labels(self.spec, self.job, severity, kind)
        scope = "job" if kind in ("baseline", "anomaly") else "dead" if kind == "oom_killed" else "instance"
        rule["annotations"] = {**context_annotations(self.spec, self.job, scope), **self.texts[name]}
        return rule

    def settled(self, window: float) -> str:
        """True for instances older than warm-up + trough + slope ``window``: the model-load ramp is over."""
        job = self.job
        age = job.growth.warmup + window + job.trough_window
        samples = _num(0.9 * age / self.spec.evaluation_interval)
        return f"count_over_time({self.ref(s.WS)}[{_dur(age)}]) >= {samples}"

    def faster(self, velocity: str, factor: float) -> str:
        """``velocity`` more than ``factor`` times the job's usual velocity (value: the ratio)."""
        return (
            f"{self.ref(velocity)}\n  / on (memprov_job, memprov_env) group_left\n"
            f"clamp_min({self.ref(s.BASELINE_VELOCITY)}, 1)\n  > {_num(factor)}"
        )

    def alerts(self) -> list[dict[str, Any]]:
        job, out = self.job, []
        if job.usage.enabled:
            for severity, ratio, hold, name in (
                ("warning", job.warning_ratio, job.usage.warning_for, "BatchJobMemoryWarning"),
                ("critical", job.critical_ratio, job.usage.critical_for, "BatchJobMemoryCritical"),
            ):
                expr = f"{self.ref(s.RATIO)} > {_num(ratio)}"
                out.append(self.alert(name, "usage", severity, expr, hold, KEEP_USAGE))
        if job.growth.enabled:
            g = job.growth
            expr = (  # value: how many times the usual velocity
                f"{self.faster(s.VELOCITY, g.factor)}\n"
                f"and {self.ref(s.VELOCITY)} > {_num(growth_floor(job))}\n"
                f"and on ({self.by}) ({self.settled(g.window)})"
            )
            out.append(self.alert("BatchJobMemoryGrowthFast", "growth", "warning", expr, g.for_, KEEP_TREND))
        if job.time_to_oom.enabled:
            t = job.time_to_oom
            settled = f"and on ({self.by}) ({self.settled(t.window)})"
            if t.warning_horizon is not None:  # value: the predicted time to OOM, in seconds
                expr = (
                    f"{self.ref(s.TIME_TO_OOM)} < {_num(t.warning_horizon)}\n"
                    f"and on ({self.by}) ({self.faster(s.TREND, t.warning_factor)})\n{settled}"
                )
                name = "BatchJobMemoryTimeToOOMWarning"
                out.append(self.alert(name, "time_to_oom", "warning", expr, t.warning_for, KEEP_TREND))
            expr = f"{self.ref(s.TIME_TO_OOM)} < {_num(t.horizon)}\n{settled}"
            out.append(self.alert("BatchJobMemoryTimeToOOM", "time_to_oom", "critical", expr, t.for_, KEEP_TREND))
        if job.baseline_alert.enabled:
            b = job.baseline_alert
            expr = (
                f"{self.ref(s.JOB_WS)}\n  > on (memprov_job, memprov_env)\n"
                f'({_num(b.factor)} * {s.BASELINE_PEAK}{{{self.sel[1:-1]}, quantile="0.95"}})'
            )
            out.append(self.alert("BatchJobMemoryAboveBaseline", "baseline", "warning", expr, b.for_, 300))
        if job.anomaly.enabled:
            a = job.anomaly
            # only while the job runs: the window's average outlives the run by ``anomaly.window``
            expr = f"{self.ref(s.ZSCORE)} > {_num(a.zscore)}\nand on (memprov_job, memprov_env) {self.ref(s.JOB_WS)}"
            out.append(self.alert("BatchJobMemoryAnomaly", "anomaly", "warning", expr, a.for_, KEEP_ANOMALY))
        out += self._oom_killed()
        return out

    def _oom_killed(self) -> list[dict[str, Any]]:
        src = self.job.sources
        parts = []
        if src.oom_events:
            parts.append(f"increase({src.oom_events}[5m]) > 0")
        if src.oom_terminated:  # newly terminated by an OOM kill: 1 now, not 1 five minutes ago
            now = " or ".join(f"{sel} == 1" for sel in src.oom_terminated)
            before = " or ".join(f"{sel} offset 5m == 1" for sel in src.oom_terminated)
            parts.append(f"(({now}) unless ({before}))")
        if not parts:
            return []
        expr = f"max by ({self.by}) (\n  " + "\n  or ".join(parts) + "\n)"
        return [self.alert("BatchJobOOMKilled", "oom_killed", "warning", expr, 0, 900)]


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
    }


def _query(expr: str, args: str, fmt: str, none: str = "unknown", suffix: str = "") -> str:
    """A Prometheus template printing the first value of a query through ``fmt`` (+ suffix), or ``none``."""
    call = f'(printf "{expr}" {args})' if args else f'"{expr}"'
    return f"{{{{ with query {call} }}}}{{{{ . | first | value | {fmt} }}}}{suffix}{{{{ else }}}}{none}{{{{ end }}}}"


def context_annotations(spec: ResolvedSpec, job: ResolvedJob, scope: str = "instance") -> dict[str, str]:
    """Annotations every alert carries: node, current value and limit in human units, links.

    ``scope``: ``instance`` alerts carry the node label; ``job`` alerts (baseline, anomaly) are
    per job, so nodes and value are looked up over all its instances; ``dead`` (OOM killed) has
    no node label, so the node is looked up from the instance's last working-set series.
    """
    node = job.sources.node_label
    keys = ("memprov_job", "memprov_env") if scope == "job" else ("memprov_job", "memprov_env", *job.sources.group_by)
    fmt = ", ".join(f"{k}=%q" for k in keys)
    args = " ".join(f"$labels.{k}" for k in keys)
    if scope == "instance":
        node_text = f"{{{{ $labels.{node} }}}}"
    else:
        node_text = (
            f'{{{{ range query (printf "max by ({node}) ({s.WS}{{{fmt}}})" {args}) }}}}'
            f"{{{{ .Labels.{node} }}}} {{{{ end }}}}"
        )
    t0 = _query("(time() - 21600) * 1000", "", 'printf "%.0f"', "now-6h")
    t1 = _query("(time() + 1800) * 1000", "", 'printf "%.0f"', "now")
    return {
        "job_name": job.name,
        "node": node_text,
        "current": _query(f"max({s.WS}{{{fmt}}})", args, "humanize1024", suffix="B"),
        "limit": format_size(job.limit) + "B",
        "runbook_url": job.runbook_url,
        "dashboard": f"{job.dashboard_url}?var-job={job.id}&var-node=All&from={t0}&to={t1}",
    }


def _context(job: ResolvedJob) -> dict[str, Any]:
    b = job.baseline
    return {
        "job": job,
        "limit_h": format_size(job.limit) + "B",
        "warning_h": format_size(job.warning_bytes) + "B",
        "critical_h": format_size(job.critical_bytes) + "B",
        "warning_pct": f"{job.warning_ratio:.0%}",
        "critical_pct": f"{job.critical_ratio:.0%}",
        "p95_h": format_size(b.peak_p95) + "B" if b and b.peak_p95 else "its usual p95 peak",
        "growth_factor": f"{job.growth.factor:g}",
        "horizon_h": _dur(job.time_to_oom.horizon),
        "warning_horizon_h": _dur(job.time_to_oom.warning_horizon or job.time_to_oom.horizon),
        "tto_factor": f"{job.time_to_oom.warning_factor:g}",
        "baseline_factor": f"{job.baseline_alert.factor:g}",
        "zscore": f"{job.anomaly.zscore:g}",
        "weeks": job.anomaly.weeks,
    }


def rule_group(spec: ResolvedSpec, job: ResolvedJob) -> dict[str, Any]:
    """The job's rule group: recording rules, then alerts."""
    rules = _Rules(spec, job)
    return {
        "name": group_name(spec, job),
        "interval": _dur(spec.evaluation_interval),
        "rules": rules.recordings() + rules.alerts(),
    }


def alert_names(job: ResolvedJob) -> list[str]:
    """Alert names the job's group contains, given which kinds are enabled."""
    enabled = {
        "usage": job.usage.enabled,
        "growth": job.growth.enabled,
        "time_to_oom": job.time_to_oom.enabled,
        "baseline": job.baseline_alert.enabled,
        "anomaly": job.anomaly.enabled,
        "oom_killed": bool(job.sources.oom_events or job.sources.oom_terminated),
    }
    return [n for kind, names in ALERTS.items() if enabled[kind] for n in names]
