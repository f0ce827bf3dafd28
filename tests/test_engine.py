"""The index as a data structure: generations, incremental updates in every order, sharing.

Semantics are checked in test_semantics.py (against the reference too); here we
check what makes the index an index: one generation per batch, readers never
see a half-applied batch, deltas applied in any order end in the state of a
fresh build, identities and selectors are shared, caches are per generation.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from netpol_pdp.index.decision import Reason, Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import make_flow
from netpol_pdp.index.model import Delete, Kind, Object, Upsert
from netpol_pdp.index.validation import parse_object


def obj(doc: dict[str, Any]) -> Object:
    parsed = parse_object(doc)
    assert parsed is not None
    return parsed


def ns(name: str, **labels: str) -> Object:
    return obj({"kind": "Namespace", "metadata": {"name": name, "labels": labels}})


def pod(namespace: str, name: str, ip: str, node: str = "n1", **labels: str) -> Object:
    return obj(
        {
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIP": ip},
        }
    )


def policy(namespace: str, name: str, spec: dict[str, Any]) -> Object:
    return obj({"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec})


ALLOW_FROM_FRONTEND = policy(
    "prod",
    "web-from-frontend",
    {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [
            {
                "from": [{"namespaceSelector": {"matchLabels": {"tier": "frontend"}}}],
                "ports": [{"port": "http"}],
            }
        ],
    },
)
WORLD: list[Object] = [
    ns("prod"),
    ns("front", tier="frontend"),
    pod("prod", "web-1", "10.0.0.1", app="web"),
    pod("prod", "web-2", "10.0.0.2", app="web"),
    pod("front", "ui", "10.0.1.1", app="ui"),
    pod("other", "tool", "10.0.2.1", app="tool"),
    ALLOW_FROM_FRONTEND,
]
UI_TO_WEB = make_flow("10.0.1.1", "10.0.0.1", "TCP", 8080)
TOOL_TO_WEB = make_flow("10.0.2.1", "10.0.0.1", "TCP", 8080)


def test_every_apply_publishes_exactly_one_new_generation() -> None:
    index = Index()
    assert index.generation == 0
    assert index.apply(Upsert(o) for o in WORLD) == 1
    assert index.apply([]) == 2
    assert index.decide(UI_TO_WEB).generation == 2


def test_pods_with_equal_namespace_and_labels_share_one_identity() -> None:
    index = Index.from_objects(WORLD)
    assert index.stats()["identities"] == 3  # prod/app=web (2 pods), front/app=ui, other/app=tool
    index.apply([Delete((Kind.POD, "prod", "web-1")), Delete((Kind.POD, "prod", "web-2"))])
    assert index.stats()["identities"] == 2
    index.check()


def test_equal_selectors_across_policies_are_cached_once() -> None:
    twin = policy("prod", "twin", {"podSelector": {}, "ingress": ALLOW_FROM_FRONTEND_INGRESS})
    index = Index.from_objects([*WORLD, twin])
    assert index.stats()["selectors"] == 1
    index.apply([Delete(twin.key)])
    assert index.stats()["selectors"] == 1
    index.apply([Delete(ALLOW_FROM_FRONTEND.key)])
    assert index.stats()["selectors"] == 0
    index.check()


ALLOW_FROM_FRONTEND_INGRESS = [{"from": [{"namespaceSelector": {"matchLabels": {"tier": "frontend"}}}]}]


def test_a_published_generation_never_changes_after_later_updates() -> None:
    index = Index.from_objects(WORLD)
    old = index._gen
    before = index.decide(UI_TO_WEB)
    index.apply([Upsert(ns("front", tier="backend"))])
    # the old generation object still answers as before; the new one has changed
    assert index._decide_miss(old, UI_TO_WEB, False).verdict is before.verdict is Verdict.ALLOW
    assert index.decide(UI_TO_WEB).reason is Reason.DENIED_INGRESS


def test_the_decision_cache_belongs_to_its_generation() -> None:
    index = Index.from_objects(WORLD)
    index.decide(TOOL_TO_WEB)
    index.decide(TOOL_TO_WEB)
    assert index.cache_stats() == (1, 1)
    index.apply([Delete(ALLOW_FROM_FRONTEND.key)])
    assert index.decide(TOOL_TO_WEB).reason is Reason.NOT_ISOLATED  # not the cached DENY
    assert index.cache_stats() == (1, 2)


def test_decide_many_answers_in_order_at_one_generation() -> None:
    index = Index.from_objects(WORLD)
    flows = [UI_TO_WEB, TOOL_TO_WEB] * 50
    decisions = index.decide_many(flows)
    assert [d.verdict for d in decisions] == [Verdict.ALLOW, Verdict.DENY] * 50
    assert {d.generation for d in decisions} == {index.generation}


# Deltas in every order end where a fresh build of the final world ends.
STEPS: list[tuple[str, list[Upsert | Delete]]] = [
    ("relabel namespace front", [Upsert(ns("front", tier="backend"))]),
    ("relabel pod web-1", [Upsert(pod("prod", "web-1", "10.0.0.1", app="api"))]),
    ("delete policy", [Delete(ALLOW_FROM_FRONTEND.key)]),
    ("move pod ui to a new IP", [Upsert(pod("front", "ui", "10.0.1.9", app="ui"))]),
    ("add a default deny", [Upsert(policy("front", "deny", {"podSelector": {}, "policyTypes": ["Egress"]}))]),
    ("delete namespace object prod", [Delete((Kind.NAMESPACE, "", "prod"))]),
]


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(range(len(STEPS)), 3)),
    ids=lambda o: "then ".join(STEPS[i][0] for i in o),
)
def test_deltas_in_any_order_match_a_fresh_build(order: tuple[int, ...]) -> None:
    index = Index.from_objects(WORLD)
    world = {o.key: o for o in WORLD}
    for i in order:
        events = STEPS[i][1]
        index.apply(events)
        for e in events:
            if isinstance(e, Upsert):
                world[e.key] = e.obj
            else:
                world.pop(e.key, None)
        index.check()
        fresh = Index.from_objects(world.values())
        for flow in (UI_TO_WEB, TOOL_TO_WEB, make_flow("10.0.1.9", "10.0.0.2", "TCP", 8080)):
            a, b = index.decide(flow, explain=True), fresh.decide(flow, explain=True)
            assert (a.verdict, a.reason, a.src, a.dst, a.ingress, a.egress) == (
                b.verdict,
                b.reason,
                b.src,
                b.dst,
                b.ingress,
                b.egress,
            )


def test_readers_never_see_a_half_applied_batch() -> None:
    """Each batch swaps which of two pods may reach web: a reader sees exactly one allowed."""
    only_good = policy(
        "prod",
        "only-good",
        {
            "podSelector": {},
            "ingress": [
                {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "good"}}}]}
            ],
        },
    )
    world = [o for o in WORLD if o is not ALLOW_FROM_FRONTEND and o.kind is not Kind.POD]
    ui, tool = pod("front", "ui", "10.0.1.1", app="good"), pod("other", "tool", "10.0.2.1", app="bad")
    index = Index.from_objects([*world, pod("prod", "web-1", "10.0.0.1", app="web"), ui, tool, only_good])
    flows = [UI_TO_WEB, TOOL_TO_WEB]
    stop = threading.Event()
    seen: set[tuple[Verdict, ...]] = set()

    def reader() -> None:
        while not stop.is_set():
            seen.add(tuple(d.verdict for d in index.decide_many(flows)))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(300):
            ui, tool = ("good", "bad") if i % 2 else ("bad", "good")
            index.apply(
                [
                    Upsert(pod("front", "ui", "10.0.1.1", app=ui)),
                    Upsert(pod("other", "tool", "10.0.2.1", app=tool)),
                ]
            )
    finally:
        stop.set()
        thread.join()
    assert seen <= {(Verdict.ALLOW, Verdict.DENY), (Verdict.DENY, Verdict.ALLOW)}
    assert seen, "the reader never ran"
