"""Plans and apply reports as text: terminal (plain lines the console colours), Markdown, JSON.

Pure functions from values to strings; the CLI prints them through the redacting console.
"""

from __future__ import annotations

import json
from typing import Any

from provisioner.plan.engine import ApplyReport, Outcome
from provisioner.plan.model import Action, Change, Plan

MAX_DIFF_LINES = 60
STYLE = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.CONFLICT: "magenta",
    Action.NOOP: "dim",
}


def plural(count: int, word: str) -> str:
    """``1 change``, ``2 changes``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def unread(plan: Plan) -> list[str]:
    """The backends whose live state could not be read: the plan says nothing of what they would change."""
    return [bp.backend for bp in plan.backends if bp.error]


def summary_line(plan: Plan) -> str:
    c = plan.counts()
    parts = [f"{c['create']} to create", f"{c['update']} to update", f"{c['delete']} to delete"]
    if c["conflict"]:
        parts.append(f"{c['conflict']} in conflict")
    line = "Plan: " + ", ".join(parts) + f", {c['no-op']} unchanged"
    if missing := unread(plan):
        line += f"; not counted: {', '.join(missing)} (live state not read)"
    return line + "."


def cannot_apply(plan: Plan) -> str:
    """Why this plan cannot be applied as it is (a backend could not be read), or ''."""
    missing = unread(plan)
    if not missing:
        return ""
    return (
        f"This plan cannot be applied: the live state of {', '.join(missing)} could not be read (see above), so "
        "what apply would change there is unknown. Fix that and plan again."
    )


def _diff(change: Change, limit: int = MAX_DIFF_LINES) -> list[str]:
    lines = change.diff()
    if len(lines) > limit:
        lines = [*lines[:limit], f"… {len(lines) - limit} more diff lines (use --format json for all)"]
    return lines


def text(plan: Plan, *, show_noop: bool = False, diffs: bool = True, hint: bool = True) -> list[tuple[str, str]]:
    """(style, line) pairs; style is a rich style name or ''. ``hint``: end with the command that applies
    exactly this plan (``plan`` does; ``apply``, about to apply it, does not)."""
    out: list[tuple[str, str]] = [("bold", f"memprov plan · environment {plan.env} · spec {plan.spec_name}"), ("", "")]
    for bp in plan.backends:
        out.append(("bold cyan", f"{bp.backend} → {bp.target}"))
        if bp.error:
            out.append(("bold red", f"  ! cannot read live state: {bp.error}"))
        shown = [c for c in bp.changes if show_noop or c.action is not Action.NOOP]
        for c in shown:
            extra = f"  ({c.title})" if c.title and c.title != c.key else ""
            reason = f" — {c.reason}" if c.reason and c.action is not Action.CREATE else ""
            out.append((STYLE[c.action], f"  {c.action.symbol} {c.kind} {c.key}{extra}{reason}"))
            for d in c.details:
                out.append(("", f"      {d}"))
            if diffs and c.action in (Action.UPDATE, Action.CONFLICT):
                for line in _diff(c):
                    style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
                    out.append((style, f"      {line}"))
        unchanged = bp.count(Action.NOOP)
        if not shown and not bp.error:
            out.append(("dim", f"  no changes ({unchanged} up to date)"))
        elif unchanged and not show_noop:
            out.append(("dim", f"  {unchanged} up to date"))
        for note in bp.notes:
            out.append(("dim", f"  note: {note}"))
    out.append(("", ""))
    for w in plan.warnings:
        out.append(("yellow", f"warning: {w}"))
    for p in plan.safety_problems():
        out.append(("bold red", f"refused without --force: {p}"))
    out.append(("bold", summary_line(plan)))
    if why := cannot_apply(plan):
        out.append(("bold red", why))
    elif plan.has_changes:
        out.append(("", f"Checksum {plan.checksum}"))
        if hint:
            out.append(("dim", f"Apply exactly this plan: {_apply_command(plan)}"))
    return out


def _apply_command(plan: Plan) -> str:
    force = " --force" if plan.safety_problems() else ""  # it would be refused without
    return f"memprov apply --env {plan.env} --checksum {plan.checksum}{force}"


def markdown(plan: Plan) -> str:
    """A pull-request comment: a table per backend, then each change with its diff."""
    c = plan.counts()
    lines = [
        f"### memprov plan for `{plan.env}`",
        "",
        f"**{c['create']}** to create · **{c['update']}** to update · **{c['delete']}** to delete · "
        f"{c['no-op']} unchanged"
        + (f" · **{c['conflict']} in conflict**" if c["conflict"] else "")
        + (f" · ⚠️ not counted: {', '.join(unread(plan))} (live state not read)" if unread(plan) else ""),
        "",
        "| backend | target | create | update | delete | unchanged |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for bp in plan.backends:
        err = " ⚠️ " + bp.error.replace("|", "\\|") if bp.error else ""
        counts = [str(bp.count(a)) if not bp.error else "—" for a in (Action.CREATE, Action.UPDATE, Action.DELETE)]
        counts.append(str(bp.count(Action.NOOP)) if not bp.error else "—")
        lines.append(f"| {bp.backend} | `{bp.target}`{err} | " + " | ".join(counts) + " |")
    for problem in plan.safety_problems():
        lines += ["", f"> ⛔ refused without `--force`: {problem}"]
    for bp in plan.backends:
        changes = bp.actionable
        if not changes:
            continue
        lines += ["", f"#### {bp.backend}", ""]
        for ch in changes:
            title = f" — {ch.title}" if ch.title and ch.title != ch.key else ""
            lines.append(
                f"- **{ch.action.value}** {ch.kind} `{ch.key}`{title}"
                + (f" ({ch.reason})" if ch.reason and ch.action is not Action.CREATE else "")
            )
            lines += [f"  - {d}" for d in ch.details]
            if ch.action in (Action.UPDATE, Action.CONFLICT):
                lines += [
                    "  <details><summary>diff</summary>",
                    "",
                    "  ```diff",
                    *[f"  {line}" for line in _diff(ch)],
                    "  ```",
                    "  </details>",
                ]
        for note in bp.notes:
            lines.append(f"- _note: {note}_")
    if why := cannot_apply(plan):
        lines += ["", f"> ⛔ {why}"]
    elif plan.has_changes:
        lines += ["", f"Apply exactly this plan: `{_apply_command(plan)}`"]
    return "\n".join(lines) + "\n"


def as_dict(plan: Plan) -> dict[str, Any]:
    return {
        "env": plan.env,
        "spec": plan.spec_name,
        "checksum": plan.checksum,
        "counts": plan.counts(),
        "has_changes": plan.has_changes,
        "unread": unread(plan),
        "applicable": not unread(plan),
        "warnings": list(plan.warnings),
        "safety_problems": plan.safety_problems(),
        "backends": [
            {
                "backend": bp.backend,
                "target": bp.target,
                "error": bp.error,
                "notes": list(bp.notes),
                "live_owned": bp.live_owned,
                "changes": [
                    {
                        "action": c.action.value,
                        "kind": c.kind,
                        "key": c.key,
                        "title": c.title,
                        "job": c.job,
                        "reason": c.reason,
                        "details": list(c.details),
                        "diff": c.diff(),
                    }
                    for c in bp.changes
                ],
            }
            for bp in plan.backends
        ],
    }


def as_json(plan: Plan) -> str:
    return json.dumps(as_dict(plan), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def report_lines(report: ApplyReport) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    applied, failed, skipped = (report.of(o) for o in (Outcome.APPLIED, Outcome.FAILED, Outcome.SKIPPED))
    total = len(report.results)
    head = "Apply interrupted" if report.interrupted else ("Apply complete" if report.ok else "Apply incomplete")
    out.append(
        (
            "bold green" if report.ok else "bold red",
            f"{head}: {len(applied)} of {plural(total, 'change')} applied, {len(failed)} failed, "
            f"{len(skipped)} not attempted.",
        )
    )
    for title, results, style in (
        ("Changed", applied, "green"),
        ("Failed (not changed)", failed, "red"),
        ("Not attempted (not changed)", skipped, "yellow"),
    ):
        if results:
            out.append(("bold", f"{title}:"))
            for r in sorted(results, key=lambda r: (r.change.backend, r.change.key)):
                msg = f": {r.message}" if r.message else ""
                out.append(
                    (style, f"  {r.change.action.symbol} {r.change.backend} {r.change.kind} {r.change.key}{msg}")
                )
    return out
