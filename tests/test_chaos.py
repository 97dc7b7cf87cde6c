"""Apply converges under faults on every live target, and its report is exactly true.

Every live target runs behind the same fault-injecting proxy (tests/fakes/chaos.py: 500, 503, 429
with ``Retry-After``, connection resets before and after the request was carried out, slow and
hanging answers) with probability 0.3 per request, seeded so that a run is repeatable. From an
empty service and from a populated one with updates and deletes, it must converge to an empty
re-plan within 3 applies, every line of every report must be true of the service's state (read
by the test itself), nothing may be created twice, and no unowned resource may be touched
(:func:`tests.contract.converge.chaos_run`). bench/chaos/run.py measures the same at p = 0.3 and
0.5 over other seeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract import HARNESSES
from tests.contract.base import Harness
from tests.contract.converge import chaos_run

SEED = 20261202
P = 0.3
REAL_SERVERS = {"prometheus", "alertmanager", "cloudwatch"}


@pytest.fixture(params=[pytest.param(n, marks=pytest.mark.integration) if n in REAL_SERVERS else n for n in HARNESSES])
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    harness = HARNESSES[request.param](tmp_path)
    with harness.running():
        yield harness


def test_apply_converges_under_faults_and_reports_exactly(h: Harness) -> None:
    phases = chaos_run(h, P, SEED)
    for phase in phases:
        print(
            f"{h.name}: {phase.name}: converged in {phase.applies} applies, {phase.faults} faults, "
            f"{phase.retries} retries, {phase.lines} report lines checked, {phase.unknown} unknown"
        )
        for note in phase.notes:
            print(f"  {note}")
    assert [p.applies is not None for p in phases] == [True, True], [p.notes for p in phases]
    assert sum(p.faults for p in phases) > 0  # the faults did happen (a reload target sends a few requests only)
    assert sum(p.unknown for p in phases) <= 1, [p.notes for p in phases]  # read back, almost always
