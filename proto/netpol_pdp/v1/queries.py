"""Reach and Matrix answers to and from their messages (``ReachResponse``, ``MatrixResponse``).

The server fills messages from :mod:`netpol_pdp.index.reach` and
:mod:`netpol_pdp.index.matrix` answers; the clients turn them back into the same
objects, so a remote answer prints exactly as a local one.
"""

from __future__ import annotations

from collections.abc import Sequence

from netpol_pdp.index.matrix import ALLOWED, DENIED, Matrix, parse_port, port_text
from netpol_pdp.index.portsets import PortSet
from netpol_pdp.index.reach import NodeGroup, PodGroup, RangeGroup, ReachAnswer, TargetReach
from netpol_pdp.v1 import decision_pb2 as pb


def _fill_ports(out: pb.ReachPorts, ports: PortSet) -> None:
    out.text = ports.text()
    for protocol, intervals in ports.intervals().items():
        for first, last in intervals:
            out.ranges.add(protocol=protocol, first=first, last=last)


def _ports_from_pb(msg: pb.ReachPorts) -> PortSet:
    by: dict[str, list[tuple[int, int]]] = {}
    for r in msg.ranges:
        by.setdefault(r.protocol, []).append((r.first, r.last))
    return PortSet(by)


def _fill_target(out: pb.ReachTarget, t: TargetReach) -> None:
    out.namespace = t.namespace
    out.labels.update(dict(t.labels))
    out.pods.extend(t.pods)
    out.address = t.address
    out.own_nodes.extend(t.own_nodes)
    for g in t.pod_peers:
        m = out.pods_allowed.add(namespace=g.namespace, count=g.count, pods=g.pods, rules=g.rules)
        m.labels.update(dict(g.labels))
        _fill_ports(m.ports, g.ports)
    for n in t.node_peers:
        nm = out.nodes_allowed.add(node=n.node or "", addresses=n.addresses, rules=n.rules)
        _fill_ports(nm.ports, n.ports)
    for r in t.range_peers:
        rm = out.ranges_allowed.add(cidrs=r.cidrs, rules=r.rules)
        _fill_ports(rm.ports, r.ports)


def reach_to_pb(answers: list[ReachAnswer]) -> pb.ReachResponse:
    out = pb.ReachResponse(generation=answers[0].generation if answers else 0)
    for answer in answers:
        a = out.answers.add(direction=answer.direction)
        for t in answer.targets:
            _fill_target(a.targets.add(), t)
    return out


def _target_from_pb(m: pb.ReachTarget) -> TargetReach:
    return TargetReach(
        m.namespace,
        tuple(sorted(m.labels.items())),
        tuple(m.pods),
        m.address,
        tuple(m.own_nodes),
        tuple(
            PodGroup(
                g.namespace,
                tuple(sorted(g.labels.items())),
                g.count,
                tuple(g.pods),
                _ports_from_pb(g.ports),
                tuple(g.rules),
            )
            for g in m.pods_allowed
        ),
        tuple(
            NodeGroup(n.node or None, tuple(n.addresses), _ports_from_pb(n.ports), tuple(n.rules))
            for n in m.nodes_allowed
        ),
        tuple(RangeGroup(tuple(r.cidrs), _ports_from_pb(r.ports), tuple(r.rules)) for r in m.ranges_allowed),
    )


def reach_from_pb(msg: pb.ReachResponse, protocol: str | None, port: int | None) -> list[ReachAnswer]:
    return [
        ReachAnswer(a.direction, msg.generation, protocol, port, tuple(_target_from_pb(t) for t in a.targets))
        for a in msg.answers
    ]


def matrix_to_pb(m: Matrix) -> pb.MatrixResponse:
    out = pb.MatrixResponse(generation=m.generation, pods=m.pods)
    n = len(m.pods)
    for k, port in enumerate(m.ports):
        out.tables.add(
            port=port_text(port), rows=["".join(m.mark(k, i, j) for j in range(n)) for i in range(n)]
        )
    return out


def matrix_from_pb(msg: pb.MatrixResponse) -> Matrix:
    marks = {ALLOWED: True, DENIED: False}
    return Matrix(
        msg.generation,
        tuple(msg.pods),
        tuple(parse_port(t.port) for t in msg.tables),
        tuple(tuple(tuple(marks.get(c) for c in row) for row in t.rows) for t in msg.tables),
    )


def reach_request(
    pod: str | None = None,
    namespace: str | None = None,
    selector: str = "",
    direction: str = "",
    protocol: str | None = None,
    port: int | None = None,
) -> pb.ReachRequest:
    return pb.ReachRequest(
        pod=pod or "",
        namespace=namespace or "",
        selector=selector,
        direction=direction,
        protocol=protocol or "",
        port=port or 0,
    )


def matrix_request(
    ports: Sequence[str | tuple[str, int]],
    namespace: str | None = None,
    selector: str = "",
    pods: Sequence[str] | None = None,
) -> pb.MatrixRequest:
    return pb.MatrixRequest(
        namespace=namespace or "",
        selector=selector,
        ports=[p if isinstance(p, str) else port_text(p) for p in ports],
        pods=list(pods or ()),
    )
