"""YAML in and out: line numbers, merge keys, refusals, and dumps that YAML 1.1 readers read back the same."""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import pytest
import yaml as pyyaml  # PyYAML: a YAML 1.1 reader, like the Go parsers of Prometheus and Alertmanager
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.core.errors import SpecError
from provisioner.core.yamlio import MAX_DEPTH, WIDTH, _dumps_libyaml, _dumps_text, dumps, dumps_fast, dumps_pure, loads


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
    assert error("a: 1\nb: !!bool x\n") == "f.yaml:2: b: cannot read 'x': not a !!bool value"


def test_yaml_version_directive_and_repeated_reads_resolve_alike() -> None:
    text = "a: yes\nb: 0o17\nc: 1e3\nd: true\ne: ~\nf: 2026-11-30\ng: !!str 1\n"
    expected = {"a": "yes", "b": 15, "c": 1000.0, "d": True, "e": None, "f": "2026-11-30", "g": "1"}
    for _ in range(3):  # each read finds the document's version afresh
        assert loads(text, "f.yaml").data == expected
    assert loads("%YAML 1.2\n---\n" + text, "f.yaml").data == expected


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


# --- the fast (libyaml) dumper writes exactly what the pure-Python one writes ----------------------
TRICKY = [
    "sum(rate(x[5m]))\n  / on (pod)\nsum(y)",  # multi-line: literal block
    "first\n\nthird\n",  # blank line, final line break
    "  leading spaces\nsecond",  # literal block with an indentation indicator
    "a  \nb",  # a line with trailing spaces: not a literal block
    "one line\n",  # only a final line break
    "\n",
    "Données (€) — «ok» ½ ü 中文 \ufffd",  # unicode inside the BMP
    "  leading spaces",
    "trailing space ",
    *("yes", "no", "on", "off", "y", "N", "True", "null", "Null", "~", "", "1:20", "<<", "="),
    *("0", "1.5", "-2", "0o17", "0x1F", "1e3", "1_000", "010", ".5", "+1", "2026-11-30", "1.0e+17", ".inf", ".NaN"),
    "x" * (WIDTH // 3),  # long, no spaces
    "word " * 250,  # long, with spaces
    "key: value",
    "ends with colon:",
    "a #comment",
    "#not a comment",
    "it's the job's memory",
    "'quoted'",
    "job 'x'",
    '"double"',
    "{{ $labels.pod }} at {{ $value | humanize1024 }}B",
    '{{ with query (printf "max(x{job=%q})" $labels.job) }}{{ . | first | value }}{{ end }}',
    "- dash",
    "? question",
    "!tag",
    "&anchor",
    "*alias",
    "%directive",
    "@at",
    "`backtick",
    "[list]",
    "{map}",
    "| pipe",
    "> fold",
    "back\\slash",
    "---",
    "...",
    "tab\tinside",
    "cr\rinside",
    "control\x07",
    "bom\ufeff",
    "nbsp\xa0",
    "line\u2028separator",
    "emoji 😀",
    "kept\nbreaks\n\n",
]


def _shapes(value: str) -> list[object]:
    return [{"v": value}, {value or "k": 1}, [value], {"a": [{"b": value, "c": [value]}]}, {"a": {"b": {"c": value}}}]


@pytest.mark.parametrize("value", TRICKY)
def test_fast_and_pure_dumpers_write_the_same_text(value: str) -> None:
    for data in _shapes(value):
        fast = dumps_fast(data)
        pure = dumps_pure(data)
        assert fast is None or fast == pure, (data, fast, pure)
        assert dumps(data) == pure
        assert loads(pure, "f.yaml").data == data


@pytest.mark.parametrize(
    "value",
    [
        "sum(rate(x[5m]))\n  / on (pod)\nsum(y)",
        "one line\n",
        "a  \nb",
        "Données (€)",
        "  leading spaces",
        "yes",
        "null",
        "1.5",
        "1e3",
        "key: value",
        "a #comment",
        "it's the job's memory",
        "word " * 250,
        "{{ $labels.pod }}",
    ],
)
def test_ordinary_strings_take_the_fast_path(value: str) -> None:
    assert dumps_fast({"v": value, "l": [value], "m": {"k": value}}) is not None
    if len(value) <= 100:
        assert dumps_fast({value: 1}) is not None


@pytest.mark.parametrize(
    "value", ["emoji 😀", "control\x07", "cr\rinside", "tab\tinside", "kept\nbreaks\n\n", "'x' + y", "x " * WIDTH]
)
def test_what_the_emitters_write_differently_is_left_to_the_pure_one(value: str) -> None:
    data = {"v": value}
    assert dumps_fast(data) is None
    assert dumps(data) == dumps_pure(data)


@pytest.mark.parametrize("length", [1, 99, 100, 101, 122, 123, 127, 128, 129, 200])
def test_long_keys_are_written_alike(length: int) -> None:
    for data in ({"k" * length: 1}, {"a b " * (length // 4) + "x" * (length % 4): [1]}):
        fast = dumps_fast(data)
        assert fast is None or fast == dumps_pure(data)
        assert dumps(data) == dumps_pure(data)
    assert (dumps_fast({"k" * length: 1}) is None) == (length > 100)


@pytest.mark.parametrize("key", [1, 2.5, True, None, (1, 2)])
def test_keys_that_are_not_strings_are_left_to_the_pure_dumper(key: object) -> None:
    assert dumps_fast({key: 1}) is None
    assert dumps({key: 1}) == dumps_pure({key: 1})


def test_fast_dumper_numbers_and_other_values() -> None:
    data = {"f": [1e17, 1e-05, 0.5, -0.0, float("inf"), float("-inf"), float("nan")], "i": [0, -7, 10**30]}
    data["b"] = [True, False, None]
    data["t"] = ("tuple", 1)
    data["e"] = [{}, []]
    assert dumps_fast(data) == dumps_pure(data)
    assert dumps_fast(data) is not None


@pytest.mark.parametrize("value", [datetime.date(2026, 11, 30), b"bytes", {1, 2}, "scalar", 3, None])
def test_values_outside_plain_data_are_left_to_the_pure_dumper(value: object) -> None:
    data = value if isinstance(value, str | int) or value is None else {"v": value}
    assert dumps_fast(data) is None
    assert dumps(data) == dumps_pure(data)


def test_every_file_rendered_from_the_example_spec_takes_the_fast_path() -> None:
    from provisioner.backends.registry import BACKENDS
    from provisioner.spec.loader import load

    root = Path(__file__).resolve().parents[1]
    seen = 0
    for env in ("local", "dev", "staging", "prod"):
        spec = load(root / "memprov.yaml", env)
        for name in ("prometheus", "alertmanager"):
            backend = BACKENDS[name](spec)
            for resource in backend.render():
                fast = dumps_fast(resource.body)
                assert fast is not None, resource.key
                assert fast == dumps_pure(resource.body), resource.key
                seen += 1
    assert seen > 10


tricky_text = st.text(
    alphabet=st.sampled_from(
        [*" \t\n\r:#-?,[]{}&*!|>'\"%@`~=<.+_/\\0123456789eExXoOaZ", "é", "€", "\u2028", "\x85", "\xa0", "😀"]
    ),
    max_size=25,
) | st.sampled_from(TRICKY)
tricky = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(tricky_text, tricky, max_size=4) | st.lists(tricky, max_size=4))
def test_fast_dumper_matches_the_pure_one_on_random_documents(data: object) -> None:
    fast = dumps_fast(data)
    assert fast is None or fast == dumps_pure(data)


# --- the text dumper writes exactly what libyaml writes -----------------------------------------------
@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(tricky_text, tricky, max_size=4) | st.lists(tricky, max_size=4))
def test_text_dumper_matches_libyaml_on_random_documents(data: object) -> None:
    text = _dumps_text(data)
    assert text is None or text == _dumps_libyaml(data)


@pytest.mark.parametrize("value", TRICKY)
def test_text_dumper_matches_libyaml_on_tricky_strings(value: str) -> None:
    for data in [*_shapes(value), [[value, [value]], {"k": [[value]]}, {}], {"e": {}, "l": [], "x": [{}, []]}]:
        text = _dumps_text(data)
        assert text is None or text == _dumps_libyaml(data), data


@pytest.mark.parametrize(
    "value",
    [
        "sum(rate(x[5m]))\n  / on (pod)\nsum(y)",
        "two\nlines\n",
        "\nleading break\nx",
        "  leading spaces\nx",
        "Données (€)",
        "  leading spaces",
        "yes",
        "null",
        "1.5",
        "key: value",
        "a #comment",
        "it's the job's memory",
        "{{ $labels.pod }}",
        "- dash",
        "-dash",
    ],
)
def test_ordinary_strings_take_the_text_path(value: str) -> None:
    data = {"v": value, "l": [value, [value]], "m": {"k": value, "n": [{"x": value}]}}
    text = _dumps_text(data)
    assert text is not None
    assert text == _dumps_libyaml(data) == dumps_pure(data)
    if "\n" not in value:
        assert _dumps_text({value: 1}) == _dumps_libyaml({value: 1}) is not None


def test_numbers_and_constants_take_the_text_path() -> None:
    data = {"f": [1e17, 1e-05, 0.5, -0.0, float("inf"), float("-inf"), float("nan")], "i": [0, -7, 10**30]}
    data["b"] = [True, False, None]
    data["t"] = ("tuple", 1)
    assert _dumps_text(data) == _dumps_libyaml(data) == dumps_pure(data)
    assert _dumps_text(data) is not None


@pytest.mark.parametrize(
    "data",
    [
        {},
        [],
        {"v": "a  \nb"},
        {"v": "one line\n"},
        {"k\nk": 1},
        {"k" * 101: 1},
        {1: 1},
        {"v": datetime.date(2026, 11, 30)},
        {"v": "x\x07"},
    ],
)
def test_what_the_text_dumper_is_not_sure_of_goes_to_libyaml(data: object) -> None:
    assert _dumps_text(data) is None
    assert dumps(data) == dumps_pure(data)


def test_every_file_rendered_from_a_generated_spec_takes_the_text_path(tmp_path: Path) -> None:
    """The bench's spec (every runtime, threshold kind, overlay and route) and the example spec."""
    import sys

    from provisioner.backends.registry import BACKENDS
    from provisioner.spec.loader import load

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "bench"))
    from specgen import generate

    generated = generate(tmp_path / "spec", jobs=150, per_file=60).spec_file
    seen = 0
    for spec_file in (generated, root / "memprov.yaml"):
        for env in ("local", "dev", "staging", "prod"):
            spec = load(spec_file, env)
            for name in ("prometheus", "alertmanager"):
                for resource in BACKENDS[name](spec).render():
                    text = _dumps_text(resource.body)
                    assert text is not None, resource.key
                    assert text == _dumps_libyaml(resource.body), resource.key
                    seen += 1
    assert seen > 1000


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 100_000 + "]" * 100_000,  # flow nesting: ruamel's C parser would crash the process
        "a:\n  " + "- " * 30_000 + "x\n",  # compact block sequences, two characters a level
        "a: " + "{b: " * 20_000 + "1" + "}" * 20_000,
    ],
)
def test_nesting_that_would_crash_the_parser_is_refused_first(text: str) -> None:
    with pytest.raises(SpecError) as e:
        loads(text, "deep.yaml")
    assert "nesting deeper than 40 levels; flatten the document" in e.value.render()
