"""Run one job under watch: spawn it in its own session, sample its memory, keep the history,
publish metrics, act on guards, and return its exit code.

The loop sleeps in ``poll`` on a pidfd of the child, so the wrapper notices the job's end at
once and costs nothing between ticks. Every tick reads the resident size of the known pids; at
most once a second it re-discovers the tree and reads the kernel's high-water marks; every
``HEARTBEAT`` seconds it replaces the run's heartbeat in the history. The recorded peak is the
best source available (:func:`best_peak`), and the record says which (``peak_method``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.run import cgroup as cg
from provisioner.run import history, procs
from provisioner.run import profile as prof
from provisioner.run.guard import Guard
from provisioner.run.metrics import Sink, exposition

HEARTBEAT = 5.0
REFRESH = 1.0  # the tree is re-discovered at most this often
PUBLISH = 1.0
HOOK_WAIT = 30.0
EXIT_GUARD = 75  # EX_TEMPFAIL: a guard stopped the job; retry it with more memory
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


@dataclass
class Options:
    job: str
    command: list[str]
    env: str = ""
    interval: float = 1.0
    history: Path | None = None
    meta: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    guards: list[Guard] = field(default_factory=list)
    sinks: list[Sink] = field(default_factory=list)
    cgroup: Path | None = None  # the job's own cgroup directory; None: detect
    profile: prof.Profile | None = None  # run a Python job under memray


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _say(text: str) -> None:
    print(f"memprov run: {text}", file=sys.stderr, flush=True)


def best_peak(candidates: dict[str, int | None]) -> tuple[int, str]:
    """The highest of the sources that answered, and its name; the first listed wins ties."""
    best, method = 0, "none"
    for name, value in candidates.items():
        if value is not None and value > best:
            best, method = value, name
    return best, method


def outcome_of(exit_code: int, oom_delta: int) -> str:
    """``ok``, ``failed``, ``oom_killed`` (SIGKILL and the cgroup counted an OOM kill) or ``killed``."""
    if exit_code == 0:
        return "ok"
    if exit_code == 128 + signal.SIGKILL and oom_delta > 0:
        return "oom_killed"
    return "killed" if exit_code > 128 else "failed"


class Watch:
    """The state of one run, turned into a history record at any time."""

    def __init__(self, opts: Options, group: cg.Cgroup | None) -> None:
        self.opts = opts
        self.group = group
        self.run_id = history.new_run_id()
        self.started = time.time()
        self.limit = opts.limit or (group.limit() if group else None)
        self.oom_start = (group.oom_kills() if group else None) or 0
        self.pid = 0
        self.tree = procs.Tree(0)
        self.peak_sampled = 0
        self.peak_cgroup_sampled = 0
        self.samples = 0
        self.rss = 0
        self.nprocs = 0
        self.fired: list[dict[str, Any]] = []
        self.hooks: list[Any] = []  # guard hook processes, waited for at the end
        self.profile: dict[str, Any] | None = None  # the profiler's capture and, at the end, its top lines

    def memory(self) -> int:
        """What guards compare: the cgroup's charge when the job owns it, else the tree's RSS."""
        if self.group is not None and self.group.owned:
            return max(self.rss, self.group.current() or 0)
        return self.rss

    def tick(self, now: float, refresh: bool) -> None:
        if refresh:
            self.tree.refresh()
        self.rss, self.nprocs = self.tree.sample()
        self.samples += 1
        self.peak_sampled = max(self.peak_sampled, self.rss)
        if self.group is not None and self.group.owned:
            self.peak_cgroup_sampled = max(self.peak_cgroup_sampled, self.group.current() or 0)

    def peak(self, wait4: int | None = None) -> tuple[int, str]:
        if self.group is not None and self.group.owned:
            exact = self.group.peak()
            if exact is not None:
                return max(exact, self.peak_cgroup_sampled), self.group.peak_method
            return best_peak({"cgroup.sampled": self.peak_cgroup_sampled, "sampled": self.peak_sampled})
        return best_peak({"hwm_sum": self.tree.hwm_sum_peak, "wait4": wait4, "sampled": self.peak_sampled})

    def record(self, now: float, exit_code: int | None = None, wait4: int | None = None) -> dict[str, Any]:
        oom = (self.group.oom_kills() if self.group else None) or 0
        oom_delta = max(0, oom - self.oom_start)
        peak, method = self.peak(wait4)
        cmd = self.opts.command
        rec: dict[str, Any] = {
            "schema": history.SCHEMA,
            "job": self.opts.job,
            "env": self.opts.env,
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "started_at": _iso(self.started),
            "ended_at": _iso(now),
            "duration_s": round(now - self.started, 3),
            "command": os.path.basename(cmd[0]),
            "command_sha256": hashlib.sha256("\0".join(cmd).encode()).hexdigest(),
            "exit_code": exit_code,
            "signal": signal.Signals(exit_code - 128).name if exit_code and 128 < exit_code < 128 + 65 else None,
            "outcome": "running" if exit_code is None else outcome_of(exit_code, oom_delta),
            "peak_rss_bytes": peak,
            "peak_method": method,
            "peak_sampled_bytes": self.peak_sampled,
            "peak_hwm_sum_bytes": self.tree.hwm_sum_peak,
            "peak_hwm_max_bytes": self.tree.hwm_max,
            "peak_wait4_bytes": wait4,
            "peak_cgroup_bytes": self.group.peak() if self.group and self.group.owned else None,
            "limit_bytes": self.limit,
            "oom_kill_events": oom_delta,
            "cgroup": (
                {"version": self.group.version, "owned": self.group.owned, "peak_reset": self.group.reset}
                if self.group
                else None
            ),
            "sample_interval_s": self.opts.interval,
            "samples": self.samples,
            "processes_max": self.tree.processes_max,
            "guard": self.fired,
            "meta": self.opts.meta,
            "pid": self.pid,
            "wrapper": {"pid": os.getpid(), "start": history.process_start(os.getpid())},
            "heartbeat_at_unix": round(now, 3),
        }
        if self.profile is not None:
            rec["profile"] = self.profile
        return rec

    def metrics(self, final: dict[str, Any] | None = None) -> str:
        values: dict[str, float] = {
            "memprov_job_rss_bytes": 0 if final else self.rss,
            "memprov_job_rss_peak_bytes": final["peak_rss_bytes"] if final else max(self.peak_sampled, self.rss),
            "memprov_job_processes": 0 if final else self.nprocs,
            "memprov_job_running": 0 if final else 1,
        }
        if self.limit:
            values["memprov_job_memory_limit_bytes"] = self.limit
        if final:
            values.update(
                {
                    "memprov_job_run_peak_bytes": final["peak_rss_bytes"],
                    "memprov_job_run_duration_seconds": final["duration_s"],
                    "memprov_job_run_end_timestamp_seconds": round(final["heartbeat_at_unix"]),
                    "memprov_job_run_exit_code": final["exit_code"],
                    "memprov_job_run_oom_killed": int(final["outcome"] == "oom_killed"),
                    "memprov_job_run_guard_triggered": int(bool(self.fired)),
                }
            )
        return exposition(self.opts.job, self.opts.env, values)

    def check_guards(self, now: float) -> None:
        used = self.memory()
        for g in self.opts.guards:
            level = g.threshold(self.limit)
            if g.fired_at is not None or level is None or used < level:
                continue
            g.fired_at = now - self.started
            what = f"sent {g.signal.name}" if g.signal else f"ran {g.command!r}"
            self.fired.append({"guard": g.text, "at_s": round(g.fired_at, 3), "memory_bytes": used, "action": what})
            _say(f"guard {g.text}: memory {used / 2**20:.0f} MiB reached {level / 2**20:.0f} MiB; {what}")
            if g.signal is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, g.signal)
            elif g.command:
                import subprocess

                extra = {
                    "MEMPROV_JOB": self.opts.job,
                    "MEMPROV_RUN_ID": self.run_id,
                    "MEMPROV_PID": str(self.pid),
                    "MEMPROV_MEMORY_BYTES": str(used),
                    "MEMPROV_LIMIT_BYTES": str(self.limit or ""),
                }
                self.hooks.append(subprocess.Popen(["/bin/sh", "-c", g.command], env={**os.environ, **extra}))


def _capture_path(directory: Path | None, run_id: str) -> Path:
    """``<history>/profiles/<run id>.memray.bin``, or a new temporary directory without a history."""
    if directory is None:
        import tempfile

        return Path(tempfile.mkdtemp(prefix="memprov-profile-")) / f"{run_id}.memray.bin"
    (directory / "profiles").mkdir(parents=True, exist_ok=True)
    return (directory / "profiles" / f"{run_id}.memray.bin").absolute()


def _profile_result(capture: Path) -> dict[str, Any]:
    """The capture's peak and top lines for the record (said on stderr), or why there are none."""
    try:
        found = prof.summarize(capture)
    except (OSError, ValueError, RuntimeError) as e:  # no capture (memray failed to start), or a cut one
        _say(f"memray: no top allocating lines from {capture}: {e}")
        return {"error": str(e)}
    if found["top"]:
        first = found["top"][0]
        _say(
            f"memray: peak {found['peak_bytes'] / 2**20:.0f} MiB; the most at {first['location']}"
            f" ({first['bytes'] / 2**20:.1f} MiB); capture {capture}"
        )
    return found


def execute(opts: Options) -> int:
    """Run the job to its end; the job's exit code (128+N for signal N, 75 when a guard stopped it)."""
    group = cg.at(opts.cgroup) if opts.cgroup else cg.detect()
    if opts.cgroup is None and group is not None and group.owned:  # a --cgroup DIR is fresh: systemd-run --scope
        group.reset_peak()
    watch = Watch(opts, group)
    if opts.history:
        history.adopt_leftovers(opts.history)
    env = {**os.environ, "MEMPROV_RUN_ID": watch.run_id, "MEMPROV_JOB": opts.job}
    command, capture = opts.command, None
    if opts.profile is not None:
        capture = _capture_path(opts.history, watch.run_id)
        command = prof.wrap(opts.command, capture, opts.profile)
        watch.profile = {"tool": prof.TOOL, "file": str(capture)}
    try:
        pid = os.posix_spawnp(command[0], command, env, setsid=True, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    except FileNotFoundError:
        _say(f"{opts.command[0]}: command not found")
        return 127
    except PermissionError:
        _say(f"{opts.command[0]}: permission denied (not executable?)")
        return 126
    watch.pid = pid
    watch.tree = procs.Tree(pid)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signum)

    for s in FORWARDED:
        signal.signal(s, forward)
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    next_refresh = next_beat = next_publish = time.monotonic()
    next_tick = next_refresh
    try:
        while True:
            mono, now = time.monotonic(), time.time()
            if mono >= next_tick:
                refresh = mono >= next_refresh
                if refresh:
                    next_refresh = mono + max(REFRESH, opts.interval)
                watch.tick(now, refresh)
                watch.check_guards(now)
                next_tick += opts.interval
                if next_tick < mono:  # fell behind (suspended, overloaded): do not catch up in a burst
                    next_tick = mono + opts.interval
                if opts.history and mono >= next_beat:
                    history.heartbeat(opts.history, watch.record(now))
                    next_beat = mono + HEARTBEAT
                if opts.sinks and mono >= next_publish:
                    text = watch.metrics()
                    for sink in opts.sinks:
                        sink.publish(text, final=False)
                    next_publish = mono + PUBLISH
            if poller.poll(max(0.0, next_tick - time.monotonic()) * 1000):
                break
        watch.tree.refresh()  # the job is a zombie now: read its descendants' last high-water marks
        _, status, usage = os.wait4(pid, 0)
    finally:
        os.close(pidfd)
        for s in FORWARDED:
            signal.signal(s, signal.SIG_DFL if s != signal.SIGINT else signal.default_int_handler)
    for hook in watch.hooks:
        import subprocess

        try:
            hook.wait(HOOK_WAIT)
        except subprocess.TimeoutExpired:  # leave it running
            _say(f"guard hook {hook.args[-1]!r} still running after {HOOK_WAIT:.0f} s; not waiting for it")
    code = os.waitstatus_to_exitcode(status)
    exit_code = 128 - code if code < 0 else code
    if capture is not None:
        watch.profile = {**(watch.profile or {}), **_profile_result(capture)}
    final = watch.record(time.time(), exit_code, usage.ru_maxrss * 1024)
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    final["wrapper_cpu_s"] = round(own.ru_utime + own.ru_stime, 4)
    if opts.history:
        history.finish(opts.history, final)
    text = watch.metrics(final)
    for sink in opts.sinks:
        sink.publish(text, final=True)
        sink.close()
    if any(g.stops and g.fired_at is not None for g in opts.guards):
        return EXIT_GUARD
    return exit_code
