"""Pure renderers: ResolvedSpec in, plain data out (rule groups, Alertmanager config, dashboards)."""
