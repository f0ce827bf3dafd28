"""The bundled example cluster holds every feature its docs promise; its flows get the documented verdicts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from netpol_pdp.examples import CLUSTER, FLOWS, HERE
from netpol_pdp.index.decision import Reason
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import parse_flow
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.model import EndpointSlice, NetworkPolicy, Node, Pod, Service

EXPECTED = HERE / "expected.jsonl"


def _jsonl(path: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def world() -> dict[str, list[Any]]:
    objs = list(ManifestSource(CLUSTER).load().objects.values())
    return {
        "pods": [o for o in objs if isinstance(o, Pod)],
        "nodes": [o for o in objs if isinstance(o, Node)],
        "policies": [o for o in objs if isinstance(o, NetworkPolicy)],
        "all": objs,
    }


def _services(w: dict[str, list[Any]]) -> list[Service]:
    return [o for o in w["all"] if isinstance(o, Service)]


def _policy_ports(p: NetworkPolicy) -> list[Any]:
    return [port for rule in (*p.ingress, *p.egress) for port in rule.ports]


def _peers(p: NetworkPolicy) -> list[Any]:
    return [peer for rule in (*p.ingress, *p.egress) for peer in rule.peers]


FEATURES = {
    "about twenty pods": lambda w: 18 <= len(w["pods"]) <= 25,
    "two nodes with an InternalIP each": lambda w: (
        len(w["nodes"]) == 2 and all(n.addresses for n in w["nodes"])
    ),
    "pods spread over both nodes": lambda w: {p.node_name for p in w["pods"]} == {"node-a", "node-b"},
    "a dual-stack pod": lambda w: any(len(p.ips) == 2 for p in w["pods"]),
    "a hostNetwork pod": lambda w: any(p.host_network for p in w["pods"]),
    "a pod that takes no part (Succeeded)": lambda w: any(not p.live for p in w["pods"]),
    "a default-deny policy": lambda w: any(
        p.pod_selector.is_empty and not p.ingress and not p.egress for p in w["policies"]
    ),
    "an egress policy": lambda w: any("Egress" in p.policy_types and p.egress for p in w["policies"]),
    "an ipBlock with except": lambda w: any(
        peer.ip_block is not None and peer.ip_block.except_ for p in w["policies"] for peer in _peers(p)
    ),
    "a namespace selector alone": lambda w: any(
        peer.namespace_selector is not None and peer.pod_selector is None
        for p in w["policies"]
        for peer in _peers(p)
    ),
    "a pod selector alone": lambda w: any(
        peer.pod_selector is not None and peer.namespace_selector is None
        for p in w["policies"]
        for peer in _peers(p)
    ),
    "a combined namespace and pod selector": lambda w: any(
        peer.pod_selector is not None and peer.namespace_selector is not None
        for p in w["policies"]
        for peer in _peers(p)
    ),
    "a named port": lambda w: any(
        isinstance(port.port, str) for p in w["policies"] for port in _policy_ports(p)
    ),
    "a port range": lambda w: any(port.end_port for p in w["policies"] for port in _policy_ports(p)),
    "Services with a named target port, a NodePort, a headless one, one without a ready endpoint": lambda w: (
        any(isinstance(p.target_port, str) for s in _services(w) for p in s.ports)
        and any(p.node_port for s in _services(w) for p in s.ports)
        and any(s.headless for s in _services(w))
        and any(
            e.service == "orders" and not any(ep.ready for ep in e.endpoints)
            for e in w["all"]
            if isinstance(e, EndpointSlice)
        )
    ),
    "a UDP port (DNS)": lambda w: any(
        port.protocol == "UDP" for p in w["policies"] for port in _policy_ports(p)
    ),
}


@pytest.mark.parametrize("check", FEATURES.values(), ids=list(FEATURES))
def test_the_example_cluster_has(world: dict[str, list[Any]], check: Any) -> None:
    assert check(world)


def test_the_flow_log_explains_every_line_and_exercises_every_reason() -> None:
    flows, expected = _jsonl(FLOWS), _jsonl(EXPECTED)
    assert len(flows) == len(expected)
    assert all(record.get("note") for record in flows)
    assert [e["line"] for e in expected] == list(range(1, len(flows) + 1))
    assert {e["reason"] for e in expected} == {r.value for r in Reason}


def test_every_example_flow_gets_its_documented_verdict_and_reason(world: dict[str, list[Any]]) -> None:
    index = Index.from_objects(world["all"])
    got = [index.decide(parse_flow(record)) for record in _jsonl(FLOWS)]
    assert [(d.verdict.value, d.reason.value) for d in got] == [
        (e["verdict"], e["reason"]) for e in _jsonl(EXPECTED)
    ]
