"""Evaluate rendered rules over history with a real Prometheus (``memprov backtest``, the benchmark).

:mod:`~provisioner.evaluate.prom` runs a temporary Prometheus holding backfilled series,
:mod:`~provisioner.evaluate.inline` folds a group's recording rules into its alert expressions
(Prometheus evaluates rules only in real time), and :mod:`~provisioner.evaluate.alerts` turns
``query_range`` results into firing episodes with Prometheus' ``for``/``keep_firing_for``
semantics.
"""
