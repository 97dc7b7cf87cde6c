"""Real Prometheus and Alertmanager servers on 127.0.0.1 (free ports), for the reload targets' harnesses."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


@contextlib.contextmanager
def running(cmd: list[str], url: str) -> Iterator[None]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url, proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def prometheus(rules_dir: Path, work: Path) -> Iterator[str]:
    """A Prometheus whose ``rule_files`` is ``rules_dir/*.yaml``, reloadable (``--web.enable-lifecycle``)."""
    port = free_port()
    config = work / "prometheus.yml"
    config.write_text(f"global: {{evaluation_interval: 30s}}\nrule_files: ['{rules_dir}/*.yaml']\n", encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    cmd = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={work / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]
    with running(cmd, url):
        yield url


@contextlib.contextmanager
def alertmanager(config: Path, work: Path) -> Iterator[str]:
    """An Alertmanager reading ``config`` (which must exist), reloadable with ``POST /-/reload``."""
    port, cluster = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        "prometheus-alertmanager",
        f"--config.file={config}",
        f"--storage.path={work / 'amdata'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--cluster.listen-address=127.0.0.1:{cluster}",
    ]
    with running(cmd, url):
        yield url
