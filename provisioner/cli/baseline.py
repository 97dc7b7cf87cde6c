"""``memprov baseline``: per-job statistics of past runs, proposed thresholds, baselines/<env>.yaml."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import EnvOpt, Format, HeaderOpt, JobsOpt, PrometheusOpt, SeriesOpt, SinceOpt, app, run_verb
from provisioner.core.errors import EXIT_FAILED, EXIT_OK, SpecError, UsageError
from provisioner.core.units import format_duration, format_size

if TYPE_CHECKING:
    from provisioner.analysis import baseline as bl
    from provisioner.spec.resolved import ResolvedSpec


@app.command()
def baseline(
    ctx: typer.Context,
    env: EnvOpt = "local",
    since: SinceOpt = "30d",
    prometheus: PrometheusOpt = None,
    series: SeriesOpt = None,
    runs: Annotated[
        Path | None,
        typer.Option(
            "--runs", metavar="FILE", help="CSV/JSON of runs (job,start,end,peak[,outcome]) or a memprov run --history"
        ),
    ] = None,
    cloudwatch: Annotated[
        bool, typer.Option("--cloudwatch", help="GetMetricData through the environment's cloudwatch target")
    ] = False,
    azure: Annotated[bool, typer.Option("--azure", help="Azure Monitor metrics through the azure target")] = False,
    gcp: Annotated[bool, typer.Option("--gcp", help="Cloud Monitoring time series through the gcp target")] = False,
    header: HeaderOpt = None,
    job: JobsOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print, do not write baselines/<env>.yaml")] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
) -> None:
    """Peaks (p50/p95/p99/max), usual growth and proposed thresholds from past runs; writes baselines/<env>.yaml."""
    run_verb(
        ctx,
        lambda spec, color: run(
            spec=spec,
            color=color,
            env=env,
            since=since,
            prometheus=prometheus,
            series=series or [],
            runs=runs,
            clouds=[name for name, on in (("cloudwatch", cloudwatch), ("azure", azure), ("gcp", gcp)) if on],
            headers=header or [],
            jobs=job or [],
            dry_run=dry_run,
            fmt=fmt.value,
        ),
    )


CLOUD_EXAMPLES = {"cloudwatch": "aws", "azure": "azure", "gcp": "gcp"}


def _fmt(n: float | None) -> str:
    return f"{format_size(n)}B" if n is not None else "—"


def run(
    *,
    spec: Path,
    color: bool | None,
    env: str,
    since: str,
    prometheus: str | None,
    series: list[Path],
    runs: Path | None,
    clouds: list[str],
    headers: list[str],
    jobs: list[str],
    dry_run: bool,
    fmt: str,
) -> int:
    from provisioner.analysis import baseline as bl
    from provisioner.backends.files import atomic_write
    from provisioner.cli.common import iso_minutes, parse_since, select_jobs
    from provisioner.history import prometheus as history
    from provisioner.spec.loader import load

    resolved = load(spec, env, baselines=False)  # the file this command rewrites may be what is wrong
    window = parse_since(since)
    source = history.source_of(prometheus, series, runs, headers, clouds=clouds)
    if source.cloud:
        cloud = source.cloud
        selected = select_jobs(resolved.jobs_using(cloud), jobs, f"jobs on {cloud} in {env}")
        if not selected:
            raise UsageError(
                f"no job uses the {cloud} backend in {env}, so there is no {cloud} metric to read; add {cloud} "
                f"to the jobs' backends (environments/{CLOUD_EXAMPLES[cloud]}.yaml shows how)"
            )
    else:
        selected = select_jobs(resolved.jobs, jobs, "the spec has")
    found: dict[str, list[history.Run]] = {}
    oom: dict[str, str] = {}  # which OOM-kill series exist, where the source can tell
    all_runs: list[history.Run] = []
    if source.runs:

        def warn(text: str) -> None:
            Console(stderr=True, color=color).line(f"warning: {text}", "yellow")

        all_runs = history.read_runs_file(source.runs, [j.id for j in resolved.jobs], env, warn=warn)
        last = max((r.end for r in all_runs), default=0.0)
        for job in selected:
            found[job.id] = [r for r in all_runs if r.job == job.id and r.start >= last - window]
        start, end = last - window, last
    elif source.cloud:
        from provisioner.history import clouds as history_cloud

        read = {
            "cloudwatch": history_cloud.read_runs_cloudwatch,
            "azure": history_cloud.read_runs_azure,
            "gcp": history_cloud.read_runs_gcp,
        }[source.cloud]
        end = time.time()
        start = end - window
        for job in selected:
            found[job.id] = read(resolved, job, start, end)
    else:
        with history.open_querier(source, resolved.scrape_interval) as (prom, first, last):
            end = last
            start = max(first, last - window)
            for job in selected:
                found[job.id] = history.read_runs(prom, resolved, job, start, end, burst=bl.burst_query(resolved, job))
                oom[job.id] = history.oom_source(prom, job, start, end)
    results = [bl.compute(job, found[job.id], oom.get(job.id)) for job in selected]
    target = resolved.spec_file.parent / "baselines" / f"{env}.yaml"
    if source.runs and not all_runs:  # no run to date the window by: not "up to 1970-01-01"
        span = "no runs in the file"
    else:
        span = f"{format_duration(round(end - start))} up to {iso_minutes(end)}"
        span += "" if any(found.values()) else ", no runs found"
    header = [
        f"generated by `memprov baseline --env {env}`: {source.describe()}, {span}",
        "review it like code; memprov merges jobs.<id> into jobs.<id>.memory.baseline of the spec",
    ]
    console = Console(color=color)
    if fmt == "json":
        console.raw(json.dumps([_as_json(b) for b in results], indent=2) + "\n")
    else:
        _print(console, results, fmt == "markdown")
    if not dry_run:
        kept = _kept(target, resolved, {b.job for b in results})  # jobs not measured keep their baseline
        atomic_write(target, bl.yaml_text(results, header, kept))
        where = target.relative_to(resolved.spec_file.parent)
        if fmt == "text":
            console.line(f"Wrote {where}; review the diff and commit it.", "bold")
        try:
            load(spec, env)
        except SpecError as e:  # e.g. a threshold of 1.5x p95 that the new p95 puts above the limit
            err = Console(stderr=True, color=color)
            err.line(f"With the new {where}, the spec no longer validates for {env}:", "yellow")
            err.line(e.render())
            err.line("Adjust the thresholds (see the proposed ones above) or the limit, then `memprov validate`.")
            return EXIT_FAILED
    return EXIT_OK


def _kept(target: Path, resolved: ResolvedSpec, measured: set[str]) -> dict[str, dict[str, object]]:
    """The blocks already in ``target`` of the spec's jobs that this run did not measure (``--job``,
    or jobs on another backend than the source), so that rewriting the file does not drop them."""
    if not target.exists():
        return {}
    from provisioner.core.yamlio import loads

    data = loads(target.read_text(encoding="utf-8"), str(target)).data
    jobs = data.get("jobs") if isinstance(data, dict) else None
    known = {j.id for j in resolved.jobs}
    return {
        job_id: block
        for job_id, block in (jobs or {}).items()
        if job_id not in measured and job_id in known and isinstance(block, dict)
    }


def _as_json(b: bl.JobBaseline) -> dict[str, object]:
    return {
        "job": b.job,
        "limit": b.limit,
        "runs": b.runs,
        "failed": b.failed,
        "peak_p50": b.p50,
        "peak_p95": b.p95,
        "peak_p99": b.p99,
        "peak_max": b.max,
        "velocity_per_minute": b.velocity,
        "velocity_p90_max_per_minute": b.velocities,
        "duration_p50_p95_max_seconds": b.durations,
        "end_peak_p50_p95_max": b.end_peaks,
        "envelope": {
            "floor": b.floor,
            "floor_velocity_per_minute": b.floor_velocity,
            "floor_noise": b.floor_noise,
            "burst_per_minute": b.burst,
            "sawtooth": b.sawtooth,
        },
        "weekdays": b.weekdays,
        "oom_source": b.oom_source,
        "start_hours_utc": b.start_hours,
        "duration_minutes": b.duration,
        "proposed": {"warning": b.warning, "critical": b.critical},
        "flags": b.flags,
    }


def _print(console: Console, results: list[bl.JobBaseline], markdown: bool) -> None:
    from provisioner.cli.common import table

    head = ["job", "runs", "p50", "p95", "p99", "max", "velocity/min", "limit", "proposed warning", "critical"]
    rows = [
        [
            b.job,
            f"{b.runs}" + (f" (+{b.failed} OOM/failed)" if b.failed else ""),
            _fmt(b.p50),
            _fmt(b.p95),
            _fmt(b.p99),
            _fmt(b.max),
            _fmt(b.velocity),
            _fmt(b.limit),
            f"{_fmt(b.warning)} ({b.warning / b.limit:.0%})" if b.warning else "—",
            f"{_fmt(b.critical)} ({b.critical / b.limit:.0%})" if b.critical else "—",
        ]
        for b in results
    ]
    console.raw(table(rows, head, markdown) + "\n")
    for b in results:
        for flag in b.flags:
            line = f"{b.job}: {flag}"
            console.raw(f"\n- {line}") if markdown else console.line(line, "yellow")
    if markdown:
        console.raw("\n")
