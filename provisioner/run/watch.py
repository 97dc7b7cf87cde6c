"""The state of one run while it lives: what each tick and each refresh read, the guards, and
the history record and metrics made from it at any moment.

Each tick reads the cheapest thing that answers: with a cgroup, its charge and ``memory.stat``
(about 50 µs together); without one, the resident size of the known processes and their new
children. Each refresh (a second) re-reads the tree and the kernel's high-water marks.
Guards compare the working set (cgroup: ``usage − inactive_file``, as the kubelet does; no
cgroup: the tree's resident size) with their threshold.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from provisioner.run import history, procs
from provisioner.run import peak as pk
from provisioner.run.metrics import exposition

if TYPE_CHECKING:
    from provisioner.run.cgroup import Cgroup
    from provisioner.run.wrapper import Options


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def say(text: str) -> None:
    print(f"memprov run: {text}", file=sys.stderr, flush=True)


def outcome_of(exit_code: int, oom_delta: int) -> str:
    """``ok``, ``failed``, ``oom_killed`` (SIGKILL and the cgroup counted an OOM kill) or ``killed``."""
    if exit_code == 0:
        return "ok"
    if exit_code == 128 + signal.SIGKILL and oom_delta > 0:
        return "oom_killed"
    return "killed" if exit_code > 128 else "failed"


class Watch:
    """One run: its cgroup (``mode``: created, given, owned or None), its tree, its figures."""

    def __init__(self, opts: Options, run_id: str, group: Cgroup | None, mode: str | None, why: str = "") -> None:
        self.opts = opts
        self.run_id = run_id
        self.group = group
        self.mode = mode
        self.why = why  # why there is no cgroup of the job's own
        self.started = time.time()
        self.limit = opts.limit or (group.effective_limit() if group else None)
        self.oom_start = (group.oom_kills() if group else None) or 0
        self.start_bytes = group.current() if group and mode == "owned" else None
        self.wrapper_inside = False
        self.left_behind: list[int] = []
        self.pid = 0
        self.tree = procs.Tree(0)
        self.wrapper_hwm: int | None = None  # what a spawned child inherits as its ru_maxrss
        self.peak_sampled = 0
        self.cgroup_sampled = 0
        self.usage = 0
        self.ws = 0
        self.ws_max = 0
        self.cache_max = 0
        self.samples = 0
        self.rss = 0
        self.nprocs = 0
        self.single: bool | None = None
        self.wait4: int | None = None
        self.fired: list[dict[str, Any]] = []
        self.hooks: list[Any] = []  # guard hook processes, waited for at the end
        self.profile: dict[str, Any] | None = None  # the profiler's capture and, at the end, its top lines

    def started_job(self, pid: int) -> None:
        self.pid = pid
        self.tree = procs.Tree(pid, pids={pid})
        self.wrapper_hwm = procs.hwm(os.getpid())
        first = procs.hwm(pid)  # exec is done (the spawn returns after it): a job that ends at once has this
        if first is not None:
            self.tree.hwms[pid] = first

    def _working_set(self) -> int:
        if self.group is None:
            return self.rss
        found = self.group.working_set(self.usage)
        if found is not None:
            self.ws, cache = found
            self.ws_max = max(self.ws_max, self.ws)
            self.cache_max = max(self.cache_max, cache)
        return self.ws

    def tick(self, refresh: bool) -> None:
        self.samples += 1
        if self.group is None:
            if refresh:
                self.tree.refresh()
            self.rss, self.nprocs = self.tree.sample()
            self.peak_sampled = max(self.peak_sampled, self.rss)
            return
        self.usage = self.group.current() or 0
        self.cgroup_sampled = max(self.cgroup_sampled, self.usage)
        self._working_set()
        if refresh:
            self.tree.refresh(self.group.members() if self.mode == "created" else None)
            self.rss, self.nprocs = self.tree.sample(discover=False)
            self.peak_sampled = max(self.peak_sampled, self.rss)

    def finish(self) -> None:
        """After the job ended (a zombie, not yet reaped): the last marks, and whether it stayed one process."""
        self.tree.refresh(self.group.members() if self.group is not None and self.mode == "created" else None)
        waited = procs.waited_for_children(self.pid)
        self.single = self.tree.single and waited is False

    def reaped(self, maxrss: int) -> None:
        """``wait4``'s mark of the reaped job, kept only above what a spawned child inherits from the wrapper."""
        self.wait4 = maxrss if self.wrapper_hwm is None or maxrss > self.wrapper_hwm else None

    def sources(self) -> pk.Sources:
        g = self.group
        return pk.Sources(
            cgroup_mode=self.mode if g is not None else None,
            cgroup_peak=g.peak() if g is not None else None,
            cgroup_sampled=self.cgroup_sampled,
            cgroup_method=g.peak_method if g is not None else "",
            wrapper_inside=self.wrapper_inside,
            single_process=bool(self.single),
            wait4=self.wait4,
            hwm_root=self.tree.hwms.get(self.pid),
            hwm_max=self.tree.hwm_max,
            sampled=self.peak_sampled,
        )

    def cgroup_record(self) -> dict[str, Any]:
        g = self.group
        if g is None:
            return {"mode": "none", "reason": self.why}
        out: dict[str, Any] = {"mode": self.mode, "version": g.version, "path": str(g.path)}
        if self.mode == "owned":
            out |= {"peak_reset": g.reset, "start_bytes": self.start_bytes}
        if self.wrapper_inside:
            out["wrapper_inside"] = True
        if self.left_behind:
            out["left_behind"] = self.left_behind
        return out

    def record(self, now: float, exit_code: int | None = None) -> dict[str, Any]:
        oom = (self.group.oom_kills() if self.group else None) or 0
        oom_delta = max(0, oom - self.oom_start)
        src = self.sources()
        peak, method, bound = pk.choose(src)
        if exit_code is None:  # the run goes on, or its wrapper was killed: at least this much
            peak, bound = max(peak, pk.live(src)), pk.LOWER
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
            "peak_bound": bound,
            "peak_cgroup_bytes": src.cgroup_peak,
            "peak_wait4_bytes": self.wait4,
            "peak_hwm_max_bytes": self.tree.hwm_max,
            "peak_hwm_sum_bytes": self.tree.hwm_sum_peak,
            "peak_sampled_bytes": self.peak_sampled,
            "working_set_max_bytes": self.ws_max if self.group is not None else None,
            "cache_max_bytes": self.cache_max if self.group is not None else None,
            "wrapper_hwm_bytes": self.wrapper_hwm,
            "single_process": self.single,
            "limit_bytes": self.limit,
            "oom_kill_events": oom_delta,
            "cgroup": self.cgroup_record(),
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
        live = self.ws if self.group is not None else self.rss
        values: dict[str, float] = {
            "memprov_job_rss_bytes": 0 if final else live,
            "memprov_job_rss_peak_bytes": final["peak_rss_bytes"] if final else pk.live(self.sources()),
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
        pending = [(g, level) for g in self.opts.guards if g.fired_at is None and (level := g.threshold(self.limit))]
        if not pending:
            return
        used = self.ws if self.group is not None else self.rss
        for g, level in pending:
            if used < level:
                continue
            g.fired_at = now - self.started
            what = f"sent {g.signal.name}" if g.signal else f"ran {g.command!r}"
            self.fired.append({"guard": g.text, "at_s": round(g.fired_at, 3), "memory_bytes": used, "action": what})
            say(f"guard {g.text}: working set {used / 2**20:.0f} MiB reached {level / 2**20:.0f} MiB; {what}")
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
