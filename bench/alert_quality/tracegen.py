"""Synthetic cAdvisor traces of batch-inference jobs, with ground truth, for the alert benchmark.

The shape is the independent checkers' one: ``jobs`` jobs (32) that run once a day for ``days``
days (14), at the job's own time of day. Each job has a *regime*, how tightly its memory limit is
sized against what its healthy runs use: ``tight`` (the healthy p95 peak at 85-95 % of the limit),
``normal`` (60-80 %) or ``loose`` (30-50 %). What a healthy run does:

- it loads its model (a 1-6 minute ramp), then saw-tooths as chunks load and the collector frees
  them (60-240 s cycles; one cycle in ten the collector lags: 1.3-2x longer, higher, and part of
  the garbage is freed only in the next cycle);
- its troughs grow for the *whole* run, as results accumulate with every record processed: a run's
  records vary from -15 % to +20 % (memory and duration both follow), its throughput by +-10 %, so
  runs last +-30 % around the job's usual length; 40 % of jobs have a weekly heavy day (1.25-1.6x
  the records);
- a third of the runs see 1-3 transient spikes (one large input: +5-25 % of the limit for 30 s to
  7 minutes, never past 98 % of it); scrapes go missing (1 % alone, 0.2 % in bursts of 2-6); 4 %
  of runs restart their container mid-run (same pod, memory reloads, the rest of the records
  from a checkpoint) and 4 % are evicted and re-run from scratch as a new pod on another node.

Incidents, in both halves of the period: *surge* (2.5-5x the usual trough velocity from the onset
until the OOM: the design document's 10x records), *leak* (extra growth that would fill the
headroom in 40 minutes to 4 hours), *step-to-OOM* (one huge input lifts memory to 80-95 % of the
limit, then it creeps to the limit in 10-60 minutes), and *drift* (not an incident: the whole run
1.25-1.5x the usual, capped at 92 % of the limit; only on normal and loose jobs, which have room
for it). Ground truth: the onset (never during the model load) and the OOM, the first instant
(5-second grid) at which the working set reaches the limit; a killed container's series stops
there. Everything derives from one seeded ``random.Random`` per job.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
GI, MI = float(2**30), float(2**20)
INCIDENTS = ("surge", "leak", "step")
HEALTHY = "healthy"
REGIMES = {"tight": (0.85, 0.95), "normal": (0.60, 0.80), "loose": (0.30, 0.50)}  # a usual healthy peak / limit
REGIME_COUNTS = {"tight": 11, "normal": 11, "loose": 10}  # of 32 jobs; scaled for other sizes
MIX = {"surge": 0.06, "leak": 0.05, "step": 0.03, "drift": 0.06}  # share of runs; the rest healthy
T0 = 1_748_822_400.0  # 2025-06-02 00:00 UTC, a Monday
SCRAPE = 30.0


@dataclass(frozen=True)
class JobShape:
    """A job's usual behaviour; every run draws its own variation around it."""

    id: str
    regime: str
    limit: float
    start_minute: float  # time of day, UTC
    duration: float  # a nominal run (1x records, 1x throughput), seconds
    base: float  # memory after the model load, bytes
    accumulation: float  # trough growth over a nominal run, bytes
    amp: float  # sawtooth amplitude, bytes
    period: float  # sawtooth cycle, seconds
    warmup: float  # model load, seconds
    heavy_day: int | None  # weekday (0 = Monday) with heavy_factor x the records
    heavy_factor: float
    namespace: str = "batch"

    @property
    def container(self) -> str:
        return self.id

    @property
    def velocity(self) -> float:
        return self.accumulation / (self.duration - self.warmup)


@dataclass
class Pod:
    name: str
    node: str
    samples: list[tuple[float, float]] = field(default_factory=list)
    restarted: float | None = None  # when the container restarted in place (a new container id from then on)


@dataclass
class Run:
    job: str
    regime: str
    kind: str  # healthy | drift | surge | leak | step
    day: int
    start: float
    pods: list[Pod] = field(default_factory=list)
    onset: float | None = None
    oom: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def incident(self) -> bool:
        return self.kind in INCIDENTS

    @property
    def end(self) -> float:
        return max(p.samples[-1][0] for p in self.pods if p.samples)

    @property
    def peak(self) -> float:
        return max(v for p in self.pods for _, v in p.samples)


class Curve:
    """One pod's working set as a function of the time since it started (no noise, no sampling)."""

    def __init__(self, rng: random.Random, job: JobShape, base: float, velocity: float, until: float) -> None:
        self.base, self.v, self.warmup, self.amp = base, velocity, job.warmup * rng.uniform(0.8, 1.2), job.amp
        self.load_from = base * rng.uniform(0.05, 0.2)
        self.changes: list[tuple[float, float, float]] = []  # (from u, extra slope, jump)
        self.spikes: list[tuple[float, float, float]] = []  # (from u, length, height)
        self.starts, self.amps, self.carry = [0.0], [self.amp], [0.0]
        u = self.warmup
        while u < until + HOUR:
            length = job.period * rng.uniform(0.8, 1.2)
            amp, carry = self.amp * length / job.period, 0.0
            if rng.random() < 0.1:  # the collector lags: a longer, higher cycle, some garbage left for the next
                stretch = rng.uniform(1.3, 2.0)
                length, amp, carry = length * stretch, amp * stretch, rng.uniform(0.0, 0.4) * amp * stretch
            self.starts.append(u)
            self.amps.append(amp)
            self.carry.append(carry)
            u += length
        self.starts.append(u)

    def trough(self, u: float) -> float:
        value = self.base + self.v * max(0.0, u - self.warmup)
        for at, slope, jump in self.changes:
            if u >= at:
                value += jump + slope * (u - at)
        return value

    def value(self, u: float) -> float:
        if u < self.warmup:
            return self.load_from + (self.trough(self.warmup) - self.load_from) * u / self.warmup
        i = bisect.bisect_right(self.starts, u) - 1
        lo, hi = self.starts[i], self.starts[i + 1]
        leftover = self.carry[i - 1] * max(0.0, 1 - 3 * (u - lo) / (hi - lo)) if i > 0 else 0.0
        out = self.trough(u) + self.amps[i] * (u - lo) / (hi - lo) + leftover
        for at, length, height in self.spikes:
            if at <= u < at + length:
                out += height
        return out

    def peak_at(self, u: float) -> float:
        """The top of an ordinary cycle around ``u`` (trough + amplitude)."""
        return self.trough(u) + self.amp


def job_shapes(seed: int, jobs: int = 32) -> list[JobShape]:
    rng = random.Random(f"jobs-{seed}")
    counts = {k: round(v * jobs / 32) for k, v in REGIME_COUNTS.items()}
    counts["loose"] = jobs - counts["tight"] - counts["normal"]
    regimes = [r for r, n in counts.items() for _ in range(n)]
    rng.shuffle(regimes)
    out = []
    for i, regime in enumerate(regimes):
        duration = rng.uniform(40, 240) * MIN
        nominal = math.exp(rng.uniform(math.log(1 * GI), math.log(24 * GI)))  # a nominal run's peak
        share = rng.uniform(0.1, 0.6)  # of the peak, accumulated during the run
        amp = rng.uniform(0.03, 0.12) * nominal
        accumulation = share * nominal
        base = nominal - accumulation - amp
        heavy = rng.random() < 0.4
        heavy_factor = rng.uniform(1.25, 1.6) if heavy else 1.0
        lo, hi = REGIMES[regime]
        fraction = rng.uniform(lo, hi)
        while True:  # a usual run's peak (1x the records, a lagging cycle) at ``fraction`` of the limit ...
            usual = base + accumulation + 2 * amp
            limit = math.ceil(usual / fraction / (64 * MI)) * 64 * MI
            largest = base + accumulation * 1.2 * heavy_factor + 2.5 * amp
            if largest < 0.985 * limit:  # ... and the largest (1.2x the records on the heavy day) under it
                break
            # too variable to be sized this tightly: a tight limit is only set on a job that varies less
            if heavy_factor > 1.0:
                heavy_factor = max(1.0, heavy_factor - 0.05)
                heavy = heavy_factor > 1.1
                heavy_factor = heavy_factor if heavy else 1.0
            else:
                amp *= 0.95
                shift = 0.05 * accumulation
                accumulation -= shift
                base += shift
        out.append(
            JobShape(
                id=f"job-{i + 1:02d}",
                regime=regime,
                limit=limit,
                start_minute=rng.uniform(0, 24 * 60),
                duration=duration,
                base=base,
                accumulation=accumulation,
                amp=amp,
                period=rng.uniform(60, 240),
                warmup=rng.uniform(1, 6) * MIN,
                heavy_day=rng.randrange(7) if heavy else None,
                heavy_factor=heavy_factor,
            )
        )
    return out


def _kinds(rng: random.Random, job: JobShape, days: int) -> list[str]:
    out = []
    for _ in range(days):
        x, kind = rng.random(), HEALTHY
        for name, share in MIX.items():
            if x < share:
                kind = name
                break
            x -= share
        if kind == "drift" and job.regime == "tight":  # no room for a drift that is not an OOM
            kind = HEALTHY
        out.append(kind)
    return out


class Generator:
    def __init__(self, seed: int, jobs: int = 32, days: int = 14, scrape: float = SCRAPE) -> None:
        self.seed, self.days, self.scrape = seed, days, scrape
        self.jobs = job_shapes(seed, jobs)

    def runs(self) -> list[Run]:
        out = []
        for job in self.jobs:
            rng = random.Random(f"runs-{self.seed}-{job.id}")
            for day, kind in enumerate(_kinds(rng, job, self.days)):
                start = T0 + day * DAY + job.start_minute * MIN + rng.uniform(0, 3 * MIN)
                out.append(self._run(rng, job, kind, day, start))
        return out

    def _run(self, rng: random.Random, job: JobShape, kind: str, day: int, start: float) -> Run:
        run = Run(job.id, job.regime, kind, day, start)
        records = rng.uniform(0.85, 1.20)
        if job.heavy_day is not None and _weekday(start) == job.heavy_day:
            records *= job.heavy_factor
            run.notes.append(f"heavy day: {job.heavy_factor:.2f}x the records")
        throughput = rng.uniform(0.9, 1.1)
        scale = 1.0
        if kind == "drift":
            scale = rng.uniform(1.25, 1.5)
            top = (job.base + job.accumulation * records) * scale + 2.5 * job.amp
            if top > 0.92 * job.limit:
                scale *= 0.92 * job.limit / top
            if scale < 1.2:
                kind = run.kind = HEALTHY
                scale = 1.0
            else:
                run.notes.append(f"drift: {scale:.2f}x the usual memory")
        duration = job.duration * records / throughput
        velocity = job.velocity * throughput * scale
        node = _node(rng)
        curve = Curve(rng, job, job.base * scale, velocity, 21 * HOUR if kind in INCIDENTS else duration)
        end = duration
        if kind in INCIDENTS:
            end = self._incident(rng, job, run, curve, duration)
        self._spikes(rng, job, curve, end)
        pod = Pod(_pod_name(rng, job, start), node)
        run.pods.append(pod)
        move = rng.random()
        if kind not in INCIDENTS and move < 0.04:  # restart in place: reload, the rest from a checkpoint
            at = rng.uniform(0.2, 0.8) * duration
            gap = rng.uniform(20, 120)
            self._sample(rng, job, pod, start, curve, 0.0, at)
            rest = Curve(rng, job, job.base * scale, velocity, duration)
            self._spikes(rng, job, rest, duration - at)
            pod.restarted = start + at + gap
            self._sample(rng, job, pod, start + at + gap, rest, 0.0, duration - at + rest.warmup)
            run.notes.append(f"container restarted {at / MIN:.0f} min in")
        elif kind not in INCIDENTS and move < 0.08:  # evicted: a new pod on another node runs it all again
            at = rng.uniform(0.1, 0.7) * duration
            self._sample(rng, job, pod, start, curve, 0.0, at)
            again = Curve(rng, job, job.base * scale, velocity, duration)
            self._spikes(rng, job, again, duration)
            other = Pod(_pod_name(rng, job, start), _node(rng, not_=node))
            run.pods.append(other)
            self._sample(rng, job, other, start + at + rng.uniform(30, 180), again, 0.0, duration)
            run.notes.append(f"evicted {at / MIN:.0f} min in, re-run on {other.node}")
        else:
            self._sample(rng, job, pod, start, curve, 0.0, end, oom=run.oom is not None)
        if run.oom is not None:
            run.oom = start + run.oom
            assert run.onset is not None
            run.onset = start + run.onset
        return run

    def _incident(self, rng: random.Random, job: JobShape, run: Run, curve: Curve, duration: float) -> float:
        """Set up the incident on ``curve``; returns the OOM time (seconds after the start)."""
        limit = job.limit
        if run.kind == "surge":
            onset = curve.warmup + rng.uniform(0.0, 0.6) * duration
            factor = rng.uniform(2.5, 5.0)
            headroom = limit - curve.peak_at(onset)
            factor = max(factor, 1 + headroom / (curve.v * 16 * HOUR))  # dies within the day, as a run must
            curve.changes.append((onset, (factor - 1) * curve.v, 0.0))
            run.notes.append(f"troughs at {factor:.1f}x the usual velocity")
        elif run.kind == "leak":
            onset = curve.warmup + rng.uniform(0.0, 0.5) * duration
            fill = rng.uniform(40, 240) * MIN
            extra = max((limit - curve.peak_at(onset) - curve.v * fill) / fill, 0.3 * curve.v, limit * 0.001 / MIN)
            curve.changes.append((onset, extra, 0.0))
            run.notes.append(f"leaking {extra * 60 / MI:.0f} MiB/min over the usual {curve.v * 60 / MI:.0f}")
        else:  # step
            onset = curve.warmup + rng.uniform(0.2, 0.7) * duration
            now = curve.peak_at(onset)
            jump = max(rng.uniform(0.80, 0.95) * limit - now, rng.uniform(0.02, 0.05) * limit)
            jump = min(jump, 0.97 * limit - now)
            minutes = rng.uniform(10, 60)
            creep = max((limit - now - jump) / (minutes * MIN) - curve.v, 0.0)
            curve.changes.append((onset, creep, jump))
            run.notes.append(f"step of {jump / GI:.1f} GiB, then {minutes:.0f} min to the limit")
        u = onset
        while curve.value(u) < limit:
            u += 5.0
            if u > 20 * HOUR:
                raise AssertionError(f"{job.id}: a {run.kind} never reached its limit")
        run.onset, run.oom = onset, u
        return u

    @staticmethod
    def _spikes(rng: random.Random, job: JobShape, curve: Curve, end: float) -> None:
        if rng.random() >= 1 / 3:
            return
        for _ in range(rng.randint(1, 3)):
            at = curve.warmup + rng.uniform(0.05, 0.95) * max(end - curve.warmup - 8 * MIN, MIN)
            length = rng.uniform(30, 7 * MIN)
            room = 0.98 * job.limit - (curve.trough(at + length) + 2.5 * job.amp)
            height = min(rng.uniform(0.05, 0.25) * job.limit, room)
            if height > 0.03 * job.limit and all(abs(at - a) > 10 * MIN for a, _, _ in curve.spikes):
                curve.spikes.append((at, length, height))

    def _sample(
        self,
        rng: random.Random,
        job: JobShape,
        pod: Pod,
        start: float,
        curve: Curve,
        u0: float,
        u1: float,
        oom: bool = False,
    ) -> None:
        """Scrapes of ``curve`` from ``u0`` to ``u1`` after ``start``, on the global scrape grid."""
        t = math.ceil((start + u0) / self.scrape) * self.scrape
        missing = 0
        while t < start + u1:
            u = t - start
            value = curve.value(u) * (1 + rng.gauss(0, 0.003))
            value = min(value, job.limit - 4 * MI) if oom else value
            if not oom and value >= 0.995 * job.limit:
                raise AssertionError(f"{pod.name}: a healthy run reaches its limit ({value / job.limit:.3f})")
            if missing:
                missing -= 1
            elif rng.random() < 0.002:
                missing = rng.randint(1, 5)
            elif rng.random() >= 0.01:
                pod.samples.append((t, max(value, 0.0)))
            t += self.scrape


def _weekday(t: float) -> int:
    return int((t - T0) // DAY) % 7


def _node(rng: random.Random, not_: str = "") -> str:
    while (node := f"node-{rng.randint(1, 24):02d}") == not_:
        pass
    return node


def _pod_name(rng: random.Random, job: JobShape, start: float) -> str:
    day = int((start - T0) // DAY)
    return f"{job.id}-d{day:02d}-" + "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
