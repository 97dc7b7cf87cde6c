"""``memprov validate`` checks what rendering would refuse without rendering everything: every rule
expression the prometheus backend renders is parsed (built without texts, and parsed once per shape),
the repository's templates are rendered, and a bad expression is still found and located."""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.backends.artefacts import expressions, render_problems
from provisioner.backends.prometheus import PrometheusBackend
from provisioner.spec import promql_check
from provisioner.spec.loader import environments, load
from provisioner.spec.resolved import ResolvedSpec
from tests.helpers import ROOT, example_repo

sys.path.insert(0, str(ROOT / "bench"))
from specgen import generate


def _rendered(spec: ResolvedSpec) -> dict[str, Counter[tuple[str, str]]]:
    """Per job, the (rule name, expression) pairs of every rule group the backend renders."""
    out: dict[str, Counter[tuple[str, str]]] = {}
    for resource in PrometheusBackend(spec).desired:
        pairs = out.setdefault(resource.job or "", Counter())
        for rule in resource.body["rules"]:
            pairs[(rule.get("alert") or rule.get("record"), rule["expr"])] += 1
    return out


@pytest.fixture(scope="module")
def bench_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("bench") / "spec", jobs=120, per_file=50).spec_file


def test_the_expressions_checked_are_exactly_those_rendered(bench_spec: Path) -> None:
    for spec_file in (ROOT / "memprov.yaml", bench_spec):
        for env in environments(spec_file):
            spec = load(spec_file, env)
            rendered = _rendered(spec)
            assert rendered.keys() == {j.id for j in spec.jobs_using("prometheus")}
            for job in spec.jobs_using("prometheus"):
                assert Counter(expressions(spec, job)) == rendered[job.id], (spec_file, env, job.id)


def test_a_bad_expression_is_found_once_its_shape_is_known_good(tmp_path: Path) -> None:
    """A source that slipped past the spec's checks (see test_security) breaks the rules of one job only,
    even when the other jobs' expressions of the same kinds were parsed (and their shapes cached) before."""
    spec = load(example_repo(tmp_path / "repo") / "memprov.yaml")
    assert render_problems(spec) == []
    job = spec.jobs[-1]
    broken = dataclasses.replace(
        job, sources=dataclasses.replace(job.sources, working_set='m{a="b"} offset', ws_selectors=('m{a="b"} offset',))
    )
    problems = render_problems(dataclasses.replace(spec, jobs=(*spec.jobs[:-1], broken)))
    assert problems and {(p.file, p.path) for p in problems} == {("memprov.yaml", f"jobs.{job.id}")}
    assert all("is not valid PromQL" in p.message and p.line for p in problems)


VALUE = st.text(st.characters(codec="ascii"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(a=VALUE, b=VALUE, op=st.sampled_from(["=", "!=", "=~", "!~"]), name=st.sampled_from(["job", "__name__"]))
def test_expressions_of_one_shape_all_parse_or_none_does(a: str, b: str, op: str, name: str) -> None:
    """What the shape cache relies on: two expressions of one shape parse alike (checked without the cache)."""
    import promql_parser

    def parses(expr: str) -> bool:
        try:
            promql_parser.parse(expr)
        except ValueError:
            return False
        return True

    def quoted(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    for template in (
        "{{{name}{op}{v}}}",
        'max by (x) (m{{{name}{op}{v}, y="1"}}) > 0',
        "m == {v}",
        'm{{a="b"}} <= {v}',
    ):
        one, other = (template.format(name=name, op=op, v=quoted(v)) for v in (a, b))
        if promql_check.shape(one) == promql_check.shape(other):
            assert parses(one) == parses(other), (one, other)


def test_validate_of_a_split_spec_parses_each_shape_once(bench_spec: Path) -> None:
    promql_check._VALID_SHAPES.clear()
    specs = [load(bench_spec, env) for env in environments(bench_spec)]
    assert all(not render_problems(s) for s in specs)
    total = sum(len(list(expressions(s, j))) for s in specs for j in s.jobs_using("prometheus"))
    assert len(promql_check._VALID_SHAPES) < total / 5  # job and environment label values share a shape
