"""YAML in and out.

Loading composes the document with ruamel.yaml (libyaml parser when available) and builds plain
Python data ourselves, recording the line of every key so that validation errors can point at
``file:line``. The walk refuses what would hurt: files over ``MAX_BYTES``, alias expansion past
``MAX_NODES`` (a "billion laughs" document), nesting deeper than ``MAX_DEPTH``, duplicate keys,
and non-string keys. Dumping is deterministic (sorted keys where asked, block style, no aliases).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.errors import Problem, SpecError, dotted

_CORE = "tag:yaml.org,2002:"
SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}
MAPPING_TAG, SEQUENCE_TAG, MERGE_TAG, TIMESTAMP_TAG = (f"{_CORE}{t}" for t in ("map", "seq", "merge", "timestamp"))
MAX_BYTES = 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 40

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
        return YAML(typ="safe", pure=pure)
    except Exception:  # pragma: no cover - libyaml missing
        return YAML(typ="safe", pure=True)


class _Walker:
    def __init__(self, file: str, yaml: Any) -> None:
        self.file = file
        self.lines: dict[Loc, int] = {}
        self.nodes = 0
        self.constructor = yaml.constructor

    def fail(self, line: int, path: Loc, message: str) -> SpecError:
        return SpecError([Problem(message, self.file, line, dotted(path))])

    def walk(self, node: Any, path: Loc, depth: int) -> Any:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self.nodes += 1
        line = node.start_mark.line + 1
        if self.nodes > MAX_NODES:
            raise self.fail(
                line,
                path[:2],
                f"document expands to more than {MAX_NODES} values (alias bomb?); "
                "simplify the anchors/aliases or split the spec",
            )
        if depth > MAX_DEPTH:
            raise self.fail(line, path, f"nesting deeper than {MAX_DEPTH} levels; flatten the document")
        self.lines.setdefault(path, line)
        allowed = SCALAR_TAGS if isinstance(node, ScalarNode) else {MAPPING_TAG, SEQUENCE_TAG}
        if node.tag not in allowed:
            tag = node.tag.replace(_CORE, "!!")
            raise self.fail(line, path, f"tag '{tag}' is not allowed; memprov reads plain YAML only (no custom tags)")
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            return [self.walk(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                kline = key_node.start_mark.line + 1
                if key_node.tag == MERGE_TAG:
                    merged = self.walk(value_node, path, depth + 1)
                    for src in merged if isinstance(merged, list) else [merged]:
                        if not isinstance(src, dict):
                            raise self.fail(kline, path, "'<<' merge needs a mapping or a list of mappings")
                        for k, v in src.items():
                            out.setdefault(k, v)
                    continue
                if not isinstance(key_node, ScalarNode):
                    raise self.fail(kline, path, "keys must be plain strings, not lists or mappings")
                if key_node.tag not in SCALAR_TAGS:
                    tag = str(key_node.tag).replace(_CORE, "!!")
                    raise self.fail(kline, path, f"tag '{tag}' is not allowed on a key")
                key = self.scalar(key_node, path)
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
                self.lines[(*path, key)] = kline
                out[key] = self.walk(value_node, (*path, key), depth + 1)
                self.lines[(*path, key)] = kline
            return out
        raise self.fail(line, path, f"unsupported YAML node {type(node).__name__}")  # pragma: no cover

    def scalar(self, node: Any, path: Loc) -> Any:
        """A plain value; dates stay text (no spec field is a date, and ``2026-11-01`` is a fine version)."""
        if node.tag == TIMESTAMP_TAG:
            return str(node.value)
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, TypeError, OverflowError) as e:
            raise self.fail(node.start_mark.line + 1, path, f"cannot read {node.value[:40]!r}: {e}") from None


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}".removesuffix(".0") + " MiB"


def loads(text: str, file: str) -> Document:
    """Parse YAML text into a :class:`Document`; every failure is a located :class:`SpecError`."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError(
            [
                Problem(
                    f"file is larger than {_mib(MAX_BYTES)}; a spec this big is almost certainly a mistake "
                    "(split jobs across files or generate less)",
                    file,
                )
            ]
        )
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
    walker = _Walker(file, yaml)
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
                    f"file is {_mib(size)}, more than the {_mib(MAX_BYTES)} limit; "
                    "a spec this big is almost certainly a mistake",
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
    """Deterministic block-style YAML: insertion order kept, long strings unwrapped, no aliases."""
    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.width = 4096
    y.allow_unicode = True
    rep = y.representer
    rep.ignore_aliases = lambda _data: True
    rep.sort_base_mapping_type_on_output = False
    rep.add_representer(str, _represent_str)
    buf = io.StringIO()
    y.dump(data, buf)
    return header + buf.getvalue()


_YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", ""}
_YAML11_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")  # 1:20 is 80 in YAML 1.1


def _represent_str(representer: Any, value: str) -> Any:
    """Multi-line strings (PromQL, templates) as literal blocks so that diffs stay readable.

    Words that YAML 1.1 readers (Prometheus, Alertmanager) would turn into booleans, and base-60
    numbers (``1:20``) they would turn into integers, are quoted.
    """
    if value.lower() in _YAML11_WORDS or _YAML11_SEXAGESIMAL.match(value):
        return representer.represent_scalar("tag:yaml.org,2002:str", value, style="'")
    if not value.replace("\n", "").isprintable():  # control characters, odd line breaks: escaped
        return representer.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    if "\n" in value.rstrip("\n") and not any(line != line.rstrip() for line in value.split("\n")):
        return representer.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return representer.represent_scalar("tag:yaml.org,2002:str", value)
