"""Names of the series memprov's recording rules produce; shared by rules and dashboards.

Per running instance (labels ``memprov_job``, ``memprov_env`` and the runtime's instance labels):
working set, limit, usage ratio, the trough (rolling minimum, i.e. the sawtooth's floor), the
trough's velocity (growth window), its trend (time-to-OOM window) and the predicted time to OOM.
Per job (``memprov_job``, ``memprov_env`` only): the job's working set (max over instances), its
anomaly z-score against previous weeks, and its baseline peaks and usual velocity.
"""

WS = "memprov:memory_working_set:bytes"
LIMIT = "memprov:memory_limit:bytes"
RATIO = "memprov:memory_usage:ratio"
TROUGH = "memprov:memory_trough:bytes"
VELOCITY = "memprov:memory_trough_velocity:bytes_per_second"
TREND = "memprov:memory_trough_trend:bytes_per_second"  # the same slope over time_to_oom.window
TIME_TO_OOM = "memprov:memory_time_to_oom:seconds"
JOB_WS = "memprov:job_memory_working_set:bytes"
ZSCORE = "memprov:job_memory_anomaly:zscore"
BASELINE_PEAK = "memprov:job_memory_baseline_peak:bytes"  # label quantile="0.5" | "0.95"
BASELINE_VELOCITY = "memprov:job_memory_baseline_velocity:bytes_per_second"
HIST_MEAN = "memprov:job_memory_history_mean:bytes"  # the same window in previous weeks (anomaly)
HIST_SD = "memprov:job_memory_history_stddev:bytes"
JOB_VELOCITY = "memprov:job_memory_trough_velocity:bytes_per_second"
