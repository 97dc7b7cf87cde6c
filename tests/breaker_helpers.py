"""Shared by the breaker's tests: a spec repository with breaker jobs, alert payloads, `breaker serve` processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TOKEN = "test-breaker-token-0123456789abcdef"
SPEC = """\
version: 1
name: breaker-test
defaults:
  route: {{warning: pager, critical: pager}}
notifications:
  pager: {{type: webhook, url: "http://127.0.0.1:9/pager"}}
jobs:
{jobs}"""
JOB = """\
  {id}:
    owner: data-eng
    model: {{name: scorer, version: "1"}}
    runtime: kubernetes
    selector: {{namespace: batch, container: scorer}}
    memory: {{limit: {limit}}}
    breaker:
{breaker}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def indent(text: str, n: int) -> str:
    return "".join(" " * n + line + "\n" for line in text.strip("\n").splitlines())


def make_repo(root: Path, jobs: dict[str, str], env: str = "test", env_yaml: str = "", limit: str = "8Gi") -> Path:
    """A spec with one job per ``jobs`` entry (id -> its breaker block as YAML) and ``environments/<env>.yaml``."""
    root.mkdir(parents=True, exist_ok=True)
    body = "".join(JOB.format(id=i, limit=limit, breaker=indent(b, 6)) for i, b in jobs.items())
    (root / "memprov.yaml").write_text(SPEC.format(jobs=body), encoding="utf-8")
    (root / "environments").mkdir(exist_ok=True)
    (root / "environments" / f"{env}.yaml").write_text(env_yaml, encoding="utf-8")
    return root


def env_yaml(port: int, state: Path, connections: str = "", extra: str = "") -> str:
    return (
        "breaker:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  token: {env: MEMPROV_BREAKER_TOKEN}\n"
        f"  state_dir: '{state}'\n"
        "  group_wait: 1s\n" + extra + indent(connections, 2)
    )


def alert(
    job: str,
    *,
    env: str = "test",
    name: str = "BatchJobMemoryTimeToOOM",
    fingerprint: str = "a1b2c3d4e5f60718",
    starts_at: str = "2026-12-02T10:00:00.000Z",
    status: str = "firing",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": name,
            "severity": "critical",
            "memprov_job": job,
            "memprov_env": env,
            "memprov_breaker": "on",
            "memprov_kind": "time_to_oom",
            "namespace": "batch",
            "container": "scorer",
            **labels,
        },
        "annotations": {"current": "7.1GiB", "limit": "8GiB"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "receiver": "memprov-breaker-test",
        "status": "firing",
        "alerts": list(alerts),
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "version": "4",
        "groupKey": '{}:{memprov_job="x"}',
        "truncatedAlerts": 0,
    }


@dataclass
class Serve:
    """A real ``memprov breaker serve`` process (``python -m provisioner``)."""

    repo: Path
    env: str
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[str] | None = None
    started_in: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> Serve:
        env = {**os.environ, "MEMPROV_BREAKER_TOKEN": TOKEN, "NO_COLOR": "1", **self.extra_env}
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "provisioner", "breaker", "serve", "--env", self.env, *self.args],
            cwd=self.repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"breaker serve exited {self.proc.returncode}: {self.proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/-/healthy", timeout=0.5).status_code == 200:
                    self.started_in = time.monotonic() - t0
                    return self
            except httpx.TransportError:
                time.sleep(0.02)
        raise RuntimeError("breaker serve did not answer /-/healthy")

    def post(self, body: Any, token: str | None = TOKEN, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.post(f"{self.url}/alerts", json=body, headers=headers, timeout=120, **kw)

    def stop(self) -> str:
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=20)
        return out


def audit(state: Path) -> list[dict[str, Any]]:
    path = state / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
