"""YAML in and out: line numbers, merge keys, refusals, and dumps that YAML 1.1 readers read back the same."""

from __future__ import annotations

import textwrap

import pytest
import yaml as pyyaml  # PyYAML: a YAML 1.1 reader, like the Go parsers of Prometheus and Alertmanager
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.errors import SpecError
from provisioner.yamlio import MAX_DEPTH, dumps, loads


def doc(text: str) -> object:
    return loads(textwrap.dedent(text), "f.yaml")


def error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        loads(textwrap.dedent(text), "f.yaml")
    return info.value.render()


def test_every_key_and_item_has_its_line() -> None:
    d = loads("# comment\nversion: 1\njobs:\n  a:\n    owner: me\n    tags:\n      - x\n      - y\n", "f.yaml")
    assert d.data == {"version": 1, "jobs": {"a": {"owner": "me", "tags": ["x", "y"]}}}
    assert d.lines[("version",)] == 2
    assert d.lines[("jobs",)] == 3
    assert d.lines[("jobs", "a")] == 4
    assert d.lines[("jobs", "a", "owner")] == 5
    assert d.lines[("jobs", "a", "tags", 1)] == 8
    assert d.line_of(("jobs", "a", "owner", "nothing", "deeper")) == 5  # the longest known prefix
    assert d.line_of(("elsewhere",)) == 2  # unknown: the document's first line


def test_flow_style_keys_have_their_own_lines() -> None:
    d = loads("jobs: {a: {limit: 8Gi},\n  b: {limit: 4Gi}}\n", "f.yaml")
    assert d.lines[("jobs", "a", "limit")] == 1
    assert d.lines[("jobs", "b", "limit")] == 2


def test_empty_document_is_an_empty_mapping() -> None:
    assert loads("", "f.yaml").data == {}
    assert loads("# only a comment\n", "f.yaml").data == {}


def test_merge_key_with_one_mapping() -> None:
    d = doc(
        """\
        base: &base {owner: me, runtime: vm}
        job:
          <<: *base
          runtime: kubernetes
        """
    )
    assert d.data["job"] == {"owner": "me", "runtime": "kubernetes"}  # type: ignore[index]


def test_merge_key_explicit_keys_win_wherever_they_are() -> None:
    d = doc(
        """\
        base: &base {owner: me, runtime: vm}
        job:
          runtime: process
          <<: *base
        """
    )
    assert d.data["job"] == {"runtime": "process", "owner": "me"}  # type: ignore[index]


def test_merge_key_with_a_list_the_first_mapping_wins() -> None:
    d = doc(
        """\
        a: &a {x: 1, y: 1}
        b: &b {y: 2, z: 2}
        job:
          <<: [*a, *b]
        """
    )
    assert d.data["job"] == {"x": 1, "y": 1, "z": 2}  # type: ignore[index]


def test_merged_keys_point_at_the_anchor_line() -> None:
    d = loads("base: &base\n  owner: me\njob:\n  <<: *base\n", "f.yaml")
    assert d.lines[("job", "owner")] == 2


def test_merge_key_needs_mappings() -> None:
    assert error("job:\n  <<: 3\n") == "f.yaml:2: job: '<<' merge needs a mapping or a list of mappings"
    assert error("job:\n  <<: [1]\n") == "f.yaml:2: job: '<<' merge needs a mapping or a list of mappings"


def test_duplicate_keys_name_both_lines() -> None:
    assert error("a: 1\nb: 2\na: 3\n") == "f.yaml:3: a: duplicate key 'a' (first defined at line 1); keep only one"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1: x\n", 'f.yaml:1: key 1 must be a string; quote it ("1")'),
        ("on: x\nyes: y\n", None),  # YAML 1.2: plain words, read as the strings they are
        ("true: x\n", 'f.yaml:1: key true must be a string; quote it ("true")'),
        ("~: x\n", 'f.yaml:1: key ~ must be a string; quote it ("~")'),
        ("? [a]\n: x\n", "f.yaml:1: keys must be plain strings, not lists or mappings"),
        ("1.5: x\n", 'f.yaml:1: key 1.5 must be a string; quote it ("1.5")'),
    ],
)
def test_keys_must_be_strings(text: str, message: str | None) -> None:
    if message is None:
        assert loads(text, "f.yaml").data == {"on": "x", "yes": "y"}
    else:
        assert error(text) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!python/object:os.system {}\n", "f.yaml:1: a: tag '!!python/object:os.system' is not allowed"),
        ("a: !!python/name:os.system\n", "f.yaml:1: a: tag '!!python/name:os.system' is not allowed"),
        ("a: !!binary aGVsbG8=\n", "f.yaml:1: a: tag '!!binary' is not allowed"),
        ("a: !!set {x, y}\n", "f.yaml:1: a: tag '!!set' is not allowed"),
        ("a: !!omap [x: 1]\n", "f.yaml:1: a: tag '!!omap' is not allowed"),
        ("a: [1, !env X]\n", "f.yaml:1: a[1]: tag '!env' is not allowed"),
    ],
)
def test_only_plain_yaml_tags(text: str, message: str) -> None:
    assert error(text) == message + "; memprov reads plain YAML only (no custom tags)"
    assert error("b:\n  !key a: 1\n") == "f.yaml:2: b: tag '!key' is not allowed on a key"


def test_standard_tags_and_dates_are_plain_values() -> None:
    d = loads("a: !!str 3\nb: !!int '4'\nc: 2026-11-01\nd: !!float 1\n", "f.yaml")
    assert d.data == {"a": "3", "b": 4, "c": "2026-11-01", "d": 1.0}


def test_a_standard_tag_on_a_wrong_value_is_located() -> None:
    assert error("a: 1\nb: !!int abc\n").startswith("f.yaml:2: ")


def test_nesting_is_limited() -> None:
    text = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    assert error(text).endswith(f"nesting deeper than {MAX_DEPTH} levels; flatten the document")


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{c}: &{c} [{', '.join(['*' + p] * 10)}]" for p, c in zip("abcdefg", "bcdefgh", strict=True)]
    assert "alias bomb" in error("\n".join(lines) + "\n")


def test_reasonable_aliases_are_fine() -> None:
    d = loads("a: &a {x: 1}\nb: [*a, *a]\n", "f.yaml")
    assert d.data == {"a": {"x": 1}, "b": [{"x": 1}, {"x": 1}]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\n", "f.yaml:2: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence)"),
        ("a: 'x\n", "f.yaml:2: YAML syntax error: found unexpected end of stream (while scanning a quoted scalar)"),
        ("a:\n\tb: 2\n", "f.yaml:2: YAML syntax error: found character that cannot start any token"),
        ("a: 1\n\tb: 2\n", "f.yaml:2: YAML syntax error: found a tab character that violates indentation"),
        ("a: b: c\n", "f.yaml:1: YAML syntax error: mapping values are not allowed in this context"),
        ("a: &x 1\nb: *y\n", "f.yaml:2: YAML syntax error: found undefined alias"),
        ("a: 1\n---\nb: 2\n", "f.yaml:2: a second YAML document starts here ('---'); a memprov file holds one"),
        ("a: x\x07y\n", "f.yaml:1: contains the character U+0007, which YAML does not allow"),
        ("a: 1\nb: x\x00\n", "f.yaml:2: contains the character U+0000, which YAML does not allow"),
    ],
)
def test_syntax_errors_are_located(text: str, message: str) -> None:
    assert error(text).startswith(message)


# --- dumping --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "word", ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF", "true", "False", "null", "~", "", "1:20"]
)
def test_yaml11_words_are_quoted(word: str) -> None:
    text = dumps({"v": word})
    assert text.startswith("v: '"), text
    assert pyyaml.safe_load(text) == {"v": word}
    assert loads(text, "f.yaml").data == {"v": word}


def test_dump_keeps_order_and_writes_block_style() -> None:
    assert dumps({"b": 1, "a": [1, {"z": 2, "x": True}]}) == "b: 1\na:\n- 1\n- z: 2\n  x: true\n"


def test_dump_multiline_strings_as_literal_blocks() -> None:
    expr = "sum(rate(x[5m]))\n  / on (pod)\nsum(y)"
    text = dumps({"expr": expr})
    assert text == "expr: |-\n  sum(rate(x[5m]))\n    / on (pod)\n  sum(y)\n"
    assert pyyaml.safe_load(text) == {"expr": expr}
    trailing = "a  \nb"  # trailing spaces cannot be kept in a literal block: quoted instead
    assert pyyaml.safe_load(dumps({"s": trailing})) == {"s": trailing}


def test_dump_never_writes_aliases_and_never_wraps() -> None:
    shared = {"k": "v"}
    long = "x " * 1000
    text = dumps({"a": shared, "b": shared, "long": long})
    assert "&" not in text and "*" not in text
    assert len(text.splitlines()) == 5
    assert pyyaml.safe_load(text)["long"] == long


@pytest.mark.parametrize("value", ["a\x1eb", "\n\x1e", "x\u2028y", "a\x85b", "tab\there\nand a line", "\ufeffbom"])
def test_dump_escapes_control_characters_and_odd_line_breaks(value: str) -> None:
    text = dumps({"v": value})
    assert text.isprintable() or text.replace("\n", "").isprintable()
    assert loads(text, "f.yaml").data == {"v": value}
    assert pyyaml.safe_load(text) == {"v": value}


def test_dump_header_and_unicode() -> None:
    text = dumps({"name": "Données (€)"}, header="# generated\n")
    assert text == "# generated\nname: Données (€)\n"


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=10), plain, max_size=5))
def test_dumps_reads_back_the_same_in_yaml_1_1_and_1_2(data: dict[str, object]) -> None:
    text = dumps(data)
    assert loads(text, "f.yaml").data == data
    assert pyyaml.safe_load(text) == data
