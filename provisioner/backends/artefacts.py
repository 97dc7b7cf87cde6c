"""Rendered artefacts: the committed ``dashboards/<env>/`` and ``render --out DIR`` trees, and the
check ``memprov validate`` makes on everything rendered.

``expected_*`` functions return ``{path: text}`` without touching the disk; :func:`compare` says
what on disk differs (stale, missing, or generated files that the spec no longer produces);
:func:`render_problems` renders what templates the repository overrides and parses every Prometheus rule
expression.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from provisioner.backends.files import FilesConfig
from provisioner.backends.registry import BACKENDS, active, configure
from provisioner.core.errors import Problem, SpecError, dotted
from provisioner.render.grafana import dashboards as grafana
from provisioner.render.prometheus import rules
from provisioner.spec.promql_check import parse_problem
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

DASHBOARDS_DIR = "dashboards"


def dashboards_dir(spec: ResolvedSpec) -> Path:
    return spec.base_dir / DASHBOARDS_DIR / spec.env


def expected_dashboards(spec: ResolvedSpec) -> dict[Path, str]:
    """The committed review copy: ``dashboards/<env>/<uid>.json``, one file per dashboard (overview included)."""
    return dict(iter_dashboards(spec))


def iter_dashboards(spec: ResolvedSpec) -> Iterator[tuple[Path, str]]:
    """:func:`expected_dashboards` one file at a time, each rendered when asked for."""
    root = dashboards_dir(spec)
    for d in grafana.iter_dashboards(spec):
        yield root / f"{d.uid}.json", grafana.serialise(d.data)


def expected_tree(spec: ResolvedSpec, out: Path) -> dict[Path, str]:
    """Every backend's artefacts in its files-target layout under ``out/<backend>/``."""
    return dict(iter_tree(spec, out))


def iter_tree(spec: ResolvedSpec, out: Path) -> Iterator[tuple[Path, str]]:
    """:func:`expected_tree` one file at a time, each rendered when asked for (memory stays flat)."""
    for name in active(spec):
        root = out / name
        backend = BACKENDS[name](spec, FilesConfig(dir=str(root)))
        for resource in backend.stream():
            yield root / backend.filename(resource.key), backend.serialise(resource)


def generated_dashboards_on_disk(spec: ResolvedSpec) -> list[Path]:
    """JSON files in ``dashboards/<env>/`` that memprov generated for this environment."""
    root = dashboards_dir(spec)
    out = []
    for path in sorted(root.glob("*.json")) if root.is_dir() else []:
        try:
            tags = set(json.loads(path.read_text(encoding="utf-8")).get("tags", []))
        except (ValueError, OSError, AttributeError):
            continue
        if set(grafana.tags(spec)) <= tags:
            out.append(path)
    return out


@dataclass(frozen=True)
class Drift:
    path: Path
    state: str  # missing | stale | extra
    diff: tuple[str, ...] = ()


def compare(expected: Iterable[tuple[Path, str]], extra_candidates: list[Path]) -> list[Drift]:
    """What on disk differs from ``expected`` (``(path, text)`` pairs, read one at a time)."""
    out = []
    seen: set[Path] = set()
    for path, text in expected:
        seen.add(path)
        rel = path.name
        if not path.exists():
            out.append(Drift(path, "missing"))
            continue
        current = path.read_text(encoding="utf-8", errors="replace")
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), f"{rel} (committed)", f"{rel} (rendered)", n=2, lineterm=""
            )
            out.append(Drift(path, "stale", tuple(diff)))
    out.sort(key=lambda d: d.path)
    return out + [Drift(path, "extra") for path in extra_candidates if path not in seen]


def render_problems(spec: ResolvedSpec) -> list[Problem]:
    """What rendering ``spec`` would refuse: the repository's templates, and every Prometheus rule expression.

    Only templates can make a renderer refuse its input, so a backend is rendered here when the
    repository overrides one of its templates (``templates/<backend>/``); the shipped defaults are
    data (:func:`provisioner.render.templating.overridden`). Every Prometheus rule expression is
    parsed (:func:`expressions`: the rules without their texts, which are most of the rendering's
    cost); one that does not parse is blamed on its job.
    """
    problems: list[Problem] = []
    configs = configure(spec)
    overrides = spec.base_dir / "templates"
    for name in active(spec):
        if not _overrides(overrides / name):
            continue
        try:
            BACKENDS[name](spec, configs.get(name)).render()  # templates fail here
        except SpecError as e:
            problems += [p for p in e.problems if p not in problems]
    for job in spec.jobs_using("prometheus"):
        for rule, expr in expressions(spec, job):
            why = parse_problem(expr)
            if why:
                message = f"the rendered rule {rule} is not valid PromQL ({why}); check the job's selector"
                problems.append(_at(spec, ("jobs", job.id), message))
    return problems


def expressions(spec: ResolvedSpec, job: ResolvedJob) -> Iterator[tuple[str, str]]:
    """(rule name, expression) of every rule the prometheus backend renders for ``job``, as
    :func:`provisioner.render.prometheus.rules.rule_groups` builds them, without labels and texts
    (tests/test_validate_fast.py holds the two equal)."""
    found = rules.job_rules(spec, job)
    for record in (*found.fast, *found.slow):
        yield record["record"], record["expr"]
    for _, alert in found.alerts:
        yield alert.name, alert.expr


def _overrides(directory: Path) -> bool:
    """Whether the repository holds templates for a backend (any file under ``templates/<backend>/``)."""
    return directory.is_dir() and any(p.is_file() for p in directory.rglob("*"))


def _at(spec: ResolvedSpec, path: tuple[str | int, ...], message: str) -> Problem:
    for n in range(len(path), -1, -1):
        if path[:n] in spec.where:
            file, line = spec.where[path[:n]]
            return Problem(message, file, line, dotted(path))
    return Problem(message, str(spec.spec_file.name), None, dotted(path))
