"""Sandboxed jinja2 templates that render data (YAML text), parsed back and checked before use.

Templates use ``[[ ... ]]`` / ``[% ... %]`` delimiters so that the ``{{ ... }}`` of Prometheus
and Alertmanager templating passes through untouched. Values are escaped by filters
(``yaml`` quotes a string for YAML, ``promql`` quotes a PromQL label value), never spliced raw.
Templates get plain data only and run in a separate, limited process (:mod:`.sandbox`); a
template that fails is a :class:`SpecError` naming the template file and line.
Lookup order: ``templates/`` next to the spec (the user's override), then the templates
shipped inside the package, then the repository's ``templates/`` (development checkouts).
Where no override exists, callers use the data the shipped template renders, built in Python
(:func:`overridden` says which): the sandbox then never starts, and tests prove that each
shipped template still renders exactly that data.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from provisioner.core.errors import Problem, SpecError
from provisioner.core.yamlio import loads
from provisioner.render.sandbox import TemplateFailure, plain, render

PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "_templates"
REPO_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"


def _shown(file: str, override: Path | None) -> str:
    """A template's path as the user knows it: relative to the spec's directory, or to memprov's own."""
    path = Path(file)
    for base in (override.parent if override else None, REPO_TEMPLATES.parent, PACKAGE_TEMPLATES.parent.parent):
        if base is not None and path.is_absolute():
            try:
                return str(path.resolve().relative_to(base.resolve()))
            except ValueError:
                continue
    return file


def overridden(name: str, override_dir: Path | None) -> bool:
    """Whether the repository overrides template ``name`` (``templates/<name>`` next to the spec)."""
    return override_dir is not None and (override_dir / name).is_file()


def render_data(
    name: str, override_dir: Path | None, required: Iterable[str] = (), nested: bool = True, **context: Any
) -> Any:
    """Render template ``name`` on ``context`` (made plain data) and parse the result as YAML texts.

    The result must be a mapping with at least the ``required`` keys, of mappings of texts
    (``{Alert: {summary: ...}}``), or with ``nested=False`` of texts. Errors name the template
    file and line: a :class:`SpecError` (exit 2).
    """
    override = override_dir if override_dir and override_dir.is_dir() else None
    dirs = [str(d.resolve()) for d in (override, PACKAGE_TEMPLATES, REPO_TEMPLATES) if d is not None and d.is_dir()]
    try:
        text = render(name, dirs, plain(context))
    except TemplateFailure as e:
        where = _shown(e.file, override) if e.file else name
        raise SpecError([Problem(f"template error: {e.message}; fix the template", where, e.line)]) from None
    data = loads(text, f"{name} (rendered)").data
    problem = _shape_problem(data, required, nested)
    if problem:
        shown = _shown(str(Path(dirs[0]) / name), override) if override and (override / name).is_file() else name
        raise SpecError([Problem(f"the template's result {problem}; fix the template", shown)])
    return data


def _shape_problem(data: Any, required: Iterable[str], nested: bool) -> str | None:
    if not isinstance(data, dict):
        return "must be a mapping (key: text)"
    missing = [k for k in required if k not in data]
    if missing:
        return f"lacks {', '.join(missing)}"
    what = "a mapping of texts (name: text)" if nested else "a text"
    for key, value in data.items():
        inner = value.values() if nested and isinstance(value, dict) else [None] if nested else [value]
        if not isinstance(key, str) or not all(isinstance(v, str) for v in inner):
            return f"must map {key} to {what} (quote texts with |yaml)"
    return None
