"""Helpers shared by the verbs: loading the spec for one or all environments, building backends."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

from provisioner.backends.registry import build, configure
from provisioner.core import secrets
from provisioner.core.errors import Problem, SpecError, UsageError
from provisioner.core.types import SecretRef
from provisioner.core.units import parse_duration
from provisioner.kinds.base import Level
from provisioner.plan.planner import Binding
from provisioner.spec.loader import environments, load
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec


def env_names(spec: Path, env: str | None) -> list[str]:
    return [env] if env else environments(spec)


def settle() -> None:
    """Move everything alive now (the loaded spec: for 10,000 jobs, millions of objects that live until
    the command ends) out of the garbage collector's sight, so that the collections that rendering
    sets off do not walk it again and again. Called by the verbs once the spec is loaded."""
    gc.collect()
    gc.freeze()


def load_all(spec: Path, env: str | None) -> list[ResolvedSpec]:
    """Resolved specs for one environment or all of them (targets validated too); every problem at once."""
    out, problems = [], []
    for name in env_names(spec, env):
        try:
            resolved = load(spec, name)
            configure(resolved)
            out.append(resolved)
        except SpecError as e:
            problems += [p for p in e.problems if p not in problems]
    if problems:
        raise SpecError(problems)
    settle()
    return out


def backends(resolved: ResolvedSpec, only: list[str] | None = None) -> list[Binding]:
    refs = [v for ch in resolved.notifications.values() for v in ch.__dict__.values() if isinstance(v, SecretRef)]
    secrets.register_env(refs)
    return build(resolved, only or [])


def inexact(resolved: ResolvedSpec, bindings: Sequence[Binding]) -> list[Problem]:
    """Each alert kind a backend approximates or cannot express (what ``--strict`` refuses), at the job's key."""
    out = []
    for backend, _ in bindings:
        for s in backend.support():
            if s.support.level is Level.NATIVE:
                continue
            why = f" ({s.support.why})" if s.support.why else ""
            message = (
                f"{s.kind.value} is {s.support.level.value} on {backend.name}{why}; --strict refuses it: "
                f"mend what the reason says, disable the kind for this job, leave {backend.name} out of its "
                "backends, or plan without --strict"
            )
            path = ("jobs", s.job)
            file, line = resolved.where.get(path, (str(resolved.spec_file.name), None))
            out.append(Problem(message, file, line, f"jobs.{s.job}"))
    return out


def parse_since(since: str) -> float:
    """``--since 30d`` in seconds, or a usage error that says what is wrong."""
    try:
        return parse_duration(since)
    except ValueError as e:
        raise UsageError(f"--since: {e}") from None


def select_jobs(candidates: Sequence[ResolvedJob], names: Sequence[str], what: str) -> list[ResolvedJob]:
    """``candidates`` named in ``names`` (all when none); an unknown name is a usage error listing ``what`` there is."""
    known = [j.id for j in candidates]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown job(s) {', '.join(unknown)}; {what}: {', '.join(known) or 'none'}")
    return [j for j in candidates if not names or j.id in names]


def iso_minutes(t: float) -> str:
    """``2026-11-30 10:14 UTC``."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def table(rows: Sequence[Sequence[str]], head: Sequence[str], markdown: bool) -> str:
    """Rows as a Markdown table, or as aligned columns for a terminal."""
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)
