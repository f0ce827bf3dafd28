"""Wire <-> Python conversion: flows and decisions survive the round trip unchanged."""

from __future__ import annotations

import pytest

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
from netpol_pdp.index.flows import Flow, make_flow
from netpol_pdp.v1.convert import decision_from_pb, decision_to_pb, flow_from_pb, flow_to_pb


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
