"""The checks every cloud target makes before it writes (provisioner.backends.cloud.GuardedTarget),
on one small target: the live-target tests of each cloud exercise them through the real SDKs."""

from __future__ import annotations

from typing import ClassVar

import pytest

from provisioner.backends.cloud import GuardedTarget
from provisioner.core.errors import OperationError
from provisioner.plan.model import Resource


class Alarms(GuardedTarget):
    NOUN: ClassVar[str] = "alarm"
    SERVICE: ClassVar[str] = "CloudWatch"
    MARKER: ClassVar[str] = "tags"

    def version(self, resource: Resource) -> str | None:
        return str(resource.handle) if resource.handle is not None else None


def alarm(version: str, owned: bool = True) -> Resource:
    return Resource("alarm", "memprov-prod-a", {}, owned=owned, handle=version)


def test_unchanged_since_the_plan_passes() -> None:
    Alarms().check_unchanged(alarm("v1"), alarm("v1"), "updated", False)
    assert Alarms().check_deletable(alarm("v1"), alarm("v1"), False) is True


@pytest.mark.parametrize(
    ("now", "message"),
    [
        (None, "alarm memprov-prod-a was deleted since the plan; run memprov plan again"),
        (alarm("v1", owned=False), "alarm memprov-prod-a is no longer managed by memprov (tags); it was not updated"),
        (alarm("v2"), "alarm memprov-prod-a was changed in CloudWatch since the plan; it was not updated"),
    ],
)
def test_what_changed_since_the_plan_is_refused(now: Resource | None, message: str) -> None:
    with pytest.raises(OperationError) as e:
        Alarms().check_unchanged(now, alarm("v1"), "updated", False)
    assert message in str(e.value)


def test_force_overrides_a_change_but_not_a_disappearance() -> None:
    Alarms().check_unchanged(alarm("v2", owned=False), alarm("v1"), "updated", True)
    with pytest.raises(OperationError, match="deleted since the plan"):
        Alarms().check_unchanged(None, alarm("v1"), "updated", True)


def test_taking_over_needs_force() -> None:
    with pytest.raises(OperationError, match="is not managed by memprov; pass --force to take it over"):
        Alarms().check_takeover(alarm("v1", owned=False), False)
    Alarms().check_takeover(alarm("v1", owned=False), True)


def test_never_deletes_what_it_does_not_own_even_with_force() -> None:
    assert Alarms().check_deletable(None, alarm("v1"), False) is False  # already gone: nothing to do
    for force in (False, True):
        with pytest.raises(OperationError, match=r"no longer managed by memprov \(tags\); it was not deleted"):
            Alarms().check_deletable(alarm("v1", owned=False), alarm("v1"), force)
