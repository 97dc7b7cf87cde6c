"""Azure Monitor metric alert rules that ARM accepts and that can fire (issue 15, item 6).

The rendered rules go through :mod:`tests.fakes.azure_rules` (the rules the fake ARM applies): the
metric exists on the scope's resource type, aggregations and operators ARM knows, dynamic-threshold
windows and failing periods, dimensions the metric has. The rules are tested first on rules made to
break one each; then every example environment; then the plan notes' honesty for a process on a VM.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from provisioner.render.azure import rules, support
from provisioner.spec.loader import environments, load
from tests.fakes.azure_rules import never_fires, refusals
from tests.helpers import ROOT

SCOPE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.ContainerService/managedClusters/ml-batch"
)
GOOD: dict[str, Any] = {
    "properties": {
        "scopes": [SCOPE],
        "windowSize": "PT5M",
        "criteria": {
            "odata.type": "Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria",
            "allOf": [
                {
                    "criterionType": "DynamicThresholdCriterion",
                    "metricNamespace": "Microsoft.ContainerService/managedClusters",
                    "metricName": "node_memory_working_set_percentage",
                    "dimensions": [{"name": "nodepool", "operator": "Include", "values": ["batch"]}],
                    "timeAggregation": "Average",
                    "operator": "GreaterThan",
                    "alertSensitivity": "Medium",
                    "failingPeriods": {"numberOfEvaluationPeriods": 4, "minFailingPeriodsToAlert": 2},
                }
            ],
        },
    }
}


@pytest.mark.parametrize(
    ("path", "value", "why"),
    [
        (("windowSize",), "PT1M", "dynamic thresholds take windowSize"),
        (("criteria", "allOf", 0, "alertSensitivity"), "Highest", "alertSensitivity 'Highest'"),
        (("criteria", "allOf", 0, "failingPeriods", "minFailingPeriodsToAlert"), 5, "failingPeriods"),
        (("criteria", "allOf", 0, "metricName"), "pod_memory_working_set_percentage", "Couldn't find a metric"),
        (("criteria", "allOf", 0, "timeAggregation"), "P95", "timeAggregation 'P95'"),
    ],
)
def test_the_rules_refuse_what_arm_refuses(path: tuple[Any, ...], value: Any, why: str) -> None:
    assert refusals(GOOD) == [] and never_fires(GOOD) == []
    body = copy.deepcopy(GOOD)
    node = body["properties"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert any(why in r for r in refusals(body)), refusals(body)


def test_the_rules_flag_a_dimension_the_metric_lacks() -> None:
    body = copy.deepcopy(GOOD)
    body["properties"]["criteria"]["allOf"][0]["dimensions"][0]["name"] = "pod"
    assert never_fires(body) == ["node_memory_working_set_percentage has no dimension ['pod']"]


@pytest.mark.parametrize("env", environments(ROOT / "memprov.yaml"))
def test_every_example_environment_renders_rules_arm_accepts_and_that_can_fire(env: str) -> None:
    spec = load(ROOT / "memprov.yaml", env)
    problems = {}
    for job in spec.jobs_using("azure"):
        for rule in rules(spec, job, {}):
            if why := refusals(rule["body"]) + never_fires(rule["body"]):
                problems[rule["name"]] = why
    assert problems == {}


VM = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines"
SPEC = """\
version: 1
name: platforms
defaults:
  backends: [azure]
jobs:
  vm-process:
    owner: search
    model: {name: ranker, version: "1.2"}
    runtime: process
    memory: {limit: 64Gi, baseline: {peak_p95: 40Gi}}
    azure:
      scope: VM/vm1
      region: westeurope
"""


def test_a_process_on_a_vm_is_approximated_not_native(tmp_path: Path) -> None:
    (tmp_path / "memprov.yaml").write_text(SPEC.replace("VM/", VM + "/"), encoding="utf-8")
    spec = load(tmp_path / "memprov.yaml", "local")
    found = {k.value: s for k, s in support(spec.jobs[0])}
    assert found["usage"].level.value == "approximated" and "whole VM" in found["usage"].why
    assert found["baseline"].level.value == "approximated"
    for rule in rules(spec, spec.jobs[0], {}):
        assert refusals(rule["body"]) == [] and never_fires(rule["body"]) == []
