"""Prometheus label names and regular expressions that users write in the spec, checked before use.

Label names that a user supplies (``selector.regex`` keys, ``labels`` of the defaults, a job or
an environment) end up verbatim in PromQL selectors and rule files, so each must match the
Prometheus label-name grammar ``[a-zA-Z_][a-zA-Z0-9_]*`` and not start with ``__`` (reserved for
Prometheus' internal use; see https://prometheus.io/docs/concepts/data_model/). Alert labels may
not replace the ones memprov sets itself, which routing, grouping and inhibition rely on.
Regular expressions are checked with RE2 (the ``google-re2`` bindings of the C++ library), the
syntax that Prometheus' Go ``regexp`` implements (https://github.com/google/re2/wiki/Syntax),
plus the two constructs where Go's parser is stricter than the C++ one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
RESERVED_PREFIX = "memprov_"

_SET_BY_JOB = "is set by memprov on every alert from the job's {key}; set that instead"
_FROM_SERIES = (
    "comes from the job's series: a label here would replace the real value on every alert, and the "
    "alert's annotations and links look it up; remove it (select series with selector:)"
)
RESERVED: dict[str, str] = {
    "severity": "is set by memprov (info, warning, critical) and Alertmanager routes and inhibits on it; "
    "remove it (who is notified is set under route:)",
    "alertname": "is set by Prometheus to the alert's name and Alertmanager groups by it; remove it",
    "managed_by": "is memprov's ownership marker; remove it",
    "team": _SET_BY_JOB.format(key="team: key"),
    "owner": _SET_BY_JOB.format(key="owner: key"),
    "model": _SET_BY_JOB.format(key="model.name"),
    "model_version": _SET_BY_JOB.format(key="model.version"),
    **{name: _FROM_SERIES for name in ("namespace", "pod", "container", "node", "instance", "groupname")},
}
"""Labels a user may not set on alerts, and why (said in the error)."""

# Where Go's regexp/syntax (Prometheus) refuses what the C++ RE2 parser accepts:
# \C (any byte) is C++-only; (?<name>...) is accepted by Go only since 1.22 (Prometheus 2.51).
_UNESCAPED = r"(?<!\\)(?:\\\\)*"
_GO_ONLY = (
    (re.compile(_UNESCAPED + r"\\C"), r"\C (any byte) is not supported by Prometheus"),
    (
        re.compile(_UNESCAPED + r"\(\?<(?![=!])"),
        "use (?P<name>...) for a named group; (?<name>...) needs Prometheus >= 2.51",
    ),
)


def label_name_problem(name: str) -> str | None:
    """Why ``name`` is not a label name a user may write (in a selector), or None."""
    if not LABEL_NAME_RE.fullmatch(name):
        fixed, replaced = re.subn(r"[^a-zA-Z0-9_]", "_", name)
        fixed = fixed if fixed and not fixed[0].isdigit() else f"_{fixed}"
        example = f" (e.g. {_q(fixed)})" if replaced <= 2 and len(name) <= 40 else ""
        rule = "use letters, digits and '_', not starting with a digit"
        return f"{_q(name)} is not a Prometheus label name; {rule}{example}"
    if name.startswith("__"):
        return f'{_q(name)}: label names starting with "__" are reserved for Prometheus\' internal use; rename it'
    return None


def alert_label_problem(name: str) -> str | None:
    """Why ``name`` may not be an extra alert label, or None."""
    problem = label_name_problem(name)
    if problem:
        return problem
    if name in RESERVED:
        return f"label {_q(name)} {RESERVED[name]}"
    if name.startswith(RESERVED_PREFIX):
        return (
            f'label {_q(name)}: names starting with "{RESERVED_PREFIX}" are memprov\'s own (routing, grouping and '
            "inhibition match on them); rename it"
        )
    return None


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a regular expression Prometheus accepts, or None."""
    import re2

    options = re2.Options()
    options.log_errors = False  # the C++ library would print every failure to stderr
    try:
        re2.compile(pattern, options)
    except re2.error as e:
        reason = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        return f"{_q(pattern)} is not a regular expression Prometheus accepts (RE2 syntax): {reason}; fix it"
    for check, reason in _GO_ONLY:
        if check.search(pattern):
            return f"{_q(pattern)} is not a regular expression Prometheus accepts: {reason}"
    return None


def _q(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


def _raise(check: Callable[[str], str | None]) -> AfterValidator:
    def validate(value: str) -> str:
        problem = check(value)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(validate)


LabelName = Annotated[
    str,
    _raise(label_name_problem),
    WithJsonSchema({"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$", "description": "a label name"}),
]
"""A label name in a selector."""

AlertLabelName = Annotated[
    str,
    _raise(alert_label_problem),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$",
            "description": "an extra alert label (not severity, memprov_* or another label memprov sets)",
        }
    ),
]
"""An extra label on alerts: a label name that memprov does not set itself."""

Regex = Annotated[
    str,
    _raise(regex_problem),
    WithJsonSchema({"type": "string", "minLength": 1, "description": "an RE2 regular expression (fully anchored)"}),
]
"""A regular expression for a ``=~`` matcher, checked as RE2."""
