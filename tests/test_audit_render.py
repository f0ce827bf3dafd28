"""An audit's decision text, put together from cached ends, is the text ``json.dumps`` writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netpol_pdp.clients.auditing.output import Rendered, Renderer
from netpol_pdp.clients.flowlogs import read_flowlog
from netpol_pdp.examples import CLUSTER, HERE
from netpol_pdp.index.decision import Decision, Endpoint, EndpointKind, Reason, Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import ManifestSource

# names with what JSON must escape: quotes, backslashes, controls, non-ASCII, astral characters
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
endpoints = st.builds(
    Endpoint,
    st.sampled_from(EndpointKind),
    st.none() | texts,
    st.none() | texts,
    st.sampled_from([(), ("ns/host-pod",), ('we"ird/p\\od', "ns/b")]),
)
decisions = st.builds(
    Decision,
    st.sampled_from(Verdict),
    st.sampled_from(Reason),
    st.integers(min_value=0, max_value=2**70),
    endpoints,
    endpoints,
    st.sampled_from([(), ("a note",), ("ünïcode \u2028 note",)]),
)


def plainly(decision: Decision) -> str:
    return json.dumps(decision.to_dict())[1:-1]


@given(st.lists(decisions, min_size=1, max_size=6))
def test_a_decision_renders_as_json_dumps_writes_it(batch: list[Decision]) -> None:
    renderer = Renderer()
    for decision in batch:
        assert renderer.of(decision).fragment == plainly(decision)
        assert renderer.of(decision).value == decision.to_dict()


@given(decisions, decisions)
def test_an_end_shared_by_two_decisions_renders_the_same_in_both(first: Decision, second: Decision) -> None:
    shared = Decision(second.verdict, second.reason, second.generation, first.src, first.dst)
    renderer = Renderer()
    assert renderer.of(first).fragment == plainly(first)
    assert renderer.of(shared).fragment == plainly(shared)


def test_the_cache_of_ends_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Renderer, "ENDS", 4)
    renderer = Renderer()
    for n in range(50):
        end = Endpoint(EndpointKind.POD, f"ns/pod-{n}", "ns")
        decision = Decision(Verdict.ALLOW, Reason.NOT_ISOLATED, 1, end, Endpoint(EndpointKind.EXTERNAL))
        assert renderer.of(decision).fragment == plainly(decision)
        assert len(renderer._ends) <= 4


@pytest.mark.parametrize("explain", [False, True], ids=["decided", "explained"])
def test_every_decision_of_the_example_logs_renders_as_json_dumps_writes_it(explain: bool) -> None:
    index = Index.from_objects(ManifestSource(CLUSTER).load().objects.values())
    flows = [
        record.flow
        for log in sorted((HERE / "flowlogs").glob("*"))
        if log.suffix in (".jsonl", ".csv", ".log")
        for record in read_flowlog(str(log))
    ]
    assert len(flows) > 20
    renderer = Renderer()
    decided = index.decide_many(flows, explain=explain)
    kinds = {d.dst.kind for d in decided} | {d.src.kind for d in decided}
    assert {EndpointKind.POD, EndpointKind.EXTERNAL} <= kinds
    for decision in decided:
        assert renderer.of(decision).fragment == Rendered.of(decision).fragment
