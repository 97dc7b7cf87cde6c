"""The plan's checksum is computed once per plan and stays the one of its changes."""

from __future__ import annotations

import pytest

from provisioner.plan import model
from provisioner.plan.model import Action, BackendPlan, Change, Plan


def _plan(body: object) -> Plan:
    change = Change(Action.CREATE, "prometheus", "rule-group", "k", desired=body)
    return Plan("prod", "spec", (BackendPlan("prometheus", "files out", (change,)),))


def test_checksum_is_computed_once_and_depends_on_the_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = model.body_hash

    def counting(body: object) -> str:
        calls.append(body)
        return real(body)

    monkeypatch.setattr(model, "body_hash", counting)
    plan = _plan({"a": 1})
    first = plan.checksum
    assert plan.checksum == first
    assert len(calls) == 2  # desired and live of the one change, once
    assert _plan({"a": 1}).checksum == first
    assert _plan({"a": 2}).checksum != first
