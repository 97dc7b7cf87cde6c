"""Escaping user text for Go ``text/template``, which Prometheus and Alertmanager run on what memprov writes.

Prometheus expands alert rule labels and annotations as Go templates when an alert fires, and
Alertmanager does the same with notification fields, so a job name such as
``x {{ query "up" }}`` would run a query (and ``{{`` alone makes promtool reject the file). In
text outside an action, only the left delimiter ``{{`` starts template code
(https://pkg.go.dev/text/template#hdr-Text_and_spaces), so every run of two or more ``{`` is
written as a template action that prints that run as a string constant: ``{{ "{{" }}`` renders
``{{``. A lone ``{`` at the end is escaped as well, since the text that follows it in a
template may start with ``{``. Text without such braces is returned unchanged.
"""

from __future__ import annotations

import re

_OPENING = re.compile(r"\{\{+|\{$")
_ESCAPED = re.compile(r'\{\{ "(\{+)" \}\}')


def literal(text: str) -> str:
    """``text`` as Go template source that renders exactly ``text``."""
    if "{" not in text:
        return text
    return _OPENING.sub(lambda m: '{{ "' + m.group() + '" }}', text)


def literal_values(mapping: dict[str, str]) -> dict[str, str]:
    """Every value of ``mapping`` through :func:`literal`."""
    return {k: literal(v) for k, v in mapping.items()}


def rendered(source: str) -> str:
    """What Go renders for text that :func:`literal` escaped: the inverse of :func:`literal`."""
    return _ESCAPED.sub(lambda m: m.group(1), source) if "{{" in source else source
