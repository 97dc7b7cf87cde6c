"""What memprov learns from past runs and checks in a spec: baselines (``memprov baseline``), backtests
and alert evaluation (``memprov backtest``), their plots, and lint.
"""
