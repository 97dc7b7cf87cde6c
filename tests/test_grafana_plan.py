"""Plans of dashboard changes say in words which panels, queries and thresholds changed.

Unit tests of :mod:`provisioner.backends.grafana_diff`, and the pull-request comment
(``memprov plan --format markdown``) through the real entry point after a spec change.
"""

from __future__ import annotations

import copy
from pathlib import Path

from provisioner.backends.grafana_diff import describe, fmt_value
from provisioner.render.grafana import dashboards as grafana
from provisioner.spec.loader import load
from tests.helpers import ROOT, example_repo, memprov


def _job_dashboard() -> dict:  # type: ignore[type-arg]
    spec = load(ROOT / "memprov.yaml", "local")
    return grafana.dashboard(spec, spec.jobs[0])


def test_identical_dashboards_have_no_changes() -> None:
    dash = _job_dashboard()
    assert describe(dash, copy.deepcopy(dash)) == ()


def test_panels_queries_thresholds_variables_in_words() -> None:
    old = _job_dashboard()
    new = copy.deepcopy(old)
    ws = next(p for p in new["panels"] if p.get("title") == "Working set vs limit")
    ws["fieldConfig"]["defaults"]["thresholds"]["steps"][2]["value"] = 7 * 2**30
    ws["targets"][1]["expr"] = "max(other_limit)"
    ws["gridPos"]["h"] = 12
    new["panels"] = [p for p in new["panels"] if p.get("title") != "Anomaly z-score"]
    new["panels"].append({"type": "stat", "title": "New stat", "gridPos": {"x": 0, "y": 40, "w": 6, "h": 4}})
    new["templating"]["list"][2]["query"] = "label_values(up, node)"
    new["title"] = "renamed"
    lines = describe(new, old)
    assert "dashboard title: 'memprov · Customer lifetime value (daily) (local)' → 'renamed'" in lines
    assert 'panel "New stat" added (stat)' in lines
    assert 'panel "Anomaly z-score" removed' in lines
    assert (
        'panel "Working set vs limit": thresholds green from -∞, orange from 6GiB, red from 7.5GiB → '
        "green from -∞, orange from 6GiB, red from 7GiB"
    ) in lines
    assert any(line.startswith('panel "Working set vs limit": query B changed: `max(memprov:') for line in lines)
    assert any(
        line.startswith('panel "Working set vs limit": moved or resized (x=0 y=1 16×9 → x=0 y=1 16×12)')
        for line in lines
    )
    assert any(line.startswith('variable "node": query `label_values(memprov:') for line in lines)


def test_values_are_shown_in_the_panels_unit() -> None:
    assert fmt_value(6 * 2**30, "bytes") == "6GiB"
    assert fmt_value(0.75, "percentunit") == "75%"
    assert fmt_value(1800, "s") == "30m"
    assert fmt_value(None, "bytes") == "-∞"


def test_markdown_plan_is_a_readable_pull_request_comment(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    assert memprov("apply", "--env", "local", "--yes", cwd=repo).returncode == 0
    spec = repo / "memprov.yaml"
    spec.write_text(
        spec.read_text().replace(
            "thresholds: {warning: 78%, critical: 90%}", "thresholds: {warning: 70%, critical: 85%}"
        ),
        encoding="utf-8",
    )
    result = memprov("plan", "--env", "local", "--format", "markdown", "--backend", "grafana", cwd=repo)
    assert result.returncode == 0, result.stderr
    md = result.stdout
    assert "| grafana | `files out/local/grafana` | 0 | 2 | 0 | 4 |" in md
    assert "- **update** dashboard `memprov-local-doc-embed` — memprov · Document embeddings (LLM) (local)" in md
    assert (
        '  - panel "Working set vs limit": thresholds green from -∞, orange from 18.72GiB, red from 21.6GiB → '
        "green from -∞, orange from 16.8GiB, red from 20.4GiB"
    ) in md
    assert '  - panel "Percent of limit (now)": thresholds green from -∞, orange from 78%, red from 90% → ' in md
    assert "- **update** dashboard `memprov-local-overview`" in md
    assert '  - panel "Percent of limit now, least headroom first": series overrides changed' in md
    assert '  - panel "Jobs": display options changed (content)' in md
    assert "<details><summary>diff</summary>" in md


def test_the_provider_file_is_the_same_in_every_checkout(tmp_path: Path) -> None:
    """The provider's options.path is where Grafana reads the dashboards (targets.grafana.dashboards_path), not
    the absolute path of the checkout that rendered it: two checkouts of one spec plan the same."""
    from provisioner.backends.registry import build

    bodies = []
    for checkout in ("a/memprov", "b/elsewhere"):
        spec = load(example_repo(tmp_path / checkout) / "memprov.yaml", "local")
        [(backend, _)] = build(spec, ["grafana"])
        [provider] = [r for r in backend.desired if r.kind == "dashboard-provider"]
        bodies.append(provider.body)
    assert bodies[0] == bodies[1]
    assert bodies[0]["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/memprov-local"
    repo = example_repo(tmp_path / "c")
    env = repo / "environments" / "dev.yaml"
    env.write_text(
        env.read_text() + 'targets:\n  grafana: {type: files, dashboards_path: "/etc/grafana/dash/{env}"}\n'
        if "targets:" not in env.read_text()
        else env.read_text().replace(
            "targets:\n", 'targets:\n  grafana: {type: files, dashboards_path: "/etc/grafana/dash/{env}"}\n', 1
        ),
        encoding="utf-8",
    )
    [(backend, _)] = build(load(repo / "memprov.yaml", "dev"), ["grafana"])
    [provider] = [r for r in backend.desired if r.kind == "dashboard-provider"]
    assert provider.body["providers"][0]["options"]["path"] == "/etc/grafana/dash/dev"
    text = env.read_text().replace('dashboards_path: "/etc/grafana/dash/{env}"', "dashboards_path: dash")
    env.write_text(text, encoding="utf-8")
    bad = memprov("plan", "--env", "dev", "--backend", "grafana", cwd=repo)
    assert bad.returncode == 2 and "targets.grafana.dashboards_path" in bad.stderr, bad.stderr
