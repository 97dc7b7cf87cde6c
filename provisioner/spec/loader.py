"""Load ``memprov.yaml`` + ``environments/<env>.yaml`` (+ ``baselines/<env>.yaml``) into a ResolvedSpec.

The one entry point is :func:`load`. It reads each file with line tracking, merges the overlay
per the declared merge rules, validates with pydantic, resolves cross-field rules, and reports
every problem as ``file:line: key.path: message`` in a single :class:`SpecError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from provisioner.core.errors import Problem, SpecError, UsageError, describe, did_you_mean, dotted
from provisioner.core.yamlio import MAX_BYTES, Document, load_file
from provisioner.spec import includes
from provisioner.spec.environment import ENV_NAME_PATTERN, OVERLAY_KEYS, PATTERN_HELP, SPEC_ONLY_KEYS, Environment
from provisioner.spec.merge import Loc, Merger, Where, field_names, field_type, union_tags
from provisioner.spec.model import Job, Spec
from provisioner.spec.resolve import resolve
from provisioner.spec.resolved import ResolvedSpec, TargetBlocks

DEFAULT_ENV = "local"
_JOBS_ADAPTER: TypeAdapter[dict[str, Job]] = TypeAdapter(dict[str, Job])


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def environments(spec_file: Path) -> list[str]:
    """Environments available next to the spec: ``local`` plus every ``environments/*.yaml``."""
    env_dir = spec_file.parent / "environments"
    found = {p.stem for p in env_dir.glob("*.yaml")} if env_dir.is_dir() else set()
    return sorted(found | {DEFAULT_ENV})


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_KEY_BREAK = re.compile(r"[\t\n\r]")  # fine in a value, never in a key


def _strings(data: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str, bool]]:
    """Every string in ``data`` with its location and whether it is a key."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*loc, key), key, True
            yield from _strings(value, (*loc, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _strings(item, (*loc, i))
    elif isinstance(data, str):
        yield loc, data, False


_DOCS: dict[tuple[str, str], tuple[bytes, Document]] = {}
_DOCS_MAX = 64


def _read(path: Path, display: str) -> Document:
    """Read one input file; its text may not hide control characters behind escapes (``"\\x07"``).

    A file read before by this process with the same bytes is not parsed again (``memprov validate``
    loads the spec and its jobs files once per environment): the document is shared, never mutated.
    """
    key = (str(path.resolve()), display)
    raw = None
    with contextlib.suppress(OSError):
        if path.stat().st_size <= MAX_BYTES:
            raw = path.read_bytes()
    cached = _DOCS.get(key)
    if raw is not None and cached is not None and cached[0] == raw:
        return cached[1]
    doc = _check(load_file(path, display))
    if raw is not None:
        if len(_DOCS) >= _DOCS_MAX:
            _DOCS.clear()
        _DOCS[key] = (raw, doc)
    return doc


def _check(doc: Document) -> Document:
    problems = [
        Problem(
            f"contains the control character U+{ord(m.group()):04X}; remove it", doc.file, doc.line_of(loc), dotted(loc)
        )
        for loc, text, is_key in _strings(doc.data)
        if (m := _CONTROL.search(text) or (_KEY_BREAK.search(text) if is_key else None))
    ]
    if problems:
        raise SpecError(problems)
    return doc


def _where(doc: Document, prefix: Loc = (), strip: int = 0) -> dict[Loc, Where]:
    return {(*prefix, *loc[strip:]): (doc.file, line) for loc, line in doc.lines.items() if len(loc) >= strip}


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[list[str | int], bool]:
    """Keep the parts of a pydantic ``loc`` that exist in the data (drops union tags and the like)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
            out.append(part)
        elif isinstance(part, str) and not isinstance(node, (dict, list)):
            continue
    return out, True


_EXPECT = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "list_type": "a list",
    "int_from_float": "a whole number",
    "finite_number": "a finite number",
}
_BOUNDS = {
    "greater_than": "greater than",
    "greater_than_equal": "at least",
    "less_than": "less than",
    "less_than_equal": "at most",
}


def _one_of(options: list[str]) -> str:
    return f"{', '.join(options[:-1])} or {options[-1]}" if len(options) > 1 else "".join(options)


def _message(err: Any, root_type: Any, path: list[str | int]) -> tuple[list[str | int], str]:
    kind, loc = err["type"], err["loc"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent_tp: Any = root_type
        for part in path[:-1] if path and path[-1] == key else path:
            parent_tp = field_type(parent_tp, part) if parent_tp is not None else None
        hint = did_you_mean(key, field_names(parent_tp)) if parent_tp is not None else ""
        allowed = ", ".join(field_names(parent_tp)) if parent_tp is not None else ""
        fix = hint or (f"; allowed here: {allowed}" if allowed else "; remove it")
        return path, f"unknown key '{key}'{fix}"
    if kind in _BOUNDS:
        bound = next(iter(err.get("ctx", {}).values()), "?")
        bound = f"{bound:g}" if isinstance(bound, float) else bound
        return path, f"must be {_BOUNDS[kind]} {bound}, got {describe(err['input'])}"
    if kind == "string_too_short":
        n = err.get("ctx", {}).get("min_length", 1)
        return path, "must not be empty" if n == 1 else f"must have at least {n} characters"
    if kind == "string_too_long":
        return path, f"must have at most {err.get('ctx', {}).get('max_length')} characters"
    if kind == "missing":
        return [*path, loc[-1]] if path[-1:] != [loc[-1]] else path, f"required key '{loc[-1]}' is missing; add it"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = err.get("ctx", {})
        tags = ctx.get("expected_tags", "")
        options = [t.strip(" '") for t in tags.split(",")]
        got = ctx.get("tag", "")
        if kind == "union_tag_not_found":
            where: Any = root_type
            for part in path:
                where = field_type(where, part) if where is not None else None
            return path, f"needs 'type:', one of {_one_of(union_tags(where) or options)}"
        return [*path, ctx.get("discriminator", "type").strip("'")], (
            f"type {describe(got)} is not one of {_one_of(options)}{did_you_mean(str(got), options)}"
        )
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = [o.strip(" '") for o in expected.replace(" or ", ", ").split(",")]
        got = err["input"]
        if str(got) in options:  # '1' for 1: right value, wrong type
            return path, f"must be {_one_of(options)}, got {describe(got)}; write it without quotes"
        if len(options) == 1:
            return path, f"must be {options[0]}, got {describe(got)}"
        return path, f"{describe(got)} is not one of {_one_of(options)}{did_you_mean(str(got), options)}"
    if kind in _EXPECT:
        return path, f"expected {_EXPECT[kind]}, got {describe(err['input'])}"
    if kind in ("value_error", "assertion_error"):
        msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return path, msg
    if kind == "string_pattern_mismatch":
        pattern = err["ctx"]["pattern"]
        fix = PATTERN_HELP.get(pattern, f"it must match the pattern {pattern}")
        return path, f"{describe(err['input'])} is not allowed here; {fix}"
    return path, f"{err['msg']} (got {describe(err.get('input'))})"


def _validate(
    model: type[BaseModel], data: Any, where: dict[Loc, Where], fallback: str, prefix: Loc = ()
) -> tuple[Any, list[Problem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            path, _ = _data_path(data, err["loc"])
            path, msg = _message(err, model, path)
            problems.append(_locate((*prefix, *path), msg, where, fallback))
        return None, problems


_JOBS: dict[int, tuple[Any, Job]] = {}  # id(raw job data) -> (that data, kept alive; its validated Job)
_JOBS_MAX = 100_000


def _validate_spec(data: dict[str, Any], where: dict[Loc, Where], fallback: str) -> tuple[Any, list[Problem]]:
    """:func:`_validate` of the whole spec, where the jobs validated before (the same data: a file read
    once, untouched by this environment's overlay) are not validated again. Any problem: the whole
    spec is validated as usual, so that every message is the same."""
    jobs = data.get("jobs")
    if not isinstance(jobs, dict):
        return _validate(Spec, data, where, fallback)
    models: dict[str, Any] = {}
    fresh: dict[str, Any] = {}
    for job_id, raw in jobs.items():
        hit = _JOBS.get(id(raw))
        if hit is not None and hit[0] is raw:
            models[job_id] = hit[1]
        else:
            fresh[job_id] = raw
    if fresh:
        try:
            validated = _JOBS_ADAPTER.validate_python(fresh)
        except ValidationError:
            return _validate(Spec, data, where, fallback)
        if len(_JOBS) + len(fresh) > _JOBS_MAX:
            _JOBS.clear()
        for job_id, model in validated.items():
            _JOBS[id(fresh[job_id])] = (fresh[job_id], model)
            models[job_id] = model
    spec, problems = _validate(Spec, {**data, "jobs": {job_id: models[job_id] for job_id in jobs}}, where, fallback)
    return (spec, problems) if not problems else _validate(Spec, data, where, fallback)


def _locate(path: Loc, msg: str, where: dict[Loc, Where], fallback: str) -> Problem:
    for n in range(len(path), -1, -1):
        if path[:n] in where:
            file, line = where[path[:n]]
            return Problem(msg, file, line, dotted(path))
    return Problem(msg, fallback, None, dotted(path))


def load(spec_file: Path, env: str = DEFAULT_ENV, *, baselines: bool = True) -> ResolvedSpec:
    """Load, merge, validate and resolve the spec for one environment.

    ``baselines=False`` ignores ``baselines/<env>.yaml`` (``memprov baseline`` replaces it).
    """
    spec_file = Path(spec_file)
    base_dir = spec_file.parent
    if not spec_file.exists():
        raise UsageError(f"{spec_file}: no spec here; pass --spec PATH or create one with `memprov init DIR`")
    known = environments(spec_file)
    if env not in known:
        raise UsageError(
            f"unknown environment '{env}'{did_you_mean(env, known)}; available: {', '.join(known)} "
            f"(add environments/{env}.yaml to create it)"
        )
    if not re.match(ENV_NAME_PATTERN, env):
        raise UsageError(
            f"environment name '{env}' must be lowercase letters, digits and '-' (it becomes part of resource names)"
        )
    spec_doc = _read(spec_file, _display(spec_file, base_dir) if spec_file.is_absolute() else str(spec_file))
    if not isinstance(spec_doc.data, dict):
        raise SpecError([Problem("the spec must be a mapping with version:, jobs: ...", spec_doc.file, 1)])
    if not spec_doc.data:
        raise SpecError(
            [
                Problem(
                    "the spec is empty; it needs version: 1 and jobs: (memprov init DIR writes an example)",
                    spec_doc.file,
                    1,
                )
            ]
        )
    job_docs, problems = includes.read_all(spec_doc, spec_file, _read)
    joined = includes.merge(spec_doc, _where(spec_doc), job_docs)
    problems += joined.problems
    sources = [spec_doc.file, *joined.files]
    merger = Merger(joined.where)
    data: dict[str, Any] = joined.data

    baseline_file = base_dir / "baselines" / f"{env}.yaml"
    if baselines and baseline_file.exists():
        bdoc = _read(baseline_file, str(baseline_file.relative_to(base_dir)))
        sources.append(bdoc.file)
        overlay_jobs, bprobs = _baselines(bdoc)
        problems += bprobs
        bwhere: dict[Loc, Where] = {}
        for loc, w in _where(bdoc).items():  # jobs.<id>.peak_p95 is jobs.<id>.memory.baseline.peak_p95
            if loc[:1] == ("jobs",) and len(loc) >= 2:
                bwhere.setdefault(("jobs", loc[1]), w)
                bwhere[("jobs", loc[1], "memory", "baseline", *loc[2:])] = w
        data = merger.merge(Spec, data, {"jobs": overlay_jobs}, bwhere)

    environment = Environment()
    ewhere: dict[Loc, Where] = {}
    env_file = base_dir / "environments" / f"{env}.yaml"
    if env_file.exists():
        edoc = _read(env_file, str(Path("environments") / f"{env}.yaml"))
        sources.append(edoc.file)
        edata = edoc.data if isinstance(edoc.data, dict) else {}
        if not isinstance(edoc.data, dict) and edoc.data not in (None, {}):
            raise SpecError([Problem("an environment file must be a mapping", edoc.file, 1)])
        ewhere = _where(edoc)
        settings = {k: v for k, v in edata.items() if k not in SPEC_ONLY_KEYS}
        environment, eprobs = _validate(Environment, settings, ewhere, edoc.file)
        problems += eprobs
        over = {k: edata[k] for k in (*SPEC_ONLY_KEYS, *OVERLAY_KEYS) if k in edata}
        data = merger.merge(Spec, data, over, ewhere)
    problems += merger.problems
    if problems:
        raise SpecError(problems)
    spec, vprobs = _validate_spec(data, merger.where, spec_doc.file)
    if vprobs:
        raise SpecError(vprobs)
    resolved, rprobs = resolve(spec, env, environment, spec_file, tuple(sources))
    if rprobs or resolved is None:
        raise SpecError([_locate(path, msg, merger.where, spec_doc.file) for path, msg in rprobs])
    targets = TargetBlocks(
        {str(k): v for k, v in environment.targets.items()}, str(Path("environments") / f"{env}.yaml"), ewhere
    )
    return dataclasses.replace(resolved, targets=targets, where=dict(merger.where))


def _baselines(doc: Document) -> tuple[dict[str, Any], list[Problem]]:
    """``baselines/<env>.yaml`` (``jobs: {<id>: {peak_p95: ...}}``) as a jobs overlay, or its problems."""
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        return {}, [Problem("a baselines file must be a mapping: jobs: {<job id>: {peak_p95: ...}}", doc.file, 1)]
    problems = [
        Problem(
            f"unknown key '{key}'{did_you_mean(key, ['jobs']) or '; only jobs: is allowed here'}",
            doc.file,
            doc.line_of((key,)),
            key,
        )
        for key in data
        if key != "jobs"
    ]
    jobs = data.get("jobs") or {}
    if not isinstance(jobs, dict):
        problems.append(
            Problem(
                f"expected a mapping of job id to baseline, got {describe(jobs)}",
                doc.file,
                doc.line_of(("jobs",)),
                "jobs",
            )
        )
        return {}, problems
    return {job: {"memory": {"baseline": b}} for job, b in jobs.items()}, problems


def validate_block(model: type[BaseModel], data: Any, blocks: TargetBlocks, prefix: Loc) -> tuple[Any, list[Problem]]:
    """One block of an environment file (``targets.<backend>``) validated by ``model``, problems located."""
    return _validate(model, data, dict(blocks.where), blocks.file, prefix=prefix)


def locate(blocks: TargetBlocks, path: Loc, msg: str) -> Problem:
    """A problem at ``path`` of the environment file, with its line."""
    return _locate(path, msg, dict(blocks.where), blocks.file)
