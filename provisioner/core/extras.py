"""The optional parts of memprov's installation (pip extras) and the check that one is installed.

``pip install memprov`` plans and applies Prometheus, Alertmanager, Grafana and every files target;
a live cloud target needs its cloud's SDK, installed by an extra (``memprov[aws]``, ``[gcp]``,
``[azure]``, or ``[all]``). A target type declares the extra it needs (:class:`Extra`), and the
target is refused before anything is read when that extra is missing: a usage error (exit 2) that
says what to install, never an ``ImportError`` traceback halfway through a plan. The check looks
the modules up without importing them (an SDK can take a second to import).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from provisioner.core.errors import UsageError


@dataclass(frozen=True)
class Extra:
    """A pip extra of memprov and the modules it provides."""

    name: str  # aws, gcp, azure
    modules: tuple[str, ...]  # dotted module names that must be importable

    def missing(self) -> list[str]:
        """The modules of this extra that cannot be imported here."""
        out = []
        for module in self.modules:
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:  # a parent package (google, azure) is not there at all
                found = False
            if not found:
                out.append(module)
        return out

    def require(self, what: str) -> None:
        """Raise a usage error naming the extra to install when ``what`` (e.g. "targets.cloudwatch type
        cloudwatch") cannot run here."""
        missing = self.missing()
        if missing:
            raise UsageError(
                f"{what} needs {', '.join(missing)}, which is not installed; install it with: "
                f"pip install 'memprov[{self.name}]' (or 'memprov[all]')"
            )


AWS = Extra("aws", ("boto3", "botocore"))
GCP = Extra("gcp", ("google.cloud.monitoring_v3", "google.auth", "grpc"))
AZURE = Extra("azure", ("azure.mgmt.monitor", "azure.identity", "azure.core"))
