"""Value types of the spec: sizes, durations, thresholds and secret references.

Each is a pydantic-annotated type that accepts the human form (``8Gi``, ``5m``, ``80%``,
``1.5x p95``, ``{env: NAME}``), validates it with a message that says how to write it, and
publishes a JSON Schema so that editors can complete and check it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema, model_validator

from provisioner.core.errors import describe
from provisioner.core.units import format_duration, format_size, parse_duration, parse_percent, parse_size

SIZE_PATTERN = r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?$"
DURATION_PATTERN = r"^(?=\d)(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$"

Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": SIZE_PATTERN}],
            "description": "bytes, or a Kubernetes quantity such as 8Gi or 512Mi",
        }
    ),
]
"""Bytes, parsed from ``8Gi``/``512Mi``/``8589934592``."""

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "description": "a Prometheus duration such as 30s, 5m, 1h"}
    ),
]
"""Seconds, parsed from a Prometheus duration."""

_SIZE_LIKE_RE = re.compile(r"^\s*\d+(\.\d+)?\s*[kKmMgGtTpP]i?[bB]\s*$")
_BASELINE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*(p50|p95|p99|max)\s*$")
BaselineStat = Literal["p50", "p95", "p99", "max"]


@dataclass(frozen=True)
class Threshold:
    """A threshold as written: a fraction of the limit, bytes, or a multiple of a baseline peak."""

    kind: Literal["percent", "bytes", "baseline"]
    value: float
    stat: BaselineStat = "p95"

    def __str__(self) -> str:
        if self.kind == "percent":
            return f"{self.value * 100:g}%"
        if self.kind == "bytes":
            return format_size(self.value)
        return f"{self.value:g}x {self.stat}"


def _fraction(value: object) -> float | None:
    """``0.8`` or ``"0.8"``: a fraction, which could mean 80% or 0.8 bytes."""
    try:
        number = float(value) if isinstance(value, (float, str)) else None
    except ValueError:
        return None
    return number if number is not None and 0 < number < 1 else None


def parse_threshold(value: object) -> Threshold:
    if isinstance(value, Threshold):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            pct = parse_percent(text)
            if not 0 < pct <= 1:
                raise ValueError(f'"{value}" must be between 0% and 100% of the limit')
            return Threshold("percent", pct)
        m = _BASELINE_RE.match(text)
        if m:
            stat: BaselineStat = m.group(2)  # type: ignore[assignment]
            factor = float(m.group(1))
            if not 0 < factor <= 100:
                raise ValueError(
                    f'"{value}": the multiple of the baseline must be above 0 and at most 100 (e.g. 1.5x p95)'
                )
            return Threshold("baseline", factor, stat)
    fraction = _fraction(value)
    if fraction is not None:
        raise ValueError(f"{value} is ambiguous; write a percentage ({fraction * 100:g}%) or a size (6Gi)")
    try:
        return Threshold("bytes", parse_size(value))
    except ValueError:
        if isinstance(value, str) and _SIZE_LIKE_RE.match(value):
            raise  # "6GB": the size parser's hint (use 6Gi or ...) is the useful one
        raise ValueError(
            f"{describe(value)} is not a threshold; use a percentage of the limit (80%), a size (6Gi) "
            "or a multiple of a baseline peak (1.5x p95)"
        ) from None


ThresholdValue = Annotated[
    Threshold,
    BeforeValidator(parse_threshold),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}],
            "description": "80% (of the limit), 6Gi (bytes), or 1.5x p95 (of the baseline peak)",
        }
    ),
]


class Strict(BaseModel):
    """The base of every spec model: unknown keys are errors, values frozen, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class SecretRef(BaseModel):
    """Where a secret comes from: an environment variable or a file. Never the secret itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_literal(cls, data: Any) -> Any:
        if isinstance(data, str):
            raise ValueError(
                "a literal secret is not allowed here (it would end up in git and in rendered files); "
                "use {env: VARIABLE_NAME} or {file: /run/secrets/name}"
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env: VARIABLE_NAME or file: /path/to/secret")
        if self.env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.env):
            raise ValueError(f'"{self.env}" is not an environment variable name; use e.g. SLACK_WEBHOOK_URL')
        return self

    def describe(self) -> str:
        return f"${self.env}" if self.env else f"file {self.file}"


def duration_text(seconds: float) -> str:
    return format_duration(seconds)
