"""Markdown tables and a JSON document from the benchmark's scores (see score.py for the definitions)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from score import (
    COUNTED_SEVERITIES,
    FLAP_GAP,
    NOT_COUNTED_KINDS,
    TARGET_FALSE_ALARMS,
    TARGET_FRACTION,
    Catch,
    Score,
)
from tracegen import HEALTHY, INCIDENTS, MIN, Run

from provisioner.analysis.evaluate.alerts import Episode


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _min(x: float | None) -> str:
    return "–" if x is None else f"{x / MIN:.0f}"


def _frac(n: int, total: int) -> str:
    return f"{n}/{total}"


def summary_table(scores: Sequence[Score]) -> str:
    rows = [
        "| rule set | surge caught | leak caught | step caught | median lead (min) | median lead / best "
        "(misses as 0) | false alarms / 100 healthy runs | flaps | drift runs warned / paged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        lead_all = s.median("fraction", missed_as_zero=True)
        rows.append(
            f"| {s.name} | {_frac(*s.caught(['surge']))} | {_frac(*s.caught(['leak']))} | "
            f"{_frac(*s.caught(['step']))} | {_min(s.median('lead'))} | "
            f"{_pct(s.median('fraction'))} ({_pct(lead_all)}) | "
            f"{s.false_alarm_rate():.2f} ({len(s.false_alarms)} in {sum(s.healthy_runs.values())}) | "
            f"{len(s.flaps)} | {len(s.drift['warning'])}/{s.drift_runs} · {len(s.drift['critical'])}/{s.drift_runs} |"
        )
    return "\n".join(rows)


def kind_table(scores: Sequence[Score]) -> str:
    rows = [
        "| rule set | incident | caught | median best possible lead (min) | median lead (min) | median lead / best |",
        "|---|---|---|---|---|---|",
    ]
    for s in scores:
        for kind in INCIDENTS:
            best = [c.best for c in s.catches if c.run.kind == kind]
            rows.append(
                f"| {s.name} | {kind} | {_frac(*s.caught([kind]))} | "
                f"{_min(statistics.median(best) if best else None)} | {_min(s.median('lead', [kind]))} | "
                f"{_pct(s.median('fraction', [kind]))} |"
            )
    return "\n".join(rows)


def job_table(s: Score) -> str:
    """Per job of one rule set: caught and median lead / best per incident kind, false alarms."""
    jobs = list(dict.fromkeys(c.run.job for c in s.catches))
    rows = [
        "| job | " + " | ".join(INCIDENTS) + " | false alarms | drift warned / paged |",
        "|---|" + "---|" * (len(INCIDENTS) + 2),
    ]
    for job in jobs:
        cells = []
        for kind in INCIDENTS:
            mine = [c for c in s.catches if c.run.job == job and c.run.kind == kind]
            fractions = [c.fraction for c in mine if c.fraction is not None]
            med = statistics.median(fractions) if fractions else None
            cells.append(f"{len(fractions)}/{len(mine)}, {_pct(med)}")
        fa = sum(r.job == job for _, r in s.false_alarms)
        warned = sum(p.startswith(f"{job}-") for p in s.drift["warning"])
        paged = sum(p.startswith(f"{job}-") for p in s.drift["critical"])
        rows.append(f"| {job} | " + " | ".join(cells) + f" | {fa} | {warned} / {paged} |")
    return "\n".join(rows)


def alert_table(s: Score, alert_severity: dict[str, tuple[str, str]]) -> str:
    """Per alert of one rule set (``{alert: (severity, memprov_kind)}``): false alarms, catches, flaps."""
    fa = Counter((e.alert, r.kind) for e, r in s.false_alarms)
    fired_on = Counter(a for c in s.catches for a in c.alerts)
    first = Counter(c.first.alert for c in s.catches if c.first is not None)
    late = Counter(c.first.alert for c in s.catches if c.first is not None and (c.fraction or 0.0) < TARGET_FRACTION)
    flaps = Counter(e.alert for e, _ in s.flaps)
    drift = {a: len({r.pod for e, r in s.drift_episodes if e.alert == a}) for a in alert_severity}
    rows = [
        "| alert | severity | false alarms (healthy / spiky runs) | drift runs it fired on | incidents it fired on "
        "| first to fire | … of which late (< 70 % of best) | flaps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    incidents = len(s.catches)
    for alert, (severity, kind) in alert_severity.items():
        if kind in NOT_COUNTED_KINDS or severity not in COUNTED_SEVERITIES:
            severity += " (not scored)"
        rows.append(
            f"| {alert} | {severity} | {fa[(alert, 'healthy')]} / {fa[(alert, 'spiky')]} | "
            f"{drift[alert]}/{s.drift_runs} | {fired_on[alert]}/{incidents} | {first[alert]} | {late[alert]} | "
            f"{flaps[alert]} |"
        )
    return "\n".join(rows)


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 2 * MIN else f"{seconds / MIN:.0f} min"


def _when(e: Episode, run: Run) -> str:
    dur = "the rest of the evaluation" if e.end is None else _span(e.end - e.start)
    return f"{(e.start - run.start) / MIN:.0f} min into the run, firing {dur}"


def examples(s: Score, limit: int = 8) -> list[str]:
    """Concrete false alarms and late or missed catches, for whoever tunes the rules."""
    lines = []
    for e, run in sorted(s.false_alarms, key=lambda x: (x[0].alert, x[0].start))[:limit]:
        lines.append(f"- false alarm: {e.alert} on {run.pod} ({run.kind}), {_when(e, run)}")
    bad: list[Catch] = [c for c in s.catches if c.fraction is None or c.fraction < TARGET_FRACTION]
    for c in sorted(bad, key=lambda c: c.fraction or 0.0)[:limit]:
        r = c.run
        if c.first is None:
            lines.append(f"- missed: {r.pod} ({r.kind}, {r.note}), best possible lead {_min(c.best)} min")
        else:
            lines.append(
                f"- late: {r.pod} ({r.kind}, {r.note}): first {c.first.alert} {_min(c.lead)} min before the OOM "
                f"of a possible {_min(c.best)} ({_pct(c.fraction)}); then {', '.join(c.alerts[1:]) or 'nothing else'}"
            )
    for alert, n in Counter(e.alert for e, _ in s.flaps).most_common(4):
        pods = Counter(f"{r.pod} ({r.kind})" for e, r in s.flaps if e.alert == alert)
        where = ", ".join(f"{pod} ×{k}" if k > 1 else pod for pod, k in pods.most_common(4))
        lines.append(f"- flaps: {alert} re-fired {n} times within {FLAP_GAP / MIN:.0f} min of resolving: {where}")
    return lines


def verdict(s: Score) -> str:
    caught, total = s.caught(["surge", "leak"])
    fraction = s.median("fraction", ["surge", "leak"], missed_as_zero=True)
    checks = [
        (f"every surge and leak caught ({caught}/{total})", caught == total),
        (
            f"median lead ≥ 70 % of the best possible on surges and leaks ({_pct(fraction)})",
            fraction is not None and fraction >= TARGET_FRACTION,
        ),
        (
            f"≤ 1 false alarm per 100 healthy runs ({s.false_alarm_rate():.2f})",
            s.false_alarm_rate() <= TARGET_FALSE_ALARMS,
        ),
    ]
    return f"{s.name}: " + "; ".join(f"{'✔' if ok else '✘'} {text}" for text, ok in checks)


def as_json(scores: Sequence[Score], params: dict[str, Any]) -> dict[str, Any]:
    def catch(c: Catch) -> dict[str, Any]:
        r = c.run
        return {
            "job": r.job,
            "pod": r.pod,
            "kind": r.kind,
            "note": r.note,
            "onset": r.onset,
            "oom": r.oom,
            "best_lead_s": c.best,
            "first_alert": c.first.alert if c.first else None,
            "first_alert_at": c.first.start if c.first else None,
            "lead_s": c.lead,
            "alerts": c.alerts,
        }

    def episode(e: Episode, run: Run) -> dict[str, Any]:
        return {
            "alert": e.alert,
            "pod": run.pod,
            "kind": run.kind,
            "start": e.start,
            "end": e.end,
            "severity": e.severity,
            "minutes_into_run": (e.start - run.start) / MIN,
        }

    out: dict[str, Any] = {"params": params, "rule_sets": {}}
    for s in scores:
        caught = {k: dict(zip(("caught", "of"), s.caught([k]), strict=True)) for k in INCIDENTS}
        out["rule_sets"][s.name] = {
            "caught": caught,
            "median_lead_s": s.median("lead"),
            "median_lead_fraction": s.median("fraction"),
            "median_lead_fraction_misses_as_zero": s.median("fraction", missed_as_zero=True),
            "false_alarms": len(s.false_alarms),
            "healthy_runs": dict(s.healthy_runs),
            "false_alarms_per_100_healthy_runs": s.false_alarm_rate(),
            "flaps": len(s.flaps),
            "flap_episodes": [episode(e, r) for e, r in s.flaps],
            "drift_runs": s.drift_runs,
            "drift_warned": sorted(s.drift["warning"]),
            "drift_paged": sorted(s.drift["critical"]),
            "incidents": [catch(c) for c in s.catches],
            "false_alarm_episodes": [episode(e, r) for e, r in s.false_alarms],
            "counted_episodes": s.episodes,
            "unattributed_episodes": s.unattributed,
        }
    return out


__all__ = ["HEALTHY", "alert_table", "as_json", "examples", "kind_table", "summary_table", "verdict"]
