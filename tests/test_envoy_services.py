"""Outbound Envoy checks: a destination that is a Service's ClusterIP is decided through the Service.

A sidecar's outbound listener reports what the application dialled (the
ClusterIP and Service port, docs/envoy.md "Inbound and outbound sidecars").
Both the gRPC ext_authz service (network and HTTP filter shapes) and the HTTP
authorizer of ``--envoy-http-listen`` must answer such a Check as
``Index.decide`` does for that flow: through the Service's ready endpoints, with
the Service named in the answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import test_envoy
from test_envoy import (
    CHECKER4,
    DB4,
    FILTERS,
    MANIFESTS,
    WEB4,
    _assert_matches_decision,
    _metadata,
    http_check,
)
from test_envoy_http import ask, envoy_headers

from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import parse_object
from netpol_pdp.server.envoy_http import HttpAuthorizer

DB_VIP, WEB_VIP, BOTH_VIP = "10.96.0.20", "10.96.0.10", "10.96.0.30"


def _service(name: str, vip: str, port: int, target: int | str, *endpoints: tuple[str, int]) -> list[Any]:
    """A Service and the EndpointSlice the controller would write for it (ports as it resolved them)."""
    svc = {
        "kind": "Service",
        "metadata": {"namespace": "shop", "name": name},
        "spec": {"clusterIP": vip, "ports": [{"name": "p", "port": port, "targetPort": target}]},
    }
    slices = [
        {
            "kind": "EndpointSlice",
            "apiVersion": "discovery.k8s.io/v1",
            "metadata": {
                "namespace": "shop",
                "name": f"{name}-{i}",
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": "p", "port": endpoint_port, "protocol": "TCP"}],
        }
        for i, (ip, endpoint_port) in enumerate(endpoints)
    ]
    return [svc, *slices]


WORLD = [
    *MANIFESTS,
    *_service("db", DB_VIP, 5432, "pg", (DB4, 5432)),  # a named targetPort, resolved by the slice
    *_service("web", WEB_VIP, 80, 8080, (WEB4, 8080)),
    *_service("both", BOTH_VIP, 8080, 8080, (WEB4, 8080), (DB4, 8080)),
]
OBJECTS = [o for o in (parse_object(m) for m in WORLD) if o is not None]

OUTBOUND = [
    pytest.param((WEB4, DB_VIP, 5432, "allowed-by-policy"), id="web may reach the db Service on pg"),
    pytest.param((CHECKER4, DB_VIP, 5432, "denied-on-ingress"), id="another namespace may not reach db"),
    pytest.param((WEB4, WEB_VIP, 80, "denied-on-egress"), id="hairpin through the VIP is not loopback"),
    pytest.param(
        (CHECKER4, BOTH_VIP, 8080, "service-partially-allowed"), id="one endpoint allows, one denies: DENY"
    ),
    pytest.param((CHECKER4, DB_VIP, 9999, "service-port-not-found"), id="a port the Service lacks"),
]


@pytest.fixture(scope="module")
def index() -> Index:
    return Index.from_objects(OBJECTS)


# test_envoy's servers (thread-pool and aio), serving this module's index
holder, stub = test_envoy.holder, test_envoy.stub


@pytest.mark.parametrize("make", FILTERS.values(), ids=FILTERS.keys())
@pytest.mark.parametrize("flow", OUTBOUND)
def test_an_outbound_check_to_a_cluster_ip_is_decided_through_the_service(
    stub: Any, index: Index, make: Any, flow: tuple[str, str, int, str]
) -> None:
    src, vip, port, reason = flow
    decision = index.decide(Flow(src, vip, "TCP", port))
    assert decision.reason.value == reason
    assert decision.service is not None
    response = stub.Check(make(src, vip, port))
    _assert_matches_decision(response, decision, make is http_check)
    assert "shop/" in _metadata(response)["dst"], "the answer names the Service"


def test_the_same_pod_addressed_directly_is_decided_as_a_pod(stub: Any, index: Index) -> None:
    through_service = _metadata(stub.Check(FILTERS["network filter"](CHECKER4, DB_VIP, 5432)))
    direct = _metadata(stub.Check(FILTERS["network filter"](CHECKER4, DB4, 5432)))
    assert (through_service["verdict"], direct["verdict"]) == ("DENY", "DENY")
    assert direct["dst"] == "pod shop/db"
    assert through_service["dst"] != direct["dst"]


@pytest.fixture(scope="module")
def http_port(index: Index) -> Iterator[int]:
    server = HttpAuthorizer(lambda: index)
    port = server.start("127.0.0.1", 0)
    yield port
    server.stop()


@pytest.mark.parametrize("flow", OUTBOUND)
def test_the_http_authorizer_decides_an_outbound_cluster_ip_through_the_service(
    http_port: int, index: Index, flow: tuple[str, str, int, str]
) -> None:
    src, vip, port, reason = flow
    decision = index.decide(Flow(src, vip, "TCP", port))
    status, header, _ = ask(http_port, envoy_headers(f"{src}:40312", f"{vip}:{port}"))
    assert (status, header) == (200 if decision.allowed else 403, reason)
