"""Validate HTTP requests and responses against an OpenAPI 3.0 document, for the fakes.

The document's schemas become JSON Schema (draft 4, which OpenAPI 3.0's schema objects extend):
``nullable: true`` becomes a null alternative, everything else is taken as written. A request is
checked as connexion (Airflow 2's API layer, ``strict_validation=True``) checks it: the path
template and method exist, every query parameter is declared, required ones are there, and the
JSON body matches the operation's ``requestBody`` schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

URI = "urn:openapi"


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass(frozen=True)
class Operation:
    template: str
    method: str
    spec: dict[str, Any]
    params: dict[str, dict[str, Any]]  # query parameters by name


class OpenApi:
    def __init__(self, path: Path, prefix: str) -> None:
        self.doc = _nullable(yaml.safe_load(path.read_text(encoding="utf-8")))
        self.prefix = prefix
        self.registry: Registry[Any] = Registry().with_resource(
            URI, Resource.from_contents(self.doc, default_specification=DRAFT4)
        )
        self.routes: list[tuple[re.Pattern[str], str]] = []
        for template in self.doc["paths"]:
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            self.routes.append((re.compile(f"^{regex}$"), template))

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def operation(self, method: str, path: str) -> Operation | str:
        """The operation for a request, or why there is none (as the real API would answer)."""
        if not path.startswith(self.prefix):
            return f"404 {path} is outside {self.prefix}"
        rest = path[len(self.prefix) :]
        for regex, template in self.routes:
            if regex.match(rest):
                item = self.doc["paths"][template]
                op = item.get(method.lower())
                if op is None:
                    return f"405 {method} is not allowed on {template}"
                params = {}
                for p in [*item.get("parameters", []), *op.get("parameters", [])]:
                    p = self._deref(p)
                    if p.get("in") == "query":
                        params[p["name"]] = p
                return Operation(template, method.upper(), op, params)
        return f"404 no path {rest} in the API"

    def schema_errors(self, schema: dict[str, Any], value: Any) -> list[str]:
        validator = Draft4Validator(_absolute(schema), registry=self.registry)
        return [f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in validator.iter_errors(value)]

    def request_errors(self, op: Operation, query: dict[str, list[str]], body: Any) -> list[str]:
        errors = [f"query parameter {name!r} is not declared" for name in query if name not in op.params]
        errors += [
            f"query parameter {n!r} is required" for n, p in op.params.items() if p.get("required") and n not in query
        ]
        request = op.spec.get("requestBody")
        if request is not None:
            request = self._deref(request)
            if body is None:
                if request.get("required"):
                    errors.append("a JSON body is required")
            else:
                schema = request["content"]["application/json"]["schema"]
                errors += self.schema_errors(schema, body)
        elif body is not None:
            errors.append("this operation takes no body")
        return errors

    def response_errors(self, op: Operation, status: int, body: Any) -> list[str]:
        response = op.spec.get("responses", {}).get(str(status))
        if response is None:
            return [f"status {status} is not a documented response of {op.method} {op.template}"]
        response = self._deref(response)
        content = (response.get("content") or {}).get("application/json")
        if content is None or body is None:
            return []
        return self.schema_errors(content["schema"], body)


def _absolute(node: Any) -> Any:
    """A schema taken out of the document, its local ``$ref`` s pointing back into it."""
    if isinstance(node, list):
        return [_absolute(n) for n in node]
    if isinstance(node, dict):
        return {k: (URI + v if k == "$ref" and v.startswith("#") else _absolute(v)) for k, v in node.items()}
    return node
