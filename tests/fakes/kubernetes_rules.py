"""The API server's rules the Kubernetes fake applies: patch semantics, validation, QoS, label selectors.

Split from :mod:`tests.fakes.kubernetes` (which cites the documentation for each rule).
"""

from __future__ import annotations

import copy
from typing import Any

from provisioner.core.units import parse_size


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic merge: like RFC 7386, but ``containers`` (and ``initContainers``) merge by ``name``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif k in ("containers", "initContainers") and isinstance(v, list):
            merged = copy.deepcopy(out.get(k) or [])
            for item in v:
                i = next((n for n, c in enumerate(merged) if c.get("name") == item.get("name")), None)
                if i is None:
                    merged.append(copy.deepcopy(item))
                else:
                    merged[i] = strategic_merge(merged[i], item)
            out[k] = merged
        else:
            out[k] = strategic_merge(out.get(k), v)
    return out


def resources_only(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Do two pod templates differ only in their containers' resources?"""
    a, b = copy.deepcopy(a), copy.deepcopy(b)
    for t in (a, b):
        for c in t.get("spec", {}).get("containers", []):
            c.pop("resources", None)
    return a == b


def check_limits(containers: list[dict[str, Any]], where: str) -> None:
    for i, c in enumerate(containers):
        res = c.get("resources") or {}
        for name, limit in (res.get("limits") or {}).items():
            request = (res.get("requests") or {}).get(name)
            if request is not None and name == "memory" and parse_size(request) > parse_size(limit):
                raise ApiError(
                    422,
                    "Invalid",
                    f'{where}[{i}].resources.requests: Invalid value: "{request}": '
                    f"must be less than or equal to memory limit of {limit}",
                )
        if not c.get("image"):
            raise ApiError(422, "Invalid", f"{where}[{i}].image: Required value")


def qos(containers: list[dict[str, Any]]) -> str:
    res = [c.get("resources") or {} for c in containers]
    if all(not (r.get("requests") or r.get("limits")) for r in res):
        return "BestEffort"
    for r in res:
        lim, req = r.get("limits") or {}, r.get("requests") or {}
        if set(lim) != {"cpu", "memory"} or any(req.get(k, lim[k]) != lim[k] for k in lim):
            return "Burstable"
    return "Guaranteed"


def strip_resources(spec: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    for c in out.get("containers", []):
        c.pop("resources", None)
    return out


def selects(query: dict[str, list[str]], obj: dict[str, Any]) -> bool:
    labels = obj["metadata"].get("labels") or {}
    for term in ",".join(query.get("labelSelector", [])).split(","):
        if not term:
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        else:
            k, v = term.split("=", 1) if "=" in term else (term, None)
            if (v is None and k not in labels) or (v is not None and labels.get(k) != v.lstrip("=")):
                return False
    return True
