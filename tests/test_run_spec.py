"""A ``process`` job wrapped by ``memprov run`` gets alert rules and a dashboard on the wrapper's
own series (``memprov_job_rss_bytes``) with no exporter to set up, and ``memprov test`` proves
its alerts; a process-exporter job (``selector.groupname``) keeps its series."""

from __future__ import annotations

import json
from pathlib import Path

from provisioner.spec.model import Metrics, Selector
from provisioner.spec.sources import sources
from tests.helpers import example_repo, memprov

SERIES = 'memprov_job_rss_bytes{memprov_job="feature-batch", memprov_env="local"}'


def test_process_sources_use_the_wrapper_metrics_unless_process_exporter_is_named() -> None:
    src = sources("process", Selector(), Metrics(), "feature-batch", "local")
    assert (src.working_set, src.group_by) == (SERIES, ("instance", "memprov_job"))
    exporter = sources("process", Selector(groupname="embedder"), Metrics(), "feature-batch")
    assert exporter.working_set == 'namedprocess_namegroup_memory_bytes{groupname="embedder", memtype="resident"}'


def test_a_wrapped_process_job_gets_rules_a_dashboard_and_proven_alerts(tmp_path: Path) -> None:
    """The example spec's process job (memprov.yaml: feature-batch, run under `memprov run`) gets it all."""
    repo = example_repo(tmp_path / "repo")
    text = (repo / "memprov.yaml").read_text()
    assert "\n  feature-batch:\n" in text and "    runtime: process" in text
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
