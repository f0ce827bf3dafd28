"""Differential property tests: the fast index must answer exactly as the reference evaluator.

(a) On random worlds and flows, ``Index.from_objects(world)`` and
    ``ReferenceEvaluator(world)`` give the same verdict, reason, endpoints, notes
    and, when explained, the same traces (everything but the generation); the
    order the objects come in does not change the index.
(c) The same two on worlds that mix cluster-scoped policies (ClusterNetworkPolicy
    in both tiers, AdminNetworkPolicy, BaselineAdminNetworkPolicy) with
    NetworkPolicies, incremental updates included.
(d) The same two on worlds with Services and EndpointSlices (either verdict for a
    partially allowed Service), incremental updates included: endpoints turning
    ready or unready, slices replaced, Services deleted.
(b) After random upserts/deletes applied incrementally with ``Index.apply`` in
    several batches, the index (checked with ``idx.check()`` after every step)
    agrees with the reference on the world so far, and at the end with a fresh
    ``Index.from_objects`` of the final world.

The reference alone is also held to properties that need no index (explaining
changes nothing but the trace; the reason and the traces tell the same story).

Example counts come from the hypothesis profile (tests/conftest.py): ``ci``
when the ``CI`` environment variable is set.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import History, WorldAndFlows, flows, histories, world_ips, worlds_and_flows

from netpol_pdp.index.decision import Decision, Reason, Verdict
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import Delete, Object, ObjectKey, Upsert
from netpol_pdp.index.reference import ReferenceEvaluator

HAS_INDEX = importlib.util.find_spec("netpol_pdp.index.engine") is not None
needs_index = pytest.mark.skipif(not HAS_INDEX, reason="netpol_pdp.index.engine is not on this branch yet")


def examples(fraction: float) -> int:
    """A share of the active profile's example count (the reference-only checks need fewer)."""
    return max(20, int(settings.default.max_examples * fraction))


def _index_class() -> Any:
    from netpol_pdp.index.engine import Index

    return Index


def comparable(d: Decision) -> Decision:
    """A decision without its generation (the reference always answers at generation 0),
    its Service endpoints' decisions too."""
    if d.service is not None:
        endpoints = tuple(
            dataclasses.replace(e, decision=comparable(e.decision)) for e in d.service.endpoints
        )
        d = dataclasses.replace(d, service=dataclasses.replace(d.service, endpoints=endpoints))
    return dataclasses.replace(d, generation=0)


def assert_agree(index: Any, reference: ReferenceEvaluator, flows_: list[Flow], world: list[Object]) -> None:
    for flow in flows_:
        for explain in (False, True):
            want = reference.decide(flow, explain=explain)
            got = index.decide(flow, explain=explain)
            assert comparable(got) == want, (
                f"index and reference disagree on {flow} (explain={explain})\n"
                f"  index:     {got}\n  reference: {want}\n  world: {world}"
            )


@needs_index
@given(worlds_and_flows())
def test_index_agrees_with_reference_on_random_worlds(case: WorldAndFlows) -> None:
    index = _index_class().from_objects(case.world)
    index.check()
    assert_agree(index, ReferenceEvaluator(case.world), case.flows, case.world)


@needs_index
@settings(max_examples=examples(0.5))
@given(worlds_and_flows(max_flows=8))
def test_decide_many_agrees_with_decide(case: WorldAndFlows) -> None:
    index = _index_class().from_objects(case.world)
    many = index.decide_many(case.flows, explain=True)
    assert [comparable(d) for d in many] == [comparable(index.decide(f, explain=True)) for f in case.flows]
    assert len({d.generation for d in many}) <= 1


@needs_index
@settings(max_examples=examples(0.5))
@given(worlds_and_flows(max_flows=8), st.data())
def test_build_order_does_not_matter(case: WorldAndFlows, data: st.DataObject) -> None:
    """The same objects in another order (a pod before its namespace or policy...) build the same index."""
    index_class = _index_class()
    shuffled = data.draw(st.permutations(case.world), label="order")
    a, b = index_class.from_objects(case.world), index_class.from_objects(shuffled)
    b.check()
    assert a.objects() == b.objects()
    for flow in case.flows:
        assert comparable(a.decide(flow, explain=True)) == comparable(b.decide(flow, explain=True)), flow


def _apply_to(world: dict[ObjectKey, Object], events: list[Upsert | Delete]) -> None:
    for event in events:
        if isinstance(event, Upsert):
            world[event.obj.key] = event.obj
        else:
            world.pop(event.key, None)


@needs_index
@given(histories(), st.data())
def test_incremental_updates_agree_with_a_fresh_build_and_the_reference(
    history: History, data: st.DataObject
) -> None:
    index_class = _index_class()
    index = index_class.from_objects(history.initial)
    index.check()
    world = {o.key: o for o in history.initial}
    everything = [*history.initial, *history.final]
    probe = data.draw(st.lists(flows(everything), min_size=1, max_size=6), label="flows")
    for batch in history.batches:
        before = index.generation
        generation = index.apply(batch)
        assert generation == before + 1 == index.generation
        index.check()
        _apply_to(world, batch)
        assert index.objects() == world
        current = list(world.values())
        assert_agree(index, ReferenceEvaluator(current), probe, current)
    assert {o.key: o for o in history.final} == world
    fresh = index_class.from_objects(history.final)
    fresh.check()
    assert fresh.objects() == index.objects()
    for flow in probe:
        for explain in (False, True):
            assert comparable(index.decide(flow, explain=explain)) == comparable(
                fresh.decide(flow, explain=explain)
            )


# --- the reference on its own ------------------------------------------------------------


@settings(max_examples=examples(0.25))
@given(worlds_and_flows())
def test_reference_explaining_changes_only_the_trace(case: WorldAndFlows) -> None:
    reference = ReferenceEvaluator(case.world)
    for flow in case.flows:
        plain = reference.decide(flow)
        explained = reference.decide(flow, explain=True)
        assert (plain.explained, plain.egress, plain.ingress) == (False, None, None)
        assert explained.explained
        assert dataclasses.replace(explained, egress=None, ingress=None, explained=False) == plain


EXEMPTIONS = {Reason.LOOPBACK, Reason.NODE_TRAFFIC, Reason.HOST_NETWORK, Reason.NO_POD}


@settings(max_examples=examples(0.25))
@given(worlds_and_flows())
def test_reference_reason_tells_the_same_story_as_the_traces(case: WorldAndFlows) -> None:
    reference = ReferenceEvaluator(case.world)
    for flow in case.flows:
        d = reference.decide(flow, explain=True)
        traces = [t for t in (d.egress, d.ingress) if t is not None]
        if d.reason in EXEMPTIONS:
            assert d.verdict is Verdict.ALLOW and not traces
            continue
        assert traces, "a policy reason needs at least one pod end"
        for t in traces:
            assert t.allowed == (not t.isolated or bool(t.allowed_by))
            assert t.isolated == bool(t.isolating)
            assert list(t.isolating) == sorted(t.isolating)
            assert list(t.allowed_by) == sorted(t.allowed_by, key=lambda r: (r.policy, r.rule))
            assert {r.policy for r in t.allowed_by} <= set(t.isolating)
        assert d.allowed == all(t.allowed for t in traces)
        assert (d.reason is Reason.NOT_ISOLATED) == (d.allowed and not any(t.isolated for t in traces))


@settings(max_examples=examples(0.25))
@given(worlds_and_flows())
def test_reference_resolves_every_known_address_consistently(case: WorldAndFlows) -> None:
    """An address resolves the same way whichever end of the flow it is on."""
    reference = ReferenceEvaluator(case.world)
    for ip in world_ips(case.world)[:6]:
        for flow in case.flows[:3]:
            forward = reference.decide(Flow(ip, flow.dst_ip, flow.protocol, flow.dst_port))
            backward = reference.decide(Flow(flow.dst_ip, ip, flow.protocol, flow.dst_port))
            assert forward.src == backward.dst


# --- (c) cluster policy tiers ----------------------------------------------------------------


@needs_index
@given(worlds_and_flows(cluster=True))
def test_index_agrees_with_reference_on_worlds_with_cluster_policies(case: WorldAndFlows) -> None:
    index = _index_class().from_objects(case.world)
    index.check()
    assert_agree(index, ReferenceEvaluator(case.world), case.flows, case.world)


@needs_index
@given(histories(cluster=True), st.data())
def test_incremental_cluster_policy_updates_agree_with_the_reference(
    history: History, data: st.DataObject
) -> None:
    index = _index_class().from_objects(history.initial)
    world = {o.key: o for o in history.initial}
    probe = data.draw(
        st.lists(flows([*history.initial, *history.final]), min_size=1, max_size=6), label="flows"
    )
    for batch in history.batches:
        index.apply(batch)
        index.check()
        _apply_to(world, batch)
        assert index.objects() == world
        current = list(world.values())
        assert_agree(index, ReferenceEvaluator(current), probe, current)
    fresh = _index_class().from_objects(history.final)
    for flow in probe:
        assert comparable(index.decide(flow, explain=True)) == comparable(fresh.decide(flow, explain=True))


# --- Services and EndpointSlices ---------------------------------------------------------


@needs_index
@settings(max_examples=examples(0.5))
@given(worlds_and_flows(services=True), st.sampled_from([Verdict.DENY, Verdict.ALLOW]))
def test_index_agrees_with_reference_on_worlds_with_services(case: WorldAndFlows, partial: Verdict) -> None:
    index = _index_class().from_objects(case.world, partial)
    index.check()
    assert_agree(index, ReferenceEvaluator(case.world, partial), case.flows, case.world)


@needs_index
@settings(max_examples=examples(0.5))
@given(histories(services=True), st.data())
def test_incremental_service_and_slice_updates_agree_with_the_reference(
    history: History, data: st.DataObject
) -> None:
    index = _index_class().from_objects(history.initial)
    world = {o.key: o for o in history.initial}
    probe = data.draw(
        st.lists(flows([*history.initial, *history.final]), min_size=1, max_size=6), label="flows"
    )
    for batch in history.batches:
        index.apply(batch)
        index.check()
        _apply_to(world, batch)
        assert index.objects() == world
        current = list(world.values())
        assert_agree(index, ReferenceEvaluator(current), probe, current)
    fresh = _index_class().from_objects(history.final)
    for flow in probe:
        assert comparable(index.decide(flow, explain=True)) == comparable(fresh.decide(flow, explain=True))
