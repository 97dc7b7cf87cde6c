"""The alert kinds, one module each: its spec settings, its derived values (computed once, in explicit
units, when the spec is resolved), its reference rules in PromQL and its alert texts. Backends say
per kind how they express it (:mod:`provisioner.render`).
"""

from __future__ import annotations

from typing import Any

from provisioner.kinds import anomaly, baseline, growth, oom_killed, time_to_oom, usage
from provisioner.kinds.base import Kind, KindDef

ALL: tuple[KindDef[Any, Any], ...] = (
    usage.KIND,
    growth.KIND,
    time_to_oom.KIND,
    baseline.KIND,
    anomaly.KIND,
    oom_killed.KIND,
)
"""Every kind, in :class:`Kind` order (the order rules and resources are rendered in)."""

BY_KIND: dict[Kind, KindDef[Any, Any]] = {k.kind: k for k in ALL}
