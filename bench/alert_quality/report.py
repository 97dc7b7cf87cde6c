"""Markdown tables of the alert benchmark: one row per view (any alert, any warning, any critical,
each alert, the static rule), over all jobs and per regime (tight / normal / loose)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from score import TARGET_CRITICALS, TARGET_FLAPS, TARGET_FRACTION, TARGET_WARNINGS, Tally

HEAD = [
    "rule",
    "surge+leak caught",
    "step caught",
    "mean lead (min)",
    "median lead (min)",
    "mean lead / best",
    "false alarms / 100 healthy runs",
    "healthy runs alerted",
    "flaps / 100 runs",
    "drift warned / paged",
    "outside-run episodes",
]


def _pct(n: int, of: int) -> str:
    return f"{100 * n / of:.1f} %" if of else "–"


def row(name: str, t: Tally) -> list[str]:
    caught, of = t.surge_leak
    frac = t.mean_fraction
    return [
        name,
        f"{caught}/{of}",
        f"{t.caught['step']}/{t.incidents['step']}",
        f"{statistics.fmean(t.leads):.0f}" if t.leads else "–",
        f"{statistics.median(t.leads):.0f}" if t.leads else "–",
        f"{frac:.0%}" if frac is not None else "–",
        f"{t.false_alarm_rate:.2f} ({t.false_alarms} in {t.healthy})",
        _pct(t.healthy_alerted, t.healthy),
        f"{t.flap_rate:.2f}",
        f"{t.drift_warned}/{t.drift} · {t.drift_paged}/{t.drift}",
        str(t.outside),
    ]


def table(rows: Sequence[Sequence[str]], head: Sequence[str] = HEAD) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main_table(totals: dict[str, dict[str, dict[str, Tally]]], memprov: str, regime: str = "all") -> str:
    rows = [row(view, cells[regime]) for view, cells in totals[memprov].items()]
    for name, views in totals.items():
        if name != memprov:
            rows.append(row(f"{name}", views["any alert"][regime]))
    return table(rows)


def regime_table(totals: dict[str, dict[str, dict[str, Tally]]], memprov: str, regimes: Sequence[str]) -> str:
    rows = []
    for regime in regimes:
        for view in ("any alert", "any warning", "any critical"):
            rows.append(row(f"{regime}: {view}", totals[memprov][view][regime]))
    head = ["regime: rule", *HEAD[1:]]
    return table(rows, head)


def verdict(totals: dict[str, dict[str, dict[str, Tally]]], memprov: str) -> list[str]:
    """The issue's targets, each with the figure and whether it is met."""
    views = totals[memprov]
    alert, warn, crit = views["any alert"]["all"], views["any warning"]["all"], views["any critical"]["all"]
    caught, of = alert.surge_leak
    frac = alert.mean_fraction or 0.0
    checks = [
        (f"surges and leaks caught before the OOM: {caught}/{of} (target ≥ 95 %)", of and caught >= 0.95 * of),
        (f"mean lead {frac:.0%} of the best possible (target ≥ {TARGET_FRACTION:.0%})", frac >= TARGET_FRACTION),
        (
            f"warnings: {warn.false_alarm_rate:.2f} false alarms per 100 healthy runs (target ≤ {TARGET_WARNINGS:g})",
            warn.false_alarm_rate <= TARGET_WARNINGS,
        ),
        (
            f"criticals: {crit.false_alarm_rate:.2f} false alarms per 100 healthy runs (target ≤ {TARGET_CRITICALS:g})",
            crit.false_alarm_rate <= TARGET_CRITICALS,
        ),
        (f"flaps: {alert.flap_rate:.2f} per 100 runs (target ≤ {TARGET_FLAPS:g})", alert.flap_rate <= TARGET_FLAPS),
        (
            f"drift: warned on {warn.drift_warned}/{warn.drift}, paged on {crit.drift_paged}/{crit.drift} "
            "(target: all warned, none paged)",
            warn.drift_warned == warn.drift and crit.drift_paged == 0,
        ),
    ]
    return [f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in checks]
