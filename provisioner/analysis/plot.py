"""A PNG per job of a backtest: memory against the limit and thresholds, when each alert fired,
and the OOM kills; the whole window on top, the latest OOM-killed (else the latest) run below.

matplotlib (the ``preview`` extra) on the Agg canvas, without pyplot's global state, no
metadata in the PNG: the same data gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from provisioner.analysis.backtest import JobResult
from provisioner.history.promapi import Labels
from provisioner.spec.resolved import ResolvedJob

GI = 2**30
SEVERITY_COLORS = {"critical": "#e02f44", "warning": "#ff9830", "info": "#3274d9"}
LINE = "#3274d9"


def render(
    job: ResolvedJob,
    result: JobResult,
    memory: dict[Labels, list[tuple[float, float]]],
    start: float,
    end: float,
) -> bytes:
    """The job's picture; ``memory``: peak per instance and five-minute step (history's ``peak`` query)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    focus = next((r for r in reversed(result.runs) if r.oom), result.runs[-1] if result.runs else None)
    alerts = sorted({e.alert for e in result.episodes})
    with matplotlib.rc_context({"font.family": "DejaVu Sans", "font.size": 9, "path.simplify": True}):
        fig = Figure(figsize=(12, 7.5), dpi=100)
        FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 1.2], "hspace": 0.45})
        _panel(top, job, result, memory, start, end, alerts, f"{job.id}: the whole window", days=True)
        if focus is not None:
            pad = 15 * 60
            title = f"{focus.name}: " + ("OOM-killed" if focus.oom else "the latest run")
            _panel(bottom, job, result, memory, focus.start - pad, focus.end + pad, alerts, title, days=False)
        else:
            bottom.set_axis_off()
        fig.subplots_adjust(left=0.07, right=0.80, top=0.94, bottom=0.07)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()


def _panel(
    ax: Any,
    job: ResolvedJob,
    result: JobResult,
    memory: dict[Labels, list[tuple[float, float]]],
    lo: float,
    hi: float,
    alerts: Sequence[str],
    title: str,
    *,
    days: bool,
) -> None:
    scale = 86_400.0 if days else 60.0

    def x(t: float) -> float:
        return (t - lo) / scale

    for _, samples in sorted(memory.items()):
        points = [(x(t), v / GI) for t, v in samples if lo <= t <= hi]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], color=LINE, linewidth=0.9)
    limit = job.limit / GI
    ax.axhline(limit, color="#c4162a", linewidth=1.6, label=f"limit {limit:g} GiB")
    ax.axhline(
        job.critical_bytes / GI, color=SEVERITY_COLORS["critical"], linestyle="--", linewidth=1, label="critical"
    )
    ax.axhline(job.warning_bytes / GI, color=SEVERITY_COLORS["warning"], linestyle="--", linewidth=1, label="warning")
    # one strip per alert above the limit: where it fired
    strip = limit * 0.06
    for i, name in enumerate(alerts):
        y = limit * 1.04 + i * strip * 1.2
        for e in result.episodes:
            if e.alert != name:
                continue
            s, f = max(e.start, lo), min(e.end if e.end is not None else hi, hi)
            if f > s:
                color = SEVERITY_COLORS.get(e.severity, "#8e8e8e")
                ax.broken_barh([(x(s), max(x(f) - x(s), 0.002))], (y, strip), facecolors=color)
        ax.text(
            1.01,
            (y + strip / 2) / (limit * 1.04 + len(alerts) * strip * 1.2 + strip),
            name,
            fontsize=7,
            transform=ax.transAxes,
            va="center",
        )
    ooms = [o.at for o in result.ooms if lo <= o.at <= hi]
    if ooms:
        ax.scatter(
            [x(t) for t in ooms], [limit] * len(ooms), marker="X", s=60, color="black", zorder=5, label="OOM kill"
        )
    ax.set_ylim(0, limit * 1.04 + len(alerts) * strip * 1.2 + strip)
    ax.set_xlim(0, x(hi))
    start = datetime.fromtimestamp(lo, UTC).strftime("%Y-%m-%d %H:%M UTC")
    ax.set_xlabel(f"{'days' if days else 'minutes'} since {start}")
    ax.set_ylabel("GiB")
    ax.set_title(title, loc="left", fontsize=10)
    ax.legend(loc="lower left", fontsize=7, frameon=False, bbox_to_anchor=(1.0, 0.0))
    ax.grid(alpha=0.25)
