"""Grafana dashboards: valid against Grafana's schema, golden, deterministic, and showing what they must.

Every dashboard of every example environment (and of specs using the other runtimes) is checked
against the JSON Schema derived from Grafana's published dashboard schema
(:mod:`tests.fakes.grafana_schema`), not only against our own goldens. Goldens live in
``tests/golden/grafana/<env>/``; a missing golden fails; ``make golden`` (MEMPROV_UPDATE_GOLDEN=1)
rewrites them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provisioner.kinds import series as s
from provisioner.render.grafana import dashboards as grafana
from provisioner.spec.loader import environments, load
from tests.fakes.grafana_schema import errors
from tests.helpers import ROOT, example_repo, memprov

GOLDEN = ROOT / "tests" / "golden" / "grafana"
ENVS = environments(ROOT / "memprov.yaml")
OTHER_RUNTIMES = """
  vm-scorer:
    owner: ml
    model: {name: m, version: "1"}
    runtime: vm
    selector: {instance: "scorer-1:9100"}
    memory: {limit: 64Gi}
  proc-embed:
    owner: ml
    model: {name: m, version: "1"}
    runtime: process
    selector: {groupname: embedder}
    metrics: {limit: embedder_memory_limit_bytes}
    memory: {limit: 4Gi, thresholds: {warning: 70%, critical: 85%}}
    anomaly: {zscore: 4}
"""


def panels(dash: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(p.get("title")): p for p in dash["panels"]}


def exprs(panel: dict[str, Any]) -> list[str]:
    return [str(t["expr"]) for t in panel.get("targets", [])]


def steps(panel: dict[str, Any]) -> list[Any]:
    return [step["value"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


@pytest.mark.parametrize("env", ENVS)
def test_every_dashboard_is_valid_against_grafanas_schema(env: str) -> None:
    rendered = grafana.dashboards(load(ROOT / "memprov.yaml", env))
    assert [d.uid for d in rendered] == [
        f"memprov-{env}-{j}" for j in ("clv-daily", "image-embed", "doc-embed", "feature-batch")
    ] + [f"memprov-{env}-overview"]
    for d in rendered:
        assert errors(d.data) == [], d.uid


def test_other_runtimes_render_valid_dashboards(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    (repo / "memprov.yaml").write_text((repo / "memprov.yaml").read_text() + OTHER_RUNTIMES, encoding="utf-8")
    spec = load(repo / "memprov.yaml", "local")
    rendered = {d.uid: d.data for d in grafana.dashboards(spec)}
    for uid, data in rendered.items():
        assert errors(data) == [], uid
    vm = rendered["memprov-local-vm-scorer"]
    assert [v["name"] for v in vm["templating"]["list"]] == ["datasource", "job", "node"]
    assert "instance" in vm["templating"]["list"][2]["query"]
    overview = rendered["memprov-local-overview"]
    assert [v["name"] for v in overview["templating"]["list"]] == ["datasource", "job"]  # no common node label
    assert "Alerts fire above" not in panels(overview)["Anomaly z-score by job"]["description"]  # zscores differ


def test_the_schema_rejects_what_grafana_would_not_know() -> None:
    dash = grafana.dashboards(load(ROOT / "memprov.yaml", "local"))[0].data
    legacy = {**dash, "rows": [], "style": "dark"}
    assert any("'rows', 'style' were unexpected" in e for e in errors(legacy))
    broken = json.loads(json.dumps(dash))
    broken["panels"][1]["span"] = 8
    broken["panels"][1]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] = "dotted"
    broken["panels"][2]["options"]["sizing"] = "huge"
    found = "\n".join(errors(broken))
    assert "'span' was unexpected" in found and "'dotted' is not one of" in found and "'huge' is not one of" in found


def _golden_check(path: Path, text: str) -> None:
    if os.environ.get("MEMPROV_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"golden file {path.relative_to(ROOT)} is missing; run `make golden` and review it"
    assert path.read_text(encoding="utf-8") == text, f"{path.relative_to(ROOT)} differs; run `make golden` and review"


@pytest.mark.parametrize("env", ["local", "prod"])
def test_golden_dashboards(env: str) -> None:
    rendered = grafana.dashboards(load(ROOT / "memprov.yaml", env))
    for d in rendered:
        _golden_check(GOLDEN / env / f"{d.uid}.json", grafana.serialise(d.data))
    if not os.environ.get("MEMPROV_UPDATE_GOLDEN"):
        stale = {p.name for p in (GOLDEN / env).glob("*.json")} - {f"{d.uid}.json" for d in rendered}
        assert not stale, f"golden files no longer rendered: {sorted(stale)}; remove them"


def test_output_is_deterministic_and_free_of_volatile_fields() -> None:
    code = (
        "from pathlib import Path; from provisioner.render.grafana import dashboards as grafana; "
        "from provisioner.spec.loader import load;"
        "print(''.join(grafana.serialise(d.data) for d in grafana.dashboards(load(Path('memprov.yaml'), 'prod'))))"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    for d in grafana.dashboards(load(ROOT / "memprov.yaml", "prod")):
        for key in ("id", "version", "iteration", "rows", "style", "gnetId", "__inputs"):
            assert key not in d.data
        assert "null" not in json.dumps([p for p in d.data["panels"] if p["type"] != "row"]).replace(
            '"value": null', ""
        ), d.uid  # the only null is a threshold base step
        assert d.data["schemaVersion"] == 39 and len(d.data["uid"]) <= 40
        assert d.data["tags"] == ["managed-by:memprov", "memprov-env:prod", "memprov-spec:batch-inference"]


def test_job_dashboard_shows_what_the_issue_asks_for() -> None:
    spec = load(ROOT / "memprov.yaml", "prod")
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    dash = grafana.dashboard(spec, job)
    p = panels(dash)
    ws = p["Working set vs limit"]
    assert ws["type"] == "timeseries"
    assert steps(ws) == [None, 6 * 2**30, 7.5 * 2**30]  # warning 1.5x p95 = 6Gi, critical 7.5Gi
    assert ws["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
    assert any(s.WS in e and 'node=~"$node"' in e for e in exprs(ws))
    assert any(e.startswith(f"max({s.LIMIT}") for e in exprs(ws))
    band = {
        o["matcher"]["options"]: {q["id"]: q["value"] for q in o["properties"]} for o in ws["fieldConfig"]["overrides"]
    }
    assert band["baseline p95"]["custom.fillBelowTo"] == "baseline p50"
    b = spec.jobs[0].baseline
    assert b is not None and b.peak_p50 and b.peak_p95  # the baseline's constants, not a history query
    assert [e for e in exprs(ws) if e.startswith("vector(")] == [
        f"vector({b.peak_p50:.6g})",
        f"vector({b.peak_p95:.6g})",
    ]
    gauge = p["Percent of limit (now)"]
    assert gauge["type"] == "gauge" and steps(gauge) == [None, 0.75, 0.9375]  # the same thresholds, as ratios
    assert any(e.startswith("3 * vector(") for e in exprs(p["Growth rate vs baseline velocity"]))
    tto = p["Predicted time to OOM"]
    assert exprs(tto)[0].startswith(f"({s.LIMIT}") and s.TROUGH in exprs(tto)[0] and s.VELOCITY in exprs(tto)[0]
    assert steps(tto) == [None, 1800.0, 14400.0]  # critical, warning
    assert steps(p["Anomaly z-score"]) == [None, 3.0] and s.HIST_MEAN in exprs(p["Anomaly z-score"])[0]
    assert exprs(p["Working set by node"])[0].startswith("sum by (node)")
    assert p["Percent of limit by instance (now)"]["targets"][0]["instant"] is True
    annotations = {a["name"]: a for a in dash["annotations"]["list"]}
    assert (
        annotations["memprov alerts"]["expr"] == 'ALERTS{memprov_job="$job", memprov_env="prod", alertstate="firing"}'
    )
    assert "container_oom_events_total" in annotations["OOM kills"]["expr"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == "prom-prod"
    assert variables["job"]["current"]["value"] == "clv-daily" and variables["node"]["includeAll"] is True
    links = {link["title"]: link for link in dash["links"]}
    assert links["Runbook"]["url"] == "https://runbooks.example.com/memprov/clv-daily"
    assert (
        links["All jobs (prod)"]["url"] == "https://grafana.example.com/d/memprov-prod-overview/memprov-all-jobs-prod"
    )
    assert "About this job" in p and "Owner: data-eng" in p["About this job"]["options"]["content"]


def test_overview_ranks_jobs_by_headroom_and_links_to_them() -> None:
    spec = load(ROOT / "memprov.yaml", "prod")
    dash = grafana.overview(spec)
    p = panels(dash)
    bars = p["Percent of limit now, least headroom first"]
    sel = '{memprov_job=~"$job", memprov_env="prod"}'
    assert exprs(bars) == [  # no node filter: the process job's instances are not on a Kubernetes node
        f"sort_desc(max by (memprov_job) ({s.WS}{sel}) / on (memprov_job) max by (memprov_job) ({s.LIMIT}{sel}))"
    ]
    per_job = {
        o["matcher"]["options"]: {q["id"]: q["value"] for q in o["properties"]}
        for o in bars["fieldConfig"]["overrides"]
    }
    assert set(per_job) == {"clv-daily", "image-embed", "doc-embed", "feature-batch"}
    assert per_job["clv-daily"]["thresholds"]["steps"][1] == {"color": "orange", "value": 0.75}
    assert per_job["clv-daily"]["links"][0]["url"].startswith("https://grafana.example.com/d/memprov-prod-clv-daily/")
    table = p["Jobs"]["options"]["content"]
    for job in spec.jobs:
        assert f"]({job.dashboard_url})" in table and job.runbook_url in table
    assert {link["type"] for link in dash["links"]} == {"dashboards"}


def test_render_check_gates_stale_dashboards_with_a_readable_diff(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    assert memprov("render", cwd=repo).returncode == 0
    assert sorted(p.name for p in (repo / "dashboards" / "local").iterdir()) == [
        "memprov-local-clv-daily.json",
        "memprov-local-doc-embed.json",
        "memprov-local-feature-batch.json",
        "memprov-local-image-embed.json",
        "memprov-local-overview.json",
    ]
    clean = memprov("render", "--env", "local", "--check", cwd=repo)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    spec = repo / "memprov.yaml"
    spec.write_text(spec.read_text().replace("critical: 7.5Gi}", "critical: 7Gi}"), encoding="utf-8")
    stale = memprov("render", "--env", "local", "--check", cwd=repo)
    assert stale.returncode == 1
    assert "stale: dashboards/local/memprov-local-clv-daily.json" in stale.stdout
    assert (
        '-                "value": 8053063680' in stale.stdout
        and '+                "value": 7516192768' in stale.stdout
    )


def test_committed_dashboards_are_up_to_date() -> None:
    result = memprov("render", "--check", cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


def test_a_job_on_cloudwatch_only_gets_a_cloudwatch_dashboard(tmp_path: Path) -> None:
    """No Prometheus rules for the job: its dashboard reads CloudWatch, the series its alarms watch."""
    repo = example_repo(tmp_path)
    env_file = repo / "environments" / "aws.yaml"
    text = env_file.read_text()
    assert "jobs:\n  doc-embed:" in text
    env_file.write_text(text.replace("jobs:\n", "jobs:\n  image-embed:\n    backends: [cloudwatch, grafana]\n", 1))
    spec = load(repo / "memprov.yaml", "aws")
    by_job = {d.job: d.data for d in grafana.dashboards(spec)}
    cw, prom = by_job["image-embed"], by_job["clv-daily"]
    for dash in (cw, prom):
        assert errors(dash) == []
    [variable] = [v for v in cw["templating"]["list"] if v["name"] == "datasource"]
    assert variable["query"] == "cloudwatch"
    memory = panels(cw)["Memory, % of limit"]
    [target] = memory["targets"]
    assert target["datasource"] == {"type": "cloudwatch", "uid": "${datasource}"}
    assert (target["namespace"], target["metricName"], target["statistic"]) == (
        "ContainerInsights",
        "container_memory_utilization_over_container_limit",  # environments/aws.yaml: enhanced observability
        "Maximum",
    )
    assert target["dimensions"] == {  # the agent names the pods of Job image-embed "image"
        "ClusterName": "ml-batch",
        "ContainerName": "image-infer",
        "Namespace": "batch",
        "PodName": "image",
    }
    assert target["region"] == "eu-west-1"
    assert steps(memory) == [None, 75.0, 90.0]  # image-embed: warning 75 %, critical 90 %
    kinds = panels(cw)["On CloudWatch"]["options"]["content"]
    assert "| usage | native |" in kinds and "| growth | approximated |" in kinds
    assert not any("memprov:" in json.dumps(p) for p in cw["panels"])  # no recording-rule series
    assert panels(prom)["Working set vs limit"]["targets"][0]["datasource"]["type"] == "prometheus"


def test_a_job_on_azure_only_gets_an_azure_monitor_dashboard(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    env_file = repo / "environments" / "azure.yaml"
    text = env_file.read_text()
    assert "\njobs:\n" in text
    extra = "  image-embed:\n    backends: [azure, grafana]\n  clv-daily:\n    backends: [azure, grafana]\n"
    vm = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-vm"
    extra += f"    azure: {{platform: vm, scope: {vm}/providers/Microsoft.Compute/virtualMachines/clv-vm}}\n"
    env_file.write_text(text.replace("\njobs:\n", "\njobs:\n" + extra, 1))
    spec = load(repo / "memprov.yaml", "azure")
    by_job = {d.job: d.data for d in grafana.dashboards(spec)}
    aks, vm = by_job["image-embed"], by_job["clv-daily"]
    for dash in (aks, vm):
        assert errors(dash) == []
        [variable] = [v for v in dash["templating"]["list"] if v["name"] == "datasource"]
        assert variable["query"] == "grafana-azure-monitor-datasource"
    [target] = panels(aks)["Memory, % of limit"]["targets"]
    query = target["azureMonitor"]
    assert (query["metricNamespace"], query["metricName"], query["aggregation"]) == (
        "Microsoft.ContainerService/managedClusters",
        "node_memory_working_set_percentage",
        "Maximum",
    )
    assert query["resources"] == [
        {
            "subscription": "00000000-0000-0000-0000-000000000000",
            "resourceGroup": "rg-ml-batch",
            "metricNamespace": "Microsoft.ContainerService/managedClusters",
            "resourceName": "ml-batch",
            "region": "westeurope",
        }
    ]
    available = panels(vm)["Available memory, %"]
    [target] = available["targets"]
    assert target["azureMonitor"]["metricName"] == "Available Memory Percentage"
    assert target["azureMonitor"]["resources"][0]["resourceGroup"] == "rg-vm"
    clv = next(j for j in spec.jobs if j.id == "clv-daily")  # warning 6Gi (75 %), critical 7.5Gi of 8Gi
    assert steps(available) == [None, round(100 - 100 * clv.critical_ratio, 4), round(100 - 100 * clv.warning_ratio, 4)]
    assert steps(available) == [None, 6.25, 25.0]  # the alerts fire below 25 % / 6.25 % available


def test_a_job_on_gcp_only_gets_a_cloud_monitoring_dashboard(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    env_file = repo / "environments" / "gcp.yaml"
    text = env_file.read_text()
    assert "\ntargets:\n" in text
    extra = "jobs:\n  image-embed:\n    backends: [gcp, grafana]\n"
    env_file.write_text(text.replace("\ntargets:\n", "\n" + extra + "targets:\n", 1))
    spec = load(repo / "memprov.yaml", "gcp")
    dash = next(d.data for d in grafana.dashboards(spec) if d.job == "image-embed")
    assert errors(dash) == []
    [variable] = [v for v in dash["templating"]["list"] if v["name"] == "datasource"]
    assert variable["query"] == "stackdriver"
    memory = panels(dash)["Memory, % of limit"]
    [target] = memory["targets"]
    query = target["timeSeriesList"]
    assert query["projectName"] == "ml-batch-prod"
    assert query["filters"] == [
        "metric.type", "=", "kubernetes.io/container/memory/limit_utilization",
        "AND", "metric.label.memory_type", "=", "non-evictable",
        "AND", "resource.type", "=", "k8s_container",
        "AND", "resource.label.cluster_name", "=", "ml-batch",
        "AND", "resource.label.location", "=", "europe-west4",
        "AND", "resource.label.namespace_name", "=", "batch",
        "AND", "resource.label.container_name", "=", "image-infer",
    ]  # fmt: skip
    assert memory["fieldConfig"]["defaults"]["unit"] == "percentunit"  # limit_utilization is a fraction
    assert steps(memory) == [None, 0.75, 0.9]
    assert "| growth |" in panels(dash)["On Cloud Monitoring"]["options"]["content"]


def _with_grafanalib_ids(monkeypatch: pytest.MonkeyPatch, spec: Any, job: Any) -> dict[str, Any]:
    with monkeypatch.context() as m:
        m.setattr(grafana, "_number_panels", lambda dash: dash.auto_panel_ids())
        return grafana.dashboard(spec, job) if job is not None else grafana.overview(spec)


@pytest.mark.parametrize("env", ENVS)
def test_panels_numbered_in_place_get_grafanalibs_ids(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load(ROOT / "memprov.yaml", env)
    for job in [*spec.jobs_using("grafana"), None]:
        ours = grafana.dashboard(spec, job) if job is not None else grafana.overview(spec)
        assert ours == _with_grafanalib_ids(monkeypatch, spec, job)
        assert [p["id"] for p in ours["panels"]] == list(range(1, len(ours["panels"]) + 1))


def test_a_panel_given_twice_is_numbered_as_grafanalib_numbers_it() -> None:
    from grafanalib import core

    ids = core.Text(title="ids", id=2)
    twice = core.Text(title="twice")
    dash = core.Dashboard(title="t", panels=[twice, ids, twice, core.Text(title="other")])
    expected = [p.id for p in dash.auto_panel_ids()._iter_panels()]
    assert expected == [1, 2, 3, 4]
    assert [p.id for p in grafana._number_panels(dash)._iter_panels()] == expected
    fresh = core.Dashboard(title="t", panels=[core.Text(title="a"), ids, core.Text(title="b")])
    assert [p.id for p in grafana._number_panels(fresh)._iter_panels()] == [1, 2, 3]
