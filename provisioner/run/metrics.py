"""Prometheus metrics of a wrapped job, and where they go: a node_exporter textfile, a
Pushgateway, or a local ``/metrics`` listener.

The series carry ``memprov_job`` and ``memprov_env`` and never a run id (one series per job, not
per run). ``memprov_job_rss_peak_bytes`` is the run's peak so far from the kernel's high-water
marks (the job cgroup's, or the processes' ``VmHWM``), so a 15–30 s scrape still sees a spike
that lived between two scrapes. The listener keeps serving after the run until the final
values were scraped once (the wrapper waits for that, or ``--linger``). The text is written by hand
(the exposition format is small) to keep ``prometheus_client`` off the wrapper's start-up path,
and without timestamps: node_exporter refuses a textfile that has them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

# (name, type, help)
METRICS = {
    "memprov_job_rss_bytes": (
        "gauge",
        "Working set of the job now: its cgroup's usage - inactive_file, else its tree's RSS (0 between runs).",
    ),
    "memprov_job_rss_peak_bytes": (
        "gauge",
        "Peak memory of the job's current (or last) run so far, from the kernel's high-water marks.",
    ),
    "memprov_job_memory_limit_bytes": ("gauge", "Memory limit of the job's cgroup, or --limit."),
    "memprov_job_processes": ("gauge", "Processes in the job's tree now."),
    "memprov_job_running": ("gauge", "1 while a run of the job is in progress under memprov run."),
    "memprov_job_run_peak_bytes": ("gauge", "Peak memory of the last finished run (best source)."),
    "memprov_job_run_duration_seconds": ("gauge", "Duration of the last finished run."),
    "memprov_job_run_end_timestamp_seconds": ("gauge", "When the last run ended (unix seconds)."),
    "memprov_job_run_exit_code": ("gauge", "Exit code of the last finished run (128+N for signal N)."),
    "memprov_job_run_oom_killed": ("gauge", "1 when the last run was OOM-killed, else 0."),
    "memprov_job_run_guard_triggered": ("gauge", "1 when a memory guard acted during the last run, else 0."),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def exposition(job: str, env: str, values: dict[str, float]) -> str:
    """Prometheus text format of ``values`` (metric name → value), no timestamps."""
    labels = f'{{memprov_env="{_escape(env)}",memprov_job="{_escape(job)}"}}'
    lines = []
    for name, (kind, text) in METRICS.items():
        if name in values:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name}{labels} {_number(values[name])}"]
    return "\n".join(lines) + "\n"


class Sink:
    """Where metrics go; ``publish`` is called at most once a second and at the end."""

    def publish(self, text: str, final: bool) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Begin serving (a listener starts its thread once the job is spawned)."""

    def close(self) -> None:
        """Release what the sink holds (a listening socket)."""


@dataclass
class Textfile(Sink):
    """``<dir>/memprov_<job>_<env>.prom``, replaced atomically for node_exporter's textfile collector."""

    directory: Path
    job: str
    env: str

    @property
    def path(self) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{self.job}_{self.env}")
        return self.directory / f"memprov_{safe}.prom"

    def publish(self, text: str, final: bool) -> None:
        tmp = self.directory / f".{self.path.name}.{os.getpid()}.tmp"  # not *.prom: never read half-written
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.path)


@dataclass
class Pushgateway(Sink):
    """PUT to ``<url>/metrics/job/memprov/memprov_job/<job>/memprov_env/<env>``: no instance label,
    so a rescheduled job replaces its group rather than adding one."""

    url: str
    job: str
    env: str
    errors: int = 0

    @property
    def path(self) -> str:
        from urllib.parse import quote

        return f"/metrics/job/memprov/memprov_job/{quote(self.job, safe='')}/memprov_env/{quote(self.env, safe='')}"

    def publish(self, text: str, final: bool) -> None:
        import urllib.request

        req = urllib.request.Request(
            self.url.rstrip("/") + self.path,
            data=text.encode(),
            method="PUT",
            headers={"Content-Type": "text/plain; version=0.0.4"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                resp.read()
        except OSError as e:
            self.errors += 1
            if final or self.errors == 1:
                import sys

                print(f"memprov run: pushgateway {self.url}: {e}", file=sys.stderr)


class Listener(Sink):
    """A ``/metrics`` endpoint on ``host:port`` (a daemon thread), serving the latest text;
    ``final_served`` is set once a scrape has read the final values."""

    def __init__(self, host: str, port: int) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.text = ""
        self.final = False
        self.final_served = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                final = sink.final
                body = sink.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if final:
                    sink.final_served.set()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)  # bound now: a busy port is a usage error
        self.server.daemon_threads = True
        self.host, self.port = host, int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        if not self.thread.is_alive():
            self.thread.start()

    def publish(self, text: str, final: bool) -> None:
        self.text = text
        self.final = final

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
