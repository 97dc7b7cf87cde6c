"""``memprov run``'s Prometheus sinks: a textfile scraped by the real node_exporter, a Pushgateway
(a local fake that checks method, path and body), and the ``/metrics`` listener."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import memprov
from tests.test_run import WORKLOAD, wait_for_path

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
SERIES = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str) -> dict[str, tuple[str, float]]:
    out = {}
    for line in text.splitlines():
        m = SERIES.match(line)
        if m:
            out[m.group("name")] = (m.group("labels"), float(m.group("value")))
    return out


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    assert NODE_EXPORTER, "prometheus-node-exporter is installed by scripts/ensure-tools"
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
         "--collector.textfile", f"--collector.textfile.directory={textdir}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        end = time.monotonic() + 60
        while True:
            try:
                get(url)
                break
            except OSError:
                assert time.monotonic() < end, "node_exporter did not start"
                time.sleep(0.1)
        yield textdir, url
    finally:
        proc.terminate()
        proc.wait(30)


def test_textfile_is_scraped_by_the_real_node_exporter(tmp_path: Path, node_exporter: tuple[Path, str]) -> None:
    textdir, url = node_exporter
    done = memprov("run", "--job", "clv-daily", "--env", "prod", "--textfile", str(textdir), "--cgroup", "none",
                   "--limit", "4Gi", "--", sys.executable, "-c", "x = bytearray(50 * 2**20)", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (prom,) = textdir.glob("*.prom")
    assert prom.name == "memprov_clv-daily_prod.prom"
    scraped = get(url)
    assert "node_textfile_scrape_error 0" in scraped
    found = samples(scraped)
    labels, peak = found["memprov_job_rss_peak_bytes"]
    assert labels == 'memprov_env="prod",memprov_job="clv-daily"'
    assert peak > 0 and found["memprov_job_run_peak_bytes"][1] == peak
    assert found["memprov_job_rss_bytes"][1] == 0 and found["memprov_job_running"][1] == 0
    assert found["memprov_job_memory_limit_bytes"][1] == 4 * 2**30
    assert found["memprov_job_run_exit_code"][1] == 0 and found["memprov_job_run_oom_killed"][1] == 0
    assert "run_id" not in prom.read_text() and "instance" not in prom.read_text()
    assert not [p for p in textdir.iterdir() if p != prom]  # no temporary file left behind


class FakePushgateway:
    """Records every request: method, path, body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                fake.requests.append((self.command, self.path, body))
                self.send_response(200)
                self.end_headers()

            do_POST = do_PUT

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_pushgateway_put_has_the_grouping_key_without_instance(tmp_path: Path) -> None:
    fake = FakePushgateway()
    try:
        done = memprov("run", "--job", "clv daily/x", "--env", "prod", "--pushgateway", fake.url, "--cgroup", "none",
                       "--", "true", cwd=tmp_path)  # fmt: skip
        assert done.returncode == 2  # a job id with a space is refused before anything runs
        done = memprov("run", "--job", "clv-daily", "--env", "prod", "--pushgateway", fake.url + "/", "--cgroup",
                       "none", "--", "sleep", "0.2", cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
    finally:
        fake.server.shutdown()
    assert fake.requests, "nothing was pushed"
    method, path, body = fake.requests[-1]
    assert method == "PUT"
    assert path == "/metrics/job/memprov/memprov_job/clv-daily/memprov_env/prod"
    found = samples(body)
    assert found["memprov_job_running"][1] == 0 and found["memprov_job_rss_peak_bytes"][1] > 0
    assert "instance" not in body and "run_id" not in body
    for line in body.splitlines():  # no client-side timestamps
        assert line.startswith("#") or len(line.split(" ")) == 2, line


def test_pushgateway_down_does_not_fail_the_job(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = memprov("run", "--job", "j", "--pushgateway", url, "--cgroup", "none", "--", "true", cwd=tmp_path)
    assert done.returncode == 0 and "pushgateway" in done.stderr


def test_listen_serves_live_metrics_with_a_monotone_peak(tmp_path: Path) -> None:
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    port = free_port()
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "provisioner", "run", "--job", "j", "--env", "dev", "--listen", f"127.0.0.1:{port}",
         "--interval", "100ms", "--cgroup", "none", "--linger", "0", "--", sys.executable, str(script), "hold",
         str(tmp_path)],
        cwd=tmp_path,
    )  # fmt: skip
    try:
        wait_for_path(tmp_path / "ready")
        peaks, end = [], time.monotonic() + 60
        while len(peaks) < 5 or peaks[-1] < 200 * 2**20:  # metrics are published once a second
            assert time.monotonic() < end, peaks
            found = samples(get(f"http://127.0.0.1:{port}/metrics"))
            if found.get("memprov_job_running", ("", 0))[1] == 1:
                assert found["memprov_job_rss_bytes"][0] == 'memprov_env="dev",memprov_job="j"'
                peaks.append(found["memprov_job_rss_peak_bytes"][1])
            time.sleep(0.2)
        assert peaks == sorted(peaks) and peaks[-1] >= 200 * 2**20
        with pytest.raises(urllib.error.HTTPError):
            get(f"http://127.0.0.1:{port}/other")
    finally:
        wrapper.terminate()
        wrapper.wait(60)
    assert wrapper.returncode == 128 + 15


def listening(tmp_path: Path, port: int, *args: str) -> subprocess.Popen[str]:
    """``memprov run --listen 127.0.0.1:PORT ARGS`` started in the background (stderr kept)."""
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner", "run", "--job", "j", "--history", "h", "--listen", f"127.0.0.1:{port}",
         *args],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_recorded(history: Path, wrapper: subprocess.Popen[str], deadline: float = 60) -> dict[str, object]:
    """The run's record, which the wrapper writes before it lingers."""
    end = time.monotonic() + deadline
    while not (history / "runs.jsonl").exists():
        assert wrapper.poll() is None and time.monotonic() < end, "the run ended without a record"
        time.sleep(0.05)
    return dict(json.loads((history / "runs.jsonl").read_text()))


def test_listen_serves_the_final_values_until_one_scrape_reads_them(tmp_path: Path) -> None:
    port = free_port()
    code = "import time; b = bytearray(100 * 2**20); time.sleep(0.5)"
    wrapper = listening(tmp_path, port, "--", sys.executable, "-c", code)
    try:
        rec = wait_recorded(tmp_path / "h", wrapper)
        time.sleep(1.5)
        assert wrapper.poll() is None, "stopped serving before anyone read the final values"
        found = samples(get(f"http://127.0.0.1:{port}/metrics"))
        assert found["memprov_job_running"][1] == 0 and found["memprov_job_run_exit_code"][1] == 0
        assert found["memprov_job_run_peak_bytes"][1] == rec["peak_rss_bytes"] >= 100 * 2**20
        assert wrapper.wait(10) == 0  # that scrape was the one it waited for
        assert "until the next scrape" in (wrapper.stderr.read() if wrapper.stderr else "")
    finally:
        wrapper.kill()
        wrapper.wait()


def test_linger_serves_for_that_long_and_zero_not_at_all(tmp_path: Path) -> None:
    port = free_port()
    wrapper = listening(tmp_path, port, "--linger", "3s", "--", "true")
    try:
        wait_recorded(tmp_path / "h", wrapper)
        ended = time.monotonic()
        for _ in range(2):  # scrapes do not end it early
            assert samples(get(f"http://127.0.0.1:{port}/metrics"))["memprov_job_running"][1] == 0
        assert wrapper.wait(30) == 0
        assert 2.5 <= time.monotonic() - ended <= 10
    finally:
        wrapper.kill()
        wrapper.wait()
    (tmp_path / "h" / "runs.jsonl").unlink()
    wrapper = listening(tmp_path, port, "--linger", "0", "--", "true")
    assert wrapper.wait(30) == 0
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/metrics")


def test_linger_needs_listen(tmp_path: Path) -> None:
    done = memprov("run", "--job", "j", "--linger", "5s", "--", "true", cwd=tmp_path)
    assert done.returncode == 2 and "--linger is for --listen" in done.stderr


SPIKE = """
import os, sys, time
spike = bytearray(400 * 10**6)
time.sleep(0.3)
del spike
open(os.path.join(sys.argv[1], "spiked"), "w").close()
time.sleep(4)
"""


@pytest.mark.parametrize("cgroup", ["auto", "none"])
def test_the_live_peak_gauge_holds_a_spike_between_samples(tmp_path: Path, cgroup: str) -> None:
    """A 400 MB spike of 300 ms under 1 s samples: the live gauge (the kernel's marks: the job
    cgroup's, or the process's VmHWM) has it while the job still runs, as the final record does."""
    script = tmp_path / "spike.py"
    script.write_text(SPIKE)
    port = free_port()
    wrapper = listening(tmp_path, port, "--interval", "1s", "--cgroup", cgroup, "--linger", "0", "--",
                        sys.executable, str(script), str(tmp_path))  # fmt: skip
    try:
        wait_for_path(tmp_path / "spiked")
        time.sleep(1.3)  # at least one publish after the spike
        found = samples(get(f"http://127.0.0.1:{port}/metrics"))
        assert found["memprov_job_running"][1] == 1
        live = found["memprov_job_rss_peak_bytes"][1]
        assert wrapper.wait(60) == 0
    finally:
        wrapper.kill()
        wrapper.wait()
    rec = json.loads((tmp_path / "h" / "runs.jsonl").read_text())
    assert live >= 400 * 10**6 and abs(live - rec["peak_rss_bytes"]) <= 0.03 * rec["peak_rss_bytes"], (live, rec)
