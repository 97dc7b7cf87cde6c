"""``memprov schema``: the JSON Schema of the spec (or of an environment file) for editors."""

from __future__ import annotations

import json
from pathlib import Path

from provisioner.cli.console import Console


def run(*, spec: Path, color: bool | None, environment: bool) -> int:
    from provisioner.spec.environment import Environment
    from provisioner.spec.model import Spec

    model = Environment if environment else Spec
    schema = model.model_json_schema(by_alias=True)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "memprov environment" if environment else "memprov spec",
        **schema,
    }
    Console(color=False).raw(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    return 0
