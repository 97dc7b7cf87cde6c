"""``memprov test``: promtool unit tests, generated per job, that prove the rules behave.

For each job, synthetic runs are built from the job's own limit, baseline and alert settings: a
healthy sawtooth run (with a transient spike), an input surge that ends in an OOM kill, a slow
leak, a sudden step and a drift against previous weeks. When each alert must (and must not) fire
is computed here, independently of PromQL, by a small reference model of what each kind means
(the troughs are the rolling minimum of the samples, their velocity a least-squares slope, the
envelope and the thresholds the job's derived values): an alert is expected to fire once its
condition, with a 10 % margin, has held for its ``for`` plus two evaluations, and to be silent
where its condition, loosened by 10 %, has not held at all for ``for`` plus ``keep_firing_for``.
``promtool test rules`` then checks these cases on the real rule engine. The rules under test are
the rendered groups with their annotations removed (annotation text is user-overridable
templating, checked separately by ``promtool check rules``); expressions, ``for``,
``keep_firing_for`` and labels are byte-for-byte those that will be deployed. Kinds whose
reference comes from the slow group's history (a job without a baseline) are checked for silence
only: a test has no 14 days of history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.kinds import anomaly, baseline, growth, time_to_oom
from provisioner.kinds import usage as usage_kind
from provisioner.kinds.base import DROP_RATIO, FALL_RATIO
from provisioner.render.prometheus import rules as prom
from provisioner.render.prometheus.rulestest_files import Unsupported, behaviour_rules, test_document
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec


@dataclass(frozen=True)
class Derived:
    """The job's values the reference model is built from, in one place (bytes, bytes/s, seconds):
    the kinds' derived params and the rules' shared track, read back from memprov's own resolution."""

    limit_bytes: float
    interval_s: float
    fresh_s: float
    trough_s: float
    slope_s: float
    settle_s: float
    age_cap_s: float
    warning_ratio: float
    critical_ratio: float
    sawtooth_bytes: float
    usual_bps: float | None
    growth_threshold_bps: float | None
    floor_bytes: float | None
    envelope_bps: float | None
    envelope_margin_bytes: float
    own_margin_bytes: float | None  # the own-track margin (None: no own track)
    p95_bytes: float | None
    duration_s: float | None
    min_remaining_s: float

    @property
    def has_envelope(self) -> bool:
        return self.floor_bytes is not None and self.envelope_bps is not None


def derive(spec: ResolvedSpec, job: ResolvedJob) -> Derived:
    t, u, g = prom.track(spec, job), usage_kind.KIND.of(job), growth.KIND.of(job)
    return Derived(
        limit_bytes=float(job.limit),
        interval_s=spec.evaluation_interval,
        fresh_s=t.fresh,
        trough_s=job.trough_window,
        slope_s=t.slope_window,
        settle_s=t.settle,
        age_cap_s=t.age_cap,
        warning_ratio=u.warning_ratio,
        critical_ratio=u.critical_ratio,
        sawtooth_bytes=t.sawtooth,
        usual_bps=t.usual,
        growth_threshold_bps=g.bar if g.usual is not None else None,
        floor_bytes=t.floor,
        envelope_bps=t.envelope,
        envelope_margin_bytes=t.envelope_margin,
        own_margin_bytes=baseline.KIND.of(job).own_margin,
        p95_bytes=t.p95,
        duration_s=t.duration,
        min_remaining_s=t.min_remaining,
    )


MIN = 60.0
MARGIN = 0.1  # conditions must hold with this margin to be expected, and fail with it to be silent
Wave = Callable[[float], float | None]  # seconds since start -> working set bytes (None: no sample)
Cond = Callable[["Model", int, float], bool]  # (model, eval index, slack factor) -> condition holds
__all__ = ["Unsupported", "scenarios", "test_files"]


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


class Model:
    """The rules' shared series, computed from the samples of one scenario at every evaluation."""

    def __init__(self, d: Derived, wave: Wave, duration: float, step: float) -> None:
        self.d, self.step = d, step
        self.times = [i * step for i in range(int(duration // step) + 1)]
        samples = [wave(t) for t in self.times]
        n_fresh = round(d.fresh_s / step) + 1
        self.ws: list[float | None] = []
        for i in range(len(self.times)):
            recent = [v for v in samples[max(0, i - n_fresh + 1) : i + 1] if v is not None]
            self.ws.append(recent[-1] if recent else None)
        self.trough = [
            self._window(i, d.trough_s, min) if self.ws[i] is not None else None for i in range(len(self.ws))
        ]
        self.age = [
            (sum(v is not None for v in self._values(self.ws, i, d.age_cap_s)) * d.interval_s)
            if v is not None
            else None
            for i, v in enumerate(self.ws)
        ]
        self.slope = [self._slope(i) for i in range(len(self.ws))]
        self.own = [self._own(i) for i in range(len(self.ws))]
        has_own = any(v is not None for v in self.own)
        self.lowest_own = [self._lowest_own(i) if has_own else None for i in range(len(self.ws))]

    def _values(self, series: list[float | None], i: int, window: float) -> list[float | None]:
        """The values at the evaluations of ``[t - window, t]`` (Prometheus 2 includes both ends)."""
        n = round(window / self.step) + 1
        return series[max(0, i - n + 1) : i + 1]

    def _window(self, i: int, window: float, fn: Callable[[list[float]], float]) -> float | None:
        values = [v for v in self._values(self.ws, i, window) if v is not None]
        return fn(values) if values else None

    def _settled(self, i: int) -> bool:
        """Past the settle age, and no restart within the trough and slope windows."""
        d, age, trough = self.d, self.age[i], self.trough[i]
        if age is None or trough is None or age < d.settle_s:
            return False
        low = self._window(i, d.trough_s + d.slope_s, min)
        n_span = round((d.trough_s + d.slope_s) / self.step) + 1
        high = max(v for v in self.trough[max(0, i - n_span + 1) : i + 1] if v is not None)
        return low is not None and low > DROP_RATIO * trough and trough > FALL_RATIO * high

    def _own(self, i: int) -> float | None:
        """The run's own floor: the trough less the envelope's growth since the start, once settled."""
        d, age, trough = self.d, self.age[i], self.trough[i]
        if not d.has_envelope or d.own_margin_bytes is None or not self._settled(i):
            return None
        assert d.envelope_bps is not None and age is not None and trough is not None
        return trough - d.envelope_bps * max(age - d.trough_s, 0.0)

    def _lowest_own(self, i: int) -> float | None:
        """The lowest own floor recorded within the age window (None: none yet)."""
        values = [v for v in self._values(self.own, i, self.d.age_cap_s) if v is not None]
        return min(values) if values else None

    def _slope(self, i: int) -> float | None:
        if not self._settled(i):
            return None
        d = self.d
        n = round(d.slope_s / self.step) + 1
        pts = [(self.times[j], v) for j in range(max(0, i - n + 1), i + 1) if (v := self.trough[j]) is not None]
        if len(pts) < 2:
            return None
        mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
        sxx = sum((x - mx) ** 2 for x, _ in pts)
        return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None

    def first(self, cond: Cond, hold: float, after: float = 0.0) -> float | None:
        """When an alert on ``cond`` (with the margin) has surely fired: held for ``hold`` + 2 evaluations."""
        need = round(hold / self.step) + 2
        run = 0
        for i, t in enumerate(self.times):
            run = run + 1 if t >= after and cond(self, i, 1 + MARGIN) else 0
            if run > need:
                return t
        return None

    def quiet(self, cond: Cond, at: float, hold: float, keep: float) -> bool:
        """Whether an alert on ``cond`` (loosened by the margin) surely is not firing at ``at``."""
        back = hold + keep + 2 * self.step
        return not any(cond(self, i, 1 - MARGIN) for i, t in enumerate(self.times) if at - back <= t <= at)


def _conditions(job: ResolvedJob, d: Derived) -> dict[str, tuple[Cond, float, float]]:
    """Each testable alert's condition in the reference model, its ``for`` and ``keep_firing_for``."""
    limit, saw = d.limit_bytes, d.sawtooth_bytes
    t, g, u, a = time_to_oom.KIND.of(job), growth.KIND.of(job), usage_kind.KIND.of(job), baseline.KIND.of(job)
    out: dict[str, tuple[Cond, float, float]] = {}

    def level(m: Model, i: int) -> float | None:
        tr = m.trough[i]
        return None if tr is None else tr + saw

    def above(value: float, line: float, k: float) -> bool:
        """``value`` above ``line``, by (or loosened by) a share of the headroom left up to the limit."""
        return value > line + (k - 1) * max(limit - line, 0.0)

    def usage(ratio: float) -> Cond:
        return lambda m, i, k: (lv := level(m, i)) is not None and above(lv, ratio * limit, k)

    out["BatchJobMemoryWarning"] = (usage(d.warning_ratio), u.warning_for, usage_kind.KEEP)
    out["BatchJobMemoryCritical"] = (usage(d.critical_ratio), u.critical_for, usage_kind.KEEP)
    threshold = d.growth_threshold_bps
    if threshold is not None:
        fast: Cond = lambda m, i, k: (v := m.slope[i]) is not None and v > threshold * k  # noqa: E731
        out["BatchJobMemoryGrowthFast"] = (fast, g.hold, growth.KEEP)

    def envelope(m: Model, i: int) -> float | None:
        age = m.age[i]
        if d.has_envelope and age is not None:
            assert d.floor_bytes is not None and d.envelope_bps is not None
            return d.floor_bytes + d.envelope_margin_bytes + d.envelope_bps * max(age - d.trough_s, 0.0)
        return a.factor * d.p95_bytes if d.p95_bytes is not None and not d.has_envelope else None

    def off(m: Model, i: int, k: float) -> bool:
        env, tr = envelope(m, i), m.trough[i]
        return env is not None and tr is not None and above(tr, env, k)

    def off_own(m: Model, i: int, k: float) -> bool:
        """The run's own floor above the lowest it stood by the margin (``k`` times the margin)."""
        own, lowest, margin = m.own[i], m.lowest_own[i], d.own_margin_bytes
        return own is not None and lowest is not None and margin is not None and own - lowest > k * margin

    def above_baseline(m: Model, i: int, k: float) -> bool:
        return off(m, i, k) or off_own(m, i, k)

    if d.has_envelope or d.p95_bytes is not None:
        out["BatchJobMemoryAboveBaseline"] = (above_baseline, a.hold, baseline.KEEP)

    def ahead(m: Model, i: int, horizon: float) -> float:
        age = m.age[i] or 0.0
        if d.duration_s is None:
            return horizon
        return min(max(d.duration_s - age, d.min_remaining_s), horizon)

    def to_limit(m: Model, i: int, horizon: float, k: float) -> bool:
        v, lv = m.slope[i], level(m, i)
        return v is not None and v > 0 and lv is not None and (limit - lv) / v * k < ahead(m, i, horizon)

    def faster(m: Model, i: int, factor: float | None, k: float) -> bool:
        """The slope over ``factor`` x the baseline's usual velocity (no condition without a factor or a baseline)."""
        if factor is None or d.usual_bps is None:
            return True
        v = m.slope[i]
        return v is not None and d.usual_bps is not None and v / max(d.usual_bps, 1.0) > factor * k

    if "BatchJobMemoryAboveBaseline" in out:
        crit: Cond = lambda m, i, k: (  # noqa: E731
            off(m, i, k) and to_limit(m, i, t.horizon, k) and faster(m, i, t.page_factor, k)
        )
        out["BatchJobMemoryTimeToOOM"] = (crit, t.hold, growth.KEEP)
    if "BatchJobMemoryAboveBaseline" in out and t.warning_horizon is not None and d.usual_bps is not None:
        wh = t.warning_horizon

        def warn(m: Model, i: int, k: float) -> bool:
            return faster(m, i, t.warning_factor, k) and off(m, i, k) and to_limit(m, i, wh, k)

        out["BatchJobMemoryTimeToOOMWarning"] = (warn, t.warning_hold, growth.KEEP)
    return out


@dataclass(frozen=True)
class Shape:
    """The job's numbers the synthetic runs are built from (bytes, bytes/s, seconds)."""

    limit: float
    floor: float  # a healthy run's troughs start here ...
    v0: float  # ... and grow this fast
    amp: float  # sawtooth height
    period: float


def shape(spec: ResolvedSpec, job: ResolvedJob, d: Derived) -> Shape:
    b, limit = job.baseline, d.limit_bytes
    amp = d.sawtooth_bytes or max(0.04 * limit, 0.05 * float(b.peak_p50) if b and b.peak_p50 else 0.0)
    v0 = d.usual_bps if d.usual_bps is not None else limit * 0.0005 / MIN
    top = min(d.warning_ratio * limit * 0.8, limit * 0.7)  # a healthy run ends well under warning ...
    if d.has_envelope:
        assert d.floor_bytes is not None
        floor = d.floor_bytes - 0.5 * d.envelope_margin_bytes  # ... and under its envelope
        v0 = min(v0, (d.envelope_bps or v0) / 1.1)
    else:
        p95 = float(b.peak_p95) if b and b.peak_p95 else 0.6 * top
        top = min(top, 0.95 * p95 * baseline.KIND.of(job).factor)
        floor = max(min(p95, top) - amp - v0 * 120 * MIN, 0.25 * top)
    period = min(job.trough_window * 0.5, 3 * MIN)
    return Shape(limit, floor, v0, amp, period)


def sawtooth(s: Shape, trough: Callable[[float], float], warmup: float = 3 * MIN) -> Wave:
    """Model load ramp for ``warmup``, then chunks loading and the GC freeing them."""

    def wave(u: float) -> float | None:
        base = trough(u)
        if u < warmup:
            return 0.3 * base + (base + s.amp - 0.3 * base) * u / warmup
        return base + s.amp * (((u - warmup) % s.period) / s.period)

    return wave


def _expect(sc: Scenario, model: Model, conds: dict[str, tuple[Cond, float, float]], fire: list[str], why: str) -> None:
    """Firing checks for the ``fire`` alerts whose condition surely holds before the OOM."""
    end = (sc.oom_at if sc.oom_at is not None else sc.duration) - model.step
    for name in fire:
        if name not in conds:
            continue
        cond, hold, _ = conds[name]
        at = model.first(cond, hold)
        if at is not None and at < end:
            sc.checks.append(Check(at, name, True, why))


def _silent(
    sc: Scenario, model: Model, conds: dict[str, tuple[Cond, float, float]], names: list[str], why: str
) -> None:
    for at in sorted({min(sc.duration, f * sc.duration) for f in (0.3, 0.55, 0.8, 0.97)}):
        for name in names:
            if name in conds:
                cond, hold, keep = conds[name]
                if model.quiet(cond, at, hold, keep):
                    sc.checks.append(Check(at, name, False, why))


def scenarios(spec: ResolvedSpec, job: ResolvedJob) -> list[Scenario]:
    d = derive(spec, job)
    s = shape(spec, job, d)
    step = spec.evaluation_interval
    names = prom.alert_names(job)
    conds = {k: v for k, v in _conditions(job, d).items() if k in names}
    out: list[Scenario] = []

    def healthy(u: float) -> float:
        return s.floor + s.v0 * max(u - 3 * MIN, 0.0)

    # healthy run with a transient spike: nothing fires
    base = sawtooth(s, healthy)
    spike_at, spike_level = 60 * MIN, 0.97 * s.limit

    def spiky(u: float) -> float | None:
        return spike_level if spike_at <= u < spike_at + MIN else base(u)

    sc = Scenario("healthy", 120 * MIN, spiky)
    _silent(sc, Model(d, spiky, sc.duration, step), conds, list(conds), "healthy sawtooth run with a 1-minute spike")
    out.append(sc)

    # input surge: troughs climb well above the growth threshold until the OOM kill
    onset = d.settle_s + 10 * MIN
    fastest = max(d.growth_threshold_bps or 0.0, 4 * s.v0, s.limit / (3 * 3600))
    for name, velocity, fire, quiet in (
        ("surge", 1.6 * fastest, list(conds), []),
        (
            "leak",
            max(1.3 * time_to_oom.KIND.of(job).warning_factor * s.v0, s.limit / (8 * 3600)),
            ["BatchJobMemoryAboveBaseline", "BatchJobMemoryTimeToOOMWarning", "BatchJobMemoryTimeToOOM"],
            ["BatchJobMemoryGrowthFast"],
        ),
    ):
        start = healthy(onset)

        def trough(u: float, v: float = velocity, t0: float = start) -> float:
            return healthy(u) if u < onset else t0 + v * (u - onset)

        oom = onset + (s.limit - s.amp - start) / velocity
        wave = sawtooth(s, trough)
        sc = Scenario(name, min(oom, onset + 12 * 3600), wave, oom_at=oom)
        model = Model(d, wave, sc.duration, step)
        _expect(sc, model, conds, fire, f"troughs climb {velocity / max(s.v0, 1.0):.1f}x the usual velocity")
        _silent(sc, model, conds, quiet, "slower than a surge")
        if name == "surge" and "BatchJobOOMKilled" in names and job.sources.oom_events:
            sc.checks.append(Check(oom + 1.5 * MIN, "BatchJobOOMKilled", True, "the container was OOM-killed"))
        out.append(sc)

    # a run that starts well under the healthy floor, then grows faster than healthy runs: its own
    # track (the lowest its own floor stood) warns long before the healthy envelope would
    if d.has_envelope and d.own_margin_bytes is not None and d.envelope_bps is not None:
        own_margin, env = d.own_margin_bytes, d.envelope_bps
        low = s.floor - 2 * own_margin - d.envelope_margin_bytes
        if low > 0.1 * s.floor:
            faster = env + 2 * own_margin / (40 * MIN)

            def own_trough(u: float) -> float:
                return (
                    low + s.v0 * max(u - 3 * MIN, 0.0)
                    if u < onset
                    else low + s.v0 * (onset - 3 * MIN) + (faster * (u - onset))
                )

            top = 0.9 * s.limit - s.amp
            length = onset + 60 * MIN
            while length > onset and own_trough(length) > top:
                length -= MIN
            wave = sawtooth(s, own_trough)
            sc = Scenario("own-track", length, wave)
            model = Model(d, wave, sc.duration, step)
            why = "troughs climb faster than the envelope from under the healthy floor"
            _expect(sc, model, conds, ["BatchJobMemoryAboveBaseline"], why)
            out.append(sc)

    # sudden step: one huge input holds memory between critical and the limit
    step_at, step_len = 40 * MIN, 20 * MIN
    level = (d.critical_ratio + 1) / 2 * s.limit - s.amp

    def stepped(u: float) -> float | None:
        return level + s.amp * 0.5 if step_at <= u < step_at + step_len else base(u)

    sc = Scenario("step", step_at + step_len, stepped)
    model = Model(d, stepped, sc.duration, step)
    _expect(sc, model, conds, ["BatchJobMemoryWarning", "BatchJobMemoryCritical"], "held above the thresholds")
    sc.checks += [
        Check(step_at - 2 * MIN, n, False, "before the step") for n in ("BatchJobMemoryCritical",) if n in conds
    ]
    out.append(sc)

    if "BatchJobMemoryAnomaly" in names:
        out.append(_drift(job, s))
    return out


DRIFT_INTERVAL = 300.0  # weeks of history at a 30s evaluation interval would take promtool minutes


def _drift(job: ResolvedJob, s: Shape) -> Scenario:
    """``min_weeks`` weeks of steady history, then a run clearly above it (but under warning)."""
    a = anomaly.KIND.of(job)
    history = a.compare * a.min_weeks
    usual = s.floor + s.amp
    level = min(usual * (1 + (a.zscore + 1) * a.min_stddev), 0.97 * (s.floor + 2 * s.amp + 0.3 * s.limit))
    jump = history + 10 * MIN

    def wave(u: float) -> float | None:
        return level if u >= jump else usual

    sc = Scenario("drift", jump + a.window + a.hold + 30 * MIN, wave)
    z = (level - usual) / (a.min_stddev * usual)
    sc.checks.append(Check(jump - 5 * MIN, "BatchJobMemoryAnomaly", False, "same level as previous weeks"))
    if z > a.zscore * 1.1:
        at = jump + a.window + a.hold + 2 * DRIFT_INTERVAL
        sc.checks.append(Check(at, "BatchJobMemoryAnomaly", True, f"z-score {z:.1f} against previous weeks"))
    return sc


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
    files[f"{job.id}.test.yaml"] = test_document(spec, job, main, f"{job.id}.rules.yaml", spec.evaluation_interval)
    tests = [f"{job.id}.test.yaml"]
    if drift:
        files[f"{job.id}.anomaly.rules.yaml"] = behaviour_rules(spec, job, "BatchJobMemoryAnomaly", DRIFT_INTERVAL)
        doc = test_document(spec, job, drift, f"{job.id}.anomaly.rules.yaml", DRIFT_INTERVAL)
        files[f"{job.id}.drift.test.yaml"] = doc
        tests.append(f"{job.id}.drift.test.yaml")
    return TestFiles(files, built, tests)
