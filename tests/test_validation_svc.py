"""Every rule of index/validation_svc.py (S1-S6 for Service, E1-E5 for EndpointSlice), table-driven.

A valid base manifest per kind plus one named tweak per row; each row asserts the
object named, the exact field path, and that the tweak caused exactly that one error.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import ValidationError
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.model import (
    Delete,
    EndpointSlice,
    Kind,
    Service,
    ServicePort,
    ServiceType,
    SliceEndpoint,
    SlicePort,
    TrafficPolicy,
    Upsert,
)
from netpol_pdp.index.validation import parse_object

Doc = dict[str, Any]


def base_service() -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "payments", "namespace": "shop"},
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.96.0.20",
            "clusterIPs": ["10.96.0.20", "fd00:96::20"],
            "selector": {"app": "payments"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080},
                {"name": "grpc", "port": 9090, "targetPort": 9091, "protocol": "TCP"},
            ],
            "externalIPs": ["192.0.2.10"],
            "externalTrafficPolicy": "Local",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}]}},
    }


def base_slice() -> Doc:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "payments-abc12",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "payments"},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": ["10.244.1.5"],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": "node-a",
                "targetRef": {"kind": "Pod", "namespace": "shop", "name": "payments-1"},
            },
            {"addresses": ["10.244.2.6"], "conditions": {"ready": False}},
            {"addresses": ["10.244.2.7"]},
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "grpc", "port": 9091}],
    }


def test_the_base_service_reads_every_field() -> None:
    svc = parse_object(base_service())
    assert isinstance(svc, Service)
    assert svc.key == (Kind.SERVICE, "shop", "payments")
    assert svc.type is ServiceType.LOAD_BALANCER
    assert svc.cluster_ips == ("10.96.0.20", "fd00:96::20") and not svc.headless
    assert svc.ports == (
        ServicePort(80, "TCP", "http", "http", 30080),
        ServicePort(9090, "TCP", "grpc", 9091),
    )
    assert svc.external_ips == ("192.0.2.10",)
    assert svc.load_balancer_ips == ("203.0.113.7",)  # a hostname-only ingress has no address
    assert svc.external_traffic_policy is TrafficPolicy.LOCAL
    assert svc.internal_traffic_policy is TrafficPolicy.CLUSTER
    assert svc.selector == {"app": "payments"}


def test_defaults_target_port_is_port_type_is_cluster_ip_and_policies_are_cluster() -> None:
    svc = parse_object(
        {
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}]},
        }
    )
    assert isinstance(svc, Service)
    assert svc.namespace == "default" and svc.type is ServiceType.CLUSTER_IP
    assert svc.ports == (ServicePort(80, "TCP", "", 80, None),)
    assert svc.external_traffic_policy is TrafficPolicy.CLUSTER is svc.internal_traffic_policy


def test_a_headless_service_has_no_address_and_may_have_no_ports() -> None:
    svc = parse_object({"kind": "Service", "metadata": {"name": "db"}, "spec": {"clusterIP": "None"}})
    assert isinstance(svc, Service) and svc.headless and svc.cluster_ips == () and svc.ports == ()


def test_the_base_slice_reads_every_field_and_defaults_conditions() -> None:
    eps = parse_object(base_slice())
    assert isinstance(eps, EndpointSlice)
    assert eps.key == (Kind.ENDPOINT_SLICE, "shop", "payments-abc12") and eps.service == "payments"
    assert eps.endpoints == (
        SliceEndpoint(("10.244.1.5",), True, True, False, "node-a", "Pod shop/payments-1"),
        SliceEndpoint(("10.244.2.6",), False, False, False),  # serving unset: as ready
        SliceEndpoint(("10.244.2.7",), True, True, False),  # ready unset: ready
    )
    assert eps.ports == (SlicePort("http", "TCP", 8080), SlicePort("grpc", "TCP", 9091))


def tweak(path: str, value: Any) -> Callable[[Doc], None]:
    """Set (or with value ``...`` delete) the dotted ``path`` (``[i]`` indexes lists)."""

    def apply(doc: Doc) -> None:
        parts = path.replace("[", ".[").split(".")
        node: Any = doc
        for part in parts[:-1]:
            node = node[int(part[1:-1])] if part.startswith("[") else node[part]
        last = parts[-1]
        key: Any = int(last[1:-1]) if last.startswith("[") else last
        if value is ...:
            del node[key]
        else:
            node[key] = value

    return apply


SERVICE_CASES = [
    ("S1 an unknown type", tweak("spec.type", "Magic"), "spec.type"),
    ("S2 a clusterIP that is no address", tweak("spec.clusterIPs", ["10.96.0.300"]), "spec.clusterIPs[0]"),
    (
        "S2 clusterIPs must start with clusterIP",
        tweak("spec.clusterIPs", ["10.96.0.21"]),
        "spec.clusterIPs[0]",
    ),
    (
        "S2 two clusterIPs of one family are not dual stack",
        tweak("spec.clusterIPs", ["10.96.0.20", "10.96.0.21"]),
        "spec.clusterIPs[1]",
    ),
    (
        "S2 at most two clusterIPs",
        tweak("spec.clusterIPs", ["10.96.0.20", "fd00::1", "10.96.0.22"]),
        "spec.clusterIPs",
    ),
    ("S3 a port number out of range", tweak("spec.ports[0].port", 70000), "spec.ports[0].port"),
    ("S3 a port is required", tweak("spec.ports[0].port", ...), "spec.ports[0].port"),
    ("S3 a protocol of the API's", tweak("spec.ports[0].protocol", "tcp"), "spec.ports[0].protocol"),
    (
        "S3 a targetPort name is an IANA name",
        tweak("spec.ports[0].targetPort", "Http--"),
        "spec.ports[0].targetPort",
    ),
    (
        "S3 a targetPort number in range",
        tweak("spec.ports[1].targetPort", 0x10000),
        "spec.ports[1].targetPort",
    ),
    ("S3 a nodePort in range", tweak("spec.ports[0].nodePort", -1), "spec.ports[0].nodePort"),
    ("S3 two ports need names", tweak("spec.ports[1].name", ...), "spec.ports[1].name"),
    ("S3 port names are unique", tweak("spec.ports[1].name", "http"), "spec.ports[1].name"),
    ("S3 a port name is a DNS label", tweak("spec.ports[1].name", "GRPC"), "spec.ports[1].name"),
    ("S3 port and protocol pairs are unique", tweak("spec.ports[1].port", 80), "spec.ports[1]"),
    ("S3 ports are required", tweak("spec.ports", []), "spec.ports"),
    ("S4 externalIPs are addresses", tweak("spec.externalIPs", ["example.com"]), "spec.externalIPs[0]"),
    (
        "S4 load balancer ingress ips are addresses",
        tweak("status.loadBalancer.ingress[0].ip", "1.2.3"),
        "status.loadBalancer.ingress[0].ip",
    ),
    (
        "S5 externalTrafficPolicy values",
        tweak("spec.externalTrafficPolicy", "Nearest"),
        "spec.externalTrafficPolicy",
    ),
    (
        "S5 internalTrafficPolicy values",
        tweak("spec.internalTrafficPolicy", "local"),
        "spec.internalTrafficPolicy",
    ),
    (
        "S6 selector values are label values",
        tweak("spec.selector", {"app": "no spaces"}),
        "spec.selector[app]",
    ),
]


def _only_error(doc: Doc) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        parse_object(doc)
    assert len(info.value.errors) == 1, info.value.errors
    return info.value.obj, info.value.errors[0].path


@pytest.mark.parametrize(("case", "change", "field"), SERVICE_CASES, ids=[c[0] for c in SERVICE_CASES])
def test_service_rule(case: str, change: Callable[[Doc], None], field: str) -> None:
    doc = copy.deepcopy(base_service())
    change(doc)
    assert _only_error(doc) == ("Service shop/payments", field)


def test_a_node_port_on_a_cluster_ip_service_is_refused() -> None:
    doc = copy.deepcopy(base_service())
    doc["spec"].update(type="ClusterIP", externalTrafficPolicy=None)
    del doc["spec"]["externalIPs"]
    assert _only_error(doc) == ("Service shop/payments", "spec.ports[0].nodePort")


def test_external_traffic_policy_needs_an_externally_reachable_service() -> None:
    doc = copy.deepcopy(base_service())
    doc["spec"]["type"] = "ClusterIP"
    del doc["spec"]["externalIPs"]
    del doc["spec"]["ports"][0]["nodePort"]
    assert _only_error(doc) == ("Service shop/payments", "spec.externalTrafficPolicy")


def test_none_is_not_combined_with_an_address() -> None:
    doc = copy.deepcopy(base_service())
    doc["spec"]["clusterIP"] = "None"
    doc["spec"]["clusterIPs"] = ["None", "fd00::1"]
    with pytest.raises(ValidationError) as info:
        parse_object(doc)
    assert "spec.clusterIPs" in [e.path for e in info.value.errors]


SLICE_CASES = [
    ("E1 addressType is required", tweak("addressType", ...), "addressType"),
    ("E1 addressType values", tweak("addressType", "IPv5"), "addressType"),
    ("E2 an endpoint has an address", tweak("endpoints[0].addresses", []), "endpoints[0].addresses"),
    (
        "E2 addresses are addresses",
        tweak("endpoints[0].addresses", ["10.244.1"]),
        "endpoints[0].addresses[0]",
    ),
    (
        "E2 addresses are of the slice's family",
        tweak("endpoints[0].addresses", ["fd00::5"]),
        "endpoints[0].addresses[0]",
    ),
    ("E3 ready is a boolean", tweak("endpoints[0].conditions.ready", "yes"), "endpoints[0].conditions.ready"),
    (
        "E3 terminating is a boolean",
        tweak("endpoints[0].conditions.terminating", 1),
        "endpoints[0].conditions.terminating",
    ),
    ("E4 a port name is a DNS label", tweak("ports[0].name", "HTTP"), "ports[0].name"),
    ("E4 a port in range", tweak("ports[0].port", 0), "ports[0].port"),
    ("E4 a protocol of the API's", tweak("ports[0].protocol", "ICMP"), "ports[0].protocol"),
    ("E4 port names are unique", tweak("ports[1].name", "http"), "ports[1].name"),
    (
        "E5 the owner label is a label value",
        tweak("metadata.labels", {"kubernetes.io/service-name": "a b"}),
        "metadata.labels[kubernetes.io/service-name]",
    ),
]


@pytest.mark.parametrize(("case", "change", "field"), SLICE_CASES, ids=[c[0] for c in SLICE_CASES])
def test_endpoint_slice_rule(case: str, change: Callable[[Doc], None], field: str) -> None:
    doc = copy.deepcopy(base_slice())
    change(doc)
    assert _only_error(doc) == ("EndpointSlice shop/payments-abc12", field)


def test_an_fqdn_slice_holds_names_and_no_address() -> None:
    doc = copy.deepcopy(base_slice())
    doc["addressType"] = "FQDN"
    doc["endpoints"] = [{"addresses": ["db.example.com"]}]
    eps = parse_object(doc)
    assert isinstance(eps, EndpointSlice) and eps.endpoints[0].addresses == ()


def test_manifests_read_both_kinds_with_their_api_versions(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "svc.yaml").write_text(yaml.safe_dump_all([base_service(), base_slice()]))
    (tmp_path / "other.yaml").write_text(
        yaml.safe_dump({**base_slice(), "apiVersion": "discovery.k8s.io/v1beta1", "metadata": {"name": "x"}})
    )
    result = ManifestSource(tmp_path).load()
    assert set(result.objects) == {
        (Kind.SERVICE, "shop", "payments"),
        (Kind.ENDPOINT_SLICE, "shop", "payments-abc12"),
    }
    assert result.ignored == {"discovery.k8s.io/v1beta1/EndpointSlice": 1}
    assert result.counts() == {
        "Namespace": 0,
        "Pod": 0,
        "Node": 0,
        "NetworkPolicy": 0,
        "Service": 1,
        "EndpointSlice": 1,
    }


def test_the_index_accepts_upserts_and_deletes_of_both_kinds() -> None:
    svc, eps = parse_object(base_service()), parse_object(base_slice())
    assert svc is not None and eps is not None
    index = Index()
    index.apply([Upsert(svc), Upsert(eps)])
    assert index.counts()["Service"] == 1 and index.counts()["EndpointSlice"] == 1
    assert set(index.objects()) == {svc.key, eps.key}
    index.check()
    index.apply([Delete(eps.key), Delete(svc.key), Delete(svc.key)])
    assert "Service" not in index.counts() and index.objects() == {}
    index.check()
