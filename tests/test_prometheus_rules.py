"""The rendered Prometheus rules: golden files, promtool check, annotations as Prometheus renders
them, and `memprov test` proving every alert kind on the real rule engine."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from provisioner.core.yamlio import dumps
from provisioner.kinds import ALL as KINDS
from provisioner.render.alertmanager import config
from provisioner.render.prometheus.rules import rule_group, rule_groups
from provisioner.spec.loader import environments, load
from tests.helpers import ROOT, assert_golden, example_repo, memprov

ENVS = environments(ROOT / "memprov.yaml")


@pytest.mark.parametrize("env", ENVS)
def test_golden_rules_and_routing(env: str) -> None:
    spec = load(ROOT / "memprov.yaml", env)
    for job in spec.jobs:
        for group in rule_groups(spec, job):
            assert_golden(f"prometheus/{env}/{group['name']}.rules.yaml", dumps({"groups": [group]}))
    assert_golden(f"alertmanager/{env}/alertmanager.yml", dumps(config(spec)))


@pytest.mark.integration
@pytest.mark.parametrize("env", ENVS)
def test_promtool_check_rules(env: str, tmp_path: Path) -> None:
    spec = load(ROOT / "memprov.yaml", env)
    path = tmp_path / "rules.yaml"
    path.write_text(dumps({"groups": [g for job in spec.jobs for g in rule_groups(spec, job)]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {
        r["labels"]["memprov_kind"] for j in spec.jobs for g in rule_groups(spec, j) for r in g["rules"] if "alert" in r
    }
    assert kinds == {k.kind.value for k in KINDS}, "every alert kind is rendered"


@pytest.mark.integration
def test_promtool_accepts_the_rules_of_a_job_without_a_baseline(tmp_path: Path) -> None:
    """Without a baseline every learnt value falls back to a slow-group record: those expressions parse too."""
    (tmp_path / "memprov.yaml").write_text(
        "version: 1\nname: bare\njobs:\n  bare:\n    owner: me\n    model: {name: m, version: '1'}\n"
        "    runtime: kubernetes\n    selector: {namespace: batch, container: c}\n    memory: {limit: 8Gi}\n"
    )
    spec = load(tmp_path / "memprov.yaml", "local")
    groups = rule_groups(spec, spec.jobs[0])
    assert [g["name"] for g in groups] == ["memprov-local-bare", "memprov-local-bare-slow"]
    (tmp_path / "rules.yaml").write_text(dumps({"groups": groups}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = dumps({"groups": groups})
    assert "memprov:job_memory_baseline_peak:bytes" in text and "memprov:job_memory_baseline_velocity" in text


def test_every_alert_carries_context() -> None:
    spec = load(ROOT / "memprov.yaml", "prod")
    for job in spec.jobs:
        for rule in [r for g in rule_groups(spec, job) for r in g["rules"]]:
            if "alert" in rule:
                assert {"memprov_job", "memprov_env", "severity", "team", "owner", "model", "model_version"} <= set(
                    rule["labels"]
                )
                assert {"summary", "description", "node", "current", "limit", "runbook_url", "dashboard"} <= set(
                    rule["annotations"]
                )
                assert rule["annotations"]["dashboard"].startswith(f"https://grafana.example.com/d/{job.dashboard_uid}")


def test_thresholds_follow_the_design_document() -> None:
    """p95 peak 4 GiB, limit 8 GiB -> warning 6 GiB, critical 7.5 GiB."""
    spec = load(ROOT / "memprov.yaml", "prod")
    clv = next(j for j in spec.jobs if j.id == "clv-daily")
    rules = {r.get("alert"): r for r in rule_group(spec, clv)["rules"]}
    assert rules["BatchJobMemoryWarning"]["expr"].endswith("> 0.75")  # 6Gi / 8Gi
    assert rules["BatchJobMemoryCritical"]["expr"].endswith("> 0.9375")  # 7.5Gi / 8Gi


EXPECTED_ANNOTATIONS = {
    "job_name": "Customer lifetime value (daily)",
    "node": "ip-10-0-3-7",
    "current": "7.8GiB",
    "limit": "8GiB",
    "runbook_url": "https://runbooks.example.com/memprov/clv-daily",
    "dashboard": "https://grafana.example.com/d/memprov-prod-clv-daily/customer-lifetime-value-daily"
    "?var-job=clv-daily&var-node=All&from=-21300000&to=2100000",
    "summary": "Customer lifetime value (daily): memory at 97.5% of its limit, OOM kill is near",
    "description": "Customer lifetime value (daily) (clv-daily, model clv-xgb 2026.11, owner data-eng) "
    "uses 97.5% of its 8GiB memory limit on ip-10-0-3-7 (critical at 7.5GiB, 94%). "
    "Act now: stop the run or give it more memory before the kernel kills it.",
}


@pytest.mark.integration
def test_annotations_as_prometheus_renders_them(tmp_path: Path) -> None:
    """The real rule file (with annotations) in promtool: a run held at 7.8 GiB of 8 GiB."""
    spec = load(ROOT / "memprov.yaml", "prod")
    clv = next(j for j in spec.jobs if j.id == "clv-daily")
    (tmp_path / "rules.yaml").write_text(dumps({"groups": rule_groups(spec, clv)}))
    held = 7.8 * 2**30
    labels = 'namespace="batch", pod="clv-daily-7f9c", container="clv-scorer", node="ip-10-0-3-7"'
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": "30s",
                "input_series": [
                    {"series": f"container_memory_working_set_bytes{{{labels}}}", "values": f"{held:.0f}x20"},
                    {"series": f"container_spec_memory_limit_bytes{{{labels}}}", "values": f"{8 * 2**30}x20"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "BatchJobMemoryCritical",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "memprov_kind": "usage",
                                    "memprov_job": "clv-daily",
                                    "memprov_env": "prod",
                                    "team": "data-eng",
                                    "owner": "data-eng",
                                    "model": "clv-xgb",
                                    "model_version": "2026.11",
                                    "managed_by": "memprov",
                                    "cluster": "prod-eks",
                                    "namespace": "batch",
                                    "pod": "clv-daily-7f9c",
                                    "container": "clv-scorer",
                                    "node": "ip-10-0-3-7",
                                },
                                "exp_annotations": EXPECTED_ANNOTATIONS,
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(dumps(test))
    result = subprocess.run(["promtool", "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_memprov_test_proves_every_alert_kind(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    out = tmp_path / "promtool"
    result = memprov("test", "--env", "prod", "--out", str(out), cwd=repo, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 promtool run(s) passed for 4 job(s) in prod" in result.stdout
    tests = (out / "clv-daily.test.yaml").read_text() + (out / "clv-daily.drift.test.yaml").read_text()
    for alert in (
        "BatchJobMemoryWarning",
        "BatchJobMemoryCritical",
        "BatchJobMemoryGrowthFast",
        "BatchJobMemoryTimeToOOM",
        "BatchJobMemoryAboveBaseline",
        "BatchJobMemoryAnomaly",
        "BatchJobOOMKilled",
    ):
        assert f"alertname: {alert}\n    exp_alerts:\n    - exp_labels" in tests, f"{alert} is proven to fire"


@pytest.mark.integration
def test_memprov_test_fails_when_a_rule_is_broken(tmp_path: Path) -> None:
    """The generated tests are not written to pass: a critical alert whose threshold a rule file
    gets wrong (above anything a run reaches) makes promtool fail the very tests `memprov test` wrote."""
    repo = example_repo(tmp_path / "repo")
    out = tmp_path / "out"
    result = memprov("test", "--env", "local", "--job", "doc-embed", "--out", str(out), cwd=repo, timeout=300)
    assert result.returncode == 0, result.stdout
    rules = out / "doc-embed.rules.yaml"
    text = rules.read_text()
    assert text.count("> 0.9\n") == 1, text  # the critical alert's threshold
    rules.write_text(text.replace("> 0.9\n", "> 1.9\n"))
    broken = subprocess.run(
        ["promtool", "test", "rules", "doc-embed.test.yaml"], cwd=out, capture_output=True, text=True
    )
    assert broken.returncode == 1
    assert "BatchJobMemoryCritical" in broken.stdout + broken.stderr and "FAILED" in broken.stdout + broken.stderr


ENVELOPE_BASELINE = (
    "jobs:\n  clv-daily:\n    runs: 20\n    peak_p95: 4Gi\n    velocity: 18Mi\n    floor: 2.5Gi\n"
    "    floor_velocity: 20Mi\n    floor_noise: 40Mi\n    burst: 30Mi\n    sawtooth: 400Mi\n"
    "    duration_max: 1h40m\n    end_peak_max: 4.1Gi\n    oom_source: none\n"
)


@pytest.mark.integration
def test_memprov_test_proves_the_runs_own_track(tmp_path: Path) -> None:
    """With an envelope baseline, `memprov test` adds a run that starts under the healthy floor and then
    grows too fast; promtool proves AboveBaseline fires on its own track, and fails when that part of the
    rule is broken (its margin far above anything the run reaches)."""
    repo = example_repo(tmp_path / "repo")
    (repo / "baselines").mkdir()
    (repo / "baselines" / "local.yaml").write_text(ENVELOPE_BASELINE)
    out = tmp_path / "out"
    result = memprov("test", "--env", "local", "--job", "clv-daily", "--out", str(out), cwd=repo, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    test = (out / "clv-daily.test.yaml").read_text()
    assert "own-track" in test and "alertname: BatchJobMemoryAboveBaseline\n    exp_alerts:\n    - exp_labels" in test
    rules = out / "clv-daily.rules.yaml"
    text = rules.read_text()
    margin = "[6h]) + 2.51658e+08"  # 0.6 x the 400Mi sawtooth
    assert text.count(margin) == 1, text
    rules.write_text(text.replace(margin, "[6h]) + 2.51658e+12"))
    broken = subprocess.run(
        ["promtool", "test", "rules", "clv-daily.test.yaml"], cwd=out, capture_output=True, text=True
    )
    assert broken.returncode == 1, broken.stdout
    assert "BatchJobMemoryAboveBaseline" in broken.stdout + broken.stderr


def test_an_annotations_template_overrides_the_alerts_it_names(tmp_path: Path) -> None:
    """templates/prometheus/annotations.yaml.j2 next to the spec replaces the texts of the alerts it
    lists (memprov values in [[ ]], Prometheus templating passed through); the others keep the defaults."""
    repo = example_repo(tmp_path)
    (repo / "templates" / "prometheus").mkdir(parents=True)
    (repo / "templates" / "prometheus" / "annotations.yaml.j2").write_text(
        "BatchJobMemoryWarning:\n"
        "  summary: [[ ('Team ' ~ job.team ~ ': ' ~ job.id ~ ' at {{ $value | humanizePercentage }}') | yaml ]]\n"
        "  description: [[ ('over ' ~ warning_pct ~ ' of ' ~ limit_h) | yaml ]]\n"
    )
    spec = load(repo / "memprov.yaml", "local")
    job = next(j for j in spec.jobs if j.id == "clv-daily")
    rules = {r["alert"]: r for r in rule_group(spec, job)["rules"] if "alert" in r}
    warning = rules["BatchJobMemoryWarning"]["annotations"]
    assert warning["summary"] == f"Team {job.team}: clv-daily at {{{{ $value | humanizePercentage }}}}"
    assert warning["description"] == "over 75% of 8GiB"
    default = load(ROOT / "memprov.yaml", "local")
    kept = {r["alert"]: r for r in rule_group(default, default.jobs[0])["rules"] if "alert" in r}
    assert rules["BatchJobMemoryCritical"]["annotations"] == kept["BatchJobMemoryCritical"]["annotations"]


def test_time_to_oom_warning_tier_is_optional_and_must_be_the_longer_horizon(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    spec = repo / "memprov.yaml"
    text = spec.read_text()
    spec.write_text(text.replace("time_to_oom: {horizon: 30m}", "time_to_oom: {horizon: 30m, warning_horizon: 20m}"))
    result = memprov("validate", cwd=repo)
    assert result.returncode == 2
    line = next(i for i, t in enumerate(spec.read_text().splitlines(), 1) if "warning_horizon" in t)
    assert f"memprov.yaml:{line}: defaults.time_to_oom: warning_horizon (20m) must be longer than horizon (30m)" in (
        result.stderr
    ), result.stderr

    spec.write_text(text.replace("time_to_oom: {horizon: 30m}", "time_to_oom: {horizon: 30m, warning_horizon: null}"))
    loaded = load(spec, "local")
    names = {r.get("alert") for job in loaded.jobs for r in rule_group(loaded, job)["rules"]}
    assert "BatchJobMemoryTimeToOOM" in names and "BatchJobMemoryTimeToOOMWarning" not in names


def _all_rules(spec_path: Path, env: str = "local") -> dict[str, list[dict[str, Any]]]:
    spec = load(spec_path, env)
    return {job.id: rule_groups(spec, job) for job in spec.jobs}


def test_raw_series_are_read_over_a_short_window_so_alerts_end_with_the_run() -> None:
    """Every raw series goes through last_over_time(…[3 scrapes]) (the look-back delta never keeps a
    finished run alive for five minutes), and every per-run series ANDs with the working set."""
    for job, groups in _all_rules(ROOT / "memprov.yaml").items():
        fast = {r.get("record") or r.get("alert"): r["expr"] for r in groups[0]["rules"]}
        assert fast["memprov:memory_working_set:bytes"].count("last_over_time(") >= 1, job
        assert "[1m30s])" in fast["memprov:memory_working_set:bytes"], job
        ws = f'memprov:memory_working_set:bytes{{memprov_job="{job}", memprov_env="local"}}'
        for name in ("memprov:memory_trough:bytes", "memprov:memory_run_age:seconds"):
            assert fast[name].rstrip().endswith(f"and\n{ws}"), name
        assert "memprov:memory_run_age:seconds" in fast["memprov:memory_trough_velocity:bytes_per_second"]


def test_one_trough_slope_unless_the_windows_differ(tmp_path: Path) -> None:
    """The growth velocity and the time-to-OOM trend were the same rule twice (issue 15): now one series."""
    names = {r.get("record") for g in _all_rules(ROOT / "memprov.yaml")["clv-daily"] for r in g["rules"]}
    assert "memprov:memory_trough_velocity:bytes_per_second" in names
    assert "memprov:memory_trough_trend:bytes_per_second" not in names
    repo = example_repo(tmp_path)
    text = (
        (repo / "memprov.yaml")
        .read_text()
        .replace("time_to_oom: {horizon: 30m}", "time_to_oom: {horizon: 30m, window: 20m}")
    )
    (repo / "memprov.yaml").write_text(text)
    groups = _all_rules(repo / "memprov.yaml")["clv-daily"]
    rules = {r.get("record") or r.get("alert"): r["expr"] for g in groups for r in g["rules"]}
    assert "deriv(memprov:memory_trough:bytes" in rules["memprov:memory_trough_trend:bytes_per_second"]
    assert "[20m])" in rules["memprov:memory_trough_trend:bytes_per_second"]
    assert "memprov:memory_trough_trend:bytes_per_second" in rules["BatchJobMemoryTimeToOOM"]


def test_slow_group_holds_the_anomaly_reference_and_the_oom_report() -> None:
    for job, groups in _all_rules(ROOT / "memprov.yaml").items():
        assert [g["interval"] for g in groups] == ["30s", "5m"]
        slow = {r.get("record") or r.get("alert"): r["expr"] for r in groups[1]["rules"]}
        assert {"memprov:job_memory_history_mean:bytes", "memprov:job_memory_history_stddev:bytes"} <= set(slow)
        mean = slow["memprov:job_memory_history_mean:bytes"]
        assert mean.count(" or vector(0))") == 6 and ">= 2)" in mean  # whatever weeks exist, at least min_weeks
        assert ("BatchJobOOMKilled" in slow) == (job != "feature-batch")
        fast = [r["expr"] for r in groups[0]["rules"]]
        assert not any("offset" in e or "quantile_over_time" in e for e in fast), job  # no history read every 30 s


def test_the_baseline_ships_as_constants_and_decides_the_oom_rule(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    (repo / "baselines").mkdir()
    (repo / "baselines" / "local.yaml").write_text(
        ENVELOPE_BASELINE + "    weekdays: {sat: {runs: 2, duration_max: 2h30m, end_peak_max: 5Gi}}\n"
    )
    groups = _all_rules(repo / "memprov.yaml")["clv-daily"]
    rules = {r.get("record") or r.get("alert"): r["expr"] for g in groups for r in g["rules"]}
    assert "BatchJobOOMKilled" not in rules  # the baseline found no OOM-kill series: no rule at all
    off = rules["BatchJobMemoryAboveBaseline"]
    # floor + margin (max(1 % of 8Gi, 1.5 x 40Mi)) + 20Mi/min x 1.1 x (age - 8m)
    assert off.startswith("(memprov:memory_trough:bytes{") and "2.77025e+09 + 384478 *" in off, off
    assert "clamp_min(memprov:memory_run_age:seconds" in off and "- 480, 0)" in off
    # ... or the run's own floor 0.6 x the 400Mi sawtooth above the lowest it stood (over the 6h age window)
    own = 'memprov:memory_run_floor:bytes{memprov_job="clv-daily", memprov_env="local"}'
    assert f"{own} > min_over_time({own}[6h]) + 2.51658e+08" in off, off
    # the own floor: the troughs less the envelope's growth, recorded only where the velocity is (settled)
    floor = rules["memprov:memory_run_floor:bytes"]
    assert floor.startswith("memprov:memory_trough:bytes{") and "- 384478 * clamp_min(" in floor, floor
    velocity = 'memprov:memory_trough_velocity:bytes_per_second{memprov_job="clv-daily", memprov_env="local"}'
    assert floor.endswith(f"\nand\n{velocity}"), floor
    tto = rules["BatchJobMemoryTimeToOOM"]
    assert "+ 4.1943e+08" in tto  # the sawtooth on top of the troughs: the peaks
    assert "day_of_week(time() - memprov:memory_run_age:seconds" in tto and "== bool 6) * 3000" in tto
    growth = rules["BatchJobMemoryGrowthFast"]
    assert growth.endswith("/ 314573 > 3"), growth  # max(3 x 18Mi, 1.2 x 30Mi) over 18Mi per minute


def test_own_track_off_leaves_the_envelope_alone(tmp_path: Path) -> None:
    """`baseline_alert.own_track: false`: no own-floor series, and the alert is the envelope's comparison only."""
    repo = example_repo(tmp_path)
    spec = repo / "memprov.yaml"
    spec.write_text(spec.read_text().replace("defaults:\n", "defaults:\n  baseline_alert: {own_track: false}\n", 1))
    (repo / "baselines").mkdir()
    (repo / "baselines" / "local.yaml").write_text(ENVELOPE_BASELINE)
    groups = _all_rules(spec)["clv-daily"]
    rules = {r.get("record") or r.get("alert"): r["expr"] for g in groups for r in g["rules"]}
    assert "memprov:memory_run_floor:bytes" not in rules
    off = rules["BatchJobMemoryAboveBaseline"]
    assert off.startswith("memprov:memory_trough:bytes{") and "2.77025e+09 + 384478 *" in off, off
    assert " or" not in off and "memory_run_floor" not in off, off


def test_process_jobs_read_their_own_environments_runs_only() -> None:
    """One Prometheus scraping the wrappers of several environments: each reads its own (issue 15)."""
    for env in ("local", "prod"):
        ws = next(r for r in _all_rules(ROOT / "memprov.yaml", env)["feature-batch"][0]["rules"] if "record" in r)
        assert f'memprov_job_rss_bytes{{memprov_job="feature-batch", memprov_env="{env}"}}' in ws["expr"]
