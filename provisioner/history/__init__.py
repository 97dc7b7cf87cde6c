"""Readers of past runs: a Prometheus-compatible API or backfilled series files, the clouds' metric
APIs, and the run records of ``memprov run``. They return per-job runs and samples for
:mod:`provisioner.analysis`.
"""
