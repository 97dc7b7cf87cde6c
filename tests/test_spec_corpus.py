"""The invalid-spec corpus: every case fails with exactly the located messages in its ``expect.txt``.

See ``tests/corpus/invalid/README.md`` for the format. The loader is called directly for every
case; a sample also goes through the real ``memprov validate`` (exit 2, no traceback). Inputs too
big to commit (a multi-megabyte file) are generated here.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.backends.registry import configure
from provisioner.core.errors import SpecError, UsageError
from provisioner.core.yamlio import MAX_BYTES, loads
from provisioner.spec.loader import load
from tests.helpers import memprov

CORPUS = Path(__file__).parent / "corpus" / "invalid"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


@dataclass(frozen=True)
class Expect:
    why: str
    env: str
    lines: list[str]


def expectation(case: str) -> Expect:
    text = (CORPUS / case / "expect.txt").read_text(encoding="utf-8")
    comments = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    env = next((c.removeprefix("env: ") for c in comments if c.startswith("env: ")), "local")
    lines = [line for line in text.splitlines() if line and not line.startswith("# ")]
    return Expect(comments[0], env, lines)


def test_the_corpus_covers_enough_cases() -> None:
    assert len(CASES) >= 35
    for case in CASES:
        assert expectation(case).lines, f"{case}/expect.txt has no expected error line"


@pytest.mark.parametrize("case", CASES)
def test_invalid_spec_fails_with_exactly_the_expected_lines(case: str) -> None:
    expect = expectation(case)
    with pytest.raises((SpecError, UsageError)) as info:
        configure(load(CORPUS / case / "memprov.yaml", expect.env))
    assert info.value.render().splitlines() == expect.lines, expect.why
    if isinstance(info.value, SpecError):
        for problem in info.value.problems:
            assert problem.file and problem.message, problem


CLI_SAMPLE = [
    "size-8GB",
    "unknown-environment",
    "yaml-tab-indent",
    "duplicate-job-id",
    "secret-literal",
    "overlay-unknown-job",
    "alias-bomb",
    "not-utf8",
    "tag-python-object",
    "unknown-key-in-job",
    "label-name-injection",
    "runbook-url-javascript",
]


@pytest.mark.parametrize("case", CLI_SAMPLE)
def test_validate_prints_the_same_lines_and_exits_2(case: str, tmp_path: Path) -> None:
    expect = expectation(case)
    repo = shutil.copytree(CORPUS / case, tmp_path / case)
    result = memprov("validate", "--env", expect.env, cwd=repo)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"error: {line}" for line in expect.lines]
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_without_env_reports_every_environment_at_once(tmp_path: Path) -> None:
    repo = shutil.copytree(CORPUS / "overlay-unknown-job", tmp_path / "repo")
    (repo / "environments" / "dev.yaml").write_text("jobs:\n  clv-daily:\n    memory: {limit: 8GB}\n")
    result = memprov("validate", cwd=repo)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        'error: environments/dev.yaml:3: jobs.clv-daily.memory.limit: "8GB" is not a size; use 8Gi or 8589934592',
        f"error: {expectation('overlay-unknown-job').lines[0]}",
    ]


def test_alias_bomb_is_refused_quickly() -> None:
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load(CORPUS / "alias-bomb" / "memprov.yaml")
    assert time.perf_counter() - start < 2
    assert "alias bomb" in info.value.render()


def test_multi_megabyte_file_is_refused_before_parsing(tmp_path: Path) -> None:
    spec = tmp_path / "memprov.yaml"
    spec.write_text("{[" * (3 * MAX_BYTES // 2))  # 3 MiB that would be a syntax error if parsed
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load(spec)
    assert time.perf_counter() - start < 1
    assert info.value.render() == (
        "memprov.yaml: file is 3 MiB, more than the 1 MiB limit per file; move jobs into jobs/*.yaml files next "
        "to the spec (each holds jobs: {<id>: ...}), each under the limit"
    )
    result = memprov("validate", cwd=tmp_path)
    assert result.returncode == 2 and "more than the 1 MiB limit per file" in result.stderr


def test_oversized_text_is_refused_by_loads_too() -> None:
    with pytest.raises(SpecError, match="larger than 1 MiB"):
        loads("a: " + "x" * MAX_BYTES, "big.yaml")


def test_python_tags_never_construct_anything(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    spec = tmp_path / "memprov.yaml"
    spec.write_text(f'version: 1\njobs: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(SpecError) as info:
        load(spec)
    assert info.value.render() == (
        "memprov.yaml:2: jobs: tag '!!python/object/apply:os.system' is not allowed; "
        "memprov reads plain YAML only (no custom tags)"
    )
    assert not marker.exists()


def test_missing_spec_is_a_usage_error(tmp_path: Path) -> None:
    result = memprov("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: memprov.yaml: no spec here; pass --spec PATH")
