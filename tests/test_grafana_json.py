"""grafana_json's one-pass conversion and indented writer give what the json module gives."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.render.grafana.serialise import clean, dumps_sorted, plain


def _no_nulls(node: Any) -> Any:
    """The former second pass: drop null values, a threshold step keeps its null."""
    if isinstance(node, dict):
        keep_null = set(node) == {"color", "value"}
        return {k: _no_nulls(v) for k, v in node.items() if v is not None or keep_null}
    if isinstance(node, list):
        return [_no_nulls(v) for v in node]
    return node


class _Encoder(json.JSONEncoder):  # what grafanalib's DashboardEncoder does
    def default(self, o: Any) -> Any:
        to_json_data = getattr(o, "to_json_data", None)
        if to_json_data:
            return to_json_data()
        return json.JSONEncoder.default(self, o)


def _round_trip(node: Any) -> Any:
    return _no_nulls(json.loads(json.dumps(node, cls=_Encoder, sort_keys=True)))


class _Obj:
    def __init__(self, data: Any) -> None:
        self.data = data

    def to_json_data(self) -> Any:
        return self.data


class _Color(str, enum.Enum):  # noqa: UP042 - str() is not the value here, json writes the value
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


class _Key(str):
    pass


@pytest.mark.parametrize(
    "node",
    [
        {"b": 1, "a": None, "c": [None, {"x": None}], "d": (1, 2)},
        {"steps": [{"color": "green", "value": None}, {"color": "red", "value": 80}]},
        {"color": "green", "value": None, "extra": None},  # not a threshold step: the null goes
        {"obj": _Obj({"z": _Obj(None), "y": _Obj([_Obj(1), None])}), "none": _Obj(None)},
        {"enum": _Color.RED, "int": _Level.HIGH, "float": 1.5, "big": 10**30, "nan": float("inf")},
        {2: "two", 10: "ten"},  # keys as the json module writes them, sorted before they become text
        {1.5: "f", 0.25: "g"},
        {True: "t", False: "f"},
        {_Key("b"): 1, "a": 2},
        {"nested": {"b": {"d": 1, "c": [{"f": None, "e": ()}]}, "a": {}}},
        [_Obj({"a": 1}), {"b": None}],
    ],
)
def test_plain_is_the_json_round_trip_without_nulls(node: Any) -> None:
    expected = _round_trip(node)
    got = plain(node)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # same key order too
    assert type(plain(_Color.RED)) is str and type(plain(_Level.HIGH)) is int


def test_plain_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        plain({"a": object()})
    with pytest.raises(TypeError):
        plain({(1, 2): "tuple key"})
    with pytest.raises(TypeError):
        plain({None: 1, 2: 2})  # keys json cannot sort
    with pytest.raises(TypeError):
        plain({1: "int", "1": "str"})


def test_every_dashboard_of_the_example_is_the_same_as_through_json(tmp_path: Path) -> None:
    from grafanalib._gen import DashboardEncoder

    import provisioner.render.grafana.dashboards as grafana
    from provisioner.backends.registry import BACKENDS
    from provisioner.spec.loader import load

    seen = []
    real_clean = grafana.clean

    def compare(data: Any) -> dict[str, Any]:
        new = real_clean(data)
        old = real_clean(json.loads(json.dumps(data, cls=DashboardEncoder, sort_keys=True)))
        assert json.dumps(new) == json.dumps(old)
        assert grafana.serialise(new) == json.dumps(old, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        seen.append(1)
        return new

    root = Path(__file__).resolve().parents[1]
    grafana.clean = compare  # type: ignore[assignment]
    try:
        for env in ("local", "prod"):
            spec = load(root / "memprov.yaml", env)
            BACKENDS["grafana"](spec).render()
    finally:
        grafana.clean = real_clean  # type: ignore[assignment]
    assert len(seen) > 4


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_dumps_sorted_is_json_dumps(value: Any) -> None:
    assert dumps_sorted(value) == json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)


@pytest.mark.parametrize(
    "value", [{1: "int key"}, {"a": (1, 2)}, {"e": _Color.RED}, [_Level.HIGH], {"s": _Key("x")}, {"f": {True: 1}}]
)
def test_dumps_sorted_leaves_other_types_to_json(value: Any) -> None:
    assert dumps_sorted(value) == json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_plain_of_json_data_is_the_data_without_nulls(value: Any) -> None:
    assert json.dumps(plain(value), sort_keys=True) == json.dumps(_round_trip(value), sort_keys=True)


def test_clean_takes_builder_objects() -> None:
    dash = {"title": _Obj("t"), "panels": [_Obj({"type": "text", "title": "x", "options": {"content": "c"}})]}
    out = clean(dash)
    assert out["title"] == "t"
    assert out["panels"] == [{"type": "text", "title": "x", "options": {"content": "c"}}]


def test_dashboards_resume_the_garbage_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    import provisioner.render.grafana.dashboards as grafana
    from provisioner.spec.loader import load

    spec = load(Path(__file__).resolve().parents[1] / "memprov.yaml", "local")
    seen: list[bool] = []
    real = grafana.dashboard

    def spy(*args: Any) -> Any:
        seen.append(gc.isenabled())
        return real(*args)

    monkeypatch.setattr(grafana, "dashboard", spy)
    assert gc.isenabled()
    assert grafana.dashboards(spec)
    assert seen and not any(seen)  # paused while building
    assert gc.isenabled()
    gc.disable()
    try:
        grafana.dashboards(spec)
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()

    def boom(*args: Any) -> Any:
        raise RuntimeError("builder failed")

    monkeypatch.setattr(grafana, "dashboard", boom)
    with pytest.raises(RuntimeError):
        grafana.dashboards(spec)
    assert gc.isenabled()


def test_the_schema_migrations_match_grafana_12s() -> None:
    """memprov's port of Grafana's V40-V43 migrations and the fake's (written separately from Grafana's source)
    agree on a dashboard that exercises each of them."""
    from provisioner.backends.grafana_schema import latest
    from tests.fakes.grafana import grafana12_read

    old = {
        "schemaVersion": 39,
        "refresh": False,
        "timepicker": {"refresh_intervals": ["1m"], "time_options": ["5m"]},
        "panels": [
            {
                "type": "row",
                "panels": [
                    {
                        "fieldConfig": {
                            "overrides": [{"properties": [{"id": "custom.hideFrom", "value": {"viz": True}}]}]
                        },
                        "transformations": [{"id": "formatTime", "options": {"timeField": "t", "outputFormat": "HH"}}],
                    }
                ],
            }
        ],
    }
    new = latest(old)
    assert new == grafana12_read(old) and old["schemaVersion"] == 39  # the input is not changed
    assert new["schemaVersion"] == 43 and new["refresh"] == "" and new["timepicker"] == {"refresh_intervals": ["1m"]}
    inner = new["panels"][0]["panels"][0]
    assert inner["fieldConfig"]["overrides"][0]["properties"][0]["value"] == {"viz": True, "tooltip": True}
    assert inner["transformations"] == [
        {"id": "convertFieldType", "options": {"conversions": [
            {"destinationType": "string", "targetField": "t", "dateFormat": "HH"}]}}
    ]  # fmt: skip
