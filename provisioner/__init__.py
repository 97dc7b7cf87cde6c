"""memprov: memory-alert provisioning for batch inference jobs.

One declarative spec (``memprov.yaml`` plus ``environments/<env>.yaml`` overlays) is rendered
into Prometheus rules, Alertmanager routing, Grafana dashboards and cloud alarms; ``plan``
diffs the rendering against what is live and ``apply`` makes it so.
"""

__version__ = "0.1.0"
