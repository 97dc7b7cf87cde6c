"""Alert rules evaluated over history with Prometheus' own semantics: firing episodes per label set.

The alert expression (recording rules inlined, :mod:`provisioner.analysis.evaluate.inline`) is evaluated
by a real Prometheus with ``query_range`` at the group's interval, at times that are multiples
of the interval, exactly the instants a rule group with that interval could have evaluated. The
results then go through the state machine of Prometheus 2.42's ``AlertingRule.Eval``, per label
set (the sample's labels without ``__name__``, overridden by the rule's ``labels``): the alert
is *pending* from the first evaluation at which the expression returns the label set; it
*fires* at the first evaluation at which it has been active for ``for`` (``t - active_since >=
for``; at once when ``for`` is zero); a pending alert that stops returning is forgotten; a
firing one is *resolved* at the first evaluation without it, or, with ``keep_firing_for``, at
the first evaluation at least ``keep_firing_for`` after the first one without it (returning in
between keeps it firing, as the same episode). An evaluation at which two samples share their
labels once the rule's labels are applied fails in Prometheus and changes no state; so here.
``promtool test rules`` (the reference
implementation) agrees; the tests check it. Not replayed: templated label values, alert
``limit``, and the ``for`` state that a restarted Prometheus restores.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from provisioner.analysis.evaluate.inline import inline_group
from provisioner.core.units import parse_duration
from provisioner.history.promapi import Labels, labels_of


class RangeQuerier(Protocol):
    """What the evaluator needs from a Prometheus: :meth:`TempPrometheus.query_range`."""

    def query_range(
        self, expr: str, start: float, end: float, step: float
    ) -> dict[Labels, list[tuple[float, float]]]: ...


@dataclass(frozen=True)
class Episode:
    """One firing episode of one alert instance; times in unix seconds.

    ``start`` is the first evaluation at which it fired, ``end`` the evaluation at which it was
    resolved (None: still firing at the last evaluation), ``active_since`` when it went pending.
    """

    alert: str
    labels: Labels
    active_since: float
    start: float
    end: float | None

    @property
    def label(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def severity(self) -> str:
        return self.label.get("severity", "")

    def firing_at(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


def duration(value: object) -> float:
    """Seconds of a rule's ``for``/``keep_firing_for``/``interval`` (absent or ``0s``: 0)."""
    if value in (None, "", "0", "0s", 0):
        return 0.0
    return parse_duration(value)


def eval_times(start: float, end: float, step: float) -> list[float]:
    """The multiples of ``step`` in ``[start, end]``: where a group with that interval evaluates."""
    first = math.ceil(round(start / step, 6)) * step
    n = math.floor(round((end - first) / step, 6)) + 1
    return [first + i * step for i in range(max(n, 0))]


def _ms(t: float) -> int:
    return round(t * 1000)


def run_state_machine(
    alert: str,
    active: Mapping[Labels, Iterable[float]],
    times: Sequence[float],
    hold: float,
    keep: float,
    failed: Iterable[float] = (),
) -> list[Episode]:
    """Firing episodes, given at which of the evaluation ``times`` each label set was returned.

    At the ``failed`` times the evaluation failed as a whole (Prometheus then changes no state).
    """
    hold_ms, keep_ms = _ms(hold), _ms(keep)
    skip = {_ms(t) for t in failed}
    episodes: list[Episode] = []
    for labels, when in active.items():
        present = {_ms(t) for t in when}
        since: int | None = None  # active since (pending or firing)
        fired: int | None = None  # firing since
        missing: int | None = None  # first evaluation without the label set while firing
        for t in (_ms(x) for x in times):
            if t in skip:
                continue
            if t in present:
                missing = None
                if since is None:
                    since = t
                if fired is None and t - since >= hold_ms:
                    fired = t
                continue
            if fired is None:  # a pending alert that stops is forgotten
                since = None
                continue
            if missing is None:
                missing = t
            if t - missing >= keep_ms:  # resolved
                episodes.append(Episode(alert, labels, (t if since is None else since) / 1000, fired / 1000, t / 1000))
                since = fired = missing = None
        if fired is not None:
            episodes.append(Episode(alert, labels, (fired if since is None else since) / 1000, fired / 1000, None))
    return sorted(episodes, key=lambda e: (e.start, e.labels))


def alert_labels(sample: Labels, rule_labels: Mapping[str, Any]) -> Labels:
    """An alert instance's identity: the sample's labels without ``__name__``, then the rule's labels."""
    merged = {k: v for k, v in sample if k != "__name__"}
    merged.update({str(k): str(v) for k, v in rule_labels.items()})
    return labels_of(merged)


def evaluate_alert(
    prom: RangeQuerier,
    rule: Mapping[str, Any],
    start: float,
    end: float,
    step: float,
) -> list[Episode]:
    """Episodes of one alerting rule whose ``expr`` reads only stored series (inline it first)."""
    times = eval_times(start, end, step)
    if not times:
        return []
    result = prom.query_range(str(rule["expr"]), times[0], times[-1], step)
    active: dict[Labels, list[float]] = {}
    for sample_labels, samples in result.items():
        key = alert_labels(sample_labels, rule.get("labels") or {})
        active.setdefault(key, []).extend(t for t, _ in samples)
    # two samples with the same labels once the rule's are applied: Prometheus fails that evaluation
    failed = [t for when in active.values() for t, n in Counter(_ms(x) for x in when).items() if n > 1]
    hold = duration(rule.get("for"))
    keep = duration(rule.get("keep_firing_for"))
    return run_state_machine(str(rule["alert"]), active, times, hold, keep, [t / 1000 for t in failed])


def evaluate_group(
    prom: RangeQuerier,
    group: Mapping[str, Any],
    start: float,
    end: float,
    only: Iterable[str] | None = None,
) -> list[Episode]:
    """Episodes of the group's alerts (``only`` those named) over ``[start, end]``, recording rules inlined.

    The state machine starts empty at ``start``: an alert whose ``for`` began earlier fires
    later than it would have; start the evaluation one ``for`` early when that matters.
    """
    step = duration(group.get("interval")) or 60.0
    wanted = set(only) if only is not None else None
    episodes: list[Episode] = []
    for rule in inline_group(group):
        if wanted is None or rule["alert"] in wanted:
            episodes += evaluate_alert(prom, rule, start, end, step)
    return sorted(episodes, key=lambda e: (e.start, e.alert, e.labels))


def firing_at(episodes: Iterable[Episode], t: float) -> list[Episode]:
    """The episodes firing at evaluation time ``t``."""
    return [e for e in episodes if e.firing_at(t)]
