"""The circuit breaker (``memprov breaker``): when a critical memory alert says a job is heading for
an OOM kill, stop the unit of work through its orchestrator, give it more memory and run it again.

No orchestrator can pause a process and resume it with more memory; each module under
:mod:`provisioner.breaker.orchestrators` does the honest equivalent its orchestrator allows and
says what state is lost (:data:`provisioner.spec.breaker.STRATEGIES`). The flow: Alertmanager's
webhook → :mod:`~provisioner.breaker.server` (auth, limits) → :mod:`~provisioner.breaker.service`
(screen, ledger, observe, :func:`~provisioner.breaker.planner.decide`, act, audit).
"""
