"""Grafana's own dashboard schema migrations that memprov's dashboards meet, applied when comparing.

Grafana 12 migrates a stored dashboard to its latest schema version whenever it is read
(grafana/grafana ``apps/dashboard/pkg/migration/schemaversion``), so a dashboard memprov saved at
schema 39 comes back at 43 with those migrations applied. The grafana backend normalises *both*
sides with :func:`latest` before comparing, so that a re-plan after an apply stays empty against
Grafana 11 (which returns what was saved) and Grafana 12 alike. Only the migrations after memprov's
own schema version are needed: V40 (``refresh`` always a string), V41 (``timepicker.time_options``
removed), V42 (a field hidden from the visualisation is hidden from the tooltip too) and V43
(``formatTime`` transformations become ``convertFieldType``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

LATEST = 43


def _panels(items: Any) -> Iterator[dict[str, Any]]:
    for panel in items if isinstance(items, list) else []:
        if isinstance(panel, dict):
            yield panel
            yield from _panels(panel.get("panels"))


def _format_time(t: dict[str, Any]) -> dict[str, Any]:
    found = t.get("options")
    options: dict[str, Any] = found if isinstance(found, dict) else {}
    conversion: dict[str, Any] = {"destinationType": "string"}
    for old, new in (("timeField", "targetField"), ("outputFormat", "dateFormat"), ("timezone", "timezone")):
        if isinstance(options.get(old), str) and options[old]:
            conversion[new] = options[old]
    return {"id": "convertFieldType", "options": {"conversions": [conversion]}}


def latest(dashboard: dict[str, Any]) -> dict[str, Any]:
    """``dashboard`` as Grafana 12 would return it: migrated from its schema version to :data:`LATEST`."""
    version = dashboard.get("schemaVersion")
    if not isinstance(version, int) or version >= LATEST:
        return dashboard
    d = copy.deepcopy(dashboard)
    if version < 40:
        d["refresh"] = d["refresh"] if isinstance(d.get("refresh"), str) else ""
    if version < 41 and isinstance(d.get("timepicker"), dict):
        d["timepicker"].pop("time_options", None)
    for panel in _panels(d.get("panels")):
        if version < 42:
            overrides = (panel.get("fieldConfig") or {}).get("overrides") or []
            for prop in (p for o in overrides if isinstance(o, dict) for p in o.get("properties") or []):
                value = prop.get("value") if isinstance(prop, dict) else None
                if prop.get("id") == "custom.hideFrom" and isinstance(value, dict) and value.get("viz") is True:
                    value["tooltip"] = True
        if version < 43 and isinstance(panel.get("transformations"), list):
            panel["transformations"] = [
                _format_time(t) if isinstance(t, dict) and t.get("id") == "formatTime" else t
                for t in panel["transformations"]
            ]
    d["schemaVersion"] = LATEST
    return d
