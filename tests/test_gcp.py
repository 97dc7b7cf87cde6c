"""The gcp backend without Google Cloud: policy bodies (golden), kind mapping, normalisation, the
files target, spec errors with file:line, and the Google client staying out of commands that do
not need it.

Goldens: ``tests/golden/gcp/<env>/<policy>.json`` for the example environments that enable gcp,
and ``tests/golden/gcp/platforms/`` for a Compute Engine job and a GKE job without Managed
Prometheus.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.backends.gcp import GcpBackend, normalise_policy
from provisioner.backends.registry import build
from provisioner.plan.model import canonical
from provisioner.plan.planner import plan_backend
from provisioner.render.gcp import policies, support
from provisioner.spec.loader import environments, load
from tests.helpers import ROOT, assert_golden, example_repo, memprov

ENVS = [e for e in environments(ROOT / "memprov.yaml") if load(ROOT / "memprov.yaml", e).jobs_using("gcp")]

PLATFORMS = """\
version: 1
name: platforms
defaults:
  backends: [gcp]
jobs:
  gce-nightly:
    owner: search
    model: {name: ranker, version: "1.2"}
    runtime: vm
    memory: {limit: 64Gi, baseline: {peak_p95: 40Gi, velocity: 64Mi}}
    gcp: {instance_id: "1234567890123456789", project: search-prod-1, period: 5m}
  gke-scorer:
    owner: risk
    model: {name: gbm, version: "7"}
    selector: {namespace: "risk \\"q\\"", regex: {pod: "scorer-.*", node: "pool-a.*"}}
    memory: {limit: 4Gi}
    time_to_oom: {horizon: 2h, warning_horizon: 70h}
    gcp: {cluster: risk}
"""


def platforms_repo(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "memprov.yaml").write_text(PLATFORMS, encoding="utf-8")
    return dest


def serialised(backend: GcpBackend) -> dict[str, str]:
    return {r.key: backend.serialise(r) for r in backend.desired}


@pytest.mark.parametrize("env", ENVS)
def test_golden_policies(env: str) -> None:
    [(backend, _)] = build(load(ROOT / "memprov.yaml", env), ["gcp"])
    assert isinstance(backend, GcpBackend)
    for key, text in serialised(backend).items():
        assert_golden(f"gcp/{env}/{key}.json", text)


def test_golden_platforms(tmp_path: Path) -> None:
    [(backend, _)] = build(load(platforms_repo(tmp_path) / "memprov.yaml", "local"), ["gcp"])
    assert isinstance(backend, GcpBackend)
    bodies = serialised(backend)
    for key, text in bodies.items():
        assert_golden(f"gcp/platforms/{key}.json", text)
    gce = json.loads(bodies["memprov-local-gce-nightly-usage-warning"])["conditions"][0]["conditionThreshold"]
    assert gce["filter"] == (
        'metric.type = "agent.googleapis.com/memory/percent_used" AND metric.labels.state = "used" AND '
        'resource.type = "gce_instance" AND resource.labels.instance_id = "1234567890123456789" AND '
        'resource.labels.project_id = "search-prod-1"'
    )
    assert gce["thresholdValue"] == 80.0 and gce["aggregations"][0]["alignmentPeriod"] == "300s"
    baseline = json.loads(bodies["memprov-local-gce-nightly-baseline"])["conditions"][0]["conditionThreshold"]
    assert baseline["thresholdValue"] == 81.25  # 1.3 x 40Gi of 64Gi, in percent
    scorer = json.loads(bodies["memprov-local-gke-scorer-usage-critical"])["conditions"][0]["conditionThreshold"]
    assert 'resource.labels.namespace_name = "risk \\"q\\""' in scorer["filter"]  # quotes escaped
    assert 'resource.labels.pod_name = monitoring.regex.full_match("scorer-.*")' in scorer["filter"]
    forecast = json.loads(bodies["memprov-local-gke-scorer-time-to-oom-warning"])["conditions"][0]
    assert forecast["conditionThreshold"]["forecastOptions"] == {"forecastHorizon": "216000s"}  # 70h: capped at 60h
    assert not [k for k in bodies if k.endswith(("-anomaly", "gke-scorer-baseline"))]  # no PromQL, no p95
    assert not [k for k in bodies if k.startswith("memprov-local-gce-nightly-oom")]  # no OOM metric on GCE
    assert all(not json.loads(t)["notificationChannels"] for t in bodies.values())  # no channels configured
    notes = "\n".join(plan_backend(backend, backend.target()).notes)
    assert "gke-scorer: anomaly is unsupported on gcp (Cloud Monitoring has no seasonal z-score outside PromQL" in notes
    assert "gke-scorer: baseline is unsupported on gcp (no recorded p95 peak and no PromQL" in notes
    assert "gce-nightly: oom_killed is unsupported on gcp (the Ops Agent publishes no OOM-kill metric)" in notes
    assert "gke-scorer: selector.regex on node has no GKE resource label; set gcp.filter" in notes
    assert "no notification channel for critical, warning: those policies notify nobody" in notes
    assert "horizon 2h" not in notes and "horizon 2d22h capped at Cloud Monitoring's maximum of 2d12h" in notes


def test_each_kind_maps_as_the_issue_asks() -> None:
    spec = load(ROOT / "memprov.yaml", "gcp")
    job = spec.jobs[0]
    by_name = {p["displayName"].removeprefix(f"memprov-gcp-{job.id}-"): p for p in policies(spec, job, {})}
    usage = by_name["usage-critical"]["conditions"][0]["conditionThreshold"]
    assert usage["duration"] == "120s" and usage["thresholdValue"] == pytest.approx(0.9375)
    assert 'metric.labels.memory_type = "non-evictable"' in usage["filter"]
    assert (
        "limit_utilization" in usage["filter"] and usage["evaluationMissingData"] == "EVALUATION_MISSING_DATA_INACTIVE"
    )
    growth = by_name["growth"]["conditions"][0]["conditionPrometheusQueryLanguage"]  # not ALIGN_RATE on a GAUGE
    assert growth["query"].startswith("deriv((min_over_time(container_memory_working_set_bytes{")
    assert float(growth["query"].rsplit(">", 1)[1]) == pytest.approx(3 * 18 * 2**20 / 60, rel=1e-5)  # 3x 18Mi/min
    tto = by_name["time-to-oom-critical"]["conditions"][0]["conditionThreshold"]
    assert tto["forecastOptions"] == {"forecastHorizon": "3600s"} and tto["thresholdValue"] == 1.0
    anomaly = by_name["anomaly"]["conditions"][0]["conditionPrometheusQueryLanguage"]
    assert "offset 3w" in anomaly["query"] and anomaly["alertRule"] == "BatchJobMemoryAnomaly"
    assert 'container_memory_working_set_bytes{namespace="batch", container="clv-scorer"}' in anomaly["query"]
    assert by_name["usage-critical"]["severity"] == "CRITICAL" and by_name["growth"]["severity"] == "WARNING"
    assert {k.value: s.level.value for k, s in support(job)} == {
        "usage": "native",
        "baseline": "native",
        "anomaly": "native",
        "growth": "approximated",
        "time_to_oom": "approximated",
        "oom_killed": "approximated",
    }
    for p in by_name.values():
        assert p["userLabels"]["managed-by"] == "memprov" and p["userLabels"]["memprov-env"] == "gcp"
        assert p["documentation"]["mimeType"] == "text/markdown"
        assert "/d/memprov-gcp-clv-daily?var-job=clv-daily" in p["documentation"]["content"]
        assert p["alertStrategy"] == {"autoClose": "1800s"}


def test_normalise_makes_a_server_shaped_policy_equal_to_its_request() -> None:
    spec = load(ROOT / "memprov.yaml", "gcp")
    for desired in policies(spec, spec.jobs[0], {"warning": ["projects/p-123456/notificationChannels/1"]}):
        live = json.loads(json.dumps(desired))
        live["name"] = "projects/ml-batch-prod/alertPolicies/123"
        live["creationRecord"] = {"mutateTime": "2026-11-30T10:00:00Z", "mutatedBy": "someone"}
        live["mutationRecord"] = live["creationRecord"]
        live["userLabels"]["cost-centre"] = "ml"  # someone else's label: not drift
        for i, c in enumerate(live["conditions"]):
            c["name"] = f"{live['name']}/conditions/{i}"
            threshold = c.get("conditionThreshold", {})
            if threshold.get("thresholdValue") == 0:
                del threshold["thresholdValue"]  # MessageToDict leaves defaults out
        if not live["notificationChannels"]:
            del live["notificationChannels"]
        assert canonical(normalise_policy(live)) == canonical(normalise_policy(desired))


def test_files_target_apply_then_replan_and_lookalike(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    env = repo / "environments" / "gcp.yaml"
    text = env.read_text()
    assert "    type: gcp\n    project: ml-batch-prod\n" in text
    env.write_text(text.replace("    type: gcp\n    project: ml-batch-prod\n", "    type: files\n"), encoding="utf-8")
    applied = memprov("apply", "--env", "gcp", "--backend", "gcp", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    out = repo / "out" / "gcp" / "gcp"
    files = sorted(p.name for p in out.glob("*.json"))
    assert len(files) == 24
    body = json.loads((out / "memprov-gcp-clv-daily-usage-warning.json").read_text())
    assert body["notificationChannels"] == ["projects/ml-batch-prod/notificationChannels/1234567890"]
    again = memprov("plan", "--env", "gcp", "--backend", "gcp", "--detailed-exitcode", cwd=repo)
    assert again.returncode == 0, again.stdout
    (out / "memprov-gcp-clv-daily-growth.json").write_text(json.dumps({**body, "userLabels": {}}))  # not ours
    (out / "memprov-gcp-old-usage-warning.json").write_text(json.dumps(body))  # ours, stale
    plan = memprov("plan", "--env", "gcp", "--backend", "gcp", cwd=repo)
    assert "! policy memprov-gcp-clv-daily-growth" in plan.stdout, plan.stdout
    assert "- policy memprov-gcp-old-usage-warning" in plan.stdout, plan.stdout
    assert "note: clv-daily: alert kinds on gcp (gke) — native: usage, baseline, anomaly · " in plan.stdout


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    cluster: ml-batch\n",
            "    cluster: ml-batch\n    period: 90s\n",
            "environments/gcp.yaml:13: defaults.gcp.period: 1m30s is not an alignment period for alerting; "
            "use 1m to 1d in whole minutes",
        ),
        (
            "    cluster: ml-batch\n",
            "    clustre: ml-batch\n",
            "environments/gcp.yaml:12: defaults.gcp.clustre: unknown key 'clustre' (did you mean 'cluster'?)",
        ),
        (
            "      warning: [projects/ml-batch-prod/notificationChannels/1234567890]",
            "      warning: [ml-platform-slack]",
            'environments/gcp.yaml:20: targets.gcp.channels.warning[0]: "ml-platform-slack" is not allowed here; '
            "use a notification channel name",
        ),
        (
            "    project: ml-batch-prod\n",
            "    project: ML_batch\n",
            'environments/gcp.yaml:18: targets.gcp.project: "ML_batch" is not allowed here; use a Google Cloud '
            "project id",
        ),
    ],
)
def test_bad_gcp_settings_are_located(tmp_path: Path, old: str, new: str, message: str) -> None:
    repo = example_repo(tmp_path)
    env = repo / "environments" / "gcp.yaml"
    text = env.read_text()
    assert old in text
    env.write_text(text.replace(old, new), encoding="utf-8")
    result = memprov("validate", cwd=repo)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_job_without_its_cluster_is_an_error_at_the_job(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    env = repo / "environments" / "gcp.yaml"
    text = (
        env.read_text().replace("    cluster: ml-batch\n", "") + "jobs:\n  doc-embed:\n    gcp: {location: us-east1}\n"
    )
    env.write_text(text, encoding="utf-8")
    result = memprov("plan", "--env", "gcp", cwd=repo)
    assert result.returncode == 2, result.stderr
    assert "memprov.yaml:32: jobs.clv-daily: the gcp backend needs gcp.cluster" in result.stderr, result.stderr
    assert "environments/gcp.yaml:24: jobs.doc-embed.gcp: the gcp backend needs gcp.cluster" in result.stderr
    assert "Traceback" not in result.stderr


def test_google_is_imported_only_when_a_live_target_is_used(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    for args in (["--help"], ["plan", "--env", "local"], ["validate"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "provisioner", *args], capture_output=True, text=True, cwd=repo
        )
        assert result.returncode == 0, result.stderr[-2000:]
        imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
        assert not imported & {"google", "grpc", "proto"}, args
