"""Past runs from CloudWatch, Azure Monitor and Google Cloud Monitoring, for ``memprov baseline``.

Each reads, through the environment's live target of that cloud (same credentials, endpoint and
error handling as apply), the series the job's cloud alerts watch, as a percentage of the limit,
at five-minute resolution: CloudWatch ``GetMetricData`` (the maximum per period), Azure Monitor
``metrics.list`` (the maximum per interval; the minimum of an *available*-memory metric), Cloud
Monitoring ``ListTimeSeries`` (``ALIGN_MAX``, the maximum over the job's series). The clouds keep
one series per job or node rather than one per run, so runs are told apart by gaps
(:func:`runs_from_points`), peaks are the percentage times the spec's limit, and there is no
trough velocity at this resolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from provisioner.backends.registry import bind, configure
from provisioner.core.errors import UsageError
from provisioner.history.prometheus import Run
from provisioner.render import azure, cloudwatch, gcp
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec

PERIOD = 300


def _target(spec: ResolvedSpec, backend: str, example: str) -> Any:
    _, target = bind(spec, backend, configure(spec).get(backend))
    if target.type != backend:
        raise UsageError(
            f"--{backend} reads through the environment's {backend} target; environments/{spec.env}.yaml has none "
            f"(targets: {{{backend}: {{type: {backend}, {example}}}}})"
        )
    return target


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_runs_azure(spec: ResolvedSpec, job: ResolvedJob, start: float, end: float) -> list[Run]:
    """The runs of ``job`` from Azure Monitor metrics of its alert rules' scope."""
    target = _target(spec, "azure", "subscription_id: ..., resource_group: ...")
    src = azure.source(job)
    flt = " and ".join(f"{k} eq '{v}'" for k, v in src.dimensions) or None
    aggregation = "Minimum" if src.available else "Maximum"  # least available memory is the peak

    def query(client: Any) -> Any:
        return client.metrics.list(
            resource_uri=src.scope,
            timespan=f"{_iso(start)}/{_iso(end)}",
            interval="PT5M",
            metricnames=src.metric,
            aggregation=aggregation,
            metricnamespace=src.namespace,
            filter=flt,
        )

    result = target.call(f"metrics of {src.scope}", lambda: query(target.client))
    peaks: dict[float, float] = {}  # the fullest series (node) at each interval
    for metric in result.value or []:
        for series in metric.timeseries or []:
            for d in series.data or []:
                value = getattr(d, aggregation.lower())
                if value is None:
                    continue
                used = 100 - value if src.available else value
                t = d.time_stamp.timestamp()
                peaks[t] = max(peaks.get(t, used), used)
    return runs_from_points(job, peaks.items(), PERIOD)


def read_runs_gcp(spec: ResolvedSpec, job: ResolvedJob, start: float, end: float) -> list[Run]:
    """The runs of ``job`` from Cloud Monitoring's time series of its alert policies' filter."""
    target = _target(spec, "gcp", "project: ...")
    src = gcp.source(job)
    request = {
        "name": f"projects/{target.config.project}",
        "filter": src.filter(src.usage),
        "interval": {"start_time": {"seconds": int(start)}, "end_time": {"seconds": int(end)}},
        "aggregation": {
            "alignment_period": {"seconds": PERIOD},
            "per_series_aligner": "ALIGN_MAX",
            "cross_series_reducer": "REDUCE_MAX",
        },
        "view": "FULL",
    }
    found = target.call("ListTimeSeries", lambda _: list(target.metric_client.list_time_series(request=request)))
    peaks: dict[float, float] = {}
    for series in found:
        for point in series.points:
            value = point.value.double_value * (100.0 if src.scale == 1.0 else 1.0)  # fraction -> percent
            t = point.interval.end_time.timestamp()
            peaks[t] = max(peaks.get(t, value), value)
    return runs_from_points(job, peaks.items(), PERIOD)


def read_runs_cloudwatch(
    spec: ResolvedSpec, job: ResolvedJob, start: float, end: float, period: int = 300
) -> list[Run]:
    """The runs of ``job`` from CloudWatch (``GetMetricData``, the job's percent-of-limit metric as
    its alarms watch it, maximum per ``period``), through the environment's ``cloudwatch`` target.

    CloudWatch keeps one series per job (Container Insights' PodName, an instance, a transform
    job), so runs are told apart by gaps of more than two periods; peaks are the percentage times
    the spec's limit. There is no trough velocity at this resolution: the usual growth stays as
    the spec has it.
    """
    target = _target(spec, "cloudwatch", "region: ...")
    queries = cloudwatch.source(job).percent("m", "Maximum", period)
    queries[-1]["ReturnData"] = True
    points: list[tuple[float, float]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": datetime.fromtimestamp(start, UTC),
            "EndTime": datetime.fromtimestamp(end, UTC),
            "ScanBy": "TimestampAscending",
            **({"NextToken": token} if token else {}),
        }
        page = target.call("GetMetricData", lambda kw=kwargs: target.client.get_metric_data(**kw))
        for result in page.get("MetricDataResults", []):
            if result.get("Id") == "m":
                points += [
                    (ts.timestamp(), float(v)) for ts, v in zip(result["Timestamps"], result["Values"], strict=True)
                ]
        token = page.get("NextToken")
        if not token:
            break
    return runs_from_points(job, points, period)


def runs_from_points(job: ResolvedJob, points: Iterable[tuple[float, float]], period: float) -> list[Run]:
    """Runs from one series per job of ``(unix seconds, percent of the limit)`` points, as the clouds
    keep them: a gap of more than two periods ends a run; peaks are the percentage times the limit."""
    runs: list[Run] = []
    limit = float(job.limit)
    for t, percent in sorted(points):
        value = percent / 100 * limit
        if runs and t - runs[-1].step <= 2 * period:
            run = runs[-1]
            run.step, run.end, run.peak, run.last_peak = t, t + period, max(run.peak, value), value
        else:
            instance = (("series", f"{job.id}@{datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%MZ}"),)
            runs.append(Run(job.id, instance, t, t + period, value, limit, step=t, last_peak=value))
    return runs
