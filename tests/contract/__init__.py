"""One harness per live target, so that one contract suite (tests/test_backend_contract.py) and one chaos
suite (tests/test_chaos.py) can run every target against its real or fake server.

A :class:`~tests.contract.base.Harness` starts the server behind the fault proxy
(:mod:`tests.fakes.chaos`), writes the environment file that points memprov at it, reads what is live
on its own (never through memprov), injects faults, edits a resource out of band and plants
look-alikes; :data:`HARNESSES` lists them all.
"""

from __future__ import annotations

from tests.contract.alertmanager import AlertmanagerHarness
from tests.contract.azure import AzureHarness
from tests.contract.base import Harness
from tests.contract.cloudwatch import CloudWatchHarness
from tests.contract.gcp import GcpHarness
from tests.contract.grafana import GrafanaHarness
from tests.contract.prometheus import PrometheusHarness
from tests.contract.ruler import RulerHarness

HARNESSES: dict[str, type[Harness]] = {
    h.name: h
    for h in (
        CloudWatchHarness,
        GcpHarness,
        AzureHarness,
        GrafanaHarness,
        RulerHarness,
        PrometheusHarness,
        AlertmanagerHarness,
    )
}
