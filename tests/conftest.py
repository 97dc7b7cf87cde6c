"""Fixtures shared by the test modules: a real Prometheus with series backfilled (tests/promserver.py), and
one real Airflow 3.3.2 for the whole session (tests/airflow_server.py), registered here so that every
module using it shares the same server."""

from tests.airflow_server import airflow_server  # noqa: F401
from tests.promserver import prometheus_with  # noqa: F401
