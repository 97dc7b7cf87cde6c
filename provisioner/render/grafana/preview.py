"""A PNG picture of a dashboard, so that a reviewer can look at a change instead of reading JSON.

Draws the dashboard's own layout (``gridPos`` on Grafana's 24-column grid), panel titles, and
each panel as Grafana would show it during a synthetic run of the job
(:mod:`provisioner.render.grafana.sample`): time series with their threshold lines and areas,
overrides (fixed colours, dashes, the baseline band), stats and gauges coloured by their
thresholds, bar gauges, rows and text. matplotlib (the ``preview`` extra) draws on the Agg
canvas without pyplot's global state; fonts are matplotlib's bundled DejaVu Sans and the PNG
carries no software or time metadata, so the same spec gives byte-identical pictures with the
same matplotlib.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

from provisioner.core.units import format_duration, format_size
from provisioner.render.grafana.sample import MINUTES, JobSample, Series, evaluate

COLS, UNIT_H, WIDTH_IN, DPI = 24, 0.34, 16.0, 100
COLORS = {
    "green": "#56a64b",
    "orange": "#ff9830",
    "red": "#e02f44",
    "dark-red": "#c4162a",
    "blue": "#3274d9",
    "yellow": "#fade2a",
    "purple": "#a352cc",
}
PALETTE = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0"]
PANEL_BG, FIG_BG, BORDER, TEXT, MUTED = "#ffffff", "#f4f5f5", "#d8d9da", "#202226", "#6e7079"


def _color(name: str | None, default: str = MUTED) -> str:
    return COLORS.get(name or "", name or default) if name and not name.startswith("#") else (name or default)


def fmt(value: float | None, unit: str | None) -> str:
    """A value in the panel's unit, as Grafana would print it (roughly)."""
    if value is None:
        return "no data"
    if unit == "bytes":
        return format_size(round(value)) + "B" if abs(value) >= 1 else "0B"
    if unit == "Bps":
        return format_size(round(value)) + "B/s" if abs(value) >= 1 else f"{value:.2g}B/s"
    if unit == "percentunit":
        return f"{value * 100:.0f}%"
    if unit == "s":
        return format_duration(max(60.0, round(value / 60) * 60))
    return f"{value:.2f}"


def _steps(panel: dict[str, Any], props: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    thresholds = (props or {}).get("thresholds") or panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds")
    return list((thresholds or {}).get("steps", []))


def _step_color(steps: list[dict[str, Any]], value: float | None) -> str:
    color = steps[0]["color"] if steps else "green"
    for step in steps[1:]:
        if value is not None and step["value"] is not None and value >= step["value"]:
            color = step["color"]
    return _color(color)


def _overrides(panel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for o in panel.get("fieldConfig", {}).get("overrides", []):
        if o.get("matcher", {}).get("id") == "byName":
            out[str(o["matcher"].get("options"))] = {p["id"]: p.get("value") for p in o.get("properties", [])}
    return out


def _series(panel: dict[str, Any], samples: list[JobSample]) -> list[tuple[str, Series, dict[str, Any]]]:
    out: list[tuple[str, Series, dict[str, Any]]] = []
    overrides = _overrides(panel)
    for target in panel.get("targets", []):
        for sample in samples:
            for name, values in evaluate(str(target.get("expr", "")), str(target.get("legendFormat", "")), sample):
                if any(n == name for n, _, _ in out):
                    continue
                props = overrides.get(name, {})
                out.append((str(props.get("displayName", name)), values, {**props, "_name": name}))
    return out


def _last(values: Series) -> float | None:
    present = [v for v in values if v is not None]
    return present[-1] if present else None


class _Drawing:
    def __init__(self, dashboard: dict[str, Any]) -> None:
        from matplotlib.figure import Figure

        panels = dashboard.get("panels", [])
        self.rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels if "gridPos" in p), default=1)
        self.head = 0.55
        height = self.rows * UNIT_H + self.head + 0.15
        self.fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, facecolor=FIG_BG)
        self.height = height
        self.fig.text(
            0.008,
            1 - 0.3 / height,
            str(dashboard.get("title", "")),
            fontsize=14,
            weight="bold",
            color=TEXT,
            va="center",
        )
        tags = "  ".join(f"[{t}]" for t in dashboard.get("tags", []))
        self.fig.text(0.992, 1 - 0.3 / height, tags, fontsize=8, color=MUTED, va="center", ha="right")

    def rect(self, pos: dict[str, int]) -> tuple[float, float, float, float]:
        """Panel rectangle in figure fractions (left, bottom, width, height), with a gutter."""
        gx, gy = 0.05 / WIDTH_IN, 0.05 / self.height
        left = pos["x"] / COLS + gx
        width = pos["w"] / COLS - 2 * gx
        top = 1 - (self.head + pos["y"] * UNIT_H) / self.height
        height = pos["h"] * UNIT_H / self.height - 2 * gy
        return left, top - height - gy, width, height

    def frame(self, panel: dict[str, Any]) -> tuple[float, float, float, float]:
        from matplotlib.patches import Rectangle

        left, bottom, width, height = self.rect(panel["gridPos"])
        self.fig.patches.append(
            Rectangle(
                (left, bottom),
                width,
                height,
                transform=self.fig.transFigure,
                facecolor=PANEL_BG,
                zorder=-10,
                edgecolor=BORDER,
                linewidth=0.8,
            )
        )
        title_h = 0.26 / self.height
        self.fig.text(
            left + 0.004,
            bottom + height - title_h / 2,
            str(panel.get("title", "")),
            fontsize=9,
            weight="bold",
            color=TEXT,
            va="center",
            clip_on=True,
        )
        return left, bottom, width, height - title_h

    def row(self, panel: dict[str, Any]) -> None:
        left, bottom, width, height = self.rect(panel["gridPos"])
        self.fig.text(
            left,
            bottom + height / 2,
            "▾ " + str(panel.get("title", "")),
            fontsize=11,
            weight="bold",
            color=TEXT,
            va="center",
        )
        self.fig.add_artist(_line(self.fig, left, width, bottom + 0.02 / self.height))

    def timeseries(self, panel: dict[str, Any], samples: list[JobSample]) -> None:
        left, bottom, width, height = self.frame(panel)
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        unit, custom = defaults.get("unit"), defaults.get("custom", {})
        ax = self.fig.add_axes((left + 0.045, bottom + 0.30 * height, width - 0.055, 0.66 * height))
        ax.set_facecolor(PANEL_BG)
        xs = list(range(MINUTES + 1))
        drawn = _series(panel, samples)
        by_name = {props["_name"]: values for _, values, props in drawn}
        for i, (name, values, props) in enumerate(drawn):
            color = _color(((props.get("color") or {}).get("fixedColor")), PALETTE[i % len(PALETTE)])
            dash = props.get("custom.lineStyle", {}).get("fill") == "dash"
            ys = [float("nan") if v is None else v for v in values]
            ax.plot(
                xs,
                ys,
                color=color,
                linewidth=max(0.8, float(props.get("custom.lineWidth", 1.2))),
                linestyle="--" if dash else "-",
                label=name,
            )
            below = props.get("custom.fillBelowTo")
            if below in by_name:
                other = [float("nan") if v is None else v for v in by_name[below]]
                ax.fill_between(
                    xs, other, ys, color=color, alpha=float(props.get("custom.fillOpacity", 15)) / 100, linewidth=0
                )
        mode = custom.get("thresholdsStyle", {}).get("mode", "off")
        steps = _steps(panel)
        ymin, ymax = ax.get_ylim()
        levels: list[float] = [float(s["value"]) for s in steps if s["value"] is not None]
        top = max([ymax, *(v * 1.08 for v in levels)])
        bottom_y = defaults.get("min", ymin)
        ax.set_ylim(bottom_y, defaults.get("max", top))
        if mode != "off":
            bounds = [*levels, defaults.get("max", top)]
            for k, step in enumerate(steps):
                start = step["value"] if step["value"] is not None else bottom_y
                if step["value"] is not None and ("line" in mode or "dashed" in mode):
                    ax.axhline(
                        step["value"],
                        color=_color(step["color"]),
                        linewidth=1.1,
                        linestyle="--" if "dashed" in mode else "-",
                    )
                if "area" in mode:
                    ax.axhspan(start, bounds[k], color=_color(step["color"]), alpha=0.08, linewidth=0)
        if "axisSoftMax" in custom:  # the interesting part: below the soft maximum (e.g. 4x the OOM horizon)
            top = float(custom["axisSoftMax"])
        ax.set_xlim(0, MINUTES)
        ax.set_xticks(range(0, MINUTES + 1, 60), [f"{h:02d}:00" for h in range(0, 7)])
        ticks = _ticks(bottom_y, defaults.get("max", top), unit)
        ax.set_yticks(ticks, [fmt(t, unit) for t in ticks])
        ax.set_ylim(bottom_y, defaults.get("max", top))
        ax.tick_params(labelsize=7, colors=MUTED, length=2)
        ax.grid(True, color="#eeeeee", linewidth=0.6)
        for side in ax.spines.values():
            side.set_color(BORDER)
        if drawn:
            ax.legend(loc="upper left", bbox_to_anchor=(0, -0.16), ncol=4, fontsize=7, frameon=False, handlelength=1.6)

    def stat(self, panel: dict[str, Any], samples: list[JobSample]) -> None:
        left, bottom, width, height = self.frame(panel)
        drawn = _series(panel, samples)
        values = drawn[0][1] if drawn else []
        value = _last(values)
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        color = _step_color(_steps(panel), value)
        if values and panel.get("options", {}).get("graphMode") == "area":
            ax = self.fig.add_axes((left + 0.002, bottom + 0.01, width - 0.004, height * 0.45))
            ax.axis("off")
            ax.fill_between(
                range(len(values)),
                [v if v is not None else float("nan") for v in values],
                color=color,
                alpha=0.15,
                linewidth=0,
            )
        self.fig.text(
            left + width / 2,
            bottom + height * 0.55,
            fmt(value, unit),
            fontsize=22,
            weight="bold",
            color=color,
            ha="center",
            va="center",
        )

    def gauge(self, panel: dict[str, Any], samples: list[JobSample]) -> None:
        from matplotlib.patches import Wedge

        left, bottom, width, height = self.frame(panel)
        drawn = _series(panel, samples)
        value = _last(drawn[0][1]) if drawn else None
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        lo, hi = float(defaults.get("min", 0)), float(defaults.get("max", 1))
        ax = self.fig.add_axes((left, bottom, width, height))
        ax.set_xlim(-1.3, 1.3)
        ax.set_ylim(-0.5, 1.2)
        ax.set_aspect("equal")
        ax.axis("off")

        def angle(v: float) -> float:
            return 180 - 180 * (min(max(v, lo), hi) - lo) / (hi - lo)

        steps = _steps(panel)
        for k, step in enumerate(steps):
            start = step["value"] if step["value"] is not None else lo
            end = steps[k + 1]["value"] if k + 1 < len(steps) else hi
            ax.add_patch(Wedge((0, 0), 1.12, angle(end), angle(start), width=0.08, color=_color(step["color"])))
        color = _step_color(steps, value)
        ax.add_patch(Wedge((0, 0), 1.0, 0, 180, width=0.3, color="#eeeeee"))
        if value is not None:
            ax.add_patch(Wedge((0, 0), 1.0, angle(value), 180, width=0.3, color=color))
        ax.text(
            0, 0.12, fmt(value, defaults.get("unit")), fontsize=20, weight="bold", color=color, ha="center", va="center"
        )

    def bars(self, panel: dict[str, Any], samples: list[JobSample]) -> None:
        left, bottom, width, height = self.frame(panel)
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        hi = float(defaults.get("max", 1))
        items = [(name, _last(values), props) for name, values, props in _series(panel, samples)]
        items.sort(key=lambda item: -(item[1] or 0))
        ax = self.fig.add_axes((left + width * 0.32, bottom + 0.04 * height, width * 0.6, height * 0.9))
        ax.set_xlim(0, hi)
        ax.axis("off")
        for k, (name, value, props) in enumerate(items):
            y = len(items) - k - 1
            color = _step_color(_steps(panel, props), value)
            ax.barh(y, hi, color="#eeeeee", height=0.6)
            ax.barh(y, min(value or 0, hi), color=color, height=0.6)
            ax.text(-0.02 * hi, y, name, fontsize=8, color=TEXT, ha="right", va="center")
            ax.text(
                min(value or 0, hi) + 0.01 * hi,
                y,
                fmt(value, defaults.get("unit")),
                fontsize=8,
                color=color,
                va="center",
                weight="bold",
            )
        ax.set_ylim(-0.7, max(len(items), 3) - 0.3)

    def text(self, panel: dict[str, Any]) -> None:
        left, bottom, width, height = self.frame(panel)
        content = str(panel.get("options", {}).get("content", ""))
        lines = [_plain(line) for line in content.splitlines() if not re.fullmatch(r"\|?[-:| ]+\|?", line.strip())]
        fit = max(1, int(height * self.height / 0.16))
        chars = max(20, int(width * WIDTH_IN * 15))
        shown = [line[:chars] for line in lines[:fit]]
        self.fig.text(
            left + 0.006,
            bottom + height - 0.005,
            "\n".join(shown),
            fontsize=7.5,
            color=TEXT,
            va="top",
            family="DejaVu Sans Mono",
            linespacing=1.35,
        )

    def png(self) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(self.fig)
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=DPI, facecolor=FIG_BG, metadata={"Software": None})
        return buf.getvalue()


def _ticks(lo: float, hi: float, unit: str | None) -> list[float]:
    """At most six round ticks: powers of two of KiB/MiB/GiB for bytes, minutes/hours for seconds."""
    span = max(hi - lo, 1e-9)
    if unit in ("bytes", "Bps"):
        steps = [2.0**k for k in range(0, 60)]
    elif unit == "s":
        steps = [60.0 * m for m in (1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 720, 1440, 2880)]
    else:
        steps = [m * 10.0**e for e in range(-3, 13) for m in (1, 2, 2.5, 5)]
    step = next((s for s in steps if span / s <= 5), steps[-1])
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step) + 1)]


def _line(fig: Any, left: float, width: float, y: float) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([left, left + width], [y, y], transform=fig.transFigure, color=BORDER, linewidth=0.8)


def _plain(markdown: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = text.replace("**", "").replace("`", "").replace("\\|", "/").replace("_", " ")
    return " ".join(cell.strip() for cell in text.strip().strip("|").split("|")) if "|" in text else text


def render_png(dashboard: dict[str, Any], samples: list[JobSample]) -> bytes:
    """The dashboard drawn over the jobs' synthetic runs, as PNG bytes."""
    import matplotlib

    with matplotlib.rc_context({"font.family": "DejaVu Sans", "svg.hashsalt": "memprov", "path.simplify": True}):
        d = _Drawing(dashboard)
        draw = {"timeseries": d.timeseries, "stat": d.stat, "gauge": d.gauge, "bargauge": d.bars}
        for panel in dashboard.get("panels", []):
            if "gridPos" not in panel:
                continue
            kind = panel.get("type")
            if kind == "row":
                d.row(panel)
            elif kind == "text":
                d.text(panel)
            elif kind in draw:
                draw[kind](panel, samples)
        return d.png()
