"""``memprov run``: a wrapper that runs a job, records its peak memory (saying how exact it is) and
can stop a runaway.

The modules here give the job a memory cgroup of its own (:mod:`.jobgroup`), read the kernel's
own accounting (:mod:`.cgroup`, :mod:`.procs`), choose the peak and its bound (:mod:`.peak`),
keep the state of a run (:mod:`.watch`) and the run history (:mod:`.history`), publish Prometheus
metrics (:mod:`.metrics`), act on memory guards (:mod:`.guard`) and tie it together
(:mod:`.wrapper`). They import only the standard library, so that wrapping a job adds little
start-up time.
"""
