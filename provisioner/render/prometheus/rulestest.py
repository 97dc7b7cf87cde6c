"""``memprov test``: promtool unit tests, generated per job, that prove the rules behave.

For each job, synthetic runs are built from the job's own limit, baseline and alert settings:
a healthy sawtooth run (with a transient spike), an input surge that ends in an OOM kill, a slow
leak, a sudden step and a drift against previous weeks. Expected firing times are computed
from how the runs are constructed, with margins, and written as ``alert_rule_test`` cases;
``promtool test rules`` then checks them on the real rule engine. The rules under test are the
rendered ones with their annotations removed (annotation text is user-overridable templating,
checked separately by ``promtool check rules``); expressions, ``for``, ``keep_firing_for`` and
labels are byte-for-byte those that will be deployed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.core.promql import WRAPPER_RSS
from provisioner.core.units import format_duration
from provisioner.kinds import anomaly, baseline, growth, time_to_oom, usage
from provisioner.render import gotext
from provisioner.render.prometheus import rules as prom
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

MIN = 60.0
Wave = Callable[[float], float | None]  # seconds since start -> working set bytes (None: no sample)


class Unsupported(Exception):
    """The job's selectors or metrics cannot be synthesised (e.g. regex matchers)."""


@dataclass(frozen=True)
class Check:
    at: float  # seconds
    alert: str
    firing: bool
    why: str


@dataclass
class Scenario:
    name: str
    duration: float
    wave: Wave
    checks: list[Check] = field(default_factory=list)
    oom_at: float | None = None


@dataclass(frozen=True)
class Shape:
    """The job's numbers that scenarios are built from (bytes, bytes/s, seconds)."""

    limit: float
    warn: float
    crit: float
    p50: float
    p95: float
    amp: float  # sawtooth amplitude
    v0: float  # usual trough velocity
    growth_min: float  # the growth alert's threshold velocity (max of factor x usual and the floor)
    period: float  # sawtooth period
    scrape: float


def shape(spec: ResolvedSpec, job: ResolvedJob) -> Shape:
    b = job.baseline
    limit, warn = float(job.limit), float(job.warning_bytes)
    p95 = float(b.peak_p95) if b and b.peak_p95 else 0.6 * warn
    p95 = min(p95, 0.92 * warn)
    p50 = float(b.peak_p50) if b and b.peak_p50 else 0.85 * p95
    amp = max(min(p95 - p50, 0.25 * p95), 0.04 * limit)
    v0 = job.usual_velocity or 0.0
    growth_min = growth.KIND.of(job).threshold
    period = min(job.trough_window * 0.6, 3 * MIN)
    return Shape(limit, warn, float(job.critical_bytes), p50, p95, amp, v0, growth_min, period, spec.scrape_interval)


def sawtooth(s: Shape, start: float, trough: Callable[[float], float], warmup: float = 3 * MIN) -> Wave:
    """Model load ramp for ``warmup``, then chunks loading and the GC freeing them."""

    def wave(t: float) -> float | None:
        if t < start:
            return None
        u = t - start
        base = trough(u)
        if u < warmup:
            return 0.3 * base + (base + s.amp - 0.3 * base) * u / warmup
        phase = ((u - warmup) % s.period) / s.period
        return base + s.amp * phase

    return wave


def _healthy_trough(s: Shape, duration: float) -> Callable[[float], float]:
    start = max(s.p95 - s.amp - s.v0 * duration, 0.25 * s.p50)
    return lambda u: start + s.v0 * u


def scenarios(spec: ResolvedSpec, job: ResolvedJob) -> list[Scenario]:
    s = shape(spec, job)
    ev = spec.evaluation_interval
    margin = 2 * MIN + 2 * ev
    names = {r["alert"] for r in prom.rule_group(spec, job)["rules"] if "alert" in r}
    out: list[Scenario] = []

    # healthy run with a transient spike: nothing may fire
    dur = 120 * MIN
    healthy = _healthy_trough(s, dur)
    base = sawtooth(s, 0, healthy)
    spike_at = 60 * MIN
    spike_level = (s.crit + s.limit) / 2

    def spiky(t: float) -> float | None:
        v = base(t)
        return spike_level if v is not None and spike_at <= t < spike_at + MIN else v

    checks = [Check(t * MIN, n, False, "healthy sawtooth run") for t in (15, 45, 75, 110) for n in sorted(names)]
    checks += [
        Check(spike_at + dt * MIN, n, False, "a 1-minute spike is not sustained")
        for dt in (1.5, 3)
        for n in ("BatchJobMemoryWarning", "BatchJobMemoryCritical")
        if n in names
    ]
    out.append(Scenario("healthy", dur, spiky, checks))

    # input surge: troughs climb well above factor x the usual velocity until the OOM kill
    onset = 30 * MIN
    v_s = 1.6 * s.growth_min
    start_level = healthy(onset)

    def surge_trough(u: float) -> float:
        return healthy(u) if u < onset else start_level + v_s * (u - onset)

    oom = onset + (s.limit - s.amp - start_level) / v_s
    sc = Scenario("surge", oom, sawtooth(s, 0, surge_trough), oom_at=oom)
    slope_ready = onset + job.trough_window + growth.KIND.of(job).window + 2 * ev
    if "BatchJobMemoryGrowthFast" in names:
        sc.checks.append(Check(onset - 2 * MIN, "BatchJobMemoryGrowthFast", False, "before the surge"))
        at = slope_ready + growth.KIND.of(job).hold + margin
        if at < oom - ev:
            sc.checks.append(
                Check(at, "BatchJobMemoryGrowthFast", True, f"troughs climb {v_s / max(s.v0, 1):.1f}x usual")
            )
    sc.checks += _time_to_oom(job, s, names, ev, onset, start_level, v_s, oom, "the surge")
    if "BatchJobMemoryWarning" in names:
        at = onset + (s.warn - start_level) / v_s + usage.KIND.of(job).warning_for + margin
        if at < oom - ev:
            sc.checks.append(Check(at, "BatchJobMemoryWarning", True, "troughs above the warning threshold"))
    if "BatchJobOOMKilled" in names:
        sc.checks.append(Check(oom + 1.5 * MIN, "BatchJobOOMKilled", True, "the container was OOM-killed"))
    out.append(sc)

    # slow leak: below the growth threshold, but heading for the limit
    v_l = 0.6 * s.growth_min
    leak_oom = onset + (s.limit - s.amp - start_level) / v_l

    def leak_trough(u: float) -> float:
        return healthy(u) if u < onset else start_level + v_l * (u - onset)

    lk = Scenario("leak", min(leak_oom, onset + 12 * 3600), sawtooth(s, 0, leak_trough), oom_at=leak_oom)
    if "BatchJobMemoryGrowthFast" in names:
        lk.checks.append(
            Check(
                slope_ready + growth.KIND.of(job).hold + margin,
                "BatchJobMemoryGrowthFast",
                False,
                "a slow leak is not a surge",
            )
        )
    lk.checks += _time_to_oom(job, s, names, ev, onset, start_level, v_l, leak_oom, "the leak")
    out.append(lk)

    # sudden step: one huge input holds memory between critical and the limit
    step_at, step_len = 40 * MIN, 12 * MIN
    level = (s.crit + s.limit) / 2

    def step(t: float) -> float | None:
        return level if step_at <= t < step_at + step_len else base(t)

    st = Scenario("step", 70 * MIN, step)
    st.checks += [
        Check(step_at - 2 * MIN, n, False, "before the step")
        for n in ("BatchJobMemoryWarning", "BatchJobMemoryCritical")
        if n in names
    ]
    if "BatchJobMemoryCritical" in names:
        st.checks.append(
            Check(
                step_at + usage.KIND.of(job).critical_for + margin,
                "BatchJobMemoryCritical",
                True,
                "held above critical",
            )
        )
    if "BatchJobMemoryWarning" in names:
        st.checks.append(
            Check(
                step_at + usage.KIND.of(job).warning_for + margin, "BatchJobMemoryWarning", True, "held above warning"
            )
        )
    if "BatchJobMemoryAboveBaseline" in names and level > baseline.KIND.of(job).factor * s.p95 * 1.05:
        st.checks.append(
            Check(
                step_at + baseline.KIND.of(job).hold + margin,
                "BatchJobMemoryAboveBaseline",
                True,
                "far above the usual p95 peak",
            )
        )
    out.append(st)

    if "BatchJobMemoryAnomaly" in names:
        out.append(_drift(spec, job, s))
    return out


def _time_to_oom(
    job: ResolvedJob,
    s: Shape,
    names: set[str],
    ev: float,
    onset: float,
    start_level: float,
    v: float,
    oom: float,
    what: str,
) -> list[Check]:
    """Both time-to-OOM tiers on a run whose troughs climb at ``v`` from ``onset`` until ``oom``.

    Each is expected where the peak is half its horizon from the limit (at ``v``), once the trend
    window has filled, plus its ``for`` and a margin; the warning tier only if ``v`` is clearly
    more than ``warning_factor`` times the usual velocity.
    """
    t = time_to_oom.KIND.of(job)
    margin = 2 * MIN + 2 * ev
    ready = onset + job.trough_window + t.window + 2 * ev
    tiers = [("BatchJobMemoryTimeToOOM", t.horizon, t.hold, True)]
    if t.warning_horizon is not None:
        fast = v > 1.1 * t.warning_factor * max(s.v0, 1.0)
        tiers.append(("BatchJobMemoryTimeToOOMWarning", t.warning_horizon, t.warning_hold, fast))
    out: list[Check] = []
    for name, horizon, hold, expected in tiers:
        if name not in names or not expected:
            continue
        reach = s.limit - v * 0.5 * horizon
        at = max(ready, onset + (reach - s.amp - start_level) / v + job.trough_window) + hold + margin
        if at < oom - ev:
            out.append(Check(at, name, True, f"{what} reaches the limit within {format_duration(horizon)}"))
    return out


def _drift(spec: ResolvedSpec, job: ResolvedJob, s: Shape) -> Scenario:
    """Weeks of steady history, then a run whose level is clearly above it (but under warning)."""
    a = anomaly.KIND.of(job)
    history = a.compare * a.weeks
    level = s.p50 * (1 + (a.zscore + 1) * a.min_stddev)
    if level >= 0.97 * s.warn:
        level = 0.97 * s.warn
    jump = history + 10 * MIN
    # history only where the offsets look (promtool evaluates every step; empty steps are cheap)

    def wave(t: float) -> float | None:
        return level if t >= jump else s.p50

    sc = Scenario("drift", jump + a.window + a.hold + 30 * MIN, wave)
    z = (level - s.p50) / (a.min_stddev * s.p50)
    sc.checks.append(Check(jump - 5 * MIN, "BatchJobMemoryAnomaly", False, "same level as previous weeks"))
    if z > a.zscore * 1.1:
        at = jump + a.window + a.hold + 2 * DRIFT_INTERVAL
        sc.checks.append(Check(at, "BatchJobMemoryAnomaly", True, f"z-score {z:.1f} against previous weeks"))
    return sc


# --- series and test files ---------------------------------------------------------------------
def _instance_labels(spec: ResolvedSpec, job: ResolvedJob, scenario: str) -> dict[str, str]:
    sel = job.selector
    if sel.regex:
        raise Unsupported(f"regex selectors ({', '.join(sel.regex)}) cannot be synthesised; test this job by hand")
    if job.runtime == "kubernetes":
        return {
            "namespace": sel.namespace or "default",
            "pod": sel.pod or f"{job.id}-{scenario}",
            "container": sel.container or "main",
            "node": "node-a",
        }
    if job.runtime == "vm":
        return {"instance": sel.instance or f"{job.id}-vm:9100"}
    if job.sources.working_set.startswith(WRAPPER_RSS + "{"):  # memprov run's own series
        return {"memprov_job": job.id, "instance": "host-a:9100"}
    return {"groupname": sel.groupname or job.id, "instance": "host-a:9256"}


def _fmt(v: float) -> str:
    return str(round(v))


def encode(values: list[float | None]) -> str:
    """promtool's expanding notation: runs of blanks and arithmetic progressions compressed."""
    out: list[str] = []
    i, n = 0, len(values)
    while i < n:
        v = values[i]
        if v is None:
            j = i
            while j < n and values[j] is None:
                j += 1
            out.append(f"_x{j - i}" if j - i > 1 else "_")
            i = j
            continue
        j = i + 1
        step: int | None = None
        while j < n:
            cur, prev = values[j], values[j - 1]
            if cur is None or prev is None:
                break
            d = round(cur) - round(prev)
            if step is None:
                step = d
            elif d != step:
                break
            j += 1
        count = j - i - 1
        if count >= 2 and step is not None:
            sign = "+" if step >= 0 else "-"
            out.append(f"{_fmt(v)}{sign}{abs(step)}x{count}")
        else:
            j = i + 1
            out.append(_fmt(v))
        i = j
    return " ".join(out)


def _series(spec: ResolvedSpec, job: ResolvedJob, sc: Scenario, step: float) -> list[dict[str, str]]:
    labels = _instance_labels(spec, job, sc.name)
    times = [i * step for i in range(int(sc.duration // step) + 1)]
    ws = [sc.wave(t) for t in times]
    present = [v is not None for v in ws]

    def sel(name: str, extra: dict[str, str] | None = None) -> str:
        lab = {**labels, **(extra or {})}
        return name + "{" + ", ".join(f'{k}="{v}"' for k, v in lab.items()) + "}"

    def flat(value: float) -> list[float | None]:
        return [value if p else None for p in present]

    m = job.sources
    if job.runtime == "kubernetes":
        ws_name = _metric(m.working_set)
        out = [
            {"series": sel(ws_name), "values": encode(ws)},
            {"series": sel(_metric(m.limit or "")), "values": encode(flat(job.limit))},
        ]
        if sc.oom_at is not None and m.oom_events:
            oom_at = sc.oom_at
            counter: list[float | None] = [
                (1.0 if t >= oom_at - step else 0.0) if p else None for t, p in zip(times, present, strict=True)
            ]
            tail: list[float | None] = [1.0] * 4  # the counter is scraped a few more times after the kill
            out.append({"series": sel(_metric(m.oom_events)), "values": encode(counter + tail)})
        return out
    if job.runtime == "vm":
        total = float(job.limit)
        return [
            {"series": sel("node_memory_MemTotal_bytes"), "values": encode(flat(total))},
            {
                "series": sel("node_memory_MemAvailable_bytes"),
                "values": encode([None if v is None else total - v for v in ws]),
            },
        ]
    memtype = {} if m.working_set.startswith(WRAPPER_RSS + "{") else {"memtype": "resident"}
    return [{"series": sel(_metric(m.working_set), memtype), "values": encode(ws)}]


def _metric(selector: str) -> str:
    return re.split(r"[{\s]", selector, maxsplit=1)[0]


def _expected_labels(spec: ResolvedSpec, job: ResolvedJob, alert: dict[str, Any], scenario: str) -> dict[str, str]:
    inst = _instance_labels(spec, job, scenario)
    kind = alert["labels"]["memprov_kind"]
    if kind in ("baseline", "anomaly"):
        series_labels: dict[str, str] = {}
    elif kind == "oom_killed":
        series_labels = {k: inst[k] for k in job.sources.group_by}
    else:
        series_labels = {k: v for k, v in inst.items() if k in (*job.sources.group_by, job.sources.node_label)}
    rendered = {k: gotext.rendered(v) for k, v in alert["labels"].items()}  # as Prometheus expands them
    return {**series_labels, "memprov_job": job.id, "memprov_env": spec.env, **rendered}


def behaviour_rules(
    spec: ResolvedSpec, job: ResolvedJob, only: str | None = None, interval: float | None = None
) -> dict[str, Any]:
    """The job's rendered group with annotations removed (see the module docstring).

    ``only``: keep just this alert and the recording rules it depends on; ``interval``: evaluate
    the group at this interval instead (used for weeks of history, see :func:`_drift`).
    """
    group = prom.rule_group(spec, job)
    rules = [{k: v for k, v in r.items() if k != "annotations"} for r in group["rules"]]
    if only is not None:
        rules = _closure(rules, only)
    if interval is not None:
        group = {**group, "interval": format_duration(interval)}
    return {"groups": [{**group, "rules": rules}]}


def _closure(rules: list[dict[str, Any]], alert: str) -> list[dict[str, Any]]:
    records = {r["record"] for r in rules if "record" in r}
    need: set[str] = set()
    todo = [next(r["expr"] for r in rules if r.get("alert") == alert)]
    while todo:
        expr = todo.pop()
        for name in records - need:
            if re.search(re.escape(name) + r"\{", expr):
                need.add(name)
                todo += [r["expr"] for r in rules if r.get("record") == name]
    return [r for r in rules if r.get("record") in need or r.get("alert") == alert]


DRIFT_INTERVAL = 300.0  # weeks of history at a 30s evaluation interval would take promtool minutes


@dataclass
class TestFiles:
    """Files to write for one job: name -> YAML data, and the scenarios behind them."""

    files: dict[str, Any]
    scenarios: list[Scenario]
    tests: list[str]  # the test files among ``files``


def test_files(spec: ResolvedSpec, job: ResolvedJob) -> TestFiles:
    """promtool rule and test files for one job: the main scenarios, plus the drift over weeks."""
    built = scenarios(spec, job)
    main = [sc for sc in built if sc.name != "drift"]
    drift = [sc for sc in built if sc.name == "drift"]
    files: dict[str, Any] = {f"{job.id}.rules.yaml": behaviour_rules(spec, job)}
    files[f"{job.id}.test.yaml"] = _test_doc(spec, job, main, f"{job.id}.rules.yaml", spec.evaluation_interval)
    tests = [f"{job.id}.test.yaml"]
    if drift:
        files[f"{job.id}.anomaly.rules.yaml"] = behaviour_rules(spec, job, "BatchJobMemoryAnomaly", DRIFT_INTERVAL)
        files[f"{job.id}.drift.test.yaml"] = _test_doc(spec, job, drift, f"{job.id}.anomaly.rules.yaml", DRIFT_INTERVAL)
        tests.append(f"{job.id}.drift.test.yaml")
    return TestFiles(files, built, tests)


def _test_doc(
    spec: ResolvedSpec, job: ResolvedJob, built: list[Scenario], rules_file: str, interval: float
) -> dict[str, Any]:
    group = prom.rule_group(spec, job)
    alerts = {r["alert"]: r for r in group["rules"] if "alert" in r}
    tests = []
    for sc in built:
        cases = []
        for chk in sorted(sc.checks, key=lambda c: (c.at, c.alert)):
            exp = [{"exp_labels": _expected_labels(spec, job, alerts[chk.alert], sc.name)}] if chk.firing else []
            cases.append(
                {"eval_time": format_duration(_round_to(chk.at, interval)), "alertname": chk.alert, "exp_alerts": exp}
            )
        step = max(spec.scrape_interval, interval)
        tests.append(
            {
                "name": f"{job.id}: {sc.name}",
                "interval": format_duration(step),
                "input_series": _series(spec, job, sc, step),
                "alert_rule_test": cases,
            }
        )
    return {"rule_files": [rules_file], "evaluation_interval": format_duration(interval), "tests": tests}


def _round_to(t: float, step: float) -> float:
    return math.ceil(t / step) * step
