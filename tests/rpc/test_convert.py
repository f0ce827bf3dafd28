"""Wire <-> Python conversion: flows and decisions survive the round trip unchanged."""

from __future__ import annotations

import dataclasses

import pytest

from netpol_pdp.index.decision import (
    AddressKind,
    Decision,
    DirectionTrace,
    Endpoint,
    EndpointKind,
    Mismatch,
    NearMiss,
    Reason,
    RuleRef,
    ServiceEndpoint,
    ServiceTrace,
    TierRuleRef,
    Verdict,
)
from netpol_pdp.index.ends import FlowByName, flow_by_name
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow, make_flow
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1.convert import asked_from_pb, decision_from_pb, decision_to_pb, flow_from_pb, flow_to_pb


@pytest.mark.parametrize(
    "flow",
    [
        pytest.param(make_flow("10.0.0.1", "10.0.0.2", "TCP", 443), id="TCP"),
        pytest.param(make_flow("fd00::1", "fd00::2", "UDP", 53), id="UDP over IPv6"),
        pytest.param(make_flow("10.0.0.1", "10.0.0.2", "SCTP", 65535), id="SCTP at the top port"),
        pytest.param(make_flow("10.0.0.1", "10.0.0.2", "ICMP", None), id="ICMP without a port"),
        pytest.param(make_flow("fd00::1", "fd00::2", "ICMPv6", None), id="ICMPv6"),
        pytest.param(make_flow("10.0.0.1", "10.0.0.2", 47, None), id="an IANA number"),
    ],
)
def test_a_flow_survives_the_round_trip(flow: Flow) -> None:
    assert flow_from_pb(flow_to_pb(flow)) == flow


def test_a_named_protocol_without_an_enum_value_travels_as_its_number() -> None:
    assert flow_from_pb(flow_to_pb(make_flow("10.0.0.1", "10.0.0.2", "GRE", None))).protocol == "47"


EXPLAINED = Decision(
    verdict=Verdict.DENY,
    reason=Reason.DENIED_BOTH,
    generation=42,
    src=Endpoint(EndpointKind.POD, "shop/client", "shop"),
    dst=Endpoint(EndpointKind.NODE, "node-a", None, ("kube-system/agent",)),
    notes=("host-network: kube-system/agent uses node node-a's network; its policies are not enforced",),
    egress=DirectionTrace("egress", "shop/client", True, False, ("shop/deny-all", "shop/other")),
    ingress=DirectionTrace("ingress", "shop/web", True, True, ("shop/web",), (RuleRef("shop/web", 2),)),
    explained=True,
)


@pytest.mark.parametrize(
    "decision",
    [
        pytest.param(EXPLAINED, id="explained, both directions"),
        pytest.param(
            Decision(
                Verdict.DENY,
                Reason.DENIED_BY_BASELINE,
                7,
                Endpoint(EndpointKind.POD, "a/b", "a"),
                Endpoint(EndpointKind.POD, "c/d", "c"),
                ("domain-names: ClusterNetworkPolicy x egress rule 0 names domains, skipped",),
                egress=DirectionTrace("egress", "a/b", False, True),
                ingress=DirectionTrace(
                    "ingress",
                    "c/d",
                    False,
                    False,
                    decided_by=TierRuleRef("Baseline", "ClusterNetworkPolicy base", 1, "deny", "Deny"),
                    passed=(TierRuleRef("Admin", "AdminNetworkPolicy hand-off", 0, "", "Pass"),),
                ),
                explained=True,
            ),
            id="a cluster policy tier decided, after a Pass",
        ),
        pytest.param(
            dataclasses.replace(
                EXPLAINED,
                egress=dataclasses.replace(
                    EXPLAINED.egress,  # type: ignore[type-var]
                    near_misses=(
                        NearMiss(
                            "shop/other",
                            1,
                            "egress",
                            (
                                Mismatch(
                                    "spec.egress[1].to[0].podSelector.matchLabels.app",
                                    "db",
                                    "web",
                                    "label app differs",
                                ),
                                Mismatch("spec.egress[1].ports[0].port", "5432", "80", "port differs"),
                            ),
                            missed=4,
                        ),
                        NearMiss(
                            "ClusterNetworkPolicy guard", 0, "egress", (), "Admin", "from-api", "Accept", 4
                        ),
                    ),
                ),
            ),
            id="explained with near misses of both kinds",
        ),
        pytest.param(
            Decision(
                Verdict.ALLOW,
                Reason.NO_POD,
                1,
                Endpoint(EndpointKind.EXTERNAL),
                Endpoint(EndpointKind.EXTERNAL),
            ),
            id="a bare verdict",
        ),
        pytest.param(
            Decision(
                Verdict.ALLOW,
                Reason.LOOPBACK,
                3,
                Endpoint(EndpointKind.POD, "a/b", "a"),
                Endpoint(EndpointKind.POD, "a/b", "a"),
                explained=True,
            ),
            id="explained with no direction evaluated",
        ),
        pytest.param(
            Decision(
                Verdict.DENY,
                Reason.SERVICE_PARTIALLY_ALLOWED,
                5,
                Endpoint(EndpointKind.POD, "shop/front", "shop"),
                Endpoint(EndpointKind.SERVICE, "pay/api", "pay"),
                ("externalTrafficPolicy Cluster: kube-proxy may rewrite the source",),
                explained=True,
                service=ServiceTrace(
                    "pay/api",
                    "192.168.0.2",
                    AddressKind.NODE_PORT,
                    "TCP",
                    30080,
                    "http",
                    "http",
                    "Cluster",
                    (
                        ServiceEndpoint("10.0.1.1", 8080, EXPLAINED, "Pod pay/api-1", "n1"),
                        ServiceEndpoint(
                            "10.0.1.2",
                            8080,
                            Decision(
                                Verdict.ALLOW,
                                Reason.NOT_ISOLATED,
                                5,
                                Endpoint(EndpointKind.POD, "shop/front", "shop"),
                                Endpoint(EndpointKind.POD, "pay/api-2", "pay"),
                            ),
                            terminating=True,
                        ),
                    ),
                ),
            ),
            id="a Service flow with its endpoints' decisions",
        ),
        pytest.param(
            Decision(
                Verdict.DENY,
                Reason.SERVICE_PORT_NOT_FOUND,
                5,
                Endpoint(EndpointKind.EXTERNAL),
                Endpoint(EndpointKind.SERVICE, "pay/api", "pay"),
                service=ServiceTrace("pay/api", "10.96.0.10", AddressKind.CLUSTER_IP, "UDP", 80),
            ),
            id="a Service port not found",
        ),
    ],
)
def test_a_decision_survives_the_round_trip(decision: Decision) -> None:
    back = decision_from_pb(decision_to_pb(decision))
    assert back == decision
    assert back.to_dict() == decision.to_dict()


@pytest.mark.parametrize(
    "asked",
    [
        pytest.param(flow_by_name("shop/client", "shop/web", "TCP", 8080), id="two names"),
        pytest.param(flow_by_name("10.0.0.1", "node/node-a", "UDP", 53), id="an address and a node"),
        pytest.param(flow_by_name("shop/client", "shop/web", "SCTP", dst_port_name="sig"), id="a named port"),
        pytest.param(flow_by_name("shop/client", "fd00::1", "ICMPv6"), id="a port-less protocol"),
    ],
)
def test_a_flow_by_name_survives_the_round_trip(asked: FlowByName) -> None:
    wire = flow_to_pb(asked)
    assert asked_from_pb(pb.Flow.FromString(wire.SerializeToString())) == asked
    assert bool(wire.src_name) != bool(wire.src_ip) and bool(wire.dst_name) != bool(wire.dst_ip)


def test_a_wire_flow_without_names_is_a_plain_flow() -> None:
    plain = make_flow("10.0.0.1", "10.0.0.2", "TCP", 80)
    assert asked_from_pb(flow_to_pb(plain)) == plain


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        pytest.param(
            pb.Flow(src_name="a/b", dst_ip="10.0.0.1", dst_port=0), "dst_port", id="port checked as usual"
        ),
        pytest.param(
            pb.Flow(src_name="a/b", dst_ip="10.0.0.1", protocol=99, dst_port=80), "protocol", id="enum"
        ),
        pytest.param(
            pb.Flow(src_name="a/b", dst_ip="nope", dst_port=80), "dst_ip", id="a bad address beside a name"
        ),
        pytest.param(
            pb.Flow(src_name="a/b", dst_ip="10.0.0.1", dst_port=80, src_port=70000), "src_port", id="src_port"
        ),
    ],
)
def test_a_flow_by_name_is_checked_field_by_field(msg: pb.Flow, field: str) -> None:
    with pytest.raises(FlowError) as err:
        asked_from_pb(msg)
    assert err.value.field == field
