"""Cloud Monitoring policies that the real API accepts and that can fire (issue 15, items 4 and 6).

The rendered policies go through :mod:`tests.fakes.gcp_rules` (the same rules the fake
AlertPolicyService applies): aligners the metric's kind allows, forecast horizons, PromQL that
parses, filters and selectors on labels the metric has, documentation variables the result can fill.
The rules themselves are tested first on policies made to break one each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provisioner.render.gcp import policies, support
from provisioner.spec.loader import environments, load
from tests.fakes.gcp_rules import never_fires, promql_name, refusals, result_labels
from tests.helpers import ROOT

USED = 'metric.type = "kubernetes.io/container/memory/used_bytes" AND resource.type = "k8s_container"'


def threshold(filter_: str, aligner: str, **extra: Any) -> dict[str, Any]:
    cond = {"filter": filter_, "aggregations": [{"alignmentPeriod": "60s", "perSeriesAligner": aligner}], **extra}
    return {"conditions": [{"conditionThreshold": cond}], "documentation": {"content": ""}}


def test_the_rules_refuse_what_the_api_refuses() -> None:
    assert refusals(threshold(USED, "ALIGN_MAX")) == []
    assert refusals(threshold(USED, "ALIGN_RATE")) == [
        "The aligner cannot be applied to metrics with kind GAUGE "
        "(ALIGN_RATE on kubernetes.io/container/memory/used_bytes)"
    ]
    restarts = 'metric.type = "kubernetes.io/container/restart_count"'
    assert refusals(threshold(restarts, "ALIGN_DELTA")) == [] and refusals(threshold(restarts, "ALIGN_MAX"))
    far = threshold(USED, "ALIGN_MEAN", forecastOptions={"forecastHorizon": "259200s"})
    assert refusals(far) == ["forecast_horizon must be between 1h and 60h"]
    promql = {"conditions": [{"conditionPrometheusQueryLanguage": {"query": "max(x", "evaluationInterval": "45s"}}]}
    assert len(refusals(promql)) == 2


def test_the_rules_flag_what_can_never_fire() -> None:
    assert never_fires(threshold(USED + ' AND metric.labels.state = "used"', "ALIGN_MAX")) == [
        "the filter names labels ['state'] that kubernetes.io/container/memory/used_bytes does not have"
    ]
    doc = {"content": "Pod `${resource.label.pod_name}`"}
    kept = {"query": "max by (pod_name) (kubernetes_io:container_memory_used_bytes) > 1"}
    lost = {"query": "max(kubernetes_io:container_memory_used_bytes) > 1"}
    assert never_fires({"documentation": doc, "conditions": [{"conditionPrometheusQueryLanguage": kept}]}) == []
    assert never_fires({"documentation": doc, "conditions": [{"conditionPrometheusQueryLanguage": lost}]}) == [
        "documentation variables ['pod_name'] are not labels of the PromQL result"
    ]
    assert promql_name("kubernetes.io/container/memory/used_bytes") == "kubernetes_io:container_memory_used_bytes"
    import promql_parser

    assert result_labels(promql_parser.parse("a / on (x) group_left b")) is None
    assert result_labels(promql_parser.parse("sum without (pod) (rate(a[5m]))")) is None


@pytest.mark.parametrize("env", environments(ROOT / "memprov.yaml"))
def test_every_example_environment_renders_policies_the_api_accepts_and_that_can_fire(env: str) -> None:
    spec = load(ROOT / "memprov.yaml", env)
    problems = {}
    for job in spec.jobs_using("gcp"):
        for p in policies(spec, job, {}):
            if why := refusals(p) + never_fires(p):
                problems[p["displayName"]] = why
    assert problems == {}


SPEC = """\
version: 1
name: platforms
defaults:
  backends: [gcp]
jobs:
  gke-plain:
    owner: risk
    model: {name: gbm, version: "7"}
    selector: {namespace: risk, container: scorer, regex: {pod: "scorer-.*"}}
    memory: {limit: 4Gi, baseline: {velocity: 16Mi}}
    gcp: {cluster: risk, location: europe-west4}
  gce-process:
    owner: search
    model: {name: ranker, version: "1.2"}
    runtime: process
    memory: {limit: 64Gi, baseline: {peak_p95: 40Gi, velocity: 64Mi}}
    gcp: {instance_id: "1234567890123456789"}
"""


def test_growth_is_a_promql_deriv_of_the_troughs_without_managed_prometheus(tmp_path: Path) -> None:
    (tmp_path / "memprov.yaml").write_text(SPEC, encoding="utf-8")
    spec = load(tmp_path / "memprov.yaml", "local")
    gke = next(j for j in spec.jobs if j.id == "gke-plain")
    growth = next(p for p in policies(spec, gke, {}) if p["displayName"].endswith("-growth"))
    query = growth["conditions"][0]["conditionPrometheusQueryLanguage"]["query"]
    assert "deriv(" in query and "min_over_time(" in query
    assert (
        'kubernetes_io:container_memory_used_bytes{monitored_resource="k8s_container", cluster_name="risk", '
        'location="europe-west4", namespace_name="risk", container_name="scorer", pod_name=~"scorer-.*", '
        'memory_type="non-evictable"}' in query
    )
    assert refusals(growth) == [] and never_fires(growth) == []
    found = {k.value: s for k, s in support(gke)}
    assert found["growth"].level.value == "approximated" and "PromQL" in found["growth"].why
    gce = next(j for j in spec.jobs if j.id == "gce-process")
    found = {k.value: s for k, s in support(gce)}
    assert found["baseline"].level.value == "approximated" and "whole VM" in found["baseline"].why
    for p in policies(spec, gce, {}):
        assert refusals(p) == [] and never_fires(p) == [], p["displayName"]
