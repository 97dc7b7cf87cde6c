"""Parsing and formatting of sizes, durations and percentages used throughout the spec.

Sizes follow Kubernetes quantities (``8Gi``, ``512Mi``, ``7.5Gi``, ``8G`` = 8e9, or plain bytes);
durations follow Prometheus (``30s``, ``5m``, ``1h``, ``1w``, ``1h30m``). Parsers raise
``ValueError`` with a message that says how to write the value correctly.
"""

from __future__ import annotations

import functools
import math
import re

from provisioner.core.errors import describe

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?\s*$")
_DUR_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}  # largest first, as Prometheus
_DUR_RE = re.compile(r"(\d{1,12})(ms|s|m|h|d|w)")
MAX_SIZE = 2**60  # 1024Pi: anything larger is a typo, and would overflow floats downstream
MAX_DURATION = 10 * 365 * 86400  # ten years
_PCT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _size_hint(text: str) -> str:
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)", text)
    if m:
        unit = m.group(2).lower().rstrip("b").rstrip("i")
        guess = {"k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti", "p": "Pi"}.get(unit)
        if guess:
            n = float(m.group(1)) * _BINARY[guess]
            return f"use {m.group(1)}{guess}" + (f" or {round(n)}" if n <= MAX_SIZE else "")
    return "use a Kubernetes quantity such as 8Gi, 512Mi or a number of bytes"


def parse_size(value: object) -> int:
    """Return a size in bytes from ``8Gi``/``8589934592``/``8G``; reject ``8GB`` with a hint."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{describe(value)} is not a size; use 8Gi or 8589934592")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{value} is not a positive size; use e.g. 512Mi or 8Gi")
        result = value
    elif isinstance(value, float):
        if not math.isfinite(value) or value <= 0 or value != int(value):
            raise ValueError(f"{describe(value)} is not a whole positive number of bytes; use e.g. 512Mi or 8Gi")
        result = int(value)
    else:
        m = _SIZE_RE.match(value)
        if not m:
            raise ValueError(f'"{value}" is not a size; {_size_hint(value)}')
        number, unit = float(m.group(1)), m.group(2)
        exact = number * (_BINARY.get(unit or "") or _DECIMAL.get(unit or "", 1))
        if not math.isfinite(exact) or exact > MAX_SIZE:
            raise ValueError(f'"{value}" is too large; sizes are at most 1024Pi')
        if unit is None and number != int(number):
            raise ValueError(f'"{value}" is not a whole number of bytes; use e.g. 512Mi or 8Gi')
        result = round(exact)
        if result <= 0:
            raise ValueError(f'"{value}" is not a positive size; use e.g. 512Mi or 8Gi')
    if result > MAX_SIZE:
        raise ValueError(f"{describe(value)} is too large; sizes are at most 1024Pi")
    return result


def format_size(n: float) -> str:
    """Human binary size: 8589934592 -> '8Gi', 8053063680 -> '7.5Gi'."""
    for unit, mult in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if abs(n) >= mult:
            v = n / mult
            return f"{v:.0f}{unit}" if abs(v - round(v)) < 0.005 else f"{v:.2f}".rstrip("0").rstrip(".") + unit
    return f"{n:.0f}"


def parse_duration(value: object) -> float:
    """Return seconds from a Prometheus duration (``30s``, ``5m``, ``1h30m``, ``1w``).

    As in Prometheus, units go from largest to smallest and each appears once (``1h30m``, not ``30m1h``).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"{value} is not a duration: give a unit, e.g. {value}s or {value}m")
    if not isinstance(value, str):
        raise ValueError(f"{describe(value)} is not a duration; use e.g. 30s, 5m, 1h")
    text = value.strip()
    pos, total, rank = 0, 0.0, -1
    units = list(_DUR_UNITS)
    for m in _DUR_RE.finditer(text):
        if m.start() != pos:
            break
        if units.index(m.group(2)) <= rank:
            raise ValueError(
                f'"{value}" is not a duration; write the units from largest to smallest, each once (e.g. 1h30m)'
            )
        rank = units.index(m.group(2))
        total += int(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f'"{value}" is not a duration; use e.g. 30s, 5m, 1h30m or 1w')
    if total <= 0:
        raise ValueError(f'"{value}" must be longer than zero')
    if total > MAX_DURATION:
        raise ValueError(f'"{value}" is longer than ten years; use a shorter duration')
    return total


@functools.lru_cache(maxsize=4096)  # rules write the same few durations hundreds of thousands of times
def format_duration(seconds: float) -> str:
    """Prometheus duration from seconds: 90 -> '1m30s', 3600 -> '1h', 604800 -> '1w'."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out, rest = "", round(seconds)
    for unit, mult in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= mult:
            out += f"{rest // mult}{unit}"
            rest %= mult
    return out


def parse_percent(value: object) -> float:
    """Return a fraction from ``"80%"``; raise for anything else."""
    if isinstance(value, str):
        m = _PCT_RE.match(value)
        if m:
            return float(m.group(1)) / 100
    raise ValueError(f"{describe(value)} is not a percentage; use e.g. 80%")
