"""What Azure Resource Manager checks in a metric alert rule beyond its shape, and what makes one never fire.

:func:`tests.fakes.azure.invalid` answers 400 with :func:`refusals` (as ARM does), and the fake records
:func:`never_fires` for the test to assert on. Sources, cited per rule: the ``2018-03-01`` metric alert
REST reference (azure-mgmt-monitor's ``MetricAlertResource``, ``DynamicMetricCriteria``,
``MetricCriteria``), "Dynamic thresholds in metric alerts", and the Azure Monitor supported-metrics tables.
"""

from __future__ import annotations

from typing import Any

# Supported metrics (learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/…): metric -> dimensions.
METRICS: dict[str, dict[str, frozenset[str]]] = {
    "Microsoft.ContainerService/managedClusters": {  # "Memory Working Set Percentage", dimensions node, nodepool
        "node_memory_working_set_percentage": frozenset({"node", "nodepool"}),
        "node_memory_rss_percentage": frozenset({"node", "nodepool"}),
    },
    "Microsoft.Compute/virtualMachines": {"Available Memory Percentage": frozenset()},  # no dimensions
    "Microsoft.MachineLearningServices/workspaces": {
        "CpuMemoryUtilizationPercentage": frozenset({"RunId", "InstanceId", "ComputeName"})
    },
}
AGGREGATIONS = {"Average", "Count", "Minimum", "Maximum", "Total"}  # AggregationTypeEnum
STATIC_OPERATORS = {"Equals", "GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual"}  # Operator
DYNAMIC_OPERATORS = {"GreaterThan", "LessThan", "GreaterOrLessThan"}  # DynamicThresholdOperator
SENSITIVITIES = {"Low", "Medium", "High"}  # DynamicThresholdSensitivity
# "Dynamic thresholds in metric alerts": the look-back of dynamic thresholds is built on 5-minute to 1-hour
# aggregation windows, and the number of violations is counted over at most 6 such periods.
DYNAMIC_WINDOWS = {"PT5M", "PT15M", "PT30M", "PT1H"}


def refusals(body: dict[str, Any]) -> list[str]:
    props = body.get("properties", {})
    out: list[str] = []
    scopes = props.get("scopes", [])
    crit = props.get("criteria", {})
    if crit.get("odata.type", "").endswith("SingleResourceMultipleMetricCriteria") and len(scopes) != 1:
        out.append("SingleResourceMultipleMetricCriteria watches exactly one resource (scopes)")
    for c in crit.get("allOf", []):
        ns, metric = c.get("metricNamespace", ""), c.get("metricName", "")
        if c.get("timeAggregation") not in AGGREGATIONS:
            out.append(f"timeAggregation {c.get('timeAggregation')!r} is not one of {sorted(AGGREGATIONS)}")
        # ARM looks the metric up on the scope: "Couldn't find a metric named <m>" for another namespace's metric
        known = METRICS.get(ns)
        if known is not None and metric not in known:
            out.append(f"Couldn't find a metric named {metric} in {ns}")
        for scope in scopes:
            if ns in METRICS and f"/providers/{ns.lower()}/" not in scope.lower():
                out.append(f"metricNamespace {ns} is not the resource type of scope {scope}")
        if c.get("criterionType") == "DynamicThresholdCriterion":
            if c.get("operator") not in DYNAMIC_OPERATORS:
                out.append(
                    f"dynamic threshold operator {c.get('operator')!r} is not one of {sorted(DYNAMIC_OPERATORS)}"
                )
            if c.get("alertSensitivity") not in SENSITIVITIES:
                out.append(f"alertSensitivity {c.get('alertSensitivity')!r} is not Low, Medium or High")
            fp = c.get("failingPeriods", {})
            n, m = fp.get("numberOfEvaluationPeriods", 0), fp.get("minFailingPeriodsToAlert", 0)
            if not (1 <= m <= n <= 6):
                out.append("failingPeriods: 1 <= minFailingPeriodsToAlert <= numberOfEvaluationPeriods <= 6")
            if props.get("windowSize") not in DYNAMIC_WINDOWS:
                out.append(
                    f"dynamic thresholds take windowSize {sorted(DYNAMIC_WINDOWS)}, not {props.get('windowSize')}"
                )
        elif c.get("operator") not in STATIC_OPERATORS:
            out.append(f"static threshold operator {c.get('operator')!r} is not one of {sorted(STATIC_OPERATORS)}")
    return out


def never_fires(body: dict[str, Any]) -> list[str]:
    """Accepted rules whose dimension filters match no series of the metric."""
    out = []
    for c in body.get("properties", {}).get("criteria", {}).get("allOf", []):
        dims = METRICS.get(c.get("metricNamespace", ""), {}).get(c.get("metricName", ""))
        if dims is None:
            continue
        if bad := {d.get("name") for d in c.get("dimensions", [])} - dims:
            out.append(f"{c.get('metricName')} has no dimension {sorted(bad)}")
    return out
