"""The fast path of :func:`provisioner.core.yamlio.loads`: plain YAML read straight from libyaml's events.

:mod:`provisioner.core.yamlio` composes a node tree with ruamel.yaml and walks it, which costs about
2.5 s of CPU for a 4 MiB spec of 10,000 jobs. This reader builds the same data and the same line
of every key from the event stream of libyaml (PyYAML's C parser) in one pass, several times
faster. It reads only what is plain: mappings, sequences and scalars without anchors, aliases,
tags, merge keys or directives, string keys, no duplicate key, within the node and depth limits.
For anything else, and for every error, it gives up (:class:`NotPlain`) and the caller reads the
text with the reference walker, so that the data of odd documents and the wording of every error
stay the reference's. Plain scalars are typed with ruamel's YAML 1.2 table and constructors, as
the reference does (``yes`` and ``on`` stay strings; dates stay text).
"""

from __future__ import annotations

import importlib
from typing import Any

Loc = tuple[str | int, ...]
_CORE = "tag:yaml.org,2002:"
_STR, _TIMESTAMP = f"{_CORE}str", f"{_CORE}timestamp"
_TYPED = {f"{_CORE}{t}" for t in ("int", "float", "bool", "null")}


class NotPlain(Exception):
    """The document needs the reference reader (or holds an error the reference words)."""


class _Reader:
    """Built once: PyYAML's C parser and event classes, ruamel's 1.2 resolver table and constructors."""

    def __init__(self) -> None:
        yaml_c: Any = importlib.import_module("yaml._yaml")
        events: Any = importlib.import_module("yaml.events")
        from ruamel.yaml import YAML
        from ruamel.yaml.nodes import ScalarNode
        from ruamel.yaml.resolver import implicit_resolvers

        self.parser_class = yaml_c.CParser
        self.scalar_event = events.ScalarEvent
        self.mapping_start = events.MappingStartEvent
        self.mapping_end = events.MappingEndEvent
        self.sequence_start = events.SequenceStartEvent
        self.sequence_end = events.SequenceEndEvent
        self.document_start = events.DocumentStartEvent
        self.stream_end = events.StreamEndEvent
        by_first: dict[str | None, list[tuple[str, Any]]] = {}
        for versions, tag, regexp, first in implicit_resolvers:
            if (1, 2) in versions:  # the table ruamel resolves a 1.2 document with, in its order
                for ch in list(first) if first is not None else [None]:
                    by_first.setdefault(ch, []).append((tag, regexp.match))
        anywhere = by_first.pop(None, [])
        self.resolvers = {ch: (*found, *anywhere) for ch, found in by_first.items()}
        self.anywhere = tuple(anywhere)
        self.constructor = YAML(typ="safe", pure=True).constructor
        self.node = ScalarNode
        self.typed: dict[tuple[str, str], Any] = {}  # (tag, text) -> value: the same few numbers recur

    def plain(self, value: str) -> Any:
        """A plain scalar as the reference reads it."""
        found = self.resolvers.get(value[:1], self.anywhere) if value else self.resolvers.get("", ())
        tag = next((tag for tag, match in found if match(value)), _STR)
        if tag == _STR:
            return value
        if tag == _TIMESTAMP:
            return value
        if tag not in _TYPED:
            raise NotPlain  # merge keys, '=' and the like: the reference decides
        key = (tag, value)
        if key not in self.typed:
            if len(self.typed) > 10_000:
                self.typed.clear()
            try:
                self.typed[key] = self.constructor.construct_object(self.node(tag, value), deep=True)
            except Exception:  # the reference words it
                raise NotPlain from None
            finally:
                self.constructor.constructed_objects.clear()
        return self.typed[key]


_READER: list[_Reader | None] = []


def _reader() -> _Reader | None:
    if not _READER:
        try:
            _READER.append(_Reader())
        except (ImportError, AttributeError):  # pragma: no cover - PyYAML without libyaml: the reference only
            _READER.append(None)
    return _READER[0]


def read(text: str, max_nodes: int, max_depth: int) -> tuple[Any, dict[Loc, int]]:
    """``(data, lines)`` of a plain document, as :class:`provisioner.core.yamlio._Walker` builds them.

    Raises :class:`NotPlain` for anything else (including every error): read it the reference way.
    """
    r = _reader()
    if r is None:
        raise NotPlain
    parser = r.parser_class(text)
    scalar_event, mapping_start, mapping_end = r.scalar_event, r.mapping_start, r.mapping_end
    sequence_start, sequence_end = r.sequence_start, r.sequence_end
    lines: dict[Loc, int] = {}
    count = 0
    plain = r.plain

    def node(event: Any, path: Loc, depth: int) -> Any:
        nonlocal count
        count += 1
        if count > max_nodes or depth > max_depth or event.anchor is not None:
            raise NotPlain
        lines.setdefault(path, event.start_mark.line + 1)
        kind = type(event)
        if kind is scalar_event:
            if event.tag is not None:
                raise NotPlain
            return plain(event.value) if event.implicit[0] else event.value
        if event.tag is not None:
            raise NotPlain
        if kind is mapping_start:
            out: dict[str, Any] = {}
            while True:
                key_event = parser.get_event()
                if type(key_event) is mapping_end:
                    return out
                if type(key_event) is not scalar_event or key_event.tag is not None or key_event.anchor is not None:
                    raise NotPlain
                key = plain(key_event.value) if key_event.implicit[0] else key_event.value
                if type(key) is not str or key in out or key == "<<":
                    raise NotPlain
                sub = (*path, key)
                kline = key_event.start_mark.line + 1
                lines[sub] = kline
                out[key] = node(parser.get_event(), sub, depth + 1)
                lines[sub] = kline
        if kind is sequence_start:
            items: list[Any] = []
            while True:
                item = parser.get_event()
                if type(item) is sequence_end:
                    return items
                items.append(node(item, (*path, len(items)), depth + 1))
        raise NotPlain  # an alias

    try:
        parser.get_event()  # stream start
        first = parser.get_event()
        if type(first) is r.stream_end:
            return {}, {(): 1}
        if type(first) is not r.document_start or first.version is not None or first.tags:
            raise NotPlain
        data = node(parser.get_event(), (), 0)
        parser.get_event()  # document end
        if type(parser.get_event()) is not r.stream_end:
            raise NotPlain  # a second document: the reference says so
    except NotPlain:
        raise
    except Exception:  # any parser error: the reference words it
        raise NotPlain from None
    finally:
        parser.dispose()
    return data, lines
