"""Small, pure PromQL helpers: label-value escaping, matchers, number and duration literals, and
the :class:`Sources` of a job (which :func:`provisioner.spec.sources.sources` builds per runtime).

Values from the spec never reach PromQL unescaped: every label value passes through
:func:`quote`, and metric/label names are validated by the spec model.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.core.units import format_duration

_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\ufffd": "\\ufffd"})


def quote(value: str) -> str:
    """A PromQL string literal: ``"batch"``, with backslashes, quotes and line breaks escaped.

    U+FFFD is escaped too: Prometheus' lexer reads that character as an invalid UTF-8 rune and
    refuses the expression (``promtool check rules``: "invalid UTF-8 rune").
    """
    return '"' + value.translate(_ESCAPES) + '"'


def number(x: float) -> str:
    """A PromQL number literal, short and exact enough."""
    return f"{x:.6g}" if abs(x) < 1e15 else f"{x:.0f}"


def duration(seconds: float) -> str:
    """A PromQL duration literal: ``5m``, ``1h30m``."""
    return format_duration(seconds)


def matchers(exact: dict[str, str], regex: dict[str, str] | None = None, extra: str = "") -> str:
    parts = [f"{k}={quote(v)}" for k, v in exact.items()]
    parts += [f"{k}=~{quote(v)}" for k, v in (regex or {}).items()]
    if extra:
        parts.append(extra)
    return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True)
class Sources:
    """The raw series of one job for its runtime: working set, limit, OOM events.

    ``working_set`` and ``limit`` are instant expressions (for history queries); :meth:`recent`
    and :meth:`recent_limit` read the same series through ``last_over_time(...[window])``, so that
    a rule sees a series for exactly ``window`` after its last sample whatever the look-back delta
    (a missed scrape is bridged, a finished run's last sample is not repeated for five minutes).
    """

    working_set: str
    limit: str | None
    oom_events: str | None
    group_by: tuple[str, ...]
    node_label: str
    oom_terminated: tuple[str, ...] = ()  # kube-state-metrics selectors: 1 when the container was OOM-killed
    ws_selectors: tuple[str, ...] = ()  # the selectors in working_set, in the order ws_template uses them
    ws_template: str = "{0}"
    limit_selector: str | None = None  # limit without its ``> 0`` filter

    def recent(self, window: str) -> str:
        """The working set, each selector read as its last sample within ``window``."""
        if not self.ws_selectors:
            return self.working_set
        return self.ws_template.format(*(f"last_over_time({sel}[{window}])" for sel in self.ws_selectors))

    def recent_limit(self, window: str) -> str | None:
        if self.limit_selector is None:
            return self.limit
        positive = " > 0" if self.limit and self.limit.endswith("> 0") else ""
        return f"last_over_time({self.limit_selector}[{window}]){positive}"


WRAPPER_RSS = "memprov_job_rss_bytes"  # what `memprov run` exports (provisioner/run/metrics.py)
