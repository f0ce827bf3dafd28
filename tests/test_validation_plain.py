"""The Pod fast path of validation (``_plain_pod``, no field paths built) against the
located path (``_located_pod``, the contract): the same Pod for every manifest it
reads, and None, never a Pod, for every manifest the located path refuses."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import pod_manifests

from netpol_pdp.index.errors import ValidationError
from netpol_pdp.index.model import Pod
from netpol_pdp.index.validation import _located_pod, _plain_pod, parse_pod

#: Where a mutation puts its value: a path of keys and list indexes into a Pod manifest.
PLACES: list[tuple[Any, ...]] = [
    ("metadata",),
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("metadata", "labels"),
    ("metadata", "labels", "app"),
    ("metadata", "labels", "Bad Key"),
    ("metadata", "creationTimestamp"),
    ("spec",),
    ("spec", "nodeName"),
    ("spec", "hostNetwork"),
    ("spec", "containers"),
    ("spec", "containers", 0),
    ("spec", "containers", 0, "ports"),
    ("spec", "containers", 0, "ports", 0),
    ("spec", "containers", 0, "ports", 0, "containerPort"),
    ("spec", "containers", 0, "ports", 0, "protocol"),
    ("spec", "containers", 0, "ports", 0, "name"),
    ("status",),
    ("status", "phase"),
    ("status", "podIP"),
    ("status", "podIPs"),
    ("status", "podIPs", 0),
    ("status", "podIPs", 0, "ip"),
]
#: Values that are right somewhere and wrong elsewhere.
VALUES: list[Any] = [
    None, "", "web", "Web", "a" * 64, "a" * 254, "a--b", "http", "TCP", "tcp", "SCTP",
    "10.0.0.1", "010.0.0.1", "fd00::1", "FD00::1", "not-an-ip", "2024-01-02T03:04:05Z", "yesterday",
    0, 1, 80, 65535, 65536, -1, True, False, 8080.0, [], [{}], [None], ["10.0.0.2"], [{"ip": "10.0.0.3"}],
    {}, {"app": "web"}, {"app": 1}, {"containerPort": 80}, {"ports": [{"containerPort": 81}]},
    datetime(2024, 1, 2, tzinfo=UTC),
]  # fmt: skip


def _put(doc: dict[str, Any], place: tuple[Any, ...], value: Any) -> None:
    node: Any = doc
    for step in place[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(step, {} if isinstance(place[place.index(step) + 1], str) else [{}])
        elif isinstance(node, list) and isinstance(step, int):
            if not node:
                node.append({})
            node = node[step]
        else:
            return  # a value put earlier is in the way
        if not isinstance(node, (dict, list)):
            return
    last = place[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int):
        if node:
            node[last] = value
        else:
            node.append(value)


def _agree(doc: dict[str, Any]) -> Pod | None:
    plain = _plain_pod(copy.deepcopy(doc))
    try:
        located = _located_pod(doc)
    except ValidationError:
        assert plain is None, "the fast path read a manifest that has a problem"
        return None
    assert plain is None or plain == located
    return plain


@settings(max_examples=300, deadline=None)
@given(pod_manifests())
def test_every_generated_pod_is_read_by_the_fast_path_as_located(doc: dict[str, Any]) -> None:
    assert _agree(doc) is not None
    assert parse_pod(doc) == _located_pod(doc)


@settings(max_examples=1500, deadline=None)
@given(
    pod_manifests(),
    st.lists(st.tuples(st.sampled_from(PLACES), st.sampled_from(VALUES)), min_size=1, max_size=3),
)
def test_a_changed_pod_is_read_alike_or_left_to_the_located_path(
    doc: dict[str, Any], changes: list[tuple[tuple[Any, ...], Any]]
) -> None:
    for place, value in changes:
        _put(doc, place, copy.deepcopy(value))
    _agree(doc)


@pytest.mark.parametrize(
    ("place", "value"),
    [
        (("metadata", "labels"), {"app": ["unhashable"]}),
        (("spec", "containers", 0, "ports", 0, "containerPort"), True),
        (("status", "podIPs"), ["10.0.0.2"]),
        (("metadata", "namespace"), ""),
    ],
)
def test_named_shapes(place: tuple[Any, ...], value: Any) -> None:
    doc: dict[str, Any] = {
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"ports": [{"containerPort": 80}]}]},
        "status": {"podIP": "10.0.0.1"},
    }
    _put(doc, place, value)
    _agree(doc)
