"""``memprov backtest``: when the rendered alerts would have fired on history, per job and alert;
``--against REV`` puts another git revision's rules next to the working tree's.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import EnvOpt, Format, HeaderOpt, JobsOpt, PrometheusOpt, SeriesOpt, SinceOpt, app, run_verb
from provisioner.core.errors import EXIT_OK, OperationError, UsageError
from provisioner.core.units import format_duration

if TYPE_CHECKING:
    from provisioner.analysis.backtest import JobResult
    from provisioner.spec.resolved import ResolvedSpec


@app.command()
def backtest(
    ctx: typer.Context,
    env: EnvOpt = "local",
    since: SinceOpt = "30d",
    prometheus: PrometheusOpt = None,
    series: SeriesOpt = None,
    header: HeaderOpt = None,
    job: JobsOpt = None,
    against: Annotated[
        str | None, typer.Option("--against", metavar="REV", help="compare with the rules at this git revision")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", metavar="DIR", help="write a PNG per job (needs matplotlib)", file_okay=False),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
) -> None:
    """When each alert would have fired on past runs, evaluated by Prometheus: lead before OOM kills, false alarms."""
    run_verb(
        ctx,
        lambda spec, color: run(
            spec=spec,
            color=color,
            env=env,
            since=since,
            prometheus=prometheus,
            series=series or [],
            headers=header or [],
            jobs=job or [],
            against=against,
            plot=plot,
            fmt=fmt.value,
        ),
    )


def run(
    *,
    spec: Path,
    color: bool | None,
    env: str,
    since: str,
    prometheus: str | None,
    series: list[Path],
    headers: list[str],
    jobs: list[str],
    against: str | None,
    plot: Path | None,
    fmt: str,
) -> int:
    from provisioner.analysis.backtest import backtest as evaluate
    from provisioner.cli.common import iso_minutes, parse_since, select_jobs
    from provisioner.history import prometheus as history
    from provisioner.spec.loader import load

    resolved = load(spec, env)
    window = parse_since(since)
    source = history.source_of(prometheus, series, None, headers, runs_ok=False)
    selected = select_jobs(resolved.jobs_using("prometheus"), jobs, "jobs with Prometheus rules")
    if not selected:
        raise UsageError(f"no job renders Prometheus rules in {env}; nothing to backtest")
    if plot is not None:
        try:
            import matplotlib  # noqa: F401 - only to say clearly that it is missing, before any work
        except ImportError:
            raise UsageError("--plot needs matplotlib; install it with: pip install 'memprov[preview]'") from None
    other = _other_groups(resolved, against, env) if against else None
    console = Console(color=color)
    with history.open_querier(source, resolved.scrape_interval) as (prom, first, last):
        end = last
        start = max(first, last - window)
        results = evaluate(prom, resolved, selected, start, end)
        before = evaluate(prom, resolved, selected, start, end, groups=other) if other is not None else None
        if plot is not None:
            from provisioner.analysis.plot import render

            for job, result in zip(selected, results, strict=True):
                memory = prom.query_range(history.queries(resolved, job)["peak"], start, end, history.STEP)
                plot.mkdir(parents=True, exist_ok=True)
                (plot / f"{job.id}.png").write_bytes(render(job, result, memory, start, end))
    meta = {
        "env": env,
        "source": source.describe(),
        "window": [start, end],
        "window_text": f"{format_duration(round(end - start))} up to {iso_minutes(end)}",
        "against": against,
        "group_by": {j.id: tuple(j.sources.group_by) for j in selected},
    }
    if fmt == "json":
        console.raw(json.dumps(_as_json(meta, results, before), indent=2) + "\n")
    else:
        console.raw(_report(meta, results, before, markdown=fmt == "markdown"))
    if plot is not None:  # on stderr unless text: a Markdown or JSON report is a file someone pastes or parses
        where = console if fmt == "text" else Console(stderr=True, color=color)
        where.line(f"Plots: {', '.join(str(plot / f'{j.id}.png') for j in selected)}", "dim")
    return EXIT_OK


def _other_groups(resolved: ResolvedSpec, rev: str, env: str) -> dict[str, list[dict[str, Any]]]:
    """The rule groups of the spec as it is at git revision ``rev`` (same environment)."""
    from provisioner.render.prometheus.rules import rule_groups
    from provisioner.spec.loader import load

    base = resolved.spec_file.parent.resolve()

    def git(*args: str) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(["git", "-C", str(base), *args], capture_output=True, timeout=60)
        except FileNotFoundError:
            raise UsageError("--against needs git on PATH") from None

    prefix = git("rev-parse", "--show-prefix")
    if prefix.returncode != 0:
        raise UsageError(f"--against {rev}: {base} is not in a git repository")
    if git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode != 0:
        raise UsageError(f"--against {rev}: no such revision (try a branch, tag or commit, e.g. main or HEAD~1)")
    sub = prefix.stdout.decode().strip()
    paths = [f"{sub}{p}" for p in ("memprov.yaml", "environments", "baselines", "templates")]
    listed = git("ls-tree", "--name-only", rev, "--", *paths)
    present = listed.stdout.decode().split()
    if f"{sub}memprov.yaml" not in present:
        raise UsageError(f"--against {rev}: {sub}memprov.yaml does not exist at that revision")
    with tempfile.TemporaryDirectory(prefix="memprov-against-") as tmp:
        archive = git("archive", "--format=tar", rev, "--", *present)
        if archive.returncode != 0:
            raise OperationError(f"git archive {rev} failed: {archive.stderr.decode().strip()}")
        with tarfile.open(fileobj=_bytes(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        try:
            old = load(Path(tmp) / sub / resolved.spec_file.name, env)
        except UsageError as e:
            raise UsageError(f"--against {rev}: {e}") from None
        return {job.id: rule_groups(old, job) for job in old.jobs_using("prometheus")}


def _bytes(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.0f}"


def _rate(r: JobResult) -> str:
    rate = r.false_alarm_rate
    return "—" if rate is None else f"{rate:.1f} ({r.false_alarms} in {r.healthy_runs})"


def _per100(n: int, runs: int) -> str:
    return f"{100 * n / runs:.1f}" if runs else "—"


def _summary(results: list[JobResult]) -> dict[str, Any]:
    ooms = [o for r in results for o in r.ooms]
    leads = [o.lead for o in ooms if o.lead is not None]
    healthy = sum(r.healthy_runs for r in results)
    false = sum(r.false_alarms for r in results)
    return {
        "runs": sum(len(r.runs) for r in results),
        "ooms": len(ooms),
        "caught": len(leads),
        "median_lead_minutes": statistics.median(leads) / 60 if leads else None,
        "false_alarms": false,
        "false_alarms_per_100_runs": 100 * false / healthy if healthy else None,
        **{
            f"{sv}_false_alarms_per_100_runs": 100 * sum(r.severities[sv].false_alarms for r in results) / healthy
            if healthy
            else None
            for sv in ("warning", "critical")
        },
        "flaps": sum(r.flaps for r in results),
    }


def _report(meta: dict[str, Any], results: list[JobResult], before: list[JobResult] | None, *, markdown: bool) -> str:
    from provisioner.cli.common import iso_minutes, table

    h = "### " if markdown else ""
    out = [f"{h}Backtest of {meta['env']}: {meta['source']}, {meta['window_text']}", ""]
    head = ["job", "runs", "OOM kills", "caught", "median lead (min)", "false alarms / 100 runs", "flaps"]
    rows = [
        [
            r.job,
            str(len(r.runs)),
            str(len(r.ooms)),
            f"{r.caught}/{len(r.ooms)}",
            _minutes(r.median_lead),
            _rate(r),
            str(r.flaps),
        ]
        for r in results
    ]
    out += [table(rows, head, markdown), ""]
    if before is not None:
        now, then = _summary(results), _summary(before)
        out += [f"{h}This tree against {meta['against']}", ""]
        rows = [
            [
                label,
                _fmt_value(then[key], unit),
                _fmt_value(now[key], unit),
                _verdict(then[key], now[key], better),
            ]
            for label, key, unit, better in (
                ("OOM kills caught", "caught", "", "higher"),
                ("median lead (min)", "median_lead_minutes", ".0f", "higher"),
                ("false alarms / 100 runs", "false_alarms_per_100_runs", ".2f", "lower"),
                ("flaps", "flaps", "", "lower"),
            )
        ]
        then_alerts, now_alerts = _alert_leads(before, meta["group_by"]), _alert_leads(results, meta["group_by"])
        for alert in sorted(set(then_alerts) | set(now_alerts), key=_alert_order(results)):
            a, b = then_alerts.get(alert), now_alerts.get(alert)
            rows.append([f"{alert} before OOM kills", _fmt_lead(a), _fmt_lead(b), _alert_verdict(a, b)])
        out += [table(rows, ["", str(meta["against"]), "this tree", ""], markdown), ""]
    out += [f"{h}Alerts", ""]
    head = [
        "job",
        "alert",
        "severity",
        "episodes",
        "runs fired on",
        "first before an OOM",
        "false alarms",
        "false alarms / 100 runs",
        "flaps",
    ]
    rows = []
    for r in results:
        rows += [
            [
                r.job,
                a.alert,
                a.severity,
                *map(str, (a.episodes, a.runs_fired, a.first, a.false_alarms)),
                _per100(a.false_alarms, r.healthy_runs),
                str(a.flaps),
            ]
            for a in r.alerts.values()
        ]
        rows += [
            [r.job, f"any {sv.severity}", sv.severity, "", str(sv.runs_alerted), "", str(sv.false_alarms), rate, ""]
            for sv in r.severities.values()
            if (rate := _per100(sv.false_alarms, r.healthy_runs))
        ]
    out += [table(rows, head, markdown), ""]
    ooms = [(r.job, o) for r in results for o in r.ooms]
    if ooms:
        out += [f"{h}OOM kills", ""]
        rows = [
            [job, o.run, iso_minutes(o.at), o.first_alert or "none before the OOM", _minutes(o.lead)] for job, o in ooms
        ]
        out += [table(rows, ["job", "run", "killed at", "first alert", "lead (min)"], markdown), ""]
    out.append(
        "An OOM kill is a run that ended at its limit. False alarms: warning or critical episodes on runs that "
        'finished without one; per 100 such runs. "any warning" / "any critical": the severity\'s overlapping '
        "episodes on one run counted once (one notification), runs fired on: such runs alerted."
    )
    return "\n".join(out) + "\n"


Lead = tuple[int, int, float | None]  # OOM kills it fired before, OOM kills, median lead (seconds)


def _alert_leads(results: list[JobResult], group_by: dict[str, tuple[str, ...]]) -> dict[str, Lead]:
    """Per warning or critical alert: before how many OOM kills it fired (within the killed run), and its
    median lead over those. The summary's lead is the *first* alert's; this shows each alert's own, so
    moving one threshold shows even when another alert still fires first."""
    from provisioner.analysis.backtest import SCORED, owner_run

    leads: dict[str, list[float]] = {}
    total = 0
    for r in results:
        runs = sorted(r.runs, key=lambda x: x.start)
        starts = [x.start for x in runs]
        first: dict[tuple[str, str], float] = {}
        for e in r.episodes:
            run = owner_run(e, runs, starts, group_by[r.job])
            if e.severity in SCORED and run is not None and run.oom and run.start <= e.start <= run.end:
                first[(e.alert, run.name)] = min(first.get((e.alert, run.name), e.start), e.start)
        ends = {x.name: x.end for x in runs}
        for (alert, name), start in first.items():
            leads.setdefault(alert, []).append(ends[name] - start)
        for a in r.alerts.values():
            if a.severity in SCORED:
                leads.setdefault(a.alert, [])
        total += len(r.ooms)
    return {a: (len(v), total, statistics.median(v) if v else None) for a, v in leads.items()}


def _fmt_lead(lead: Lead | None) -> str:
    if lead is None:
        return "—"
    fired, total, median = lead
    return f"{fired}/{total}" + (f", {median / 60:.1f} min" if median is not None else "")


def _alert_verdict(then: Lead | None, now: Lead | None) -> str:
    if then is None or now is None:
        return "new" if then is None else "gone"
    if now[0] != then[0]:
        return f"before {abs(now[0] - then[0])} {'more' if now[0] > then[0] else 'fewer'} OOM kill(s)"
    if then[2] is None or now[2] is None or abs(now[2] - then[2]) < 30:
        return "same"
    delta = (now[2] - then[2]) / 60
    return f"{abs(delta):.1f} min {'earlier' if delta > 0 else 'later'}"


def _alert_order(results: list[JobResult]) -> Any:
    order = [a for r in results for a in r.alerts]
    return lambda alert: (order.index(alert) if alert in order else len(order), alert)


def _fmt_value(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    return format(value, unit) if unit else str(value)


def _verdict(then: Any, now: Any, better: str) -> str:
    if then is None or now is None or then == now:
        return "same" if then == now else ""
    improved = now > then if better == "higher" else now < then
    return "better" if improved else "worse"


def _as_json(meta: dict[str, Any], results: list[JobResult], before: list[JobResult] | None) -> dict[str, Any]:

    def one(rs: list[JobResult]) -> dict[str, Any]:
        return {
            "summary": _summary(rs),
            "alerts_before_ooms": {
                alert: {"ooms_fired_before": fired, "ooms": total, "median_lead_minutes": lead / 60 if lead else None}
                for alert, (fired, total, lead) in _alert_leads(rs, meta["group_by"]).items()
            },
            "jobs": [
                {
                    "job": r.job,
                    "runs": [
                        {"run": x.name, "start": x.start, "end": x.end, "peak": x.peak, "oom": x.oom} for x in r.runs
                    ],
                    "ooms": [o.__dict__ for o in r.ooms],
                    "alerts": [a.__dict__ for a in r.alerts.values()],
                    "severities": [sv.__dict__ for sv in r.severities.values()],
                    "episodes": [
                        {"alert": e.alert, "labels": e.label, "start": e.start, "end": e.end} for e in r.episodes
                    ],
                }
                for r in rs
            ],
        }

    shown = {k: v for k, v in meta.items() if k != "group_by"}
    return {**shown, "this_tree": one(results), "against_rev": one(before) if before is not None else None}
