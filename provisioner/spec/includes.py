"""Jobs split across files: ``jobs/*.yaml`` next to the spec, or the globs of its ``include:`` key.

A spec of 10,000 jobs is ten files of 1,000 rather than one file past the per-file size limit
(:data:`provisioner.core.yamlio.MAX_BYTES`, which applies to each file). Each included file holds
``jobs: {<id>: {...}}`` exactly as ``memprov.yaml`` does; its jobs join the spec's own before the
environment overlay is merged, each value keeping the file and line it came from, so errors read
``jobs/vision.yaml:14: jobs.vision-embed.memory.limit: ...``. A job id defined twice, in the spec
and a file or in two files, is an error that names both places. Globs are relative to the spec's
directory and may not reach outside it; an explicit ``include:`` glob that matches nothing is an
error (a typo would otherwise drop jobs silently), the default one may match nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.core.errors import Problem, SpecError, describe, did_you_mean
from provisioner.core.yamlio import Document

DEFAULT_INCLUDE = ("jobs/*.yaml",)
Loc = tuple[str | int, ...]
Where = tuple[str, int | None]


@dataclass
class Included:
    """The spec's data with the jobs of every included file, where each value came from, the problems."""

    data: dict[str, Any]
    where: dict[Loc, Where]
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def patterns(spec: Document) -> tuple[list[str], bool, list[Problem]]:
    """The spec's ``include:`` globs (or the default), whether they were given, and what is wrong with them."""
    data = spec.data if isinstance(spec.data, dict) else {}
    if "include" not in data:
        return list(DEFAULT_INCLUDE), False, []
    raw = data["include"]
    line = spec.line_of(("include",))
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(p, str) and p.strip() for p in raw):
        what = f"expected a list of file globs relative to the spec (e.g. [jobs/*.yaml]), got {describe(raw)}"
        return [], True, [Problem(what, spec.file, line, "include")]
    problems = []
    for i, pattern in enumerate(raw):
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            problems.append(
                Problem(
                    f"{pattern!r} must stay inside the spec's directory (a relative glob without '..')",
                    spec.file,
                    spec.line_of(("include", i)),
                    f"include[{i}]",
                )
            )
    return [p for p in raw if not Path(p).is_absolute() and ".." not in Path(p).parts], True, problems


def files(spec: Document, spec_file: Path) -> tuple[list[Path], list[Problem]]:
    """The included files, in glob order then sorted, each once, the spec itself never."""
    globs, explicit, problems = patterns(spec)
    base = spec_file.parent.resolve()
    own = spec_file.resolve()
    found: dict[Path, None] = {}
    for i, pattern in enumerate(globs):
        matches = sorted(p for p in spec_file.parent.glob(pattern) if p.is_file())
        inside = [p for p in matches if p.resolve().is_relative_to(base)]
        for path in matches:
            if path not in inside:
                problems.append(
                    Problem(
                        f"{path} is outside the spec's directory (a link?); include only files under {base}",
                        spec.file,
                        spec.line_of(("include", i)),
                        f"include[{i}]",
                    )
                )
        if explicit and not matches:
            problems.append(
                Problem(
                    f"{pattern!r} matches no file next to the spec; fix the glob or remove it",
                    spec.file,
                    spec.line_of(("include", i)),
                    f"include[{i}]",
                )
            )
        for path in inside:
            if path.resolve() != own:
                found.setdefault(path, None)
    return list(found), problems


def merge(spec: Document, base_where: dict[Loc, Where], docs: list[Document]) -> Included:
    """The spec's data with the jobs of ``docs`` added; a job defined twice is a problem naming both places."""
    data: dict[str, Any] = dict(spec.data)
    own = data.get("jobs")
    jobs: dict[str, Any] | None = dict(own) if isinstance(own, dict) else {} if own is None else None
    where = dict(base_where)
    out = Included(data, where)
    first: dict[str, Where] = {job: where.get(("jobs", job), (spec.file, None)) for job in (jobs or {})}
    for doc in docs:
        out.files.append(doc.file)
        found, problems = _jobs_of(doc)
        out.problems += problems
        if jobs is None:  # the spec's own jobs: is not a mapping; validation says so
            continue
        accepted = set()
        for job, settings in found.items():
            if job in first:
                file, line = first[job]
                at = f"{file}:{line}" if line else file
                out.problems.append(
                    Problem(
                        f"job '{job}' is already defined at {at}; define each job once across the spec and the "
                        "files it includes: remove one of them (or rename it)",
                        doc.file,
                        doc.line_of(("jobs", job)),
                        f"jobs.{job}",
                    )
                )
                continue
            first[job] = (doc.file, doc.line_of(("jobs", job)))
            jobs[job] = settings
            accepted.add(job)
        where.update(
            {
                loc: (doc.file, line)
                for loc, line in doc.lines.items()
                if len(loc) >= 2 and loc[0] == "jobs" and loc[1] in accepted
            }
        )
    if jobs is not None and (jobs or own is not None or docs):
        data["jobs"] = jobs
    return out


def _jobs_of(doc: Document) -> tuple[dict[str, Any], list[Problem]]:
    """The ``jobs:`` mapping of an included file, or its problems."""
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        return {}, [Problem("an included jobs file must be a mapping: jobs: {<job id>: {...}}", doc.file, 1)]
    problems = [
        Problem(
            f"unknown key '{key}'{did_you_mean(str(key), ['jobs']) or '; an included file holds only jobs:'}",
            doc.file,
            doc.line_of((key,)),
            str(key),
        )
        for key in data
        if key != "jobs"
    ]
    jobs = data.get("jobs") or {}
    if not isinstance(jobs, dict):
        problems.append(
            Problem(
                f"expected a mapping of job id to its settings, got {describe(jobs)}",
                doc.file,
                doc.line_of(("jobs",)),
                "jobs",
            )
        )
        return {}, problems
    return jobs, problems


def read_all(
    spec: Document, spec_file: Path, read: Callable[[Path, str], Document]
) -> tuple[list[Document], list[Problem]]:
    """Every included file, read with ``read(path, shown)`` (shown relative to the spec's directory); the
    problems of every file at once."""
    paths, problems = files(spec, spec_file)
    base = spec_file.parent
    docs = []
    for path in paths:
        try:
            docs.append(read(path, path.relative_to(base).as_posix()))
        except SpecError as e:
            problems += e.problems
    return docs, problems
