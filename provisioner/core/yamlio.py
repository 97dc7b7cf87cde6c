"""YAML in and out.

Loading composes the document with ruamel.yaml (libyaml parser when available) and builds plain
Python data ourselves, recording the line of every key so that validation errors can point at
``file:line`` (plain documents are read to the same data and lines, faster, by :mod:`.yamlfast`).
The walk refuses what would hurt: files over ``MAX_BYTES``, alias expansion past ``MAX_NODES``
(a "billion laughs" document), nesting deeper than ``MAX_DEPTH``, duplicate keys, and non-string
keys. Dumping is deterministic (sorted keys where asked, block style, no aliases).
"""

from __future__ import annotations

import importlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.core import yamlfast
from provisioner.core.errors import Problem, SpecError, dotted
from provisioner.core.gcpause import collector_paused

_CORE = "tag:yaml.org,2002:"
SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}
MAPPING_TAG, SEQUENCE_TAG, MERGE_TAG, TIMESTAMP_TAG = (f"{_CORE}{t}" for t in ("map", "seq", "merge", "timestamp"))
MAX_BYTES = 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 40
SPLIT_HINT = "move jobs into jobs/*.yaml files next to the spec (each holds jobs: {<id>: ...}), each under the limit"

Loc = tuple[str | int, ...]


@dataclass
class Document:
    """Plain data from one YAML file plus the line of every key path in it."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """Line of the longest prefix of ``loc`` that is known (1-based)."""
        for n in range(len(loc), -1, -1):
            line = self.lines.get(loc[:n])
            if line is not None:
                return line
        return None


def _yaml(pure: bool = False) -> Any:
    from ruamel.yaml import YAML

    try:
        yaml = YAML(typ="safe", pure=pure)
    except Exception:  # pragma: no cover - libyaml missing
        yaml = YAML(typ="safe", pure=True)
    yaml.Resolver = _resolver_class()
    return yaml


_RESOLVER: list[type] = []


def _resolver_class() -> type:
    """ruamel's resolver, which looks up the document's YAML version once instead of at every scalar.

    ``VersionedResolver.versioned_resolver`` finds the version (a ``%YAML`` directive, else the
    default) through a chain of attribute lookups that fail, for every scalar it resolves. It
    cannot change within a document (a directive comes before the content, and memprov reads
    one document per file), so the first answer is kept on the instance, which is made afresh
    for every :func:`loads`.
    """
    if not _RESOLVER:
        from ruamel.yaml.resolver import VersionedResolver

        class Resolver(VersionedResolver):
            @property
            def versioned_resolver(self) -> Any:
                table = self.__dict__.get("_table_of_this_document")
                if table is None:
                    table = self.__dict__["_table_of_this_document"] = super().versioned_resolver
                return table

        _RESOLVER.append(Resolver)
    return _RESOLVER[0]


_STR_TAG = f"{_CORE}str"


class _Walker:
    def __init__(self, file: str, yaml: Any, max_nodes: int = MAX_NODES) -> None:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self.file = file
        self.lines: dict[Loc, int] = {}
        self.nodes = 0
        self.max_nodes = max_nodes
        self.constructor = yaml.constructor
        self.kinds = (ScalarNode, SequenceNode, MappingNode)

    def fail(self, line: int, path: Loc, message: str) -> SpecError:
        return SpecError([Problem(message, self.file, line, dotted(path))])

    def walk(self, node: Any, path: Loc, depth: int) -> Any:
        scalar_node, sequence_node, mapping_node = self.kinds
        self.nodes += 1
        line = node.start_mark.line + 1
        if self.nodes > self.max_nodes:
            raise self.fail(
                line,
                path[:2],
                f"document expands to more than {self.max_nodes} values (alias bomb?); "
                f"simplify the anchors/aliases or {SPLIT_HINT}",
            )
        if depth > MAX_DEPTH:
            raise self.fail(line, path, f"nesting deeper than {MAX_DEPTH} levels; flatten the document")
        self.lines.setdefault(path, line)
        node_tag = node.tag  # a property that builds the text each time: read once
        is_scalar = isinstance(node, scalar_node)
        if node_tag not in (SCALAR_TAGS if is_scalar else _COLLECTION_TAGS):
            tag = node_tag.replace(_CORE, "!!")
            raise self.fail(line, path, f"tag '{tag}' is not allowed; memprov reads plain YAML only (no custom tags)")
        if is_scalar:
            return self.scalar(node, node_tag, path)
        if isinstance(node, sequence_node):
            return [self.walk(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, mapping_node):
            out: dict[str, Any] = {}
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                kline = key_node.start_mark.line + 1
                key_tag = key_node.tag
                if key_tag == MERGE_TAG:
                    merged = self.walk(value_node, path, depth + 1)
                    for src in merged if isinstance(merged, list) else [merged]:
                        if not isinstance(src, dict):
                            raise self.fail(kline, path, "'<<' merge needs a mapping or a list of mappings")
                        for k, v in src.items():
                            out.setdefault(k, v)
                    continue
                if not isinstance(key_node, scalar_node):
                    raise self.fail(kline, path, "keys must be plain strings, not lists or mappings")
                if key_tag not in SCALAR_TAGS:
                    tag = str(key_tag).replace(_CORE, "!!")
                    raise self.fail(kline, path, f"tag '{tag}' is not allowed on a key")
                key = self.scalar(key_node, key_tag, path)
                if not isinstance(key, str):
                    raise self.fail(
                        kline, path, f'key {key_node.value} must be a string; quote it ("{key_node.value}")'
                    )
                if key in first:
                    raise self.fail(
                        kline,
                        (*path, key),
                        f"duplicate key '{key}' (first defined at line {first[key]}); keep only one",
                    )
                first[key] = kline
                sub = (*path, key)
                self.lines[sub] = kline
                out[key] = self.walk(value_node, sub, depth + 1)
                self.lines[sub] = kline
            return out
        raise self.fail(line, path, f"unsupported YAML node {type(node).__name__}")  # pragma: no cover

    def scalar(self, node: Any, tag: str, path: Loc) -> Any:
        """A plain value; dates stay text (no spec field is a date, and ``2026-11-01`` is a fine version)."""
        if tag == _STR_TAG:
            return node.value  # what the constructor returns for a string
        if tag == TIMESTAMP_TAG:
            return str(node.value)
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, TypeError, OverflowError) as e:
            raise self.fail(node.start_mark.line + 1, path, f"cannot read {node.value[:40]!r}: {e}") from None
        except KeyError:  # !!bool on a word that is not one
            what = f"not a {tag.replace(_CORE, '!!')} value"
            raise self.fail(node.start_mark.line + 1, path, f"cannot read {node.value[:40]!r}: {what}") from None


_COLLECTION_TAGS = frozenset({MAPPING_TAG, SEQUENCE_TAG})


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}".removesuffix(".0") + " MiB"


_BRACKETS = re.compile(r"[\[\]{}]")
PRE_DEPTH = 1000  # flow nesting the parser is never shown (the walker enforces MAX_DEPTH on the rest)


_COMPACT = re.compile(rf"(?:[-?:][ \t]+){{{PRE_DEPTH},}}")  # "- - - - x": a block sequence per "- "


def _too_deep(text: str) -> int | None:
    """The line where ``[``/``{`` nesting, or compact block nesting (``- - - x``), passes
    :data:`PRE_DEPTH`, counted roughly (quotes are not skipped: the bound is far above any real
    document); None for the usual document, cheaply."""
    compact = _COMPACT.search(text)
    if compact:
        return text.count("\n", 0, compact.start()) + 1
    if text.count("[") + text.count("{") <= PRE_DEPTH:
        return None
    depth = 0
    for m in _BRACKETS.finditer(text):
        depth = depth + 1 if m.group() in "[{" else max(0, depth - 1)
        if depth > PRE_DEPTH:
            return text.count("\n", 0, m.start()) + 1
    return None


OUTPUT_MAX_BYTES = 256 * 1024 * 1024  # files memprov wrote (an alertmanager.yml of 10,000 jobs is 5 MiB)
OUTPUT_MAX_NODES = 50_000_000


def loads(text: str, file: str, *, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> Document:
    """Parse YAML text into a :class:`Document`; every failure is a located :class:`SpecError`.

    The limits are the spec's; files memprov wrote itself are read with :data:`OUTPUT_MAX_BYTES`
    and :data:`OUTPUT_MAX_NODES` (they grow with the number of jobs, a spec file does not).
    """
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise SpecError(
            [
                Problem(
                    f"file is larger than {_mib(max_bytes)}, the limit per file; {SPLIT_HINT}",
                    file,
                )
            ]
        )
    deep = _too_deep(text)
    if deep is not None:  # before the parser: its C code recurses per level and would crash the process
        raise SpecError([Problem(f"nesting deeper than {MAX_DEPTH} levels; flatten the document", file, deep)])
    try:  # plain YAML straight from libyaml's events; anything else (and every error) the reference way
        data, lines = yamlfast.read(text, max_nodes, MAX_DEPTH)
    except yamlfast.NotPlain:
        pass
    else:
        return Document(file, data, lines)
    return _reference(text, file, max_nodes)


def _reference(text: str, file: str, max_nodes: int = MAX_NODES) -> Document:
    """Compose with ruamel.yaml and walk the nodes: what every document reads as, every error worded."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    yaml = _yaml()
    try:
        node = yaml.compose(io.StringIO(text))
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        what = (e.problem or "invalid YAML").strip()
        if what.startswith("but found another document"):
            message = "a second YAML document starts here ('---'); a memprov file holds one document: remove it"
        else:
            ctx = f" ({e.context.strip()})" if e.context else ""
            message = f"YAML syntax error: {what}{ctx}; fix the indentation/quoting there"
        raise SpecError([Problem(message, file, line)]) from None
    except ReaderError as e:
        line = text.count("\n", 0, e.position) + 1 if isinstance(e.position, int) else None
        char = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        raise SpecError(
            [Problem(f"contains the character {char}, which YAML does not allow ({e.reason}); remove it", file, line)]
        ) from None
    except YAMLError as e:
        raise SpecError([Problem(f"YAML error: {e}", file)]) from None
    if node is None:
        return Document(file, {}, {(): 1})
    walker = _Walker(file, yaml, max_nodes)
    try:
        data = walker.walk(node, (), 0)
    except MarkedYAMLError as e:  # a scalar its tag's constructor refuses, e.g. !!int abc
        mark = e.problem_mark or e.context_mark
        raise SpecError(
            [
                Problem(
                    f"{(e.problem or 'cannot read value').strip()}; write a plain value",
                    file,
                    mark.line + 1 if mark is not None else None,
                )
            ]
        ) from None
    return Document(file, data, walker.lines)


def load_file(path: Path, display: str | None = None) -> Document:
    """Read and parse a YAML file, refusing oversized files before reading them whole."""
    name = display or str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SpecError([Problem("file not found; create it or pass --spec PATH", name)]) from None
    if size > MAX_BYTES:
        raise SpecError(
            [
                Problem(
                    f"file is {_mib(size)}, more than the {_mib(MAX_BYTES)} limit per file; {SPLIT_HINT}",
                    name,
                )
            ]
        )
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SpecError([Problem(f"cannot read: {e.strerror}", name)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise SpecError(
            [Problem(f"not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8", name, line)]
        ) from None
    return loads(text, name)


def dumps(data: Any, header: str = "") -> str:
    """Deterministic block-style YAML: insertion order kept, long strings unwrapped, no aliases.

    The text is that of ruamel.yaml's pure-Python emitter (:func:`dumps_pure`); libyaml's C
    emitter writes it about 20 times faster (:func:`dumps_fast`), and is used whenever it can
    promise the same bytes. Values it cannot promise that for fall back to the pure emitter.
    """
    text = dumps_fast(data)
    return header + (text if text is not None else dumps_pure(data))


def dumps_pure(data: Any) -> str:
    """The reference text: ruamel.yaml's safe representer and pure-Python emitter."""
    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.width = WIDTH
    y.allow_unicode = True
    rep = y.representer
    rep.ignore_aliases = lambda _data: True
    rep.sort_base_mapping_type_on_output = False
    rep.add_representer(str, _represent_str)
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def dumps_fast(data: Any) -> str | None:
    """The same text as :func:`dumps_pure` through libyaml's emitter (PyYAML); None when unavailable.

    None also when ``data`` holds a value outside plain data (dict, list, tuple, str, int, float,
    bool, None) or a string the two emitters are not known to write alike (see
    :func:`_fast_style`): the caller then uses the pure emitter, which is the reference.

    Most documents memprov writes (rule files: mappings, lists, one-line strings, PromQL literal
    blocks) are written as text directly (:func:`_dumps_text`), the text libyaml writes for them;
    anything that path is not sure of goes through libyaml itself (:func:`_dumps_libyaml`).
    """
    text = _dumps_text(data)
    return text if text is not None else _dumps_libyaml(data)


def _dumps_libyaml(data: Any) -> str | None:
    """:func:`dumps_fast` through libyaml's emitter only (the reference of :func:`_dumps_text`)."""
    return _dumps_by(data, text=False)


def _dumps_text(data: Any) -> str | None:
    """:func:`dumps_fast` written directly as text, or None where it leaves the document to libyaml."""
    return _dumps_by(data, text=True)


def _dumps_by(data: Any, *, text: bool) -> str | None:
    if not isinstance(data, dict | list | tuple):
        return None  # a lone scalar: the emitters end its document differently
    fast = _fast_dumper()
    if fast is None:  # pragma: no cover - PyYAML or libyaml missing: the pure emitter only
        return None
    out: str | None = fast.text(data) if text else fast.nodes(data)
    return out


WIDTH = 4096  # lines are not wrapped below this many characters


class _NotFast(Exception):
    """A value the fast dumper leaves to the pure one."""


@dataclass(frozen=True)
class _FastDumpers:
    nodes: Any  # data -> text | None: PyYAML nodes emitted by libyaml
    text: Any  # data -> text | None: the same text, written directly (plain shapes only)


_FAST_DUMPER: list[_FastDumpers | None] = []  # built on first use (PyYAML is imported lazily)


def _fast_dumper() -> _FastDumpers | None:
    if not _FAST_DUMPER:
        _FAST_DUMPER.append(_build_fast_dumper())
    return _FAST_DUMPER[0]


def _build_fast_dumper() -> _FastDumpers | None:
    """``data -> text | None``: the node tree ruamel's safe representer would build, emitted by libyaml.

    The nodes are built here directly (what :func:`_represent_str` and ruamel's representers for
    the other plain types make, in mapping order, block style, never an alias) and handed to
    PyYAML's libyaml emitter. It asks :meth:`resolve` whether a plain scalar would read back as
    the same type: answered with ruamel's YAML 1.2 table, the one ruamel's dumper uses.
    """
    from ruamel.yaml.resolver import implicit_resolvers

    try:  # imported by name: PyYAML ships no type hints
        CEmitter: Any = importlib.import_module("yaml._yaml").CEmitter
        nodes: Any = importlib.import_module("yaml.nodes")
    except (ImportError, AttributeError):  # pragma: no cover - PyYAML or libyaml missing: the pure emitter only
        return None
    scalar_node, sequence_node, mapping_node = nodes.ScalarNode, nodes.SequenceNode, nodes.MappingNode
    str_tag, int_tag, float_tag, bool_tag, null_tag, seq_tag, map_tag = (
        f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")
    )

    by_first: dict[str | None, list[tuple[str, Any]]] = {}
    for versions, tag, regexp, first in implicit_resolvers:
        if (1, 2) in versions:  # what ruamel's dumper resolves with (plain scalars it would read back)
            chars: list[str | None] = list(first) if first is not None else [None]
            for ch in chars:
                by_first.setdefault(ch, []).append((tag, regexp))
    # ruamel's patterns are lazy wrappers that look every attribute up again: keep the bound matches
    anywhere = tuple((tag, regexp.match) for tag, regexp in by_first.pop(None, []))
    resolvers = {ch: (*((tag, regexp.match) for tag, regexp in found), *anywhere) for ch, found in by_first.items()}

    def implicit_tag(value: str) -> str:
        """The tag a plain scalar ``value`` reads back as (``!!str`` when no resolver claims it)."""
        for tag, match in resolvers.get(value[:1], anywhere):
            if match(value):
                return str(tag)
        return str_tag

    class Emitter(CEmitter):  # type: ignore[misc]
        def __init__(self, stream: io.StringIO) -> None:
            CEmitter.__init__(self, stream, width=WIDTH, allow_unicode=True)

        def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
            if kind is scalar_node:
                return implicit_tag(value) if implicit[0] else str_tag
            return seq_tag if kind is sequence_node else map_tag

        def descend_resolver(self, parent: Any, index: Any) -> None:  # no path resolvers
            pass

        def ascend_resolver(self) -> None:
            pass

    styles: dict[str, str | None] = {}  # the style of each string seen (most repeat: labels, templates)

    def node(data: Any) -> Any:
        kind = type(data)
        if kind is str:
            style = styles.get(data, _UNSET)
            if style is _UNSET:
                style = _fast_style(data, _str_style(data))
                if len(styles) > 100_000:
                    styles.clear()
                styles[data] = style
            return scalar_node(str_tag, data, None, None, style)
        if kind is dict:
            return mapping_node(map_tag, [(key(k), node(v)) for k, v in data.items()], None, None, False)
        if kind is list or kind is tuple:
            return sequence_node(seq_tag, [node(v) for v in data], None, None, False)
        if kind is bool:
            return scalar_node(bool_tag, "true" if data else "false")
        if kind is int:
            return scalar_node(int_tag, str(data))
        if kind is float:
            return scalar_node(float_tag, _float_text(data))
        if data is None:
            return scalar_node(null_tag, "null")
        raise _NotFast  # anything else (dates, sets, subclasses): ruamel's representers decide

    def key(data: Any) -> Any:
        # ruamel counts the key's tag ("!!str") against the 128 characters of a simple key, libyaml
        # does not: long keys (written "? key") and keys that are not strings go the pure way
        if type(data) is not str or len(data) > _SIMPLE_KEY_MAX:
            raise _NotFast
        return node(data)

    def dump(data: Any) -> str | None:
        # The node tree has no cycles and lives only for this call; a big one (the alertmanager.yml of
        # 10,000 jobs: 380,000 nodes) would otherwise set off collections that walk the whole heap.
        with collector_paused():
            try:
                tree = node(data)
            except _NotFast:
                return None
            buf = io.StringIO()
            emitter = Emitter(buf)
            try:
                emitter.open()
                emitter.serialize(tree)
                emitter.close()
            finally:
                emitter.dispose()
            return buf.getvalue()

    return _FastDumpers(nodes=dump, text=_build_text_dumper(implicit_tag))


_UNSET = object()
_SIMPLE_KEY_MAX = 100
_INF = float("inf")


def _float_text(value: float) -> str:
    """ruamel's safe representer for a float, YAML 1.2."""
    if value != value:
        return ".nan"
    if value in (_INF, -_INF):
        return ".inf" if value > 0 else "-.inf"
    return repr(value).lower()


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # libyaml escapes them, ruamel writes them as they are
_PLAIN_WITH_QUOTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 '(),./_+-]*[A-Za-z0-9')]")


def _fast_style(value: str, style: str | None) -> str | None:
    """The style to ask libyaml for so that it writes what ruamel's emitter writes; raises ``_NotFast``.

    Both emitters come from the same design and agree on printable text; they part on a few
    choices, which this settles or leaves to the pure emitter (tests/test_yamlio.py compares them):

    - escapes in double quotes (control characters, odd line breaks: the representer asks for
      ``"``): libyaml also escapes characters outside the BMP and treats ``\\r`` as a line
      break: left to the pure emitter;
    - a string that is not plain and holds a ``'`` or a line break (and is not a literal block):
      ruamel double-quotes it, libyaml single-quotes it: ask for ``"`` (line break), or leave it
      to the pure emitter unless it is obviously plain (``'``);
    - a literal block that keeps its final line breaks (``|+``): libyaml may end the document
      with ``...`` where ruamel does not: left to the pure emitter;
    - lines near the width, where the two fold long quoted or plain text at different spaces:
      left to the pure emitter (literal blocks are never folded).
    """
    if style == '"' or _ASTRAL.search(value):
        raise _NotFast
    if style == "|":  # a kept final line break ("|+") leaves libyaml's document open-ended longer
        if value.endswith("\n\n"):
            raise _NotFast
        return style
    if len(value) > WIDTH // 3:  # a quoted copy can double in length; with the indentation, below WIDTH
        raise _NotFast
    if style is None:
        if "\n" in value:
            return '"'
        if "'" in value and not _PLAIN_WITH_QUOTE.fullmatch(value):
            raise _NotFast
    return style


_YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", ""}
_YAML11_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")  # 1:20 is 80 in YAML 1.1


def _represent_str(representer: Any, value: str) -> Any:
    """Strings for ruamel's representer, in the style :func:`_str_style` gives."""
    return representer.represent_scalar("tag:yaml.org,2002:str", value, style=_str_style(value))


def _str_style(value: str) -> str | None:
    """Multi-line strings (PromQL, templates) as literal blocks so that diffs stay readable.

    Words that YAML 1.1 readers (Prometheus, Alertmanager) would turn into booleans, and base-60
    numbers (``1:20``) they would turn into integers, are quoted.
    """
    if value.lower() in _YAML11_WORDS or _YAML11_SEXAGESIMAL.match(value):
        return "'"
    if not value.replace("\n", "").isprintable():  # control characters, odd line breaks: escaped
        return '"'
    if "\n" in value.rstrip("\n") and not any(line != line.rstrip() for line in value.split("\n")):
        return "|"
    return None


# A one-line string libyaml will not write plain in block context (its ``analyze_scalar``): an
# indicator first (``-``, ``?`` and ``:`` only before a space or the end), a document marker, a
# ``:`` before a space or the end, a `` #``, or a space first or last. (Tabs, line breaks and
# characters libyaml escapes never get this far: :func:`_fast_style` leaves them to the nodes.)
_NOT_BLOCK_PLAIN = re.compile(r"\A(?:[ #,\[\]{}&*!|>'\"%@`]|[?:-](?: |\Z)|---|\.\.\.)|:(?: |\Z)| #| \Z")
_LINE_START = re.compile(r"^(?=.)", re.MULTILINE)  # where a non-empty line of a literal block starts
_TEXT_CACHE_MAX = 100_000


def _build_text_dumper(implicit_tag: Any) -> Any:
    """``data -> text | None``: what libyaml's block emitter writes for ``data``, written directly.

    The layout is libyaml's with memprov's settings (indent 2, lines never folded below
    :data:`WIDTH`, mappings' lists not indented, empty collections as ``{}``/``[]``). Each string's
    text is settled once (strings repeat: keys, labels, templates) by the rules libyaml applies:
    the style :func:`_fast_style` asks for, then plain only where ``analyze_scalar`` allows it and
    the text would read back as a string (``implicit_tag``), else single quotes; a literal block
    gets its chomping and indentation indicators and its lines indented under its parent.
    Anything else raises ``_NotFast`` and the document goes through libyaml's nodes:
    double-quoted strings, multi-line keys, keys longer than libyaml's simple keys, numbers that
    would need a tag, values that are not plain data, an empty document.
    tests/test_yamlio.py checks this text against libyaml's on every rendered file and random data.
    """
    str_tag, int_tag, float_tag = (f"{_CORE}{t}" for t in ("str", "int", "float"))
    inline: dict[str, str] = {}  # value text of a one-line string
    literal: dict[str, tuple[str, str]] = {}  # (header, body) of a literal block
    keys: dict[str, str] = {}  # key text, ":" included

    def string(value: str) -> str | tuple[str, str]:
        """A value's text, or a literal block's ``(header, body)`` (the body still to be indented)."""
        style = _fast_style(value, _str_style(value))  # raises _NotFast
        if style == "|":
            indicator = "2" if value[0] in " \n" else ""  # libyaml: a leading space or break
            if value.endswith("\n"):
                return "|" + indicator, value[:-1]  # one final line break: clip, the default
            return "|" + indicator + "-", value
        if "\n" in value or style not in (None, "'"):  # double quotes (escapes), odd single quotes
            raise _NotFast
        if style is None and implicit_tag(value) == str_tag and not _NOT_BLOCK_PLAIN.search(value):
            return value
        return "'" + value.replace("'", "''") + "'"

    def key_text(value: str) -> str:
        if len(value) > _SIMPLE_KEY_MAX:
            raise _NotFast  # ruamel writes "? key" sooner than libyaml: the nodes (and ruamel) decide
        text = string(value)
        if not isinstance(text, str) or not value:
            raise _NotFast  # multi-line or empty: not a simple key
        if len(keys) > _TEXT_CACHE_MAX:
            keys.clear()
        keys[value] = text = text + ":"
        return text

    def number(text: str, tag: str) -> str:
        if implicit_tag(text) != tag or _NOT_BLOCK_PLAIN.search(text):
            raise _NotFast  # it would need its tag written
        return text

    def scalar(value: Any) -> str | tuple[str, str]:
        """A scalar's text, or a literal block's ``(header, body)``; raises ``_NotFast``."""
        kind = type(value)
        if kind is str:
            text = inline.get(value)
            if text is not None:
                return text
            found = literal.get(value)
            if found is not None:
                return found
            out = string(value)
            if isinstance(out, str):
                if len(inline) > _TEXT_CACHE_MAX:
                    inline.clear()
                inline[value] = out
            else:
                if len(literal) > _TEXT_CACHE_MAX:
                    literal.clear()
                literal[value] = out
            return out
        if kind is bool:
            return "true" if value else "false"
        if kind is int:
            return number(str(value), int_tag)
        if kind is float:
            return number(_float_text(value), float_tag)
        if value is None:
            return "null"
        raise _NotFast  # dates, sets, subclasses: libyaml's nodes, or ruamel's representers

    def after(value: Any, indent: int, parts: list[str], prefix: str) -> None:
        """``value`` after ``prefix`` (``" "`` after a key's ``:``, ``""`` after ``- ``); ``indent``: its block's."""
        kind = type(value)
        if kind is dict:
            if value:
                if prefix:
                    parts.append("\n")
                    mapping(value, indent + 2, False, parts)
                else:
                    mapping(value, indent + 2, True, parts)
                return
            parts.append(prefix + "{}\n")
            return
        if kind is list or kind is tuple:
            if value:
                if prefix:  # a mapping's list is not indented
                    parts.append("\n")
                    sequence(value, indent, False, parts)
                else:
                    sequence(value, indent + 2, True, parts)
                return
            parts.append(prefix + "[]\n")
            return
        text = scalar(value)
        if isinstance(text, str):
            parts.append(prefix + text + "\n")
            return
        header, body = text
        parts.append(prefix + header + "\n")
        parts.append(_LINE_START.sub(" " * (indent + 2), body) + "\n")

    def mapping(data: dict[Any, Any], indent: int, first_inline: bool, parts: list[str]) -> None:
        pad = " " * indent
        for k, v in data.items():
            if type(k) is not str:
                raise _NotFast
            text = keys.get(k) or key_text(k)
            if first_inline:
                first_inline = False
                parts.append(text)
            else:
                parts.append(pad + text)
            after(v, indent, parts, " ")

    def sequence(data: list[Any] | tuple[Any, ...], indent: int, first_inline: bool, parts: list[str]) -> None:
        dash = " " * indent + "- "
        for v in data:
            if first_inline:
                first_inline = False
                parts.append("- ")
            else:
                parts.append(dash)
            after(v, indent, parts, "")

    def dump(data: Any) -> str | None:
        parts: list[str] = []
        try:
            if type(data) is dict and data:
                mapping(data, 0, False, parts)
            elif (type(data) is list or type(data) is tuple) and data:
                sequence(data, 0, False, parts)
            else:
                return None  # an empty document (or a subclass): libyaml's nodes
        except _NotFast:
            return None
        return "".join(parts)

    return dump
