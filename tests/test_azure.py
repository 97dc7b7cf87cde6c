"""The azure backend without Azure: request bodies (golden, and exactly what azure-mgmt-monitor
sends), kind mapping, normalisation, the files target, spec errors with file:line, and the Azure
SDK staying out of commands that do not need it.

Goldens: ``tests/golden/azure/<env>/<rule>.json`` for the example environments that enable azure,
and ``tests/golden/azure/platforms/`` for VM and Azure ML jobs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.backends.azure import AzureBackend, normalise_rule
from provisioner.backends.registry import build
from provisioner.plan.model import canonical
from provisioner.plan.planner import plan_backend
from provisioner.render.azure import DYNAMIC, STATIC, rules, support
from provisioner.spec.loader import environments, load
from tests.helpers import ROOT, assert_golden, example_repo, memprov

ENVS = [e for e in environments(ROOT / "memprov.yaml") if load(ROOT / "memprov.yaml", e).jobs_using("azure")]
SUB = "00000000-0000-0000-0000-000000000000"

PLATFORMS = f"""\
version: 1
name: platforms
defaults:
  backends: [azure]
jobs:
  vm-nightly:
    owner: search
    model: {{name: ranker, version: "1.2"}}
    runtime: vm
    memory: {{limit: 64Gi, baseline: {{peak_p95: 40Gi, velocity: 64Mi}}}}
    azure:
      scope: /subscriptions/{SUB}/resourceGroups/rg-batch/providers/Microsoft.Compute/virtualMachines/ranker-01
      region: northeurope
  aml-batch:
    owner: vision
    model: {{name: vit, version: "3"}}
    runtime: process
    memory: {{limit: 32Gi}}
    usage: {{warning_for: 15m, critical_for: 5m}}
    azure:
      platform: aml
      scope: /subscriptions/{SUB}/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ml-ws
      region: westeurope
      compute: gpu-cluster
"""


def platforms_repo(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "memprov.yaml").write_text(PLATFORMS, encoding="utf-8")
    return dest


def serialised(backend: AzureBackend) -> dict[str, str]:
    return {r.key: backend.serialise(r) for r in backend.desired}


def test_the_example_environment_enables_azure() -> None:
    assert ENVS == ["azure"]


@pytest.mark.parametrize("env", ENVS)
def test_golden_request_bodies(env: str) -> None:
    [(backend, _)] = build(load(ROOT / "memprov.yaml", env), ["azure"])
    assert isinstance(backend, AzureBackend)
    for key, text in serialised(backend).items():
        assert_golden(f"azure/{env}/{key}.json", text)


def test_golden_platforms(tmp_path: Path) -> None:
    [(backend, _)] = build(load(platforms_repo(tmp_path) / "memprov.yaml", "local"), ["azure"])
    assert isinstance(backend, AzureBackend)
    bodies = serialised(backend)
    for key, text in bodies.items():
        assert_golden(f"azure/platforms/{key}.json", text)
    vm = json.loads(bodies["memprov-local-vm-nightly-usage-warning"])["properties"]
    [c] = vm["criteria"]["allOf"]
    assert c["metricNamespace"] == "Microsoft.Compute/virtualMachines"
    assert c["metricName"] == "Available Memory Percentage"
    assert (c["operator"], c["timeAggregation"], c["threshold"]) == ("LessThan", "Maximum", 20.0)  # used > 80%
    assert c["dimensions"] == []
    baseline = json.loads(bodies["memprov-local-vm-nightly-baseline"])["properties"]["criteria"]["allOf"][0]
    assert baseline["threshold"] == pytest.approx(100 - 81.25)  # 1.3 x 40Gi of 64Gi, as available memory
    aml = json.loads(bodies["memprov-local-aml-batch-usage-warning"])["properties"]
    [c] = aml["criteria"]["allOf"]
    assert c["metricName"] == "CpuMemoryUtilizationPercentage" and c["operator"] == "GreaterThan"
    assert c["dimensions"] == [{"name": "ComputeName", "operator": "Include", "values": ["gpu-cluster"]}]
    assert aml["windowSize"] == "PT15M" and aml["evaluationFrequency"] == "PT1M"
    dyn = json.loads(bodies["memprov-local-aml-batch-baseline"])["properties"]  # no p95: dynamic thresholds
    assert dyn["criteria"]["odata.type"] == DYNAMIC and dyn["criteria"]["allOf"][0]["alertSensitivity"] == "Low"
    assert dyn["targetResourceType"] == "Microsoft.MachineLearningServices/workspaces"
    assert dyn["targetResourceRegion"] == "westeurope"
    assert all(not json.loads(t)["properties"]["actions"] for t in bodies.values())  # no action groups configured
    notes = "\n".join(plan_backend(backend, backend.target()).notes)
    assert "vm-nightly: alert kinds on azure (vm) — native: baseline · approximated: usage, time_to_oom, " in notes
    assert "vm-nightly: usage is approximated on azure (critical_for 2m → window PT5M (rounded up" in notes
    assert "aml-batch: alert kinds on azure (aml) — native: usage · approximated: time_to_oom, baseline" in notes
    assert "aml-batch: oom_killed is unsupported on azure (an Azure ML job killed for memory fails" in notes
    assert "vm-nightly: growth is unsupported on azure (Azure metric alerts compare one aggregate" in notes
    assert "no action group for critical, warning: those alert rules notify nobody" in notes


def test_bodies_are_exactly_what_the_sdk_sends() -> None:
    """Every body deserialises into azure-mgmt-monitor's model and serialises back unchanged."""
    from azure.mgmt.monitor.models import MetricAlertResource

    spec = load(ROOT / "memprov.yaml", "azure")
    for job in spec.jobs:
        for rule in rules(spec, job, {}):
            model = MetricAlertResource.deserialize(rule["body"])
            assert model.serialize() == rule["body"], rule["name"]
            kinds = {c["criterionType"] for c in model.serialize()["properties"]["criteria"]["allOf"]}
            dynamic = "DynamicThresholdCriterion" in kinds
            assert rule["body"]["properties"]["criteria"]["odata.type"] == (DYNAMIC if dynamic else STATIC)


def test_each_kind_maps_as_the_issue_asks() -> None:
    spec = load(ROOT / "memprov.yaml", "azure")
    job = spec.jobs[0]
    prefix = f"memprov-azure-{job.id}-"
    by_name = {r["name"].removeprefix(prefix): r["body"]["properties"] for r in rules(spec, job, {})}
    assert sorted(by_name) == ["anomaly", "baseline", "time-to-oom-critical", "usage-critical", "usage-warning"]
    warning, critical = by_name["usage-warning"], by_name["usage-critical"]
    assert (warning["severity"], critical["severity"]) == (2, 0)
    assert warning["windowSize"] == "PT5M" and critical["windowSize"] == "PT5M"  # 2m rounded up to 5m
    assert critical["criteria"]["allOf"][0]["threshold"] == pytest.approx(93.75)
    assert critical["criteria"]["allOf"][0]["timeAggregation"] == "Minimum"  # above for the whole window
    anomaly = by_name["anomaly"]["criteria"]["allOf"][0]
    assert anomaly["alertSensitivity"] == "Medium" and anomaly["failingPeriods"] == {
        "numberOfEvaluationPeriods": 6,
        "minFailingPeriodsToAlert": 2,
    }
    tto = by_name["time-to-oom-critical"]["criteria"]["allOf"][0]
    assert tto["threshold"] == pytest.approx(80.2, abs=0.1)  # 3 x 18Mi/min for 30m of 8Gi is 19.8%
    levels = {k.value: s.level.value for k, s in support(job)}
    assert levels == {
        "usage": "approximated",
        "baseline": "approximated",
        "growth": "unsupported",
        "time_to_oom": "approximated",
        "anomaly": "approximated",
        "oom_killed": "unsupported",
    }
    for r in rules(spec, job, {}):
        assert r["name"].startswith("memprov-azure-") and r["body"]["location"] == "global"
        assert r["body"]["tags"]["managed-by"] == "memprov" and r["body"]["tags"]["memprov-env"] == "azure"
        text = r["body"]["properties"]["description"]
        assert "clv-daily" in text and "https://grafana.azure.example.com/d/memprov-azure-clv-daily?var-job=" in text


def test_normalise_makes_an_arm_shaped_rule_equal_to_its_request() -> None:
    spec = load(ROOT / "memprov.yaml", "azure")
    group = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/warn"
    for rule in rules(spec, spec.jobs[0], {"warning": group, "critical": group}):
        desired = rule["body"]
        props = json.loads(json.dumps(desired["properties"]))
        for c in props["criteria"]["allOf"]:
            if "threshold" in c and float(c["threshold"]).is_integer():
                c["threshold"] = int(c["threshold"])
        for a in props["actions"]:
            a["actionGroupId"] = a["actionGroupId"].lower()
        live = {
            "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Insights/metricAlerts/{rule['name']}",
            "name": rule["name"],
            "type": "Microsoft.Insights/metricAlerts",
            "location": "Global",
            "tags": {**desired["tags"], "cost-centre": "ml"},
            "properties": {**props, "lastUpdatedTime": "2026-11-30T10:00:00Z", "isMigrated": False},
        }
        assert canonical(normalise_rule(live)) == canonical(normalise_rule(desired))
        changed = {**live, "properties": {**live["properties"], "severity": 4}}
        assert canonical(normalise_rule(changed)) != canonical(normalise_rule(desired))


def test_files_target_apply_then_replan_and_lookalike(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    env = repo / "environments" / "azure.yaml"
    text = env.read_text()
    live = ("    type: azure", "    subscription_id:", "    resource_group:")  # the live target's settings
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith(live[1:])]
    assert sum(line.startswith(live) for line in text.splitlines()) == 3
    files = ["    type: files\n" if line.startswith(live[0]) else line for line in lines]
    env.write_text("".join(files), encoding="utf-8")
    applied = memprov("apply", "--env", "azure", "--backend", "azure", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    out = repo / "out" / "azure" / "azure"
    assert len(list(out.glob("*.json"))) == 15
    body = json.loads((out / "memprov-azure-clv-daily-usage-warning.json").read_text())
    assert body["properties"]["actions"][0]["actionGroupId"].endswith("/actionGroups/ml-platform-warning")
    again = memprov("plan", "--env", "azure", "--backend", "azure", "--detailed-exitcode", cwd=repo)
    assert again.returncode == 0, again.stdout
    (out / "memprov-azure-clv-daily-anomaly.json").write_text(json.dumps({**body, "tags": {}}))  # not ours any more
    (out / "memprov-azure-old-usage-warning.json").write_text(json.dumps(body))  # ours, stale
    plan = memprov("plan", "--env", "azure", "--backend", "azure", cwd=repo)
    assert "! metric-alert memprov-azure-clv-daily-anomaly" in plan.stdout, plan.stdout
    assert "- metric-alert memprov-azure-old-usage-warning" in plan.stdout


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    azure: {node_pool: gpu, frequency: 5m}",
            "    azure: {node_pool: gpu, frequency: 2m}",
            "environments/azure.yaml:17: jobs.doc-embed.azure.frequency: 2m is not an Azure Monitor evaluation "
            "frequency; use 1m, 5m, 15m, 30m or 1h",
        ),
        (
            "    resource_group: rg-ml-monitoring",
            "    resource_group: rg ml monitoring",
            'environments/azure.yaml:22: targets.azure.resource_group: "rg ml monitoring" is not allowed here; '
            "use a resource group name",
        ),
        (
            "    region: westeurope",
            "    regoin: westeurope",
            "environments/azure.yaml:13: defaults.azure.regoin: unknown key 'regoin' (did you mean 'region'?)",
        ),
        (
            "/providers/Microsoft.Insights/actionGroups/ml-platform-warning",
            "/providers/Microsoft.Insights/actionGroup/ml-platform-warning",
            'environments/azure.yaml:24: targets.azure.action_groups.warning: "/subscriptions/',
        ),
    ],
)
def test_bad_azure_settings_are_located(tmp_path: Path, old: str, new: str, message: str) -> None:
    repo = example_repo(tmp_path)
    env = repo / "environments" / "azure.yaml"
    text = env.read_text()
    assert old in text
    env.write_text(text.replace(old, new), encoding="utf-8")
    result = memprov("validate", cwd=repo)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_job_without_its_scope_or_with_the_wrong_one_is_an_error_at_the_job(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    env = repo / "environments" / "azure.yaml"
    text = env.read_text()
    scope = next(line for line in text.splitlines() if line.startswith("    scope: "))
    env.write_text(text.replace(scope + "\n", ""), encoding="utf-8")
    result = memprov("plan", "--env", "azure", cwd=repo)
    assert result.returncode == 2, result.stderr
    assert "memprov.yaml:32: jobs.clv-daily: the azure backend needs azure.scope" in result.stderr, result.stderr
    assert "environments/azure.yaml:16: jobs.doc-embed.azure: the azure backend needs azure.scope" in result.stderr
    assert "Traceback" not in result.stderr
    vm = scope.replace("Microsoft.ContainerService/managedClusters", "Microsoft.Compute/virtualMachines")
    env.write_text(text.replace(scope, vm), encoding="utf-8")
    result = memprov("validate", "--env", "azure", cwd=repo)
    assert result.returncode == 2
    assert (
        "memprov.yaml:32: jobs.clv-daily: azure.scope is not a Microsoft.ContainerService/managedClusters resource id"
        in result.stderr
    ), result.stderr


def test_azure_is_imported_only_when_a_live_target_is_used(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    for args in (["--help"], ["plan", "--env", "local"], ["validate"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "provisioner", *args], capture_output=True, text=True, cwd=repo
        )
        assert result.returncode == 0, result.stderr[-2000:]
        imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
        assert not imported & {"azure", "msal", "isodate"}, args
