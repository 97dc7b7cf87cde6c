"""Property tests: whatever the input, memprov either accepts it or explains every problem — never a crash.

Three kinds of random input: YAML-ish text, structured specs mixing valid and invalid values
(with environment overlays and baselines), and the example spec with random edits. An accepted
spec must also render for every backend. A few of them go through the real CLI: exit 0 or 2,
never a traceback.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.backends.registry import build
from provisioner.core.errors import SpecError, UsageError
from provisioner.core.yamlio import dumps
from provisioner.spec.loader import load
from tests.helpers import ROOT, memprov

FAST = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
EXAMPLE = (ROOT / "memprov.yaml").read_text(encoding="utf-8")


@contextmanager
def spec_dir(files: dict[str, str | bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
        yield root


def accepts_or_explains(root: Path, env: str = "local") -> None:
    """The property: a resolved spec that renders, or a SpecError/UsageError with a message per problem."""
    try:
        spec = load(root / "memprov.yaml", env)
    except SpecError as e:
        assert e.problems
        for problem in e.problems:
            assert problem.message.strip() and problem.file, problem
            assert "Traceback" not in problem.render() and "\n" not in problem.render(), problem
    except UsageError as e:
        assert str(e).strip()
    else:
        for backend, _ in build(spec):
            assert isinstance(backend.desired, list)


# --- unstructured text ----------------------------------------------------------------------------
yamlish = st.lists(
    st.sampled_from([*"ab1:-{}[]#&*!|>'\"%@`,? \n\t.~<=\x00", "jobs", "version", "<<", "---", "!!python/object"]),
    max_size=40,
).map("".join)


@FAST
@given(yamlish)
def test_any_text_is_accepted_or_explained(text: str) -> None:
    with spec_dir({"memprov.yaml": text}) as root:
        accepts_or_explains(root)


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_are_accepted_or_explained(raw: bytes) -> None:
    with spec_dir({"memprov.yaml": b"version: 1\n" + raw}) as root:
        accepts_or_explains(root)


# --- structured specs -----------------------------------------------------------------------------
junk = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@dataclass(frozen=True)
class Grammar:
    """Spec strategies; ``bad`` mixes invalid values and junk in, else every value is valid on its own
    (cross-field rules may still fail: warning above critical, thresholds above the limit...)."""

    bad: bool

    def maybe(self, valid: st.SearchStrategy[Any], *invalid: Any) -> st.SearchStrategy[Any]:
        if not self.bad:
            return valid
        return st.one_of(valid, valid, valid, st.sampled_from(invalid), junk) if invalid else st.one_of(valid, junk)

    def pick(self, valid: list[Any], invalid: list[Any]) -> st.SearchStrategy[Any]:
        return self.maybe(st.sampled_from(valid), *invalid)

    def text(self, n: int) -> st.SearchStrategy[str]:
        """Any text when ``bad``, else printable text (control characters are refused on their own)."""
        printable = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
        return st.text(max_size=n) if self.bad else st.text(printable, max_size=n)

    def key(self, valid: list[str], invalid: list[Any]) -> st.SearchStrategy[Any]:
        """Like :meth:`pick`, for mapping keys (hashable: no junk lists or mappings)."""
        return (
            st.sampled_from(valid) | st.sampled_from(invalid) | st.text(max_size=6)
            if self.bad
            else st.sampled_from(valid)
        )

    def spec(self) -> st.SearchStrategy[dict[str, Any]]:
        size = self.pick(["8Gi", "512Mi", "7.5Gi", "4G", 8589934592, "16Gi"], ["8GB", "0", -1, "lots", 1.5, "9999Pi"])
        duration = self.pick(["30s", "5m", "1h30m", "10m", "1w"], ["0s", "5m1h", 30, "30 seconds", "1y"])
        threshold = self.pick(
            ["80%", "90%", "75%", "6Gi", "7.5Gi", "1.5x p95", "1.2x max", "2x p50"],
            ["120%", "0%", 0.8, "high", "8GB", "0x p95"],
        )
        thresholds = st.fixed_dictionaries({"warning": threshold, "critical": threshold})
        job_id = self.key(["clv-daily", "image-embed", "doc-embed", "a"], ["Clv", "clv_daily", "1clv", "x" * 41, 2026])
        channels = ["ml-platform-slack", "ml-oncall-pagerduty", "data-eng"]
        channel = self.pick(channels, ["Bad_Channel", "nope"])
        secret = self.pick([{"env": "SLACK_URL"}, {"file": "/run/secrets/x"}], ["https://hooks", {}, {"env": "a-b"}])
        notification = self.maybe(
            st.one_of(
                st.fixed_dictionaries({"type": st.just("slack"), "channel": st.just("#ml"), "webhook_url": secret}),
                st.fixed_dictionaries({"type": st.just("pagerduty"), "routing_key": secret}),
                st.fixed_dictionaries({"type": st.just("webhook"), "url": st.just("https://x.example.com/hook")}),
                st.fixed_dictionaries(
                    {"type": st.just("opsgenie"), "api_key": secret}, optional={"priority": self.pick(["P1"], ["P9"])}
                ),
            ),
            {"type": "slak"},
            {"channel": "#x"},
        )
        route = st.fixed_dictionaries(
            {}, optional={s: st.one_of(channel, st.lists(channel, max_size=3)) for s in ("info", "warning", "critical")}
        )
        baseline = st.fixed_dictionaries(
            {}, optional={"peak_p95": size, "peak_p50": size, "peak_max": size, "runs": self.pick([30], [-1, "x"])}
        )
        memory = st.fixed_dictionaries({"limit": size}, optional={"baseline": baseline, "thresholds": thresholds})
        growth = st.fixed_dictionaries(
            {}, optional={"factor": self.pick([1.5, 3], [0.5, float("inf")]), "window": duration, "for": duration}
        )
        extra: dict[str, Any] = {"colour": junk} if self.bad else {}
        job = self.maybe(
            st.fixed_dictionaries(
                {
                    "owner": self.pick(["data-eng"], [""]),
                    "model": st.just({"name": "m", "version": "1"}),
                    "memory": memory,
                },
                optional={
                    "runtime": self.pick(["kubernetes", "vm", "process"], ["k8s"]),
                    "selector": st.fixed_dictionaries(
                        {},
                        optional={
                            "namespace": self.pick(["batch"], [3]),
                            "instance": self.text(6),
                            "regex": st.dictionaries(st.sampled_from(["pod", "instance"]), st.just("x.*"), max_size=1),
                        },
                    ),
                    "route": route,
                    "backends": st.lists(
                        self.pick(["prometheus", "alertmanager", "grafana"], ["cloudwatch"]), max_size=3
                    ),
                    "growth": growth,
                    "time_to_oom": st.fixed_dictionaries({}, optional={"horizon": duration}),
                    "trough_window": duration,
                    "labels": st.dictionaries(st.sampled_from(["tier", "x"]), self.maybe(self.text(5)), max_size=2),
                    "metrics": st.fixed_dictionaries({}, optional={"working_set": self.pick(["a_b"], ["a-b", "1x"])}),
                    "name": self.text(12),
                    **extra,
                },
            ),
        )
        defaults = st.fixed_dictionaries(
            {},
            optional={
                "scrape_interval": duration,
                "thresholds": thresholds,
                "route": route,
                "growth": growth,
                "anomaly": st.fixed_dictionaries({}, optional={"weeks": self.pick([2], [0, 9]), "compare": duration}),
                "backends": st.lists(self.pick(["prometheus", "grafana"], ["x"]), max_size=2),
                **({"scrape_intervall": junk} if self.bad else {}),
            },
        )
        return st.fixed_dictionaries(
            {"version": self.pick([1], [2, "1"])},
            optional={
                "name": self.pick(["batch-inference"], ["Batch Inference", ""]),
                "defaults": defaults,
                "notifications": st.fixed_dictionaries({}, optional={c: notification for c in channels}),
                "jobs": st.dictionaries(job_id, job, max_size=3),
                **({"jbos": junk} if self.bad else {}),
            },
        )

    def overlay(self) -> st.SearchStrategy[dict[str, Any]]:
        spec = self.spec()
        return st.fixed_dictionaries(
            {},
            optional={
                "jobs": spec.map(lambda s: s.get("jobs", {})),
                "defaults": spec.map(lambda s: s.get("defaults", {})),
                "targets": st.dictionaries(
                    self.key(["prometheus", "grafana"], ["grafna"]),
                    self.pick([{"type": "files"}, {"type": "files", "dir": "elsewhere"}], [{"type": "graphana"}]),
                    max_size=2,
                ),
                "version": self.pick([1], [2]),
                "name": self.pick(["batch-inference"], ["other"]),
                "grafana_url": self.pick(["https://grafana.example.com"], ["http://x/", 3]),
                "labels": st.dictionaries(st.sampled_from(["cluster"]), self.maybe(self.text(5)), max_size=1),
            },
        )

    def baselines(self) -> st.SearchStrategy[dict[str, Any]]:
        size = self.pick(["4Gi", 4294967296], ["4GB"])
        entry = st.fixed_dictionaries({}, optional={"peak_p95": size, "peak_p50": size})
        return st.fixed_dictionaries({}, optional={"jobs": st.dictionaries(st.sampled_from(["clv-daily", "a"]), entry)})


def structured(bad: bool) -> st.SearchStrategy[dict[str, str | bytes]]:
    g = Grammar(bad)

    def files(parts: tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]) -> dict[str, str | bytes]:
        spec, env, base = parts
        out: dict[str, str | bytes] = {"memprov.yaml": dumps(spec)}
        if env is not None:
            out["environments/prod.yaml"] = dumps(env)
        if base is not None:
            out["baselines/prod.yaml"] = dumps(base)
        return out

    return st.tuples(g.spec(), st.none() | g.overlay(), st.none() | g.baselines()).map(files)


@FAST
@given(structured(bad=True))
def test_structured_specs_with_bad_values_are_accepted_or_explained(files: dict[str, str | bytes]) -> None:
    with spec_dir(files) as root:
        accepts_or_explains(root, "prod" if "environments/prod.yaml" in files else "local")


@FAST
@given(structured(bad=False))
def test_structured_specs_with_valid_values_resolve_render_or_explain(files: dict[str, str | bytes]) -> None:
    with spec_dir(files) as root:
        accepts_or_explains(root, "prod" if "environments/prod.yaml" in files else "local")


# --- the example spec with random edits -----------------------------------------------------------
@st.composite
def edited_example(draw: st.DrawFn) -> str:
    lines = EXAMPLE.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "replace", "insert", "indent"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = " " * draw(st.integers(1, 3)) + lines[i]
        else:
            start = draw(st.integers(0, len(lines[i])))
            end = draw(st.integers(start, len(lines[i]))) if op == "replace" else start
            lines[i] = lines[i][:start] + draw(yamlish.filter(lambda t: "\n" not in t)) + lines[i][end:]
        if not lines:
            break
    return "\n".join(lines) + "\n"


@FAST
@given(edited_example())
def test_edited_example_is_accepted_or_explained(text: str) -> None:
    with spec_dir({"memprov.yaml": text}) as root:
        accepts_or_explains(root)


@settings(deadline=None, max_examples=6, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(edited_example(), Grammar(bad=True).spec().map(dumps)))
def test_the_cli_exits_0_or_2_and_never_shows_a_traceback(text: str) -> None:
    with spec_dir({"memprov.yaml": text}) as root:
        result = memprov("validate", "--env", "local", cwd=root)
    assert result.returncode in (0, 2), result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    if result.returncode == 2:
        assert result.stderr and all(line.startswith("error: ") for line in result.stderr.splitlines())
