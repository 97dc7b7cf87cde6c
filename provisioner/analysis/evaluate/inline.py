"""Inline a rule group's recording rules into its alert expressions, so that history can be replayed.

Prometheus evaluates rules only in real time: over backfilled history, a recorded series such as
``memprov:memory_trough:bytes`` does not exist. But a recorded series is nothing more than its
expression evaluated at every group evaluation, labelled with the rule's ``labels``; so each
reference to it can be replaced by that expression. An instant reference ``RECORD{labels}``
becomes ``(EXPR)``; a range reference ``RECORD{labels}[10m]`` becomes the subquery
``(EXPR)[10m:STEP]`` (STEP = the group's interval, the spacing of the recorded samples), and an
``offset`` is kept. PromQL allows no ``offset`` after a parenthesised expression, so an instant
reference with an offset becomes ``last_over_time((EXPR)[STEP-1ms:STEP] offset 1w)``: the
value recorded at the last evaluation at or before that time (a window one millisecond shorter
than the step holds exactly one multiple of it; when the expression returned nothing there, so
does the recorded series, whose staleness marker hides older samples). The recording rule's
labels are added with ``label_replace`` (a rule's labels override the result's labels, exactly
as the recording does). Recording rules may use earlier ones: they are inlined in order, so the
substitution is recursive.

A series recorded by another group (a job's slow group, say) is replayed at that group's interval:
a range reference becomes ``(EXPR)[10m:5m]`` and an instant one the last value that group would
have recorded, ``last_over_time((EXPR)[5m-1ms:5m])``.

A reference is recognised only in the exact form memprov writes: the record name followed by
``{label="value", …}`` whose matchers are precisely one recording rule's ``labels``. Any other
mention of a recorded name (bare, with a regex matcher, with a label set no rule records, or to
a rule recorded later in the group) is an :class:`InlineError` rather than a silently wrong
replay. Query times must be multiples of STEP for the subqueries to sample exactly where the
recording would have: :mod:`provisioner.analysis.evaluate.alerts` aligns them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.core.errors import MemprovError
from provisioner.core.units import parse_duration

RecordKey = tuple[str, tuple[tuple[str, str], ...]]  # (record name, sorted labels)
_NAME_CHAR = r"[A-Za-z0-9_:]"
_DURATION = r"[0-9]+(?:ms|[smhdwy])(?:[0-9]+(?:ms|[smhdwy]))*"
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|\})')
_RANGE = re.compile(rf"\s*\[\s*({_DURATION})\s*(?::\s*({_DURATION})?\s*)?\]")
_OFFSET = re.compile(rf"\s*\boffset\s+(-?{_DURATION})")
_AT = re.compile(r"\s*@")
_GROUP_MODIFIER = re.compile(r"(?<![A-Za-z0-9_:])group_(?:left|right)\s*$")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


class InlineError(MemprovError):
    """A recorded series is referenced in a form that cannot be inlined faithfully."""


@dataclass(frozen=True)
class Reference:
    """One reference to a recorded series inside an expression (``start:end`` is the text span)."""

    start: int
    end: int
    key: RecordKey
    range: str | None
    resolution: str | None
    subquery: bool
    offset: str | None


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), value)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def record_key(rule: Mapping[str, Any]) -> RecordKey:
    labels = rule.get("labels") or {}
    return str(rule["record"]), tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _show(key: RecordKey) -> str:
    return key[0] + "{" + ", ".join(f"{k}={_quote(v)}" for k, v in key[1]) + "}"


def _strings(expr: str) -> list[tuple[int, int]]:
    return [m.span() for m in _STRING.finditer(expr)]


def find_references(expr: str, names: Sequence[str]) -> list[Reference]:
    """Every reference to one of ``names`` in ``expr``, in order; raises :class:`InlineError` on odd forms."""
    if not names:
        return []
    alternatives = "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))
    pattern = re.compile(rf"(?<!{_NAME_CHAR})({alternatives})(?!{_NAME_CHAR})")
    strings = _strings(expr)
    refs: list[Reference] = []
    for m in pattern.finditer(expr):
        if any(lo <= m.start() < hi for lo, hi in strings):
            continue  # inside a string literal, e.g. a label value
        name, pos = m.group(1), m.end()
        if not expr.startswith("{", pos):
            raise InlineError(f"{name} is referenced without its labels at {expr[m.start() : m.start() + 60]!r}")
        pos += 1
        labels: dict[str, str] = {}
        while not expr.startswith("}", pos := len(expr) - len(expr[pos:].lstrip())):
            mm = _MATCHER.match(expr, pos)
            if mm is None:
                raise InlineError(f"cannot read the matchers of {name} at {expr[m.start() : m.start() + 80]!r}")
            if mm.group(2) != "=":
                raise InlineError(f"{name} is matched with {mm.group(2)!r}; only exact label matchers can be inlined")
            labels[mm.group(1)] = _unescape(mm.group(3))
            pos = mm.end() if mm.group(4) == "," else mm.end() - 1
        pos += 1
        rng = _RANGE.match(expr, pos)
        if rng is not None:
            pos = rng.end()
        off = _OFFSET.match(expr, pos)
        if off is not None:
            pos = off.end()
        if _AT.match(expr, pos):
            raise InlineError(f"{name}: the @ modifier cannot be inlined")
        subquery = rng is not None and ":" in rng.group(0)
        refs.append(
            Reference(
                start=m.start(),
                end=pos,
                key=(name, tuple(sorted(labels.items()))),
                range=rng.group(1) if rng else None,
                resolution=rng.group(2) if rng else None,
                subquery=subquery,
                offset=off.group(1) if off else None,
            )
        )
    return refs


def with_labels(expr: str, labels: Sequence[tuple[str, str]]) -> str:
    """``expr`` with constant labels set on every series, as a recording rule's ``labels`` do."""
    out = expr
    for key, value in labels:
        out = f"label_replace({out}, {_quote(key)}, {_quote(value)}, {_quote('')}, {_quote('')})"
    return out


def substitute(
    expr: str,
    recorded: Mapping[RecordKey, str],
    names: Sequence[str],
    step: str,
    steps: Mapping[RecordKey, str] | None = None,
) -> str:
    """``expr`` with every reference to a recorded series replaced by its (already inlined) expression.

    ``steps``: the interval of the group that records each series, where it is not ``step`` (a
    series of another group is replayed at that group's interval).
    """
    out, last = [], 0
    for ref in find_references(expr, names):
        if ref.key not in recorded:
            known = ", ".join(_show(k) for k in recorded if k[0] == ref.key[0]) or "none yet"
            raise InlineError(
                f"{_show(ref.key)} matches no recording rule defined before it (recorded so far: {known})"
            )
        body = with_labels(recorded[ref.key], ref.key[1])
        offset = f" offset {ref.offset}" if ref.offset else ""
        own = (steps or {}).get(ref.key, step)
        if ref.range is not None:
            resolution = (ref.resolution or "") if ref.subquery else own
            text = f"({body})[{ref.range}:{resolution}]{offset}"
        elif ref.offset or own != step:
            text = f"last_over_time(({body})[{_just_under(own)}:{own}]{offset})"
        else:
            text = f"({body})"
        before = expr[last : ref.start]
        if _GROUP_MODIFIER.search(expr[: ref.start]):
            before += "() "  # `group_left (` would read our parenthesis as its label list
        out += [before, text]
        last = ref.end
    out.append(expr[last:])
    return "".join(out)


def _just_under(step: str) -> str:
    """One millisecond less than ``step``: a window holding exactly one multiple of the step."""
    return f"{round(parse_duration(step) * 1000) - 1}ms"


def _interval(group: Mapping[str, Any]) -> str:
    return str(group.get("interval") or "1m")


def recorded_in(groups: Sequence[Mapping[str, Any]]) -> tuple[dict[RecordKey, str], dict[RecordKey, str]]:
    """Each recording rule of ``groups`` (in order) with the earlier ones inlined, and its group's interval."""
    rules = [(r, _interval(g), g.get("name")) for g in groups for r in g.get("rules", []) if "record" in r]
    names = sorted({str(r["record"]) for r, _, _ in rules})
    recorded: dict[RecordKey, str] = {}
    steps: dict[RecordKey, str] = {}
    for rule, step, group in rules:
        key = record_key(rule)
        if key in recorded:
            raise InlineError(f"{_show(key)} is recorded twice in group {group!r}")
        try:
            recorded[key] = substitute(str(rule["expr"]), recorded, names, step, steps)
        except InlineError as e:
            raise InlineError(f"recording rule {_show(key)}: {e}") from None
        steps[key] = step
    return recorded, steps


def recorded_expressions(group: Mapping[str, Any]) -> dict[RecordKey, str]:
    """Each recording rule's expression with the earlier recording rules inlined into it."""
    return recorded_in([group])[0]


def inline_groups(groups: Sequence[Mapping[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """The alerting rules of ``groups`` (one job's fast and slow groups, say), each a copy whose
    ``expr`` reads only stored (raw) series, with the interval of the group it belongs to."""
    recorded, steps = recorded_in(groups)
    names = sorted({k[0] for k in recorded})
    out = []
    for group in groups:
        step = _interval(group)
        for rule in group.get("rules", []):
            if "alert" not in rule:
                continue
            try:
                expr = substitute(str(rule["expr"]), recorded, names, step, steps)
            except InlineError as e:
                raise InlineError(f"alert {rule['alert']}: {e}") from None
            out.append(({**rule, "expr": expr}, step))
    return out


def inline_group(group: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The group's alerting rules, each a copy whose ``expr`` reads only stored (raw) series."""
    return [rule for rule, _ in inline_groups([group])]


def inline_expr(group: Mapping[str, Any] | Sequence[Mapping[str, Any]], expr: str) -> str:
    """Any expression (a dashboard query, an ad-hoc rule) inlined against the recording rules of
    ``group`` (or of several groups: it is evaluated at the first one's interval)."""
    groups = [group] if isinstance(group, Mapping) else list(group)
    recorded, steps = recorded_in(groups)
    return substitute(expr, recorded, sorted({k[0] for k in recorded}), _interval(groups[0]), steps)
