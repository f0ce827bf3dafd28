"""A batch builds what the same events build one at a time (index/engine.py, "one batch").

Within a batch the writer defers the work of the identities the batch creates:
their selector memberships and policies are computed once, at publish, from the
batch's final state, and every step before that skips them.  A first load (all
pods, then all policies) and a re-list are such batches.  So the claim checked
here is: applying events as one batch publishes the same tables as applying
them one per batch (``apply([event])``, which settles each new identity at
once, the order-by-order path), whatever the events and their order; and both
agree with a fresh build (``Index.check``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import History, cluster_worlds, flows, histories, service_worlds, worlds
from test_differential import comparable

from netpol_pdp.index.engine import Index
from netpol_pdp.index.generation import Entry, PodEntry
from netpol_pdp.index.model import Delete, Event, Object, Upsert
from netpol_pdp.index.validation import parse_object


def _entry_shape(index: Index, entry: Entry) -> tuple[Any, ...]:
    """What an address means, with identities and selectors by content (ids differ by order)."""
    if not isinstance(entry, PodEntry):
        return (type(entry).__name__, entry.endpoint, entry.notes)
    view = index.snapshot().identity(entry.identity)

    def direction(d: Any) -> Any:
        if d is None:
            return None
        return (
            d.isolating,
            [
                (r.policy, r.index, r.any_peer, r.any_pod, frozenset(index._selector_keys(r.selectors)))
                for r in d.rules
            ],
            d.ports.rules,
        )

    return (
        entry.endpoint,
        entry.notes,
        entry.node,
        entry.named_ports,
        view.namespace,
        view.labels,
        frozenset(index._selector_keys(view.selectors)),
        direction(view.ingress),
        direction(view.egress),
        [r.ref for r in view.cluster_ingress.rules] if view.cluster_ingress is not None else None,
        [r.ref for r in view.cluster_egress.rules] if view.cluster_egress is not None else None,
    )


def assert_same_tables(a: Index, b: Index) -> None:
    """The two indexes publish equal address tables, identities, objects and Service tables."""
    ga, gb = a.snapshot(), b.snapshot()
    addresses = {ip for shard in ga.addresses for ip in shard}
    assert addresses == {ip for shard in gb.addresses for ip in shard}, "address sets differ"
    for ip in addresses:
        ea, eb = ga.entry(ip), gb.entry(ip)
        assert ea is not None and eb is not None
        assert _entry_shape(a, ea) == _entry_shape(b, eb), ip
    assert a.stats()["identities"] == b.stats()["identities"], "identity counts differ"
    assert a.stats()["selectors"] == b.stats()["selectors"], "selector counts differ"
    assert {o.key: o for o in ga.all_objects()} == {o.key: o for o in gb.all_objects()}
    a._check_services(b)


def one_by_one(events: list[Event], index: Index | None = None) -> Index:
    index = index if index is not None else Index()
    for event in events:
        index.apply([event])
    return index


@settings(max_examples=60)
@given(st.one_of(worlds, cluster_worlds, service_worlds), st.data())
def test_a_first_load_in_one_batch_equals_the_objects_applied_one_by_one(
    world: list[Object], data: Any
) -> None:
    order = data.draw(st.permutations(world), label="order")
    bulk = Index.from_objects(order)
    stepwise = one_by_one([Upsert(o) for o in order])
    stepwise.check()
    bulk.check()
    assert_same_tables(bulk, stepwise)
    for flow in data.draw(st.lists(flows(world), min_size=1, max_size=6), label="flows"):
        assert comparable(bulk.decide(flow, explain=True)) == comparable(stepwise.decide(flow, explain=True))


@settings(max_examples=60)
@given(st.one_of(histories(), histories(cluster=True), histories(services=True)), st.data())
def test_a_history_in_one_batch_equals_its_events_one_by_one(history: History, data: Any) -> None:
    """Upserts, changes and deletes in one batch: identities made and dropped, selectors
    registered and released, namespaces relabelled, all before one publish."""
    events: list[Event] = [e for batch in history.batches for e in batch]
    batched = Index.from_objects(history.initial)
    batched.apply(events)
    stepwise = one_by_one(events, Index.from_objects(history.initial))
    batched.check()
    stepwise.check()
    assert_same_tables(batched, stepwise)
    everything = [*history.initial, *history.final]
    for flow in data.draw(st.lists(flows(everything), min_size=1, max_size=6), label="flows"):
        assert comparable(batched.decide(flow, explain=True)) == comparable(
            stepwise.decide(flow, explain=True)
        )


def _obj(doc: dict[str, Any]) -> Object:
    parsed = parse_object(doc)
    assert parsed is not None
    return parsed


def _pod(namespace: str, name: str, ip: str, **labels: str) -> Object:
    return _obj(
        {
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": "n1"},
            "status": {"podIP": ip},
        }
    )


FRONTEND = _obj({"kind": "Namespace", "metadata": {"name": "front", "labels": {"tier": "frontend"}}})
WEB_FROM_FRONTEND = _obj(
    {
        "kind": "NetworkPolicy",
        "metadata": {"name": "web-from-frontend", "namespace": "prod"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"tier": "frontend"}}}]}],
        },
    }
)
WEB = _pod("prod", "web", "10.0.0.1", app="web")
UI = _pod("front", "ui", "10.0.1.1", app="ui")


def _isolating(index: Index, ip: str) -> tuple[str, ...] | None:
    entry = index.snapshot().entry(ip)
    assert isinstance(entry, PodEntry)
    ingress = index.snapshot().identity(entry.identity).ingress
    return ingress.isolating if ingress is not None else None


def _members(index: Index, ip: str) -> int:
    entry = index.snapshot().entry(ip)
    assert isinstance(entry, PodEntry)
    return len(index.snapshot().identity(entry.identity).selectors)


def test_pods_before_their_policy_in_one_batch_are_isolated_by_it() -> None:
    index = Index.from_objects([WEB, UI, FRONTEND, WEB_FROM_FRONTEND])
    assert _isolating(index, "10.0.0.1") == ("prod/web-from-frontend",)
    assert _members(index, "10.0.1.1") == 1  # ui's namespace is labelled tier=frontend


def test_a_namespace_relabelled_later_in_the_batch_is_read_with_its_last_labels() -> None:
    plain = _obj({"kind": "Namespace", "metadata": {"name": "front"}})
    index = Index.from_objects([FRONTEND, UI, WEB, WEB_FROM_FRONTEND, plain])
    assert _members(index, "10.0.1.1") == 0
    index.check()


def test_an_identity_made_and_emptied_in_one_batch_leaves_nothing() -> None:
    index = Index.from_objects([WEB_FROM_FRONTEND])
    index.apply([Upsert(WEB), Delete(WEB.key), Upsert(UI)])
    assert index.stats()["identities"] == 1
    assert index.snapshot().entry("10.0.0.1") is None
    index.check()


def test_a_policy_added_and_deleted_in_one_batch_isolates_nobody() -> None:
    index = Index.from_objects([WEB])
    index.apply([Upsert(WEB_FROM_FRONTEND), Upsert(UI), Delete(WEB_FROM_FRONTEND.key)])
    assert _isolating(index, "10.0.0.1") is None
    assert index.stats()["selectors"] == 0
    index.check()
