"""Generate a large, realistic memprov spec for the benchmark: N jobs × 4 environments.

    python bench/specgen.py DIR [--jobs 1000] [--seed 2026] [--per-file 1000]

Modelled on the repository's ``memprov.yaml``: a mix of runtimes (kubernetes, vm, process),
baselines of past runs, thresholds given as a percentage of the limit, as bytes or derived from
the baseline (``1.5x p95``), routes to several channels (Slack per team, PagerDuty, Opsgenie,
a webhook), some jobs with their own growth/anomaly settings, regex selectors, metric overrides,
labels or a subset of backends. The environments are ``local`` (embedded default, with a file),
``dev`` (quieter routing, smaller limits for some jobs), ``staging`` (other thresholds for some
jobs) and ``prod`` (bigger limits, own routes and a ``baselines/prod.yaml`` refresh). Every
target is the files target, under ``DIR/out/<env>/``, so that plan and apply touch only ``DIR``.

Jobs are written one per line in YAML flow style, which keeps 1,000 jobs well under memprov's
1 MiB per-file limit; ``--per-file N`` writes them to ``jobs/part-NNN.yaml`` files of N jobs each
(how a spec of 10,000 jobs is kept: memprov reads every ``jobs/*.yaml`` next to the spec).
:func:`generate` refuses to write a file over that limit rather than produce a spec that memprov
would reject. Output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

ENVIRONMENTS = ("local", "dev", "staging", "prod")
MAX_BYTES = (
    1024 * 1024
)  # memprov's per-file limit (provisioner.core.yamlio.MAX_BYTES); checked against it when importable
GIB = 1024**3
MIB = 1024**2

TEAMS = ("data-eng", "vision", "search", "ads", "risk", "recs", "nlp", "forecast")
NAMESPACES = ("batch", "batch-gpu", "scoring", "embeddings")
MODELS = ("xgb", "vit-b16", "e5-large", "bert-base", "lgbm", "resnet50", "t5-small", "prophet")
KINDS = ("scoring", "embed", "classify", "forecast", "dedupe", "rank")
LIMITS_GIB = (2, 4, 6, 8, 12, 16, 24, 32, 48, 64)


@dataclass(frozen=True)
class GeneratedSpec:
    """Where the generated files are, and what is in them."""

    root: Path
    spec_file: Path
    jobs: int
    environments: tuple[str, ...]
    files: dict[str, int] = field(default_factory=dict)  # relative path -> bytes
    mix: dict[str, int] = field(default_factory=dict)  # runtime / threshold kind -> count

    def as_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "jobs": self.jobs,
            "environments": list(self.environments),
            "files": self.files,
            "mix": self.mix,
        }


def _size(n_bytes: int) -> str:
    """Bytes as the Kubernetes quantity a human would write (Mi resolution)."""
    mib = max(1, round(n_bytes / MIB))
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _flow(value: object) -> str:
    """YAML flow style for the plain data this module builds (strings are JSON-quoted when needed)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    plain = text.replace("-", "").replace("_", "").replace(".", "").isalnum() and not text[0].isdigit()
    return (
        text if plain and text.lower() not in {"yes", "no", "on", "off", "true", "false", "null"} else json.dumps(text)
    )


def _job(i: int, rng: random.Random, mix: dict[str, int]) -> tuple[str, dict[str, object], str]:
    """One job: (id, data, threshold kind)."""
    team = TEAMS[i % len(TEAMS)]
    kind = KINDS[rng.randrange(len(KINDS))]
    model = MODELS[rng.randrange(len(MODELS))]
    job_id = f"{team}-{kind}-{i:04d}"
    limit = LIMITS_GIB[rng.randrange(len(LIMITS_GIB))] * GIB
    roll = rng.random()
    runtime = "kubernetes" if roll < 0.7 else "vm" if roll < 0.9 else "process"
    mix[runtime] = mix.get(runtime, 0) + 1
    job: dict[str, object] = {
        "name": f"{kind.title()} {model} #{i}",
        "owner": team,
        "model": {"name": f"{model}-{team}", "version": f"2026.{1 + i % 12}"},
        "runtime": runtime,
    }
    if i % 5 == 0:
        job["description"] = f"Nightly {kind} run for {team}; peaks come from large input batches."
    if runtime == "kubernetes":
        selector: dict[str, object] = {"namespace": NAMESPACES[i % len(NAMESPACES)], "container": f"{kind}-{i:04d}"}
        if i % 10 == 3:
            selector = {"namespace": NAMESPACES[i % len(NAMESPACES)], "regex": {"pod": f"{kind}-{i:04d}-.*"}}
    elif runtime == "vm":
        selector = {"instance": f"batch-vm-{i:04d}:9100"}
    else:
        selector = {"groupname": f"{kind}-{i:04d}"}
    job["selector"] = selector
    if runtime == "process" and i % 2 == 0:
        job["metrics"] = {"working_set": "process_resident_memory_bytes"}
    p50 = limit * rng.uniform(0.35, 0.45)
    p95 = limit * rng.uniform(0.48, 0.52)
    baseline = {
        "runs": rng.randrange(7, 60),
        "peak_p50": _size(int(p50)),
        "peak_p95": _size(int(p95)),
        "peak_max": _size(int(p95 * 1.06)),
        "velocity": f"{rng.randrange(4, 64)}Mi",
    }
    memory: dict[str, object] = {"limit": _size(limit), "baseline": baseline}
    t = rng.random()
    if t < 0.4:
        tkind = "default"  # defaults.thresholds: 80% / 90%
    elif t < 0.65:
        tkind = "percent"
        memory["thresholds"] = {"warning": f"{rng.randrange(70, 80)}%", "critical": "90%"}
    elif t < 0.85:
        tkind = "bytes"
        memory["thresholds"] = {"warning": _size(int(limit * 0.75)), "critical": _size(int(limit * 0.92))}
    else:
        tkind = "baseline"  # 1.5 × p95 ≈ 75 % of the limit, below the critical threshold
        memory["thresholds"] = {"warning": "1.5x p95", "critical": rng.choice(["90%", _size(int(limit * 0.93))])}
    mix[f"thresholds:{tkind}"] = mix.get(f"thresholds:{tkind}", 0) + 1
    job["memory"] = memory
    if i % 3 == 0:
        job["route"] = {"warning": [f"{team}-slack", "ml-platform-slack"]}
    elif i % 17 == 0:
        job["route"] = {"warning": f"{team}-slack", "critical": ["ml-oncall-opsgenie", "incident-webhook"]}
    if i % 7 == 0:
        job["growth"] = {"factor": 4, "window": "15m"}
    if i % 11 == 0:
        job["anomaly"] = {"zscore": 4, "weeks": 4}
    if i % 13 == 0:
        job["backends"] = ["prometheus", "alertmanager"]
    if i % 9 == 0:
        job["labels"] = {"cost_center": f"cc-{100 + i % 40}", "tier": "gold" if i % 2 else "silver"}
    return job_id, job, tkind


def _jobs_text(jobs: dict[str, dict[str, object]], title: str) -> str:
    """A jobs file (``jobs/<part>.yaml``): ``jobs:`` and one job per line, as in the spec."""
    lines = [f"# Generated by bench/specgen.py: {title}.", "jobs:"]
    lines += [f"  {job_id}: {_flow(job)}" for job_id, job in jobs.items()]
    return "\n".join(lines) + "\n"


def _spec_text(jobs: dict[str, dict[str, object]]) -> str:
    head = [
        "# Generated by bench/specgen.py: a memprov spec of many jobs, modelled on memprov.yaml.",
        "version: 1",
        "name: bench-inference",
        "defaults:",
        "  scrape_interval: 30s",
        "  thresholds: {warning: 80%, critical: 90%}",
        "  growth: {factor: 3, window: 10m, for: 5m}",
        "  time_to_oom: {horizon: 30m}",
        "  anomaly: {zscore: 3, compare: 1w, weeks: 3}",
        "  route:",
        "    warning: ml-platform-slack",
        "    critical: [ml-oncall-pagerduty, ml-platform-slack]",
        "  runbook_url: https://runbooks.example.com/memprov/{job}?env={env}",
        "  backends: [prometheus, alertmanager, grafana]",
        "notifications:",
        '  ml-platform-slack: {type: slack, channel: "#ml-platform", webhook_url: {env: SLACK_WEBHOOK_URL}}',
        "  ml-oncall-pagerduty: {type: pagerduty, routing_key: {env: PD_ROUTING_KEY}}",
        "  ml-oncall-opsgenie: {type: opsgenie, api_key: {env: OPSGENIE_API_KEY}, priority: P2, team: ml-oncall}",
        '  incident-webhook: {type: webhook, url: "https://hooks.example.com/memprov",'
        " bearer_token: {env: HOOK_TOKEN}}",
    ]
    for team in TEAMS:
        var = team.upper().replace("-", "_")
        head.append(f'  {team}-slack: {{type: slack, channel: "#{team}", webhook_url: {{env: {var}_SLACK_WEBHOOK}}}}')
    if jobs:
        head.append("jobs:")
        head += [f"  {job_id}: {_flow(job)}" for job_id, job in jobs.items()]
    return "\n".join(head) + "\n"


def _env_text(env: str, jobs: dict[str, dict[str, object]], kinds: dict[str, str]) -> str:
    """An environment overlay: its settings plus per-job overrides for a slice of the jobs."""
    lines = [f"# Generated by bench/specgen.py: the {env} environment.", f"output_dir: out/{env}"]
    overrides: dict[str, dict[str, object]] = {}
    ids = list(jobs)
    if env == "local":
        lines += ["description: Files on this machine.", "grafana_url: http://localhost:3000"]
    elif env == "dev":
        lines += [
            "description: Development cluster; everything to chat.",
            "grafana_url: https://grafana.dev.example.com",
            "labels: {cluster: dev-eks}",
            "defaults:",
            "  route: {critical: ml-platform-slack}",
        ]
        for job_id in ids[::8]:  # smaller limits in dev; baseline-derived thresholds keep their own ratio
            if kinds[job_id] in ("default", "percent"):
                mem = jobs[job_id]["memory"]
                assert isinstance(mem, dict)
                limit_gib = int(str(mem["limit"]).removesuffix("Gi"))
                if limit_gib >= 4:
                    half = limit_gib // 2 * GIB
                    baseline = {"peak_p50": _size(int(half * 0.4)), "peak_p95": _size(int(half * 0.5))}
                    overrides[job_id] = {
                        "memory": {"limit": _size(half), "baseline": {**baseline, "peak_max": _size(int(half * 0.53))}}
                    }
    elif env == "staging":
        lines += [
            'description: "Staging: production-sized jobs on a smaller cluster."',
            "grafana_url: https://grafana.staging.example.com",
            "labels: {cluster: staging-eks}",
            "defaults:",
            "  route: {critical: ml-platform-slack}",
            "  usage: {warning_for: 10m}",
        ]
        for job_id in ids[1::10]:
            overrides[job_id] = {"memory": {"thresholds": {"warning": "75%", "critical": "88%"}}}
    else:
        lines += [
            "description: Production.",
            "grafana_url: https://grafana.example.com",
            "datasource: {uid: prom-prod}",
            "labels: {cluster: prod-eks, region: eu-west-1}",
            "defaults:",
            "  usage: {critical_for: 1m}",
        ]
        for n, job_id in enumerate(ids[2::6]):
            mem = jobs[job_id]["memory"]
            assert isinstance(mem, dict)
            over: dict[str, object] = {"memory": {"limit": _size(int(_parse_gib(str(mem["limit"])) * 1.5 * GIB))}}
            if n % 2 == 0:
                over["route"] = {"critical": ["ml-oncall-pagerduty", "ml-oncall-opsgenie"]}
            if n % 5 == 0:
                over["time_to_oom"] = {"horizon": "45m"}
            overrides[job_id] = over
    if overrides:
        lines.append("jobs:")
        lines += [f"  {job_id}: {_flow(o)}" for job_id, o in overrides.items()]
    return "\n".join(lines) + "\n"


def _parse_gib(size: str) -> float:
    return int(size.removesuffix("Gi")) if size.endswith("Gi") else int(size.removesuffix("Mi")) / 1024


def _baselines_text(jobs: dict[str, dict[str, object]], rng: random.Random) -> str:
    """``baselines/prod.yaml``: refreshed peaks, as ``memprov baseline`` would write them (±4 %)."""
    lines = ["# Generated by bench/specgen.py: prod baselines of the last 30 days.", "jobs:"]
    for job_id, job in jobs.items():
        mem = job["memory"]
        assert isinstance(mem, dict)
        limit = _parse_gib(str(mem["limit"])) * GIB
        p95 = limit * 0.5 * rng.uniform(0.96, 1.04)
        entry = {"runs": 30, "peak_p50": _size(int(p95 * 0.82)), "peak_p95": _size(int(p95))}
        lines.append(f"  {job_id}: {_flow(entry)}")
    return "\n".join(lines) + "\n"


def _limit() -> int:
    try:
        from provisioner.core.yamlio import MAX_BYTES as limit
    except ImportError:  # pragma: no cover - memprov not importable: use the documented limit
        return MAX_BYTES
    return int(limit)


def generate(root: Path, jobs: int = 1000, seed: int = 2026, per_file: int | None = None) -> GeneratedSpec:
    """Write ``memprov.yaml``, ``environments/*.yaml`` and ``baselines/prod.yaml`` under ``root``.

    ``per_file``: the jobs go to ``jobs/part-NNN.yaml`` files of that many jobs each (read by memprov
    next to the spec) instead of ``memprov.yaml``, whose ``jobs:`` is then left out.
    """
    rng = random.Random(seed)
    mix: dict[str, int] = {}
    data: dict[str, dict[str, object]] = {}
    kinds: dict[str, str] = {}
    for i in range(jobs):
        job_id, job, tkind = _job(i, rng, mix)
        data[job_id] = job
        kinds[job_id] = tkind
    if per_file:
        texts = {"memprov.yaml": _spec_text({})}
        ids = list(data)
        for n, start in enumerate(range(0, len(ids), per_file)):
            part = {job_id: data[job_id] for job_id in ids[start : start + per_file]}
            texts[f"jobs/part-{n:03d}.yaml"] = _jobs_text(part, f"jobs {start} to {start + len(part) - 1}")
    else:
        texts = {"memprov.yaml": _spec_text(data)}
    for env in ENVIRONMENTS:
        texts[f"environments/{env}.yaml"] = _env_text(env, data, kinds)
    texts["baselines/prod.yaml"] = _baselines_text(data, rng)
    limit = _limit()
    sizes = {rel: len(text.encode("utf-8")) for rel, text in texts.items()}
    too_big = {rel: n for rel, n in sizes.items() if n > limit}
    if too_big:
        raise ValueError(f"generated files exceed memprov's {limit} byte limit: {too_big}")
    for rel, text in texts.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return GeneratedSpec(root, root / "memprov.yaml", jobs, ENVIRONMENTS, sizes, dict(sorted(mix.items())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dir", type=Path, help="where to write the spec (created if missing)")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--per-file", type=int, default=None, help="write the jobs to jobs/*.yaml, N per file")
    args = parser.parse_args(argv)
    try:
        spec = generate(args.dir, args.jobs, args.seed, args.per_file)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(spec.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
