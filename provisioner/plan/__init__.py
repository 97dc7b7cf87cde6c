"""Plan model and the plan/apply engine."""
