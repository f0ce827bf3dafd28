"""Between the wire messages (``decision_pb2``) and the Python API (``Flow``, ``Decision``).

Both sides use it: the server turns request flows into :class:`Flow` (through
:func:`~netpol_pdp.index.flows.make_flow`, so a bad field is named exactly as
the CLI names it) and decisions into messages; the client does the reverse, so
that a decision received over gRPC is the same :class:`Decision` the local
index returns and ``to_dict()`` prints the same JSON.

The enum tables are built from the Python enums' values, and a test checks they
are total in both directions: adding a reason code without a proto value fails.
"""

from __future__ import annotations

from netpol_pdp.index.decision import (
    AddressKind,
    Decision,
    DirectionTrace,
    Endpoint,
    EndpointKind,
    Reason,
    RuleRef,
    ServiceEndpoint,
    ServiceTrace,
    TierRuleRef,
    Verdict,
)
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow, make_flow, normalize_ip
from netpol_pdp.index.model import PORT_PROTOCOLS
from netpol_pdp.v1 import decision_pb2 as pb

VERDICT_TO_PB: dict[Verdict, int] = {v: pb.Verdict.Value(f"VERDICT_{v.name}") for v in Verdict}
VERDICT_FROM_PB: dict[int, Verdict] = {n: v for v, n in VERDICT_TO_PB.items()}
REASON_TO_PB: dict[Reason, int] = {
    r: pb.Reason.Value("REASON_" + r.value.upper().replace("-", "_")) for r in Reason
}
REASON_FROM_PB: dict[int, Reason] = {n: r for r, n in REASON_TO_PB.items()}
KIND_TO_PB: dict[EndpointKind, int] = {
    k: pb.EndpointKind.Value(f"ENDPOINT_KIND_{k.name}") for k in EndpointKind
}
KIND_FROM_PB: dict[int, EndpointKind] = {n: k for k, n in KIND_TO_PB.items()}

#: Protocol enum value -> the protocol name :func:`make_flow` accepts.
PROTOCOL_FROM_PB: dict[int, str] = {
    pb.PROTOCOL_TCP: "TCP",
    pb.PROTOCOL_UDP: "UDP",
    pb.PROTOCOL_SCTP: "SCTP",
    pb.PROTOCOL_ICMP: "ICMP",
    pb.PROTOCOL_ICMPV6: "ICMPV6",
}
PROTOCOL_TO_PB: dict[str, int] = {name: n for n, name in PROTOCOL_FROM_PB.items()}
#: Named protocols without an enum value travel as their IANA number.
IANA_NUMBERS: dict[str, int] = {"IGMP": 2, "GRE": 47, "ESP": 50, "AH": 51}


# ---------------------------------------------------------------------------- flows


_PORT_PROTOCOLS_PB: dict[int, str] = {
    pb.PROTOCOL_TCP: "TCP",
    pb.PROTOCOL_UDP: "UDP",
    pb.PROTOCOL_SCTP: "SCTP",
}


def flow_from_pb(msg: pb.Flow) -> Flow:
    """Validate one wire flow; raises :class:`FlowError` naming the field (``dst_port``, ...).

    The common case (TCP/UDP/SCTP with a port in range, no source port) is
    checked inline (addresses through :func:`normalize_ip`, which caches them);
    anything else goes through :func:`make_flow`, the one place that knows
    every rule, so both paths give the same flows and messages.
    """
    name = _PORT_PROTOCOLS_PB.get(msg.protocol)
    port = msg.dst_port
    if name is not None and 0 < port <= 65535 and not msg.HasField("src_port"):
        return Flow(normalize_ip(msg.src_ip, "src_ip"), normalize_ip(msg.dst_ip, "dst_ip"), name, port)
    return _flow_from_pb_slow(msg)


def _flow_from_pb_slow(msg: pb.Flow) -> Flow:
    protocol: object
    if msg.protocol:
        protocol = PROTOCOL_FROM_PB.get(msg.protocol)
        if protocol is None:
            raise FlowError("protocol", f"unknown protocol enum value {msg.protocol}")
    elif msg.ip_protocol:
        protocol = msg.ip_protocol
    else:
        protocol = "TCP"
    if msg.HasField("src_port") and msg.src_port > 65535:
        raise FlowError("src_port", f"must be between 0 and 65535 (got {msg.src_port})")
    return make_flow(msg.src_ip, msg.dst_ip, protocol, msg.dst_port)


def fill_flow(out: pb.Flow, flow: Flow) -> None:
    """Write ``flow`` into the message ``out`` (which must be fresh)."""
    out.src_ip = flow.src_ip
    out.dst_ip = flow.dst_ip
    proto = flow.protocol
    enum = PROTOCOL_TO_PB.get(proto)
    if enum is not None:
        out.protocol = enum  # type: ignore[assignment]
    elif proto in IANA_NUMBERS:
        out.ip_protocol = IANA_NUMBERS[proto]
    elif proto.isdigit():
        out.ip_protocol = int(proto)
    else:
        raise FlowError("protocol", f"unknown protocol {proto!r}")
    if flow.dst_port or proto in PORT_PROTOCOLS:
        out.dst_port = flow.dst_port


def flow_to_pb(flow: Flow) -> pb.Flow:
    out = pb.Flow()
    fill_flow(out, flow)
    return out


# ---------------------------------------------------------------------------- decisions


def _fill_endpoint(out: pb.Endpoint, ep: Endpoint) -> None:
    out.kind = KIND_TO_PB[ep.kind]  # type: ignore[assignment]
    if ep.name is not None:
        out.name = ep.name
    if ep.namespace is not None:
        out.namespace = ep.namespace
    if ep.host_network_pods:
        out.host_network_pods.extend(ep.host_network_pods)


def _fill_trace(out: pb.DirectionTrace, trace: DirectionTrace) -> None:
    out.direction = trace.direction
    out.pod = trace.pod
    out.isolated = trace.isolated
    out.allowed = trace.allowed
    out.isolating_policies.extend(trace.isolating)
    for ref in trace.allowed_by:
        out.allowed_by.add(policy=ref.policy, rule=ref.rule)
    if trace.decided_by is not None:
        _fill_tier_ref(out.decided_by, trace.decided_by)
    for tier_ref in trace.passed:
        _fill_tier_ref(out.passed.add(), tier_ref)


def _fill_tier_ref(out: pb.TierRuleRef, ref: TierRuleRef) -> None:
    out.tier, out.policy, out.rule = ref.tier, ref.policy, ref.rule
    out.name, out.action = ref.name, ref.action


def _tier_ref_from_pb(msg: pb.TierRuleRef) -> TierRuleRef:
    return TierRuleRef(msg.tier, msg.policy, msg.rule, msg.name, msg.action)


def fill_decision(out: pb.Decision, d: Decision) -> None:
    """Write ``d`` into the (fresh) message ``out``; the explanation only when ``d`` was explained."""
    out.verdict = VERDICT_TO_PB[d.verdict]  # type: ignore[assignment]
    out.reason = REASON_TO_PB[d.reason]  # type: ignore[assignment]
    out.generation = d.generation
    _fill_endpoint(out.src, d.src)
    _fill_endpoint(out.dst, d.dst)
    if d.notes:
        out.notes.extend(d.notes)
    if d.explained:
        ex = out.explanation
        ex.SetInParent()
        if d.egress is not None:
            _fill_trace(ex.egress, d.egress)
        if d.ingress is not None:
            _fill_trace(ex.ingress, d.ingress)
    if d.service is not None:
        _fill_service(out.service, d.service)


def _fill_service(out: pb.ServiceTrace, trace: ServiceTrace) -> None:
    out.service, out.address, out.address_kind = trace.service, trace.address, trace.address_kind.value
    out.protocol, out.port, out.port_name = trace.protocol, trace.port, trace.port_name
    out.target_port, out.traffic_policy = trace.target_port, trace.traffic_policy
    for e in trace.endpoints:
        msg = out.endpoints.add(ip=e.ip, port=e.port, terminating=e.terminating)
        fill_decision(msg.decision, e.decision)
        if e.target is not None:
            msg.target = e.target
        if e.node is not None:
            msg.node = e.node


def _service_from_pb(msg: pb.ServiceTrace) -> ServiceTrace:
    return ServiceTrace(
        msg.service,
        msg.address,
        AddressKind(msg.address_kind),
        msg.protocol,
        msg.port,
        msg.port_name,
        msg.target_port,
        msg.traffic_policy,
        tuple(
            ServiceEndpoint(
                e.ip,
                e.port,
                decision_from_pb(e.decision),
                e.target if e.HasField("target") else None,
                e.node if e.HasField("node") else None,
                e.terminating,
            )
            for e in msg.endpoints
        ),
    )


def decision_to_pb(d: Decision) -> pb.Decision:
    out = pb.Decision()
    fill_decision(out, d)
    return out


def _endpoint_from_pb(msg: pb.Endpoint) -> Endpoint:
    return Endpoint(
        kind=KIND_FROM_PB[msg.kind],
        name=msg.name if msg.HasField("name") else None,
        namespace=msg.namespace if msg.HasField("namespace") else None,
        host_network_pods=tuple(msg.host_network_pods),
    )


def _trace_from_pb(msg: pb.DirectionTrace) -> DirectionTrace:
    return DirectionTrace(
        direction=msg.direction,
        pod=msg.pod,
        isolated=msg.isolated,
        allowed=msg.allowed,
        isolating=tuple(msg.isolating_policies),
        allowed_by=tuple(RuleRef(r.policy, r.rule) for r in msg.allowed_by),
        decided_by=_tier_ref_from_pb(msg.decided_by) if msg.HasField("decided_by") else None,
        passed=tuple(_tier_ref_from_pb(r) for r in msg.passed),
    )


def decision_from_pb(msg: pb.Decision) -> Decision:
    """The Python :class:`Decision` a wire decision stands for (``to_dict()`` equal to the server's)."""
    explained = msg.HasField("explanation")
    ex = msg.explanation
    return Decision(
        verdict=VERDICT_FROM_PB[msg.verdict],
        reason=REASON_FROM_PB[msg.reason],
        generation=msg.generation,
        src=_endpoint_from_pb(msg.src),
        dst=_endpoint_from_pb(msg.dst),
        notes=tuple(msg.notes),
        egress=_trace_from_pb(ex.egress) if explained and ex.HasField("egress") else None,
        ingress=_trace_from_pb(ex.ingress) if explained and ex.HasField("ingress") else None,
        explained=explained,
        service=_service_from_pb(msg.service) if msg.HasField("service") else None,
    )
