"""Run one job under watch: give it a memory cgroup of its own, spawn it in its own session, watch
its memory, keep the history, publish metrics, act on guards, and return its exit code.

The cgroup (``--cgroup auto``, the default) is made for the run wherever the hierarchy is
writable (:mod:`.jobgroup`); failing that, the wrapper's own cgroup is used when only the
wrapper lives there (its peak then includes the wrapper: an upper bound); failing that, the
per-process marks (:mod:`.procs`). The loop sleeps in ``poll`` on a pidfd of the child, so the
wrapper notices the job's end at once and costs nothing between ticks; every ``HEARTBEAT``
seconds it replaces the run's heartbeat in the history. The record names the peak's source and
how sure it is (:mod:`.peak`). With ``--listen``, the final values stay served after the run
until one scrape has read them, or for ``--linger``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.run import cgroup as cg
from provisioner.run import history, jobgroup
from provisioner.run import profile as prof
from provisioner.run.guard import Guard
from provisioner.run.metrics import Listener, Sink
from provisioner.run.watch import Watch, say

HEARTBEAT = 5.0
REFRESH = 1.0  # the tree is re-discovered at most this often
PUBLISH = 1.0
HOOK_WAIT = 30.0
LINGER_CAP = 120.0  # without --linger: wait this long at most for the scrape after the end
EXIT_GUARD = 75  # EX_TEMPFAIL: a guard stopped the job; retry it with more memory
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


@dataclass
class Options:
    job: str
    command: list[str]
    env: str = ""
    interval: float = 0.1
    history: Path | None = None
    meta: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    guards: list[Guard] = field(default_factory=list)
    sinks: list[Sink] = field(default_factory=list)
    cgroup: str = "auto"  # auto | none | a directory: the job's own cgroup, read only
    profile: prof.Profile | None = None  # run a Python job under memray
    linger: float | None = None  # --listen: serve the final values this long; None: until one scrape


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
        say(f"memray: no top allocating lines from {capture}: {e}")
        return {"error": str(e)}
    if found["top"]:
        first = found["top"][0]
        say(
            f"memray: peak {found['peak_bytes'] / 2**20:.0f} MiB; the most at {first['location']}"
            f" ({first['bytes'] / 2**20:.1f} MiB); capture {capture}"
        )
    return found


@dataclass
class Choice:
    """Where the job's memory is read: the cgroup, how it was had, and the one it enters."""

    group: cg.Cgroup | None = None
    mode: str | None = None  # created | given | owned | None
    why: str = ""  # why the job has no cgroup of its own
    enter: jobgroup.JobGroup | None = None  # the cgroup the job is moved into before it execs
    wrapper_inside: bool = False  # the wrapper's own memory is charged there too


def choose_cgroup(setting: str, run_id: str) -> Choice:
    """``--cgroup``: auto (make one for the run; else the wrapper's own when nothing else lives
    there; else none), none, or a directory the job is moved into (left as it is afterwards)."""
    if setting == "none":
        return Choice(why="--cgroup none")
    wrapper = cg.detect()
    if setting != "auto":
        group = cg.at(Path(setting))
        if group is None:
            return Choice(why=f"{setting} has no memory files")
        if os.getpid() in (group.members() or set()):  # systemd-run --scope memprov run …: already there
            return Choice(group, "given", wrapper_inside=True)
        home = wrapper.path if wrapper is not None else None
        return Choice(group, "given", enter=jobgroup.JobGroup(group, home, "given") if home else None)
    if wrapper is None:
        return Choice(why="no memory cgroup controller here")
    made, why = jobgroup.create(wrapper, run_id)
    if made is not None:
        return Choice(made.group, "created", enter=made)
    if wrapper.owned:  # a container whose entry point is memprov run: the job shares it with the wrapper only
        wrapper.reset_peak()
        return Choice(wrapper, "owned", why)
    return Choice(why=f"{why}; and {wrapper.path} holds other processes")


def _spawn(command: list[str], env: dict[str, str]) -> int:
    return os.posix_spawnp(command[0], command, env, setsid=True, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))


def start(watch: Watch, made: jobgroup.JobGroup | None, command: list[str], env: dict[str, str]) -> int:
    """Spawn the job, inside ``made`` when there is one (the wrapper goes in for the spawn)."""
    if made is not None:
        try:
            jobgroup.enter(made)
        except OSError as e:  # e.g. v2 delegation forbids the move: do without
            watch.why = f"cannot move into {made.group.path}: {e.strerror or e}"
            jobgroup.release(made)
            watch.group, watch.mode, made = None, None, None
    try:
        pid = _spawn(command, env)
    finally:
        if made is not None:
            problem = jobgroup.leave(made)
            if problem:
                say(f"{problem}; the peak includes the wrapper's own memory")
                watch.wrapper_inside = True
    watch.started_job(pid)
    return pid


def linger(listeners: list[Listener], seconds: float | None) -> None:
    """Keep serving the final values: ``seconds``, or until each listener served one scrape."""
    if not listeners or seconds == 0:
        return
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if seconds is not None:
            stop.wait(seconds)
            return
        where = ", ".join(f"{ln.host}:{ln.port}" for ln in listeners)
        say(f"serving the final metrics on {where} until the next scrape (at most {LINGER_CAP:.0f} s; --linger 0: no)")
        end = time.monotonic() + LINGER_CAP
        while not stop.is_set() and not all(ln.final_served.is_set() for ln in listeners):
            if time.monotonic() > end:
                say(f"no scrape of the final metrics in {LINGER_CAP:.0f} s; stopping")
                return
            stop.wait(0.05)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def execute(opts: Options) -> int:
    """Run the job to its end; the job's exit code (128+N for signal N, 75 when a guard stopped it)."""
    run_id = history.new_run_id()
    choice = choose_cgroup(opts.cgroup, run_id)
    made = choice.enter
    watch = Watch(opts, run_id, choice.group, choice.mode, choice.why)
    watch.wrapper_inside = choice.wrapper_inside
    if opts.history:
        history.adopt_leftovers(opts.history)
    env = {**os.environ, "MEMPROV_RUN_ID": watch.run_id, "MEMPROV_JOB": opts.job}
    command, capture = opts.command, None
    if opts.profile is not None:
        capture = _capture_path(opts.history, watch.run_id)
        command = prof.wrap(opts.command, capture, opts.profile)
        watch.profile = {"tool": prof.TOOL, "file": str(capture)}
    try:
        pid = start(watch, made, command, env)
    except (FileNotFoundError, PermissionError) as e:
        if made is not None:
            jobgroup.release(made)
        if isinstance(e, FileNotFoundError):
            say(f"{opts.command[0]}: command not found")
            return 127
        say(f"{opts.command[0]}: permission denied (not executable?)")
        return 126
    for sink in opts.sinks:
        sink.start()

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
                watch.tick(refresh)
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
        watch.finish()  # the job is a zombie now: its descendants' last marks, whether it had children
        _, status, usage = os.wait4(pid, 0)
    finally:
        os.close(pidfd)
        for s in FORWARDED:
            signal.signal(s, signal.SIG_DFL if s != signal.SIGINT else signal.default_int_handler)
    watch.reaped(usage.ru_maxrss * 1024)
    for hook in watch.hooks:
        import subprocess

        try:
            hook.wait(HOOK_WAIT)
        except subprocess.TimeoutExpired:  # leave it running
            say(f"guard hook {hook.args[-1]!r} still running after {HOOK_WAIT:.0f} s; not waiting for it")
    code = os.waitstatus_to_exitcode(status)
    exit_code = 128 - code if code < 0 else code
    if capture is not None:
        watch.profile = {**(watch.profile or {}), **_profile_result(capture)}
    final = watch.record(time.time(), exit_code)
    made = made if watch.group is not None else None  # None when the job could not enter it
    if made is not None:  # read: now remove it
        moved, problem = jobgroup.release(made)
        if moved:
            say(f"{len(moved)} process(es) the job left running moved to {made.home}: {moved}")
            final["cgroup"]["left_behind"] = moved
        if problem:
            say(problem)
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    final["wrapper_cpu_s"] = round(own.ru_utime + own.ru_stime, 4)
    if opts.history:
        history.finish(opts.history, final)
    text = watch.metrics(final)
    for sink in opts.sinks:
        sink.publish(text, final=True)
    linger([s for s in opts.sinks if isinstance(s, Listener)], opts.linger)
    for sink in opts.sinks:
        sink.close()
    if any(g.stops and g.fired_at is not None for g in opts.guards):
        return EXIT_GUARD
    return exit_code
