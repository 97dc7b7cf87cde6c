"""``memprov schema``: the JSON Schema of the spec (or of an environment file) for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import app, run_verb


@app.command()
def schema(
    ctx: typer.Context,
    environment: Annotated[bool, typer.Option("--environment", help="schema of environments/<env>.yaml")] = False,
) -> None:
    """Print the JSON Schema of memprov.yaml (or of an environment file), for editors."""
    run_verb(ctx, lambda spec, color: run(spec=spec, color=color, environment=environment))


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
