"""Evaluate rendered rules over history with a real Prometheus (``memprov backtest``, the benchmark).

:mod:`~provisioner.history.promapi` runs a temporary Prometheus holding backfilled series,
:mod:`~provisioner.analysis.evaluate.inline` folds a group's recording rules into its alert expressions
(Prometheus evaluates rules only in real time), and :mod:`~provisioner.analysis.evaluate.alerts` turns
``query_range`` results into firing episodes with Prometheus' ``for``/``keep_firing_for``
semantics.
"""
