"""Sizes, durations, percentages and thresholds: parsing, formatting and the messages of bad values."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.core.types import DURATION_PATTERN, SIZE_PATTERN, Threshold, parse_threshold
from provisioner.core.units import (
    MAX_DURATION,
    MAX_SIZE,
    format_duration,
    format_size,
    parse_duration,
    parse_percent,
    parse_size,
)

GI = 2**30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8Gi", 8 * GI),
        ("512Mi", 512 * 2**20),
        ("7.5Gi", 8053063680),
        ("1Ki", 1024),
        ("2Ti", 2 * 2**40),
        ("1Pi", 2**50),
        ("8G", 8_000_000_000),
        ("8k", 8000),
        ("8K", 8000),
        ("1M", 10**6),
        ("8589934592", 8 * GI),
        (" 8Gi ", 8 * GI),
        ("8 Gi", 8 * GI),
        (8589934592, 8 * GI),
        (1024.0, 1024),
        ("1024Pi", MAX_SIZE),
    ],
)
def test_parse_size_accepts_kubernetes_quantities_and_bytes(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("8GB", '"8GB" is not a size; use 8Gi or 8589934592'),
        ("8gb", '"8gb" is not a size; use 8Gi or 8589934592'),
        ("1.5GB", '"1.5GB" is not a size; use 1.5Gi or 1610612736'),
        ("8 GiB", '"8 GiB" is not a size; use 8Gi or 8589934592'),
        ("512MB", '"512MB" is not a size; use 512Mi or 536870912'),
        ("lots", '"lots" is not a size; use a Kubernetes quantity such as 8Gi, 512Mi or a number of bytes'),
        ("", '"" is not a size; use a Kubernetes quantity such as 8Gi, 512Mi or a number of bytes'),
        ("-1Gi", '"-1Gi" is not a size; use a Kubernetes quantity such as 8Gi, 512Mi or a number of bytes'),
        ("1.5", '"1.5" is not a whole number of bytes; use e.g. 512Mi or 8Gi'),
        ("0Mi", '"0Mi" is not a positive size; use e.g. 512Mi or 8Gi'),
        ("0.0001Ki", '"0.0001Ki" is not a positive size; use e.g. 512Mi or 8Gi'),
        ("2000Pi", '"2000Pi" is too large; sizes are at most 1024Pi'),
        ("9" * 400 + "Gi", f'"{"9" * 400}Gi" is too large; sizes are at most 1024Pi'),
        (0, "0 is not a positive size; use e.g. 512Mi or 8Gi"),
        (-5, "-5 is not a positive size; use e.g. 512Mi or 8Gi"),
        (2**61, f"{2**61} is too large; sizes are at most 1024Pi"),
        (1.5, "1.5 is not a whole positive number of bytes; use e.g. 512Mi or 8Gi"),
        (math.inf, "inf is not a whole positive number of bytes; use e.g. 512Mi or 8Gi"),
        (math.nan, "nan is not a whole positive number of bytes; use e.g. 512Mi or 8Gi"),
        (True, "true is not a size; use 8Gi or 8589934592"),
        (None, "an empty value is not a size; use 8Gi or 8589934592"),
        ([8], "a list is not a size; use 8Gi or 8589934592"),
        ({"gi": 8}, "a mapping is not a size; use 8Gi or 8589934592"),
    ],
)
def test_parse_size_says_how_to_write_it(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (8 * GI, "8Gi"),
        (8053063680, "7.5Gi"),
        (1536, "1.5Ki"),
        (1023, "1023"),
        (2**40, "1Ti"),
        (0, "0"),
        (GI / 2, "512Mi"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


@given(st.integers(min_value=1, max_value=2**45))
def test_formatted_sizes_parse_back_close_to_the_original(n: int) -> None:
    back = parse_size(format_size(n))
    assert abs(back - n) <= 0.005 * n + 1  # two decimals of the unit at most


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1d", 86400),
        ("1w", 604800),
        ("100ms", 0.1),
        ("1w2d3h4m5s6ms", 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5 + 0.006),
        (" 5m ", 300),
        ("0h30m", 1800),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (30, "30 is not a duration: give a unit, e.g. 30s or 30m"),
        ("5m1h", '"5m1h" is not a duration; write the units from largest to smallest, each once (e.g. 1h30m)'),
        ("1h1h", '"1h1h" is not a duration; write the units from largest to smallest, each once (e.g. 1h30m)'),
        ("30 seconds", '"30 seconds" is not a duration; use e.g. 30s, 5m, 1h30m or 1w'),
        ("5 m", '"5 m" is not a duration; use e.g. 30s, 5m, 1h30m or 1w'),
        ("1.5h", '"1.5h" is not a duration; use e.g. 30s, 5m, 1h30m or 1w'),
        ("-5m", '"-5m" is not a duration; use e.g. 30s, 5m, 1h30m or 1w'),
        ("1y", '"1y" is not a duration; use e.g. 30s, 5m, 1h30m or 1w'),
        ("", '"" is not a duration; use e.g. 30s, 5m, 1h30m or 1w'),
        ("0s", '"0s" must be longer than zero'),
        ("0h0m", '"0h0m" must be longer than zero'),
        ("600w", '"600w" is longer than ten years; use a shorter duration'),
        ("9" * 40 + "w", f'"{"9" * 40}w" is not a duration; use e.g. 30s, 5m, 1h30m or 1w'),
        (1.5, "1.5 is not a duration; use e.g. 30s, 5m, 1h"),
        (False, "false is not a duration; use e.g. 30s, 5m, 1h"),
        (None, "an empty value is not a duration; use e.g. 30s, 5m, 1h"),
    ],
)
def test_parse_duration_says_how_to_write_it(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90, "1m30s"), (3600, "1h"), (604800, "1w"), (694861, "1w1d1h1m1s"), (0.5, "500ms"), (0, "0s"), (-1, "0s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=MAX_DURATION))
def test_whole_second_durations_round_trip(seconds: int) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
    assert re.fullmatch(DURATION_PATTERN, text)


@settings(max_examples=300)
@given(st.from_regex(r"\A[0-9]{1,3}(ms|s|m|h|d|w)([0-9]{1,3}(ms|s|m|h|d|w)){0,3}\Z"))
def test_the_schema_pattern_accepts_exactly_what_the_parser_accepts(text: str) -> None:
    """Editors check durations with the JSON Schema's pattern; it must agree with memprov."""
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        accepted = "longer than zero" in str(e) or "ten years" in str(e)  # pattern cannot express values
    else:
        accepted = seconds > 0
    assert bool(re.fullmatch(DURATION_PATTERN, text)) == accepted


@pytest.mark.parametrize("text", ["8Gi", "7.5Gi", "8589934592", "8G", "512Mi"])
def test_the_schema_size_pattern_accepts_valid_sizes(text: str) -> None:
    assert re.fullmatch(SIZE_PATTERN, text)
    assert parse_size(text) > 0


@pytest.mark.parametrize(("text", "fraction"), [("80%", 0.8), (" 80 % ", 0.8), ("80.5%", 0.805), ("100%", 1.0)])
def test_parse_percent(text: str, fraction: float) -> None:
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("80", '"80" is not a percentage; use e.g. 80%'),
        ("80%%", '"80%%" is not a percentage; use e.g. 80%'),
        ("-5%", '"-5%" is not a percentage; use e.g. 80%'),
        (80, "80 is not a percentage; use e.g. 80%"),
    ],
)
def test_parse_percent_says_how_to_write_it(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_percent(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("80%", Threshold("percent", 0.8)),
        ("6Gi", Threshold("bytes", 6 * GI)),
        (6442450944, Threshold("bytes", 6 * GI)),
        ("1.5x p95", Threshold("baseline", 1.5, "p95")),
        ("2 x max", Threshold("baseline", 2, "max")),
        ("1.2xp50", Threshold("baseline", 1.2, "p50")),
    ],
)
def test_parse_threshold(value: object, expected: Threshold) -> None:
    assert parse_threshold(value) == expected
    assert parse_threshold(str(expected)) == expected  # str() writes it the way the spec does


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0%", '"0%" must be between 0% and 100% of the limit'),
        ("101%", '"101%" must be between 0% and 100% of the limit'),
        (0.8, "0.8 is ambiguous; write a percentage (80%) or a size (6Gi)"),
        ("0.8", "0.8 is ambiguous; write a percentage (80%) or a size (6Gi)"),
        ("6GB", '"6GB" is not a size; use 6Gi or 6442450944'),
        ("0x p95", '"0x p95": the multiple of the baseline must be above 0 and at most 100 (e.g. 1.5x p95)'),
        ("1e9x p95", '"1e9x p95" is not a threshold; use a percentage of the limit (80%), a size (6Gi) '
         "or a multiple of a baseline peak (1.5x p95)"),
        ("1.5x p59", '"1.5x p59" is not a threshold; use a percentage of the limit (80%), a size (6Gi) '
         "or a multiple of a baseline peak (1.5x p95)"),
        (None, "an empty value is not a threshold; use a percentage of the limit (80%), a size (6Gi) "
         "or a multiple of a baseline peak (1.5x p95)"),
    ],
)  # fmt: skip
def test_parse_threshold_says_how_to_write_it(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_threshold(value)
    assert str(info.value) == message
