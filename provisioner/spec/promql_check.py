"""Every PromQL expression memprov writes is parsed before it leaves memprov, with the spec key to blame.

The spec's own checks (label names, RE2 regular expressions, quoting) should make a bad
expression impossible; this is the second line: an in-process PromQL parser (the
``promql-parser`` package, the Rust parser of GreptimeDB, compatible with Prometheus 2.x) reads
each expression, so that ``memprov validate`` fails where ``promtool check rules`` would fail
later. :func:`source_problems` checks a job's source series as the spec is resolved (every
command), blaming the selector or metric key that breaks them;
:func:`provisioner.backends.artefacts.render_problems` renders every backend for
``memprov validate`` and parses every rule expression with :func:`parse_problem`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from provisioner.core.promql import Sources, quote
from provisioner.spec.model import Job

Loc = tuple[str | int, ...]


# ``="value"`` where the value is plain printable ASCII, not empty, without quotes or escapes: the value
# of a label matcher (``name="v"``, ``name!="v"``). It never changes whether the expression parses:
# the lexer reads it as one string token, and the parser asks only that a matcher be non-empty (an
# empty value is left as it is, and so are regex matchers ``=~``/``!~`` and anything escaped). A
# string after ``==``, ``<=`` or ``>=`` fails to parse whatever it holds (no comparison takes one).
_MATCHER_VALUE = re.compile(r'="[ !#-\[\]-~]+"')
_VALID_SHAPES: set[str] = set()
_MAX_SHAPES = 200_000


def shape(expr: str) -> str:
    """``expr`` with the values of plain label matchers replaced: expressions of one shape all parse or none does."""
    return _MATCHER_VALUE.sub('="v"', expr)


def parse_problem(expr: str) -> str | None:
    """Why ``expr`` is not a PromQL expression, or None.

    An expression of a shape (:func:`shape`) already seen to parse is not parsed again: the rules of
    10,000 jobs differ mostly in their job and environment label values, so ``memprov validate``
    parses a few thousand expressions instead of hundreds of thousands.
    """
    key = shape(expr)
    if key in _VALID_SHAPES:
        return None
    import promql_parser

    try:
        promql_parser.parse(expr)
    except ValueError as e:
        return str(e).strip() or "cannot be parsed"
    if len(_VALID_SHAPES) >= _MAX_SHAPES:
        _VALID_SHAPES.clear()
    _VALID_SHAPES.add(key)
    return None


def _expressions(sources: Sources) -> Iterator[str]:
    for expr in (sources.working_set, sources.limit, sources.oom_events, *sources.oom_terminated):
        if expr:
            yield expr


def _culprit(job: Job) -> tuple[Loc, str] | None:
    """The one selector value, regex or metric name that does not parse on its own."""
    sel = job.selector
    for key in ("namespace", "pod", "container", "instance", "groupname"):
        value = getattr(sel, key)
        if value is not None and (problem := parse_problem(f"x{{{key}={quote(value)}}}")):
            return ("selector", key), problem
    for key, value in sel.regex.items():
        if problem := parse_problem(f"x{{{key}=~{quote(value)}}}"):
            return ("selector", "regex", key), problem
    for key in ("working_set", "limit", "oom_events"):
        value = getattr(job.metrics, key)
        if value is not None and (problem := parse_problem(value)):
            return ("metrics", key), problem
    return None


def source_problems(path: Loc, job: Job, sources: Sources) -> list[tuple[Loc, str]]:
    """Problems with the job's source series, at the spec key that causes them."""
    for expr in _expressions(sources):
        problem = parse_problem(expr)
        if problem:
            where, why = _culprit(job) or (("selector",), problem)
            return [((*path, *where), f"makes the PromQL expression {expr!r} invalid ({why}); fix the value")]
    return []
