"""``memprov lint``: the common mistakes of memory alerting, found in the resolved spec.

Each check returns findings with the key path they concern. ``error`` findings make lint fail
(exit 1); ``warning`` findings are advice. The rules come from the design document's "common
mistakes" and from how Prometheus evaluates rules (windows need samples, ``for`` needs
evaluations).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from provisioner.core.units import format_duration, format_size, parse_duration
from provisioner.kinds import ALL as KINDS
from provisioner.render.alertmanager import config
from provisioner.render.prometheus.rules import MIN_PROMETHEUS, retention_needed, rule_groups
from provisioner.spec.model import Opsgenie, PagerDuty
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

MIN_SAMPLES_PER_WINDOW = 4
MIN_EVALS_PER_FOR = 2
WARNING_MAX_RATIO = 0.90
CRITICAL_MAX_RATIO = 0.95
MAX_SCRAPE_INTERVAL = 30.0


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning
    env: str
    path: str
    message: str

    def render(self) -> str:
        return f"{self.severity}: [{self.env}] {self.path}: {self.message}"


Check = Callable[[ResolvedSpec], Iterator[Finding]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


def _jp(job: ResolvedJob, *rest: str) -> str:
    return ".".join(("jobs", job.id, *rest))


@check
def thresholds_too_high(spec: ResolvedSpec) -> Iterator[Finding]:
    for job in spec.jobs:
        if job.warning_ratio >= WARNING_MAX_RATIO:
            yield Finding(
                "error",
                spec.env,
                _jp(job, "memory", "thresholds", "warning"),
                f"warning at {job.warning_ratio:.0%} of the limit leaves no time to act before the "
                "OOM kill (the job is often already thrashing); aim for 75–80%",
            )
        if job.critical_ratio > CRITICAL_MAX_RATIO:
            yield Finding(
                "error",
                spec.env,
                _jp(job, "memory", "thresholds", "critical"),
                f"critical at {job.critical_ratio:.1%} of the limit fires too late to intervene; "
                f"use at most {CRITICAL_MAX_RATIO:.0%}",
            )


@check
def scrape_and_windows(spec: ResolvedSpec) -> Iterator[Finding]:
    scrape, ev = spec.scrape_interval, spec.evaluation_interval
    if scrape > MAX_SCRAPE_INTERVAL:
        yield Finding(
            "warning",
            spec.env,
            "defaults.scrape_interval",
            f"{format_duration(scrape)} scrapes miss short spikes that cause OOM kills; use 15–30s",
        )
    if ev < scrape:
        yield Finding(
            "warning",
            spec.env,
            "defaults.evaluation_interval",
            f"evaluating every {format_duration(ev)} but scraping every {format_duration(scrape)} "
            "re-evaluates the same samples; use the scrape interval",
        )
    need_window = MIN_SAMPLES_PER_WINDOW * scrape
    need_for = MIN_EVALS_PER_FOR * ev
    for job in spec.jobs:
        holds = [h for k in KINDS if (p := k.of(job)).enabled for h in k.holds(p)]
        windows = [("trough_window", job.trough_window), *((h.key, h.seconds) for h in holds if h.role == "window")]
        for path, window in windows:
            if window < need_window:
                yield Finding(
                    "error",
                    spec.env,
                    _jp(job, path),
                    f"a {format_duration(window)} window holds fewer than {MIN_SAMPLES_PER_WINDOW} "
                    f"samples at a {format_duration(scrape)} scrape interval; use at least "
                    f"{format_duration(need_window)}",
                )
        for path, hold in ((h.key, h.seconds) for h in holds if h.role == "for"):
            if hold < need_for:
                yield Finding(
                    "error",
                    spec.env,
                    _jp(job, path),
                    f"for: {format_duration(hold)} is under {MIN_EVALS_PER_FOR} evaluations "
                    f"({format_duration(ev)} each), so one noisy sample fires the alert; use at least "
                    f"{format_duration(need_for)}",
                )


@check
def routing(spec: ResolvedSpec) -> Iterator[Finding]:
    pagers = {n for n, c in spec.notifications.items() if isinstance(c, (PagerDuty, Opsgenie))}
    for job in spec.jobs_using("alertmanager"):
        for name in job.route.warning + job.route.info:
            if name in pagers:
                yield Finding(
                    "error",
                    spec.env,
                    _jp(job, "route"),
                    f"warnings go to the pager '{name}': nobody must act on a warning at 3am; "
                    "route warnings to chat and page only for critical",
                )
        if not job.route.critical:
            yield Finding(
                "error",
                spec.env,
                _jp(job, "route", "critical"),
                "critical alerts are routed nowhere; add a channel (a pager in production)",
            )
        if not job.route.warning:
            yield Finding(
                "warning",
                spec.env,
                _jp(job, "route", "warning"),
                "warnings are routed nowhere: the early signal is lost; route them to chat",
            )


@check
def baseline_fit(spec: ResolvedSpec) -> Iterator[Finding]:
    for job in spec.jobs:
        b = job.baseline
        if b is None:
            yield Finding(
                "warning",
                spec.env,
                _jp(job, "memory", "baseline"),
                "no baseline: thresholds cannot account for this job's normal peaks; run "
                "memprov baseline or record peak_p95 from past runs",
            )
            continue
        if b.peak_p95 is not None and b.peak_p95 >= job.warning_bytes:
            yield Finding(
                "warning",
                spec.env,
                _jp(job, "memory", "thresholds", "warning"),
                f"healthy runs peak at {format_size(b.peak_p95)} (p95), at or above the warning "
                f"threshold {format_size(job.warning_bytes)}: most runs will warn (alert fatigue); "
                "raise the limit or the threshold",
            )
        if b.peak_p95 is not None and b.peak_p95 < 0.3 * job.limit:
            yield Finding(
                "warning",
                spec.env,
                _jp(job, "memory", "limit"),
                f"p95 peak {format_size(b.peak_p95)} is under 30% of the {format_size(job.limit)} "
                "limit; the limit is loose and the usage alerts will fire late relative to normal",
            )


@check
def prometheus_server(spec: ResolvedSpec) -> Iterator[Finding]:
    """What the rules need of the server they run on, where the environment says what it runs:
    ``keep_firing_for`` needs Prometheus 2.42, and a window longer than the retention never fills."""
    block = spec.targets.blocks.get("prometheus")
    block = block if isinstance(block, dict) else {}  # validated by the backend's target model
    version = str(block["version"]) if block.get("version") else None
    retention = parse_duration(str(block["retention"])) if block.get("retention") else None
    path = "targets.prometheus"
    if version and tuple(map(int, version.split(".")[:2])) < tuple(map(int, MIN_PROMETHEUS.split("."))):
        yield Finding(
            "error",
            spec.env,
            f"{path}.version",
            f"Prometheus {version} does not know keep_firing_for, which memprov's alerts use: it refuses the rule "
            f"files; upgrade to {MIN_PROMETHEUS} or later",
        )
    if retention is None:
        return
    for job in spec.jobs_using("prometheus"):
        for setting, need, why in retention_needed(spec, job):
            if need > retention:
                yield Finding(
                    "warning",
                    spec.env,
                    _jp(job, *setting.split(".")),
                    f"the rules read {format_duration(need)} of history ({why}) but the server keeps "
                    f"{format_duration(retention)}; raise the retention or shorten the setting",
                )


CONTEXT_LABELS = ("memprov_job", "memprov_env", "severity", "owner", "model", "model_version")
CONTEXT_ANNOTATIONS = ("summary", "description", "node", "current", "limit", "runbook_url", "dashboard")


@check
def alert_context(spec: ResolvedSpec) -> Iterator[Finding]:
    """Every rendered alert says which job, node and model, and links the dashboard and runbook."""

    for job in spec.jobs_using("prometheus"):
        for rule in [r for g in rule_groups(spec, job) for r in g["rules"]]:
            if "alert" not in rule:
                continue
            labels, notes = rule.get("labels", {}), rule.get("annotations", {})
            missing = [k for k in CONTEXT_LABELS if not labels.get(k)]
            missing += [k for k in CONTEXT_ANNOTATIONS if not str(notes.get(k, "")).strip()]
            if missing:
                yield Finding(
                    "error",
                    spec.env,
                    _jp(job),
                    f"alert {rule['alert']} lacks context: {', '.join(missing)}; an alert that says "
                    "only 'memory high' is useless at 3am (check your template overrides)",
                )


@check
def inhibition(spec: ResolvedSpec) -> Iterator[Finding]:
    """Critical must silence warning for the same job, or one incident notifies twice."""
    if not spec.jobs_using("alertmanager"):
        return

    rules = config(spec).get("inhibit_rules", [])
    ok = any(
        'severity="critical"' in r.get("source_matchers", [])
        and "memprov_job" in r.get("equal", [])
        and any("warning" in m for m in r.get("target_matchers", []))
        for r in rules
    )
    if not ok:
        yield Finding(
            "error",
            spec.env,
            "alertmanager",
            "no inhibition between severities: a critical alert does not silence the warning for the "
            "same job, so one incident notifies twice",
        )


def lint(spec: ResolvedSpec) -> list[Finding]:
    return [f for chk in CHECKS for f in chk(spec)]
