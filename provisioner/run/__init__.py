"""``memprov run``: a wrapper that runs a job, records its true peak memory and can stop a runaway.

The modules here read the kernel's own accounting (:mod:`.cgroup`, :mod:`.procs`), keep the
run history (:mod:`.history`), publish Prometheus metrics (:mod:`.metrics`), act on a memory
guard (:mod:`.guard`) and tie it together (:mod:`.wrapper`). They import only the standard
library, so that wrapping a job adds little start-up time.
"""
