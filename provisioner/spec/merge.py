"""Overlay merging with rules declared per field.

An environment overlay is merged into the base spec on raw data, before validation, so that
every value keeps the file and line it came from. The rule for a field comes from a
:class:`Merge` marker in its annotation, else from its type: nested models and mappings merge
key by key, everything else (scalars, lists) is replaced.
"""

from __future__ import annotations

import types
import typing
from enum import Enum
from typing import Any

from provisioner.core.errors import Problem, describe, did_you_mean, dotted

Loc = tuple[str | int, ...]
Where = tuple[str, int | None]  # (file, line)


class Merge(Enum):
    DEEP = "deep"  # merge key by key, recursively
    REPLACE = "replace"  # the overlay value replaces the base value whole
    KEYS_EXISTING = "keys-existing"  # like DEEP, but the overlay may not add new keys
    IMMUTABLE = "immutable"  # an overlay may not set this field


def _unwrap(tp: Any) -> tuple[Any, Merge | None]:
    """Strip Annotated/Optional, returning the core type and any Merge marker."""
    rule = None
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            args = typing.get_args(tp)
            rule = next((a for a in args[1:] if isinstance(a, Merge)), rule)
            tp = args[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp, rule
            tp = members[0]
        else:
            return tp, rule


def _model_fields(tp: Any) -> dict[str, Any] | None:
    fields = getattr(tp, "model_fields", None)
    if fields is None:
        return None
    out: dict[str, Any] = {}
    for name, info in fields.items():
        annotation = info.annotation
        if info.metadata:
            annotation = typing.Annotated[(annotation, *info.metadata)]
        out[info.alias or name] = annotation
    return out


def field_type(tp: Any, key: str | int) -> Any:
    """The declared type of ``key`` inside type ``tp`` (model field, dict value, list item), or None."""
    core, _ = _unwrap(tp)
    fields = _model_fields(core)
    if fields is not None:
        return fields.get(str(key))
    origin = typing.get_origin(core)
    if origin is dict:
        return typing.get_args(core)[1]
    if origin is list:
        return typing.get_args(core)[0]
    return None


def union_tags(tp: Any) -> list[str]:
    """The ``type:`` values of a discriminated union of models (``slack``, ``pagerduty``...)."""
    core, _ = _unwrap(tp)
    out: list[str] = []
    for member in typing.get_args(core) if typing.get_origin(core) in (typing.Union, types.UnionType) else ():
        literal = (_model_fields(member) or {}).get("type")
        out += [str(a) for a in typing.get_args(literal)] if literal is not None else []
    return out


def _union_member(tp: Any, kind: Any, base_kind: Any) -> Any:
    """In a union keyed by ``type:`` (notification channels), the model an overlay merges into: the
    base's own kind; None when the overlay changes the kind (then the overlay replaces it whole)."""
    if kind != base_kind or typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    for member in typing.get_args(tp):
        literal = (_model_fields(member) or {}).get("type")
        if literal is not None and kind in typing.get_args(literal):
            return member
    return None


def field_names(tp: Any) -> list[str]:
    core, _ = _unwrap(tp)
    return list(_model_fields(core) or {})


def _below(index: dict[Loc, set[Loc]], path: Loc) -> list[Loc]:
    """The locations at or below ``path`` in an index of locations by their first two parts."""
    if len(path) >= 2:
        return [loc for loc in index.get(path[:2], ()) if loc[: len(path)] == path]
    return [loc for key, locs in index.items() if key[: len(path)] == path for loc in locs]


def _bucketed(locs: typing.Iterable[Loc]) -> dict[Loc, set[Loc]]:
    index: dict[Loc, set[Loc]] = {}
    for loc in locs:
        index.setdefault(loc[:2], set()).add(loc)
    return index


class Merger:
    """Merges overlay data into base data, keeping the location of every value."""

    def __init__(self, base_where: dict[Loc, Where]) -> None:
        self.where: dict[Loc, Where] = dict(base_where)
        self.problems: list[Problem] = []
        # the locations by their first two parts (a job: jobs.<id>), so that replacing a subtree looks
        # at that job's few locations only
        self._under: dict[Loc, set[Loc]] = _bucketed(base_where)
        self._over: dict[int, tuple[dict[Loc, Where], dict[Loc, set[Loc]]]] = {}

    def merge(self, tp: Any, base: Any, over: Any, over_where: dict[Loc, Where], path: Loc = ()) -> Any:
        core, rule = _unwrap(tp)
        if rule is Merge.KEYS_EXISTING and isinstance(over, dict) and not isinstance(base, dict):
            self.merge(tp, {}, over, over_where, path)  # reports every key: none of them exists
            return base
        if isinstance(base, dict) and isinstance(over, dict):
            core = _union_member(core, over.get("type", base.get("type")), base.get("type")) or core
        mergeable = (
            isinstance(base, dict)
            and isinstance(over, dict)
            and (_model_fields(core) is not None or typing.get_origin(core) is dict)
        )
        if rule is Merge.REPLACE or not mergeable:
            self._replace(path, over_where)
            return over
        out = dict(base)
        for key, value in over.items():
            sub = (*path, key)
            sub_tp = field_type(core, key)
            _, sub_rule = _unwrap(sub_tp) if sub_tp is not None else (None, None)
            if sub_rule is Merge.IMMUTABLE and (key not in base or base[key] != value):
                file, line = over_where.get(sub, ("?", None))
                now = f"it is {describe(base[key])} in the spec" if key in base else "the spec does not set it"
                self.problems.append(
                    Problem(
                        f"cannot be changed by an environment overlay ({now}); remove it from the overlay",
                        file,
                        line,
                        dotted(sub),
                    )
                )
                continue
            if rule is Merge.KEYS_EXISTING and key not in base:
                file, line = over_where.get(sub, ("?", None))
                known = ", ".join(sorted(map(str, base))) or "none"
                self.problems.append(
                    Problem(
                        f"'{key}' is not in the spec{did_you_mean(str(key), base)} (known: {known}); an overlay "
                        "may only change what memprov.yaml defines: fix the name or add it there first",
                        file,
                        line,
                        dotted(sub),
                    )
                )
                continue
            if key in base and sub_tp is not None:
                out[key] = self.merge(sub_tp, base[key], value, over_where, sub)
            elif sub_rule is Merge.KEYS_EXISTING and isinstance(value, dict):
                self.merge(sub_tp, {}, value, over_where, sub)  # reports every key: none of them exists
            else:
                self._replace(sub, over_where)
                out[key] = value
        return out

    def _replace(self, path: Loc, over_where: dict[Loc, Where]) -> None:
        """The locations below ``path`` now come from the overlay."""
        for loc in _below(self._under, path):
            del self.where[loc]
            self._under[loc[:2]].discard(loc)
        for loc in _below(self._index(over_where), path):
            self.where[loc] = over_where[loc]
            self._under.setdefault(loc[:2], set()).add(loc)

    def _index(self, over_where: dict[Loc, Where]) -> dict[Loc, set[Loc]]:
        """``over_where`` bucketed, built once per overlay (the overlay is kept so that its id stays unique)."""
        cached = self._over.get(id(over_where))
        if cached is None:
            cached = self._over[id(over_where)] = (over_where, _bucketed(over_where))
        return cached[1]
