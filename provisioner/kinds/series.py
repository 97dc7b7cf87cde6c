"""Names of the series memprov's recording rules produce; shared by rules and dashboards.

Per running instance (labels ``memprov_job``, ``memprov_env`` and the runtime's instance labels):
working set, limit, the trough (rolling minimum: the sawtooth's floor, without transient spikes),
the run's age, and the troughs' velocity once the run has settled (a second slope, ``TREND``, only
when ``time_to_oom.window`` differs from ``growth.window``); with a baseline envelope, the run's own
floor (``OWN_FLOOR``: the troughs less the envelope's growth, once settled). Per job (``memprov_job``,
``memprov_env`` only): the job's working set (max over instances) and, in the slow group, the
anomaly reference of previous weeks; without a baseline, the usual velocity and the p95 peak
learnt from history. The usage ratio, the time to OOM and the z-score are not recorded: the
alerts and dashboards compute them from these.
"""

WS = "memprov:memory_working_set:bytes"
LIMIT = "memprov:memory_limit:bytes"
TROUGH = "memprov:memory_trough:bytes"
AGE = "memprov:memory_run_age:seconds"
VELOCITY = "memprov:memory_trough_velocity:bytes_per_second"
OWN_FLOOR = "memprov:memory_run_floor:bytes"  # the troughs less the envelope's growth, once settled (baseline)
TREND = "memprov:memory_trough_trend:bytes_per_second"  # only when time_to_oom.window != growth.window
JOB_WS = "memprov:job_memory_working_set:bytes"
HIST_MEAN = "memprov:job_memory_history_mean:bytes"  # slow group: the same window in previous weeks
HIST_SD = "memprov:job_memory_history_stddev:bytes"
BASELINE_PEAK = "memprov:job_memory_baseline_peak:bytes"  # slow group, no baseline only; label quantile="0.95"
BASELINE_VELOCITY = "memprov:job_memory_baseline_velocity:bytes_per_second"  # slow group, no baseline only
