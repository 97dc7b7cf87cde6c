"""Fixtures shared by the test modules: a real Prometheus with series backfilled (tests/promserver.py)."""

from tests.promserver import prometheus_with  # noqa: F401
