"""The fast YAML reader reads every plain document to exactly the data and lines of the reference
walker, leaves everything else to it (so every error keeps its wording), and is what reads the
example spec and a generated spec of many jobs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.core import yamlfast
from provisioner.core.errors import SpecError
from provisioner.core.yamlio import MAX_DEPTH, MAX_NODES, _reference, dumps, loads
from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from specgen import generate


def _utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:  # refused before any YAML reader (the corpus case covers its message)
        return False
    return True


CORPUS = sorted(p for p in (ROOT / "tests" / "corpus").rglob("*.yaml") if _utf8(p))


def same_as_reference(text: str) -> None:
    try:
        expected = _reference(text, "f.yaml")
    except SpecError as e:
        with pytest.raises(SpecError) as info:
            loads(text, "f.yaml")
        assert info.value.render() == e.render()
        return
    got = loads(text, "f.yaml")
    assert json.dumps(got.data, default=repr) == json.dumps(expected.data, default=repr)  # types too: 1 vs 1.0
    assert got.data == expected.data and got.lines == expected.lines


def test_plain_specs_take_the_fast_path_to_the_same_result(tmp_path: Path) -> None:
    generate(tmp_path / "gen", jobs=300, per_file=100)
    files = [ROOT / "memprov.yaml", *(ROOT / "environments").glob("*.yaml"), *(tmp_path / "gen").rglob("*.yaml")]
    assert len(files) > 8
    for path in files:
        text = path.read_text(encoding="utf-8")
        data, lines = yamlfast.read(text, MAX_NODES, MAX_DEPTH)  # no NotPlain: the fast path reads it
        reference = _reference(text, str(path))
        assert (data, lines) == (reference.data, reference.lines), path


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT / "tests" / "corpus")))
def test_every_corpus_file_reads_as_the_reference_reads_it(path: Path) -> None:
    same_as_reference(path.read_text(encoding="utf-8"))


ODD = [
    "a: 1\nb: 1.5\nc: 0x1F\nd: 0o17\ne: 1_000\nf: .inf\ng: -.nan\nh: 1e3\ni: +12\n",
    "a: yes\nb: no\nc: on\nd: off\ne: True\nf: FALSE\ng: ~\nh: null\ni: Null\nj:\nk: ''\n",
    "a: 2026-11-30\nb: 2026-11-30T10:00:00Z\nc: 1:20\nd: 12:30:45\n",
    "a: &x {b: 1}\nc: *x\n",
    "a: {<<: {b: 1}, c: 2}\n",
    "%YAML 1.1\n---\na: yes\n",
    "a: !!str 123\nb: !!int '7'\n",
    "? [a]\n: 1\n",
    "1: a\n",
    "true: a\n",
    "a: 1\na: 2\n",
    "a: 1\n---\nb: 2\n",
    "- a\n- [b, {c: d}]\n- {e: [f, g]}\n",
    "a: |\n  x\n  y\nb: >-\n  folded\n  text\nc: \"q\\tx\\u00e9\"\nd: 'it''s'\n",
    "a: =\nb: <<\n",
    "\ufeffa: 1\n",
    "# only a comment\n",
    "---\n",
    "--- |\n  text\n",
    "a: [1, 2\n",
    "a:\n\t- b\n",
    "[" * 50 + "]" * 50,
    "x" + ": {a: " * 45 + "1" + "}" * 45,
]


@pytest.mark.parametrize("text", ODD)
def test_odd_documents_read_as_the_reference_reads_them(text: str) -> None:
    same_as_reference(text)


SCALAR = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["yes", "no", "on", "1_0", "0x1", "0o7", "1e5", ".5", "~", "null", "2026-01-01", "1:2", "="]),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
DATA = st.recursive(
    SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(st.text(max_size=8), DATA, max_size=5), flow=st.booleans())
def test_random_documents_read_as_the_reference_reads_them(data: dict[str, object], flow: bool) -> None:
    text = json.dumps(data, ensure_ascii=False) if flow else dumps(data)  # JSON is YAML flow style
    same_as_reference(text)
    same_as_reference(text.replace(": ", ":  ").replace("\n", "\n\n"))
