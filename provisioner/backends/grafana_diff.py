"""What changed between two versions of a dashboard, in words a reviewer can read.

``memprov plan --format markdown`` shows these lines above the raw diff: panels added, removed,
retitled or moved; queries changed (by refId, with the old and the new PromQL); thresholds, units
and ranges changed (values formatted in the panel's unit); template variables, annotations and
links changed. Pure functions over dashboard JSON; panels are matched by title, then by id.
"""

from __future__ import annotations

from typing import Any

from provisioner.core.units import format_duration, format_size

MAX_EXPR = 160
MAX_LINES = 40


def _short(text: str, limit: int = MAX_EXPR) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_value(value: Any, unit: str | None) -> str:
    """A threshold value as the panel shows it: ``6GiB``, ``75%``, ``30m``; ``-∞`` for the base step."""
    if value is None:
        return "-∞"
    if not isinstance(value, int | float):
        return str(value)
    if unit == "bytes":
        return format_size(value) + "B"
    if unit == "percentunit":
        return f"{value * 100:g}%"
    if unit == "s":
        return format_duration(value)
    return f"{value:g}"


def _steps(panel: dict[str, Any]) -> str:
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit = defaults.get("unit")
    steps = defaults.get("thresholds", {}).get("steps", [])
    return ", ".join(f"{s.get('color')} from {fmt_value(s.get('value'), unit)}" for s in steps) or "none"


def _unset(value: Any) -> str:
    return "unset" if value is None else repr(value)


def _by_title(panels: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Panels (rows' nested panels included) by title; untitled or repeated titles by id."""
    flat: list[dict[str, Any]] = []
    for p in panels:
        flat.append(p)
        flat += p.get("panels", []) if p.get("type") == "row" else []
    out: dict[str, dict[str, Any]] = {}
    for p in flat:
        key = str(p.get("title") or f"#{p.get('id')}")
        out[key if key not in out else f"{key} #{p.get('id')}"] = p
    return out


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: node}


def _changed_paths(a: Any, b: Any) -> list[str]:
    la, lb = _leaves(a), _leaves(b)
    return sorted(k for k in la.keys() | lb.keys() if la.get(k) != lb.get(k))


def _targets(panel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(t.get("refId", i)): t for i, t in enumerate(panel.get("targets", []))}


def _panel(title: str, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    name = f'panel "{title}"'
    out = []
    if new.get("type") != old.get("type"):
        out.append(f"{name}: visualisation {old.get('type')} → {new.get('type')}")
    if new.get("gridPos") != old.get("gridPos"):
        g0, g1 = old.get("gridPos", {}), new.get("gridPos", {})
        out.append(
            f"{name}: moved or resized (x={g0.get('x')} y={g0.get('y')} {g0.get('w')}×{g0.get('h')} → "
            f"x={g1.get('x')} y={g1.get('y')} {g1.get('w')}×{g1.get('h')})"
        )
    t0, t1 = _targets(old), _targets(new)
    for ref in sorted(t1.keys() - t0.keys()):
        out.append(f"{name}: query {ref} added: `{_short(t1[ref].get('expr', ''))}`")
    for ref in sorted(t0.keys() - t1.keys()):
        out.append(f"{name}: query {ref} removed: `{_short(t0[ref].get('expr', ''))}`")
    for ref in sorted(t0.keys() & t1.keys()):
        a, b = t0[ref], t1[ref]
        if a.get("expr") != b.get("expr"):
            out.append(f"{name}: query {ref} changed: `{_short(a.get('expr', ''))}` → `{_short(b.get('expr', ''))}`")
        if a.get("legendFormat") != b.get("legendFormat"):
            out.append(f"{name}: query {ref} legend {a.get('legendFormat')!r} → {b.get('legendFormat')!r}")
        rest = _changed_paths(
            {k: v for k, v in a.items() if k not in ("expr", "legendFormat")},
            {k: v for k, v in b.items() if k not in ("expr", "legendFormat")},
        )
        if rest:
            out.append(f"{name}: query {ref} settings changed ({', '.join(rest)})")
    d0 = old.get("fieldConfig", {}).get("defaults", {})
    d1 = new.get("fieldConfig", {}).get("defaults", {})
    if _steps(old) != _steps(new):
        out.append(f"{name}: thresholds {_steps(old)} → {_steps(new)}")
    for key in ("unit", "min", "max"):
        if d0.get(key) != d1.get(key):
            out.append(f"{name}: {key} {_unset(d0.get(key))} → {_unset(d1.get(key))}")
    custom = _changed_paths(d0.get("custom", {}), d1.get("custom", {}))
    other = [f"custom.{c}" for c in custom] + _changed_paths(
        {k: v for k, v in d0.items() if k not in ("thresholds", "unit", "min", "max", "custom")},
        {k: v for k, v in d1.items() if k not in ("thresholds", "unit", "min", "max", "custom")},
    )
    if other:
        out.append(f"{name}: field settings changed ({', '.join(other[:6])}{', …' if len(other) > 6 else ''})")
    if old.get("fieldConfig", {}).get("overrides") != new.get("fieldConfig", {}).get("overrides"):
        out.append(f"{name}: series overrides changed (colours, styles, links of named series)")
    options = _changed_paths(old.get("options", {}), new.get("options", {}))
    if options:
        out.append(f"{name}: display options changed ({', '.join(options[:6])}{', …' if len(options) > 6 else ''})")
    for key in ("description", "datasource", "transformations", "links"):
        if (old.get(key) or None) != (new.get(key) or None):
            out.append(f"{name}: {key} changed")
    return out


def _named(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(i.get(key)): i for i in items}


def _collection(what: str, key: str, new: list[dict[str, Any]], old: list[dict[str, Any]]) -> list[str]:
    a, b = _named(old, key), _named(new, key)
    out = [f'{what} "{n}" added' for n in sorted(b.keys() - a.keys())]
    out += [f'{what} "{n}" removed' for n in sorted(a.keys() - b.keys())]
    for n in sorted(a.keys() & b.keys()):
        paths = _changed_paths(a[n], b[n])
        if "query" in paths or "expr" in paths:
            field = "query" if "query" in paths else "expr"
            out.append(f'{what} "{n}": query `{_short(a[n].get(field, ""))}` → `{_short(b[n].get(field, ""))}`')
            paths = [p for p in paths if p != field]
        if paths:
            out.append(f'{what} "{n}" changed ({", ".join(paths[:6])})')
    return out


def describe(new: dict[str, Any], old: dict[str, Any]) -> tuple[str, ...]:
    """Changes from ``old`` (live) to ``new`` (desired), one line each, most important first."""
    out: list[str] = []
    for key in ("title", "description", "refresh", "timezone", "schemaVersion"):
        if new.get(key) != old.get(key):
            out.append(f"dashboard {key}: {_short(str(old.get(key)), 80)!r} → {_short(str(new.get(key)), 80)!r}")
    if new.get("tags") != old.get("tags"):
        out.append(f"dashboard tags: {old.get('tags')} → {new.get('tags')}")
    if new.get("time") != old.get("time"):
        out.append(f"default time range: {old.get('time')} → {new.get('time')}")
    p0, p1 = _by_title(old.get("panels", [])), _by_title(new.get("panels", []))
    for title in [t for t in p1 if t not in p0]:
        out.append(f'panel "{title}" added ({p1[title].get("type")})')
    for title in [t for t in p0 if t not in p1]:
        out.append(f'panel "{title}" removed')
    for title in [t for t in p1 if t in p0]:
        out += _panel(title, p1[title], p0[title])
    out += _collection(
        "variable", "name", new.get("templating", {}).get("list", []), old.get("templating", {}).get("list", [])
    )
    out += _collection(
        "annotation", "name", new.get("annotations", {}).get("list", []), old.get("annotations", {}).get("list", [])
    )
    out += _collection("link", "title", new.get("links", []), old.get("links", []))
    if len(out) > MAX_LINES:
        out = [*out[:MAX_LINES], f"… and {len(out) - MAX_LINES} more changes (see the diff)"]
    return tuple(out)
