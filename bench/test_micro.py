"""Micro-benchmarks of the index (pytest-benchmark).

Run: ``pytest bench/ --benchmark-enable`` (add ``--benchmark-json=FILE`` to keep
the figures).  Not part of the default ``pytest`` run (``testpaths = tests``).

Sizes: ``NETPOL_BENCH_SIZES`` (comma separated, default ``small,medium``); add
``large`` deliberately: it takes minutes and ~1 GiB on a 2-core machine.

Decisions are timed over a batch of ``BATCH`` flows per round so that the
timer's own cost does not dominate a ~100 ns lookup; ``extra_info`` carries the
per-decision rate.  Each world asserts its size (STYLE.md 12).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from netpol_pdp.bench.events import EVENT_NAMES, update_events
from netpol_pdp.bench.flowmix import endpoints, realistic_flows, uniform_flows
from netpol_pdp.bench.worlds import SIZES, World, generate_world
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import LabelSelector, Operator, Requirement
from netpol_pdp.index.selectors import matches

BATCH = 1_000
SIZE_NAMES = [s.strip() for s in os.environ.get("NETPOL_BENCH_SIZES", "small,medium").split(",") if s.strip()]
for _name in SIZE_NAMES:
    if _name not in SIZES:
        raise ValueError(f"NETPOL_BENCH_SIZES: unknown size {_name!r} (sizes: {', '.join(SIZES)})")


@cache
def world(size: str) -> World:
    w = generate_world(size, seed=1)
    assert w.counts()["Pod"] == SIZES[size].pods
    return w


@cache
def built(size: str) -> Index:
    """One index per size, shared by the decision benchmarks (they do not change it)."""
    idx = Index.from_objects(world(size).objects)
    assert idx.counts() == world(size).counts()
    return idx


@cache
def hot_flows(size: str) -> list[Flow]:
    """The BATCH most repeated flows of a realistic log: the cache-hit case."""
    idx = built(size)
    flows = realistic_flows(
        endpoints(world(size).objects), 50 * BATCH, seed=1, allowed=lambda f: idx.decide(f).allowed
    )
    distinct = list(dict.fromkeys(flows))
    return (distinct * (BATCH // len(distinct) + 1))[:BATCH]


@cache
def cold_flows(size: str) -> list[Flow]:
    """BATCH distinct flows of a realistic log (decided on a fresh generation: all misses)."""
    idx = built(size)
    flows = realistic_flows(
        endpoints(world(size).objects), 200 * BATCH, seed=2, allowed=lambda f: idx.decide(f).allowed
    )
    distinct = list(dict.fromkeys(flows))[:BATCH]
    assert len(distinct) == BATCH, f"the realistic log of {size} holds only {len(distinct)} distinct flows"
    return distinct


def _rate(benchmark: BenchmarkFixture, n: int) -> None:
    if benchmark.stats is None:  # --benchmark-disable (the CI smoke run): ran once, nothing timed
        return
    benchmark.extra_info["decisions_per_batch"] = n
    benchmark.extra_info["decisions_per_s"] = round(n / benchmark.stats.stats.median)


@pytest.fixture(params=SIZE_NAMES)
def size(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_decide_cache_hit(benchmark: BenchmarkFixture, size: str) -> None:
    idx = built(size)
    flows = hot_flows(size)
    idx.decide_many(flows)
    decide = idx.decide

    def run() -> None:
        for f in flows:
            decide(f)

    hits_before = idx.cache_stats()[0]
    benchmark(run)
    assert idx.cache_stats()[0] > hits_before
    _rate(benchmark, len(flows))


def test_decide_many_cache_hit(benchmark: BenchmarkFixture, size: str) -> None:
    idx = built(size)
    flows = hot_flows(size)
    idx.decide_many(flows)
    benchmark(idx.decide_many, flows)
    _rate(benchmark, len(flows))


def test_decide_cache_miss(benchmark: BenchmarkFixture, size: str) -> None:
    idx = built(size)
    flows = cold_flows(size)
    decide = idx.decide

    def fresh_generation() -> tuple[tuple[Any, ...], dict[str, Any]]:
        idx.apply([])  # a new generation starts with an empty decision cache
        return (), {}

    def run() -> None:
        for f in flows:
            decide(f)

    misses_before = idx.cache_stats()[1]
    benchmark.pedantic(run, setup=fresh_generation, rounds=20, iterations=1)  # type: ignore[no-untyped-call]
    missed = idx.cache_stats()[1] - misses_before
    assert missed and missed % len(flows) == 0, "every timed decision was a cache miss"
    _rate(benchmark, len(flows))


def test_decide_uniform_miss(benchmark: BenchmarkFixture, size: str) -> None:
    idx = built(size)
    flows = list(dict.fromkeys(uniform_flows(endpoints(world(size).objects), BATCH, seed=3)))

    def fresh_generation() -> tuple[tuple[Any, ...], dict[str, Any]]:
        idx.apply([])  # a new generation starts with an empty decision cache
        return (flows,), {}

    benchmark.pedantic(idx.decide_many, setup=fresh_generation, rounds=20, iterations=1)  # type: ignore[no-untyped-call]
    _rate(benchmark, len(flows))


def test_decide_with_explain(benchmark: BenchmarkFixture, size: str) -> None:
    idx = built(size)
    flows = cold_flows(size)[:200]

    def run() -> None:
        for f in flows:
            idx.decide(f, explain=True)

    benchmark(run)
    _rate(benchmark, len(flows))


def test_index_build(benchmark: BenchmarkFixture, size: str) -> None:
    objects = world(size).objects
    rounds = {"tiny": 10, "small": 5, "medium": 3}.get(size, 1)
    idx = benchmark.pedantic(Index.from_objects, args=(objects,), rounds=rounds, iterations=1)  # type: ignore[no-untyped-call]
    assert idx.counts() == world(size).counts()
    benchmark.extra_info.update(idx.stats())


@pytest.mark.parametrize("event", EVENT_NAMES)
def test_apply_one_event(benchmark: BenchmarkFixture, size: str, event: str) -> None:
    idx = Index.from_objects(world(size).objects)  # its own: the events change it
    timed = next(e for e in update_events(world(size).objects) if e.name == event)

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        idx.apply(timed.undo)
        return (timed.do,), {}

    benchmark.pedantic(idx.apply, setup=setup, rounds=30, iterations=1)  # type: ignore[no-untyped-call]
    idx.apply(timed.undo)
    assert idx.counts() == world(size).counts()


SELECTORS = {
    "matchLabels": LabelSelector(match_labels=(("app", "api"), ("tier", "backend"))),
    "matchExpressions": LabelSelector(
        match_expressions=(
            Requirement("tier", Operator.IN, frozenset({"frontend", "backend"})),
            Requirement("canary", Operator.DOES_NOT_EXIST),
            Requirement("env", Operator.NOT_IN, frozenset({"dev"})),
        )
    ),
}


@pytest.mark.parametrize("kind", list(SELECTORS))
def test_selector_matching(benchmark: BenchmarkFixture, size: str, kind: str) -> None:
    """One selector against the label set of every deployment of the world (its identities)."""
    labels = [dict(d.labels) for d in world(size).deployments]
    selector = SELECTORS[kind]

    def run() -> int:
        return sum(matches(selector, lab) for lab in labels)

    assert 0 < benchmark(run) < len(labels)
    benchmark.extra_info["label_sets"] = len(labels)
    if benchmark.stats is not None:
        benchmark.extra_info["matches_per_s"] = round(len(labels) / benchmark.stats.stats.median)
