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

import json
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


def plain(node: Any) -> Any:
    """JSON data from a builder's output, without nulls (a threshold step keeps its null).

    The same value as ``json.loads(json.dumps(node, cls=DashboardEncoder, sort_keys=True))``
    (objects become their ``to_json_data()``, tuples lists, keys strings, mappings sorted by key)
    followed by dropping null values, in one pass and without the text in between.
    A threshold step keeps its null value: it is Grafana's -Infinity base.
    """
    kind = type(node)
    if kind is dict:
        return _plain_dict(node)
    if kind is list or kind is tuple:
        return [v if type(v) in _SCALARS else plain(v) for v in node]
    if kind in _SCALARS:
        return node
    return _plain_other(node)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_dict(node: dict[Any, Any]) -> dict[str, Any]:
    keep_null = len(node) == 2 and "color" in node and "value" in node
    out: dict[str, Any] = {}
    for k in sorted(node):
        if type(k) is not str:
            return _plain_pairs([(_json_key(k), v) for k, v in sorted(node.items(), key=_first)])
        v = node[k]
        if type(v) not in _SCALARS:
            v = plain(v)
        if v is not None or keep_null:
            out[k] = v
    return out


def _plain_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A mapping whose keys were not all strings, in the order of the original keys (as json sorts)."""
    merged = dict(pairs)
    keep_null = set(merged) == {"color", "value"}
    values = {k: plain(v) for k, v in merged.items()}
    return {k: v for k, v in values.items() if v is not None or keep_null}


def _first(item: tuple[Any, Any]) -> Any:
    return item[0]


def _json_key(key: Any) -> str:
    """A mapping key as the json module writes it."""
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, bool):
        return {None: "null", True: "true", False: "false"}[key]
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return float.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _plain_other(node: Any) -> Any:
    """Subclasses of the JSON types as the json module writes them, then builder objects."""
    if isinstance(node, str):
        return str.__str__(node)
    if isinstance(node, int):  # bool is exact: handled by plain()
        return int(int.__repr__(node))
    if isinstance(node, float):
        return float(float.__repr__(node))
    if isinstance(node, list | tuple):
        return [plain(v) for v in node]
    if isinstance(node, dict):
        return _plain_dict(dict(node))
    to_json_data = getattr(node, "to_json_data", None)
    if to_json_data:
        return plain(to_json_data())
    raise TypeError(f"Object of type {type(node).__name__} is not JSON serializable")


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
    if (target.get("datasource") or {}).get("type", "prometheus") != "prometheus":
        return target  # another data source's own query model (CloudWatch, …): memprov wrote every key
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


def clean(data: Any) -> dict[str, Any]:
    """Keep only what Grafana's dashboard schema defines, without nulls or meaningless defaults.

    ``data`` is a builder's dashboard (e.g. grafanalib's ``Dashboard.to_json_data()``): builder
    objects in it become JSON data through :func:`plain`.
    """
    out = _only(plain(data), DASHBOARD)
    out["panels"] = [_panel(p) for p in out.get("panels", [])]
    out["templating"] = {"list": [_variable(v) for v in out.get("templating", {}).get("list", [])]}
    out["links"] = [_only(link, LINK) for link in out.get("links", [])]
    out.setdefault("annotations", {"list": []})
    return out


def dumps_sorted(data: Any) -> str:
    """``json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)``, about twice as fast.

    The json module writes indented text with its pure-Python encoder; this writes the same text
    directly, with the module's C string encoder. Anything but exact JSON types (dict with string
    keys, list, str, int, float, bool, None) goes to ``json.dumps`` itself.
    """
    parts: list[str] = []
    try:
        _write(data, parts, "\n")
    except _NotPlainJson:
        return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)
    return "".join(parts)


class _NotPlainJson(Exception):
    pass


_encode_str: Any = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring
_CONSTANTS: dict[Any, str] = {None: "null", True: "true", False: "false"}


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _encode_str(value)  # type: ignore[no-any-return]
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value:
            return "NaN"
        if value in (_INF, -_INF):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    if kind is bool or value is None:
        return _CONSTANTS[value]
    raise _NotPlainJson


_INF = float("inf")


def _write(value: Any, parts: list[str], newline: str) -> None:
    kind = type(value)
    if kind is dict:
        if not value:
            parts.append("{}")
            return
        inner = newline + "  "
        opening = "{" + inner
        for key in sorted(value):
            if type(key) is not str:
                raise _NotPlainJson
            item = value[key]
            parts.append(opening)
            parts.append(_encode_str(key))
            parts.append(": ")
            if type(item) is dict or type(item) is list:
                _write(item, parts, inner)
            else:
                parts.append(_scalar(item))
            opening = "," + inner
        parts.append(newline + "}")
    elif kind is list:
        if not value:
            parts.append("[]")
            return
        inner = newline + "  "
        opening = "[" + inner
        for item in value:
            parts.append(opening)
            if type(item) is dict or type(item) is list:
                _write(item, parts, inner)
            else:
                parts.append(_scalar(item))
            opening = "," + inner
        parts.append(newline + "]")
    else:
        parts.append(_scalar(value))
