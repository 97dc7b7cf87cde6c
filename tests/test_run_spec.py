"""A ``process`` job wrapped by ``memprov run`` gets alert rules and a dashboard on the wrapper's
own series (``memprov_job_rss_bytes``) with no exporter to set up, and ``memprov test`` proves
its alerts; a process-exporter job (``selector.groupname``) keeps its series."""

from __future__ import annotations

import json
from pathlib import Path

from provisioner.promql import sources
from provisioner.spec.model import Metrics, Selector
from tests.helpers import example_repo, memprov

JOB = """
  feature-batch:
    name: Feature backfill (memprov run)
    description: Nightly feature backfill on a VM, run as `memprov run --job feature-batch -- python backfill.py`.
    owner: data-eng
    model: {name: feature-pipeline, version: "1.4"}
    runtime: process   # the series memprov run exports: memprov_job_rss_bytes{memprov_job="feature-batch"}
    memory:
      limit: 6Gi
      baseline: {runs: 20, peak_p50: 2.6Gi, peak_p95: 3Gi, peak_max: 3.3Gi, velocity: 12Mi}  # memprov baseline --runs
      thresholds: {warning: 1.5x p95, critical: 90%}
"""
SERIES = 'memprov_job_rss_bytes{memprov_job="feature-batch"}'


def test_process_sources_use_the_wrapper_metrics_unless_process_exporter_is_named() -> None:
    src = sources("process", Selector(), Metrics(), "feature-batch")
    assert (src.working_set, src.group_by) == (SERIES, ("instance", "memprov_job"))
    exporter = sources("process", Selector(groupname="embedder"), Metrics(), "feature-batch")
    assert exporter.working_set == 'namedprocess_namegroup_memory_bytes{groupname="embedder", memtype="resident"}'


def test_a_wrapped_process_job_gets_rules_a_dashboard_and_proven_alerts(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    spec = repo / "memprov.yaml"
    text = spec.read_text()
    spec.write_text(text.replace("\njobs:\n", "\njobs:\n" + JOB, 1))
    out = tmp_path / "out"
    done = memprov("render", "--env", "local", "--out", str(out), cwd=repo, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rules = "".join(p.read_text() for p in out.rglob("*.y*ml") if "feature-batch" in p.read_text())
    assert SERIES in rules, "the alert rules read the wrapper's series"
    assert "memprov:memory_working_set:bytes" in rules  # recorded from the wrapper's series…
    dashboard = json.loads((out / "grafana" / "dashboards" / "memprov-local-feature-batch.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]  # …which the dashboard draws
    assert any('memprov:memory_working_set:bytes{memprov_job="$job"' in e for e in exprs), exprs
    assert dashboard["templating"]["list"] and "feature-batch" in json.dumps(dashboard["templating"])
    done = memprov("test", "--env", "local", "--job", "feature-batch", cwd=repo, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 promtool run(s) passed for 1 job(s) in local" in done.stdout
