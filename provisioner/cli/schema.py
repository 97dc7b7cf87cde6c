"""``memprov schema``: the JSON Schema of the spec (or of an environment file) for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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
    from provisioner.backends.registry import BACKENDS
    from provisioner.spec.environment import Environment
    from provisioner.spec.model import BACKEND_PATTERN, Spec

    model = Environment if environment else Spec
    schema = _backends_listed(model.model_json_schema(by_alias=True), BACKEND_PATTERN, list(BACKENDS))
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "memprov environment" if environment else "memprov spec",
        **schema,
    }
    Console(color=False).raw(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    return 0


def _backends_listed(node: Any, pattern: str, names: list[str]) -> Any:
    """The schema with backend names (a pattern in the model: the registry knows the names) enumerated."""
    if isinstance(node, list):
        return [_backends_listed(v, pattern, names) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("pattern") == pattern:  # a backend name: one of the registry's
        return {k: v for k, v in node.items() if k != "pattern"} | {"enum": names}
    out = {k: _backends_listed(v, pattern, names) for k, v in node.items()}
    keyed = out.get("patternProperties")
    if isinstance(keyed, dict) and pattern in keyed:  # a mapping keyed by backend name (targets)
        value = keyed[pattern]
        del out["patternProperties"]
        out["properties"] = {name: value for name in names}
        out["additionalProperties"] = False
    return out
