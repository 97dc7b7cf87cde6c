"""From a validated :class:`Spec` to a :class:`ResolvedSpec`, checking rules that span fields.

Every problem is reported with the key path it concerns; the loader turns paths into
``file:line``. All problems are collected before raising, so one run shows them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from provisioner.core import names
from provisioner.core.errors import did_you_mean
from provisioner.core.promql import Sources
from provisioner.core.types import Threshold
from provisioner.core.units import format_size
from provisioner.kinds import ALL as KINDS
from provisioner.kinds.base import Facts, History, Kind, NoSettings, Params
from provisioner.spec import breaker as breaker_spec
from provisioner.spec.environment import Environment
from provisioner.spec.model import WEEKDAYS, Baseline, Job, Route, Spec
from provisioner.spec.promql_check import source_problems
from provisioner.spec.resolved import ResolvedJob, ResolvedSpec
from provisioner.spec.sources import sources

M = TypeVar("M", bound=BaseModel)
_NO_SETTINGS = NoSettings()  # has no fields: one for every kind without a settings block
Loc = tuple[str | int, ...]


def overlay(base: M, override: M | None) -> M:
    """``base`` with the fields that ``override`` set explicitly (recursively)."""
    if override is None:
        return base
    update = {}
    for name in override.model_fields_set:
        value = getattr(override, name)
        current = getattr(base, name)
        update[name] = (
            overlay(current, value)
            if isinstance(value, BaseModel) and isinstance(current, BaseModel) and type(value) is type(current)
            else value
        )
    return base.model_copy(update=update)


def _threshold_bytes(t: Threshold, job: Job, path: Loc, problems: list[tuple[Loc, str]]) -> int | None:
    if t.kind == "percent":
        return round(job.memory.limit * t.value)
    if t.kind == "bytes":
        return int(t.value)
    base = job.memory.baseline
    peak: int | None = getattr(base, f"peak_{t.stat}", None) if base else None
    if peak is None:
        problems.append(
            (
                path,
                f'"{t}" needs memory.baseline.peak_{t.stat}; add the baseline '
                "(or run memprov baseline) or give the threshold as 80% / 6Gi",
            )
        )
        return None
    return round(peak * t.value)


def _shown(t: Threshold, value: int) -> str:
    """``80% = 6.4Gi``, or just ``6Gi`` when the threshold is already a size."""
    return str(t) if t.kind == "bytes" else f"{t} = {format_size(value)}"


def _check_route(route: Route, path: Loc, channels: Mapping[str, object], problems: list[tuple[Loc, str]]) -> None:
    for severity in ("info", "warning", "critical"):
        for i, name in enumerate(getattr(route, severity)):
            if name not in channels:
                known = ", ".join(sorted(channels)) or "none defined"
                problems.append(
                    (
                        (*path, severity, i),
                        f"unknown notification channel '{name}'"
                        f"{did_you_mean(name, channels)}; defined under notifications: {known}",
                    )
                )


def _usual_velocity(baseline: Baseline | None) -> float | None:
    """The recorded usual velocity of the troughs, in bytes per second (the spec writes it per minute)."""
    return baseline.velocity / 60 if baseline is not None and baseline.velocity is not None else None


PROMQL_WEEKDAY = {name: (i + 1) % 7 for i, name in enumerate(WEEKDAYS)}  # mon -> 1 ... sun -> 0 (day_of_week())


def _history(b: Baseline | None) -> History:
    """What the baseline says of healthy runs beyond their peaks, in bytes, bytes per second and seconds."""
    if b is None:
        return History()
    return History(
        end_peak_max=b.end_peak_max or None,
        floor=b.floor,
        floor_velocity=None if b.floor_velocity is None else b.floor_velocity / 60,
        floor_noise=b.floor_noise,
        burst=None if b.burst is None else b.burst / 60,
        sawtooth=b.sawtooth,
        duration_max=b.duration_max or None,
        weekday_durations={
            PROMQL_WEEKDAY[day]: float(w.duration_max) for day, w in b.weekdays.items() if w.duration_max is not None
        },
        oom_source=b.oom_source,
    )


def _kinds(
    spec: Spec,
    job: Job,
    limit: int,
    warn: int,
    crit: int,
    trough: float,
    evaluation: float,
    src: Sources,
    history: History,
) -> dict[Kind, Params]:
    """Every kind's derived values for ``job``: defaults overlaid with the job's settings, then derived once."""
    b = job.memory.baseline
    facts = Facts(
        limit=limit,
        warning_bytes=warn,
        critical_bytes=crit,
        peak_p50=b.peak_p50 if b else None,
        peak_p95=b.peak_p95 if b else None,
        usual_velocity=_usual_velocity(b),
        trough_window=trough,
        evaluation_interval=evaluation,
        sources=src,
        scrape_interval=spec.defaults.scrape_interval,
        history=history,
    )
    settings: dict[str, BaseModel] = {
        k.key: overlay(getattr(spec.defaults, k.key), getattr(job, k.key)) for k in KINDS if k.key is not None
    }
    return {k.kind: k.derive(settings[k.key] if k.key else _NO_SETTINGS, facts, settings) for k in KINDS}


def resolve(
    spec: Spec, env: str, environment: Environment, spec_file: Path, sources_: tuple[str, ...] = ()
) -> tuple[ResolvedSpec | None, list[tuple[Loc, str]]]:
    """Resolve defaults and check cross-field rules; returns the spec or the located problems."""
    problems: list[tuple[Loc, str]] = []
    d = spec.defaults
    for name in spec.notifications:
        if not names.JOB_ID_PATTERN.match(name):
            problems.append(
                (
                    ("notifications", name),
                    f"channel name '{name}' must be lowercase letters, "
                    "digits and '-' (it becomes an Alertmanager receiver name)",
                )
            )
    _check_route(d.route, ("defaults", "route"), spec.notifications, problems)
    jobs: list[ResolvedJob] = []
    for job_id, job in spec.jobs.items():
        jp: Loc = ("jobs", job_id)
        if job_id == "overview":
            problems.append(
                (
                    jp,
                    "job id 'overview' is reserved for the environment's overview dashboard; "
                    "rename the job (e.g. 'overview-job')",
                )
            )
            continue
        if not names.JOB_ID_PATTERN.match(job_id):
            fixed = names.slug(job_id)
            fixed = (fixed if fixed[0].isalpha() else f"job-{fixed}")[:40].strip("-")
            problems.append(
                (
                    jp,
                    f"job id '{job_id}' would break PromQL label values and resource names; "
                    f"use lowercase letters, digits and '-', at most 40 characters (e.g. '{fixed}')",
                )
            )
            continue
        thresholds = job.memory.thresholds or d.thresholds
        tpath: Loc = (*jp, "memory", "thresholds") if job.memory.thresholds else ("defaults", "thresholds")
        warn = _threshold_bytes(thresholds.warning, job, (*tpath, "warning"), problems)
        crit = _threshold_bytes(thresholds.critical, job, (*tpath, "critical"), problems)
        limit = job.memory.limit
        if warn is not None and crit is not None:
            if warn >= crit:
                problems.append(
                    (
                        (*tpath, "warning"),
                        f"warning ({_shown(thresholds.warning, warn)}) "
                        f"must be below critical ({_shown(thresholds.critical, crit)}) "
                        f"for job {job_id}; lower warning or raise critical",
                    )
                )
            for sev, value, t in (("warning", warn, thresholds.warning), ("critical", crit, thresholds.critical)):
                if value > limit:
                    problems.append(
                        (
                            (*tpath, sev),
                            f"{sev} threshold {_shown(t, value)} is above the "
                            f"memory limit {format_size(limit)} of job {job_id}, so it can never fire "
                            "before the OOM kill; use at most the limit (e.g. 80%)",
                        )
                    )
        route = overlay(d.route, job.route)
        if job.route:
            _check_route(job.route, (*jp, "route"), spec.notifications, problems)
        if warn is None or crit is None:
            continue
        backends = tuple(job.backends if job.backends is not None else d.backends)
        gcp = overlay(d.gcp, job.gcp)
        if "gcp" in backends and (missing := gcp.missing(job.runtime)):
            problems.append(((*jp, "gcp") if job.gcp else jp, missing))
        aws = overlay(d.aws, job.aws)
        if "cloudwatch" in backends and (missing := aws.missing(job.runtime)):
            problems.append(((*jp, "aws") if job.aws else jp, missing))
        azure = overlay(d.azure, job.azure)
        if "azure" in backends and (missing := azure.missing(job.runtime)):
            problems.append(((*jp, "azure") if job.azure else jp, missing))
        trough = job.trough_window or d.trough_window
        evaluation = d.evaluation_interval or d.scrape_interval
        src = sources(job.runtime, job.selector, job.metrics, job_id, env)
        if bad := source_problems(jp, job, src):
            problems += bad
            continue
        history = _history(job.memory.baseline)
        alerts = _kinds(spec, job, limit, warn, crit, trough, evaluation, src, history)
        if job.breaker is not None:
            enabled = {k.value: alerts[k].enabled for k in (Kind.TIME_TO_OOM, Kind.USAGE)}
            found = breaker_spec.check(job.breaker, job.memory.limit, backends, enabled)
            if environment.breaker is not None:
                found += [m for m in [breaker_spec.connection_missing(job.breaker, environment.breaker)] if m]
            problems += [((*jp, "breaker"), msg) for msg in found]
        uid = names.dashboard_uid(env, job_id)
        dash_url = f"{environment.grafana_url}/d/{uid}/{names.slug(job.name or job_id)}"
        runbook = (job.runbook_url or d.runbook_url).replace("{job}", job_id).replace("{env}", env)
        jobs.append(
            ResolvedJob(
                id=job_id,
                name=job.name or job_id,
                description=job.description,
                owner=job.owner,
                team=job.team or job.owner,
                model_name=job.model.name,
                model_version=job.model.version,
                runtime=job.runtime,
                selector=job.selector,
                limit=limit,
                baseline=job.memory.baseline,
                thresholds=thresholds,
                warning_bytes=warn,
                critical_bytes=crit,
                trough_window=trough,
                usual_velocity=_usual_velocity(job.memory.baseline),
                alerts=alerts,
                route=route,
                backends=backends,
                runbook_url=runbook,
                dashboard_uid=uid,
                dashboard_url=dash_url,
                sources=src,
                labels={**d.labels, **environment.labels, **job.labels},
                gcp=gcp,
                aws=aws,
                azure=azure,
                breaker=job.breaker,
                history=history,
            )
        )
    if problems:
        return None, problems
    return ResolvedSpec(
        name=spec.name,
        env=env,
        spec_file=spec_file,
        environment=environment,
        scrape_interval=d.scrape_interval,
        evaluation_interval=d.evaluation_interval or d.scrape_interval,
        notifications=dict(spec.notifications),
        jobs=tuple(jobs),
        sources=sources_,
    ), problems
