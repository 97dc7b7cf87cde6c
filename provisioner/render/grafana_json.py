"""Modern, minimal Grafana dashboard JSON from whatever a builder library emits.

grafanalib 0.7.1 writes Angular-era keys (``rows``, ``style``, ``hideControls``, ``span``,
``cacheTimeout``...), nulls for every unset option and a ``maxDataPoints`` of 100. Grafana does
not need any of them, and they make pull-request diffs noisy. :func:`clean` keeps, at each
level of the document, only the keys that Grafana's dashboard schema (schemaVersion 39,
``kinds/dashboard`` and the panel plugins' ``Options``/``FieldConfig``) defines, and drops nulls
and builder defaults that carry no meaning. It is generic: it knows the schema's shape, not our
panels, so a swapped builder goes through the same function.
"""

from __future__ import annotations

from typing import Any


def _keys(text: str) -> frozenset[str]:
    """A key set, written as one space-separated string so that it stays readable."""
    return frozenset(text.split())


DASHBOARD = _keys(
    "annotations description editable fiscalYearStartMonth graphTooltip links liveNow panels refresh "
    "schemaVersion tags templating time timezone title uid weekStart"
)
PANEL = _keys(
    "datasource description fieldConfig gridPos hideTimeOverride id interval libraryPanel links "
    "maxDataPoints maxPerRow options pluginVersion repeat repeatDirection tags targets timeFrom timeShift "
    "title transformations transparent type"
)
ROW = _keys("collapsed datasource gridPos id panels repeat title type")
VARIABLE = _keys(
    "allValue current datasource description hide includeAll label multi name options query refresh regex "
    "skipUrlSync sort type"
)
OPTION = _keys("selected text value")
LINK = _keys("asDropdown icon includeVars keepTime tags targetBlank title tooltip type url")
FIELD_CONFIG = _keys(
    "color custom decimals description displayName displayNameFromDS filterable links mappings max min "
    "noValue path thresholds unit writeable"
)
TARGET = _keys("datasource editorMode exemplar expr format hide instant interval legendFormat range refId")
# Options of each panel plugin we use (from the plugins' published Options schemas).
OPTIONS = {
    "timeseries": _keys("legend tooltip timezone"),
    "stat": _keys(
        "colorMode graphMode justifyMode orientation percentChangeColorMode reduceOptions showPercentChange "
        "text textMode wideLayout"
    ),
    "gauge": _keys(
        "minVizHeight minVizWidth orientation reduceOptions showThresholdLabels showThresholdMarkers sizing text"
    ),
    "bargauge": _keys(
        "displayMode maxVizHeight minVizHeight minVizWidth namePlacement orientation reduceOptions "
        "showUnfilled sizing text valueMode"
    ),
    "text": _keys("code content mode"),
}
# Keys whose value is the builder's default and means nothing to Grafana.
DEFAULTS: dict[str, Any] = {"hideTimeOverride": False, "transparent": False, "maxDataPoints": 100}
TARGET_DEFAULTS: dict[str, Any] = {"format": "time_series", "hide": False, "instant": False, "interval": ""}


def _no_nulls(node: Any) -> Any:
    """Drop null values recursively; a threshold step keeps its null (Grafana's -Infinity base)."""
    if isinstance(node, dict):
        keep_null = set(node) == {"color", "value"}
        return {k: _no_nulls(v) for k, v in node.items() if v is not None or keep_null}
    if isinstance(node, list):
        return [_no_nulls(v) for v in node]
    return node


def _only(node: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k in allowed}


def _field_config(fc: dict[str, Any], panel_type: str) -> dict[str, Any]:
    defaults = _only(fc.get("defaults", {}), FIELD_CONFIG)
    if panel_type != "timeseries" or not defaults.get("custom"):
        defaults.pop("custom", None)  # only the timeseries plugin declares custom field options
    thresholds = defaults.get("thresholds")
    if thresholds is not None and not thresholds.get("steps"):
        defaults.pop("thresholds")
    if not defaults.get("mappings"):
        defaults.pop("mappings", None)
    if not defaults.get("links"):
        defaults.pop("links", None)
    return {"defaults": defaults, "overrides": list(fc.get("overrides", []))}


def _panel(panel: dict[str, Any]) -> dict[str, Any]:
    kind = panel.get("type", "")
    if kind == "row":
        row = _only(panel, ROW)
        row["panels"] = [_panel(p) for p in row.get("panels", [])]
        return row
    out = _only(panel, PANEL)
    for key, default in DEFAULTS.items():
        if out.get(key) == default:
            out.pop(key)
    for key in ("links", "transformations", "targets"):
        if not out.get(key):
            out.pop(key, None)
    if kind in OPTIONS:
        out["options"] = _only(out.get("options", {}), OPTIONS[kind])
    if kind == "text":
        out.pop("fieldConfig", None)
        out.pop("datasource", None)
    elif "fieldConfig" in out:
        out["fieldConfig"] = _field_config(out["fieldConfig"], kind)
    if "targets" in out:
        out["targets"] = [_target(t) for t in out["targets"]]
    return out


def _target(target: dict[str, Any]) -> dict[str, Any]:
    out = _only(target, TARGET)
    for key, default in TARGET_DEFAULTS.items():
        if out.get(key) == default:
            out.pop(key)
    return out


def _variable(var: dict[str, Any]) -> dict[str, Any]:
    out = _only(var, VARIABLE)
    if "current" in out:
        out["current"] = _only(out["current"], OPTION)
        if out["current"].get("value") == "$__all":  # what Grafana shows for "All" before it refreshes
            out["current"]["text"] = "All"
    out["options"] = [_only(o, OPTION) for o in out.get("options", [])]
    if out.get("regex") == "":
        out.pop("regex")
    return out


def clean(data: dict[str, Any]) -> dict[str, Any]:
    """Keep only what Grafana's dashboard schema defines, without nulls or meaningless defaults."""
    out = _only(_no_nulls(data), DASHBOARD)
    out["panels"] = [_panel(p) for p in out.get("panels", [])]
    out["templating"] = {"list": [_variable(v) for v in out.get("templating", {}).get("list", [])]}
    out["links"] = [_only(link, LINK) for link in out.get("links", [])]
    out.setdefault("annotations", {"list": []})
    return out
