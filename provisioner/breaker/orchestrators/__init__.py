"""One client per orchestrator (Airflow 3 and 2, Kubernetes Job, Kubeflow Pipelines, AWS Batch)."""
