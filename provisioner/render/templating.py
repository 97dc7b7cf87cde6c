"""Sandboxed jinja2 templates that render data (YAML text), parsed back and checked before use.

Templates use ``[[ ... ]]`` / ``[% ... %]`` delimiters so that the ``{{ ... }}`` of Prometheus
and Alertmanager templating passes through untouched. Values are escaped by filters
(``yaml`` quotes a string for YAML, ``promql`` quotes a PromQL label value), never spliced raw.
Lookup order: ``templates/`` next to the spec (the user's override), then the templates
shipped inside the package, then the repository's ``templates/`` (development checkouts).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from provisioner.core.errors import Problem, SpecError
from provisioner.core.promql import quote
from provisioner.core.yamlio import loads

PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "_templates"
REPO_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"


def _yaml_str(value: object) -> str:
    return json.dumps(str(value), ensure_ascii=False)


@functools.lru_cache(maxsize=8)
def _environment(override: Path | None) -> Any:
    from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    dirs = [d for d in (override, PACKAGE_TEMPLATES, REPO_TEMPLATES) if d is not None and d.is_dir()]
    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in dirs]),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
    )
    env.filters["yaml"] = _yaml_str
    env.filters["promql"] = quote
    return env


def render_data(name: str, override_dir: Path | None, **context: Any) -> Any:
    """Render template ``name`` and parse the result as YAML; errors name the template."""
    from jinja2 import TemplateError

    env = _environment(override_dir if override_dir and override_dir.is_dir() else None)
    try:
        text = env.get_template(name).render(**context)
    except TemplateError as e:
        where = getattr(e, "filename", None) or name
        line = getattr(e, "lineno", None)
        raise SpecError([Problem(f"template error: {e.message}; fix the template", where, line)]) from None
    return loads(text, f"{name} (rendered)").data
