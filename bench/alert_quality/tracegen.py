"""Synthetic cAdvisor memory traces of batch-inference runs, with ground truth, for the benchmark.

Each job runs ``per_day`` times a day at fixed times (jittered by up to two minutes), so that the
same time a week earlier is a run of the same job, as week-over-week anomaly rules assume. A
healthy run loads its model (a ramp), then saw-tooths as chunks load and the garbage collector
frees them: the troughs climb at the job's usual velocity, one cycle in ten runs long because
the GC lags (a higher peak). Runs last 70–90 minutes (a nominal 80-minute run peaks at the
baseline's p50, a longer one higher), and each run's whole curve is scaled by 0.85–1.15. The
evaluated period mixes in, at fixed proportions and seeded places:

- ``spiky`` (healthy): 1–3 spikes of 1–2 minutes from large inputs, at least 10 minutes apart,
  up to 95 % of the limit;
- ``surge`` (the design document's case study, 10× the records): from the onset the troughs
  climb at 3–6× the usual velocity (faster if needed to die within the run's slot) until the OOM;
- ``leak``: from the onset the troughs climb steadily, reaching the limit 1.5–4 hours later;
- ``step``: one huge input lifts the peak to 80–90 % of the limit at the onset, then memory
  creeps to the limit within 15–60 minutes;
- ``drift`` (not an incident): the steady state is 30 % higher (capped at 80 % of the limit),
  which deserves at most a warning.

Ground truth per incident: the onset (when the abnormal behaviour starts, never during the
model load) and the OOM time (the first instant, on a 5-second grid, at which the working set
reaches the limit). The run's series stop there, as a killed container's do. Samples are taken
on a global 30-second scrape grid. Everything derives from one seeded ``random.Random``.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
GI, MI = float(2**30), float(2**20)
INCIDENTS = ("surge", "leak", "step")
HEALTHY = ("healthy", "spiky")
# share of the evaluated runs per kind (at least MIN_COUNT of each incident kind per job)
MIX = {"surge": 0.07, "leak": 0.07, "step": 0.04, "drift": 0.04, "spiky": 0.25}
MIN_COUNT = {"surge": 2, "leak": 2, "step": 1, "drift": 1}
NOMINAL = 80 * MIN  # a nominal run's length; runs last 70-90 minutes


@dataclass(frozen=True)
class JobShape:
    """What the generator needs of a job: where its series live and its memory numbers."""

    id: str
    namespace: str
    container: str
    limit: float
    p50: float
    p95: float
    velocity: float  # usual trough growth, bytes per second


@dataclass
class Run:
    job: str
    kind: str  # healthy | spiky | surge | leak | step | drift
    pod: str
    node: str
    start: float
    scored: bool
    onset: float | None = None
    oom: float | None = None
    note: str = ""
    samples: list[tuple[float, float]] = field(default_factory=list)

    @property
    def incident(self) -> bool:
        return self.kind in INCIDENTS

    @property
    def end(self) -> float:
        return self.samples[-1][0] if self.samples else self.start


@dataclass(frozen=True)
class Plan:
    """How many runs, when: ``runs`` evaluated runs per job after ``history_days`` of healthy history."""

    seed: int
    runs: int
    history_days: int
    per_day: int = 4
    scrape: float = 30.0
    t0: float = 1_748_822_400.0  # 2025-06-02 00:00 UTC, a Monday

    @property
    def spacing(self) -> float:
        return DAY / self.per_day

    @property
    def eval_days(self) -> int:
        return math.ceil(self.runs / self.per_day)

    @property
    def eval_start(self) -> float:
        return self.t0 + self.history_days * DAY

    @property
    def end(self) -> float:
        return self.eval_start + self.eval_days * DAY


class Model:
    """One run's working set as a function of the time since its start (no sampling, no OOM)."""

    def __init__(self, rng: random.Random, job: JobShape, scale: float) -> None:
        # a nominal run (80 minutes) peaks at the baseline's p50; this one is ``scale`` times as big
        self.peak = job.p50 * scale
        self.amp = self.peak * rng.uniform(0.08, 0.12)
        self.v = job.velocity * scale * rng.uniform(0.9, 1.1)
        self.warmup = rng.uniform(2, 5) * MIN
        self.floor0 = max(0.9 * job.p50 - job.velocity * (NOMINAL - 3.5 * MIN), 0.3 * job.p50) * scale
        self.noise = 0.004 * self.peak
        self.changes: list[tuple[float, float, float]] = []  # (from u, extra slope, jump)
        self.spikes: list[tuple[float, float, float]] = []  # (from u, length, height)
        period = rng.uniform(90, 180)
        self.cycle_starts, self.cycle_amps = [0.0], [self.amp]
        u = self.warmup
        while u < 8 * HOUR:  # longer than any run
            length = period * rng.uniform(0.8, 1.2) * (rng.uniform(1.3, 1.6) if rng.random() < 0.1 else 1.0)
            self.cycle_starts.append(u)
            self.cycle_amps.append(self.amp * length / period)  # the GC lags: memory keeps growing
            u += length
        self.cycle_starts.append(u)
        self.rng = rng

    def trough(self, u: float) -> float:
        value = self.floor0 + self.v * max(0.0, u - self.warmup)
        for at, slope, jump in self.changes:
            if u >= at:
                value += jump + slope * (u - at)
        return value

    def value(self, u: float, noisy: bool = True) -> float:
        if u < self.warmup:
            start = 0.15 * self.peak
            base = start + (self.trough(self.warmup) - start) * u / self.warmup
        else:
            i = bisect.bisect_right(self.cycle_starts, u) - 1
            lo, hi = self.cycle_starts[i], self.cycle_starts[i + 1]
            base = self.trough(u) + self.cycle_amps[i] * (u - lo) / (hi - lo)
        for at, length, height in self.spikes:
            if at <= u < at + length:
                base = max(base, height)
        return base + (self.rng.gauss(0, self.noise) if noisy else 0.0)

    def peak_at(self, u: float) -> float:
        """The highest the sawtooth reaches around ``u`` (trough + a lagging cycle's amplitude)."""
        return self.trough(u) + 1.6 * self.amp


class Generator:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)

    def kinds(self, job_index: int) -> list[str]:
        """Kinds of the evaluated runs of one job, in their (seeded) order."""
        n = self.plan.runs
        kinds: list[str] = []
        for kind, share in MIX.items():
            kinds += [kind] * max(MIN_COUNT.get(kind, 0), round(share * n))
        kinds = kinds[:n] + ["healthy"] * max(0, n - len(kinds))
        random.Random(self.plan.seed * 1000 + job_index).shuffle(kinds)
        return kinds

    def runs(self, jobs: list[JobShape]) -> list[Run]:
        p, out = self.plan, []
        for j, job in enumerate(jobs):
            scored = self.kinds(j)
            history = p.history_days * p.per_day
            for i in range(history + len(scored)):
                day, slot = divmod(i, p.per_day)
                kind = scored[i - history] if i >= history else ("spiky" if self.rng.random() < 0.25 else "healthy")
                start = p.t0 + day * DAY + slot * p.spacing + j * p.spacing / len(jobs) + self.rng.uniform(0, 2 * MIN)
                pod = f"{job.id}-{day:03d}-{slot}"
                out.append(self.run(job, kind, pod, start, i >= history))
        return out

    def run(self, job: JobShape, kind: str, pod: str, start: float, scored: bool) -> Run:
        rng, p = self.rng, self.plan
        run = Run(job.id, kind, pod, f"node-{rng.randint(1, 6)}", start, scored)
        scale = rng.uniform(0.95, 1.05) * 1.3 if kind == "drift" else rng.uniform(0.85, 1.15)
        duration = rng.uniform(70, 90) * MIN
        model = Model(rng, job, scale)
        if kind == "drift" and model.peak_at(duration) > 0.8 * job.limit:
            model.floor0 -= model.peak_at(duration) - 0.8 * job.limit
            run.note = "capped at 80 % of the limit"
        budget = p.spacing - 45 * MIN - model.warmup  # an incident must die before the next run starts
        if kind == "surge":
            onset = model.warmup + rng.choice([0.0, rng.uniform(0.1, 0.4)]) * duration
            headroom = job.limit - model.peak_at(onset)
            factor = max(rng.uniform(3, 6), 1 + headroom / (model.v * (budget - onset)))
            model.changes.append((onset, (factor - 1) * model.v, 0.0))
            run.note = f"troughs at {factor:.1f}x the usual velocity"
        elif kind == "leak":
            onset = model.warmup + rng.choice([0.0, rng.uniform(0.1, 0.4)]) * duration
            hours = min(rng.uniform(1.5, 4), (budget - onset) / HOUR)
            extra = (job.limit - model.peak_at(onset) - model.v * hours * HOUR) / (hours * HOUR)
            model.changes.append((onset, max(extra, 0.5 * model.v), 0.0))
            run.note = f"leaking {max(extra, 0.5 * model.v) * 60 / MI:.0f} MiB/min over the usual"
        elif kind == "step":
            onset = model.warmup + rng.uniform(0.2, 0.6) * duration
            jump = max(0.0, rng.uniform(0.80, 0.90) * job.limit - model.peak_at(onset))
            minutes = rng.uniform(15, 60)
            creep = (job.limit - model.peak_at(onset) - jump) / (minutes * MIN)
            model.changes.append((onset, max(creep - model.v, 0.0), jump))
            run.note = f"jump of {jump / GI:.1f} GiB, then {minutes:.0f} min to the limit"
        elif kind == "spiky":
            for _ in range(rng.randint(1, 3)):
                at = model.warmup + rng.uniform(0.1, 0.9) * (duration - model.warmup)
                height = rng.uniform(min(1.1 * job.p95, 0.9 * job.limit), 0.95 * job.limit)
                if all(abs(at - other) > 10 * MIN for other, _, _ in model.spikes):  # separate spikes
                    model.spikes.append((at, rng.uniform(60, 120), height))
        if run.incident:
            run.onset = start + onset
            run.oom = start + self._oom(model, onset, job.limit)
        end = run.oom if run.oom is not None else start + duration
        t = math.ceil(start / p.scrape) * p.scrape
        while t < end:
            value = model.value(t - start)
            if run.incident:  # the noise must not cross the limit before the OOM
                value = min(value, job.limit - 4 * MI)
            elif value >= job.limit:
                raise AssertionError(f"{pod} ({kind}) reaches its limit but is no incident")
            run.samples.append((t, max(value, 0.0)))
            t += p.scrape
        return run

    @staticmethod
    def _oom(model: Model, onset: float, limit: float) -> float:
        """The first instant (5 s grid) at which the noiseless working set reaches the limit."""
        u = onset
        while model.value(u, noisy=False) + 3 * model.noise < limit:
            u += 5.0
            if u > 8 * HOUR:
                raise AssertionError("an incident never reached its limit")
        return u
