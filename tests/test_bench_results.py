"""The benchmark report helpers: percentiles, units, tables."""

from __future__ import annotations

import math

import pytest

from netpol_pdp.bench.results import duration, si, table
from netpol_pdp.bench.serve import percentile

VALUES = [float(v) for v in range(1, 1001)]  # 1..1000


@pytest.mark.parametrize(
    ("q", "expected"),
    [(50, 500.0), (99, 990.0), (99.9, 999.0), (100, 1000.0), (0.01, 1.0)],
    ids=[
        "p50 is the 500th of 1000",
        "p99 the 990th",
        "p99.9 the 999th",
        "p100 the largest",
        "a tiny q the smallest",
    ],
)
def test_percentiles_are_nearest_rank(q, expected):
    assert percentile(VALUES, q) == expected


def test_the_percentile_of_nothing_is_not_a_number():
    assert math.isnan(percentile([], 50))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(12.345, "12.35 s"), (0.0123, "12.3 ms"), (2.5e-5, "25 µs"), (9.1e-8, "91 ns"), (math.nan, "-")],
    ids=["seconds", "milliseconds", "microseconds", "nanoseconds", "NaN shows as a dash"],
)
def test_durations_pick_a_readable_unit(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(9_860_000, "9.86 M/s"), (198_069, "198 k/s"), (2.99, "2.99 /s")],
    ids=["millions", "thousands", "units"],
)
def test_rates_use_si_prefixes(value, text):
    assert si(value, "/s") == text


def test_a_table_is_aligned_markdown():
    lines = table(("size", "build"), [("small", "30 ms"), ("large", "12.1 s")]).splitlines()
    assert lines[0] == "| size  | build  |"
    assert lines[1] == "|-------|--------|"
    assert lines[3] == "| large | 12.1 s |"
