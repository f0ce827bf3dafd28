"""Flows to a Service address (docs/services.md, reference.py R33-R40), as a table, on BOTH evaluators.

The world (every row may add objects)::

    nodes       n1 192.168.0.1    n2 192.168.0.2
    shop/front  10.0.0.1 + fd00::1   n1  app=front
    shop/self   10.0.0.9             n1  app=self     http:80
    pay/api-1   10.0.1.1 + fd00::11  n1  app=api      http:8080
    pay/api-2   10.0.1.2             n2  app=api zone=b  http:8080
    pay/api-3   10.0.1.3             n2  app=api      (its endpoint is not ready)
    Service pay/api      LoadBalancer 10.96.0.10 + fd00:96::10, externalIP 192.0.2.10, LB 203.0.113.10,
                         port http 80 -> targetPort http (slices: 8080), nodePort 30080
    Service pay/empty    10.96.0.11 port 80, its only endpoint not ready
    Service pay/headless clusterIP None (endpoints api-1, api-2)
    Service shop/self    10.96.0.12 port 80 -> shop/self
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from test_semantics import netpol, node, ns, pod

from netpol_pdp.index.decision import AddressKind, Decision, Reason, Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow, make_flow
from netpol_pdp.index.model import Delete, Kind, Object, Upsert
from netpol_pdp.index.reference import ReferenceEvaluator
from netpol_pdp.index.validation import parse_object

Doc = dict[str, Any]


def service(namespace: str, name: str, cluster_ip: str | list[str] | None, *ports: Doc, **spec: Any) -> Doc:
    body: Doc = {"ports": list(ports), **spec}
    if isinstance(cluster_ip, list):
        body["clusterIPs"] = cluster_ip
    elif cluster_ip is not None:
        body["clusterIP"] = cluster_ip
    status = body.pop("status", None)
    doc: Doc = {"kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": body}
    if status:
        doc["status"] = status
    return doc


def endpoint(ip: str, node_name: str | None = None, **conditions: bool) -> Doc:
    out: Doc = {"addresses": [ip], "conditions": conditions}
    if node_name:
        out["nodeName"] = node_name
    return out


def eps(
    namespace: str,
    name: str,
    owner: str,
    *endpoints: Doc,
    ports: Iterable[tuple[str, int]] = (("http", 8080),),
    family: str = "IPv4",
) -> Doc:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": namespace, "labels": {"kubernetes.io/service-name": owner}},
        "addressType": family,
        "endpoints": list(endpoints),
        "ports": [{"name": n, "port": p} for n, p in ports],
    }


HTTP = {"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080}


def world() -> list[Doc]:
    return [
        ns("shop"),
        ns("pay"),
        node("n1", "192.168.0.1"),
        node("n2", "192.168.0.2"),
        pod("shop", "front", ["10.0.0.1", "fd00::1"], node="n1", labels={"app": "front"}),
        pod("shop", "self", ["10.0.0.9"], node="n1", labels={"app": "self"}, ports=[("http", 80, "TCP")]),
        pod(
            "pay",
            "api-1",
            ["10.0.1.1", "fd00::11"],
            node="n1",
            labels={"app": "api"},
            ports=[("http", 8080, "TCP")],
        ),
        pod(
            "pay",
            "api-2",
            ["10.0.1.2"],
            node="n2",
            labels={"app": "api", "zone": "b"},
            ports=[("http", 8080, "TCP")],
        ),
        pod("pay", "api-3", ["10.0.1.3"], node="n2", labels={"app": "api"}, ports=[("http", 8080, "TCP")]),
        service(
            "pay",
            "api",
            ["10.96.0.10", "fd00:96::10"],
            HTTP,
            type="LoadBalancer",
            externalIPs=["192.0.2.10"],
            status={"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}},
        ),
        eps(
            "pay",
            "api-a",
            "api",
            endpoint("10.0.1.1", "n1"),
            endpoint("10.0.1.2", "n2", ready=True),
            endpoint("10.0.1.3", "n2", ready=False),
        ),
        eps("pay", "api-v6", "api", endpoint("fd00::11", "n1"), family="IPv6"),
        service("pay", "empty", "10.96.0.11", {"port": 80}),
        eps("pay", "empty-a", "empty", endpoint("10.0.1.3", "n2", ready=False), ports=[("", 80)]),
        service("pay", "headless", "None", {"name": "http", "port": 8080}),
        eps("pay", "headless-a", "headless", endpoint("10.0.1.1"), endpoint("10.0.1.2")),
        service("shop", "self", "10.96.0.12", {"port": 80}),
        eps("shop", "self-a", "self", endpoint("10.0.0.9", "n1"), ports=[("", 80)]),
    ]


DENY_ALL_PAY = netpol("deny-all", "pay", policyTypes=["Ingress"])
DENY_ZONE_B = netpol("deny-b", "pay", podSelector={"matchLabels": {"zone": "b"}}, policyTypes=["Ingress"])
FROM_FRONT_ONLY = netpol(
    "from-front",
    "pay",
    ingress=[{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "front"}}}]}],
)


@dataclass(frozen=True)
class Case:
    id: str
    src: str
    dst: str
    port: int
    verdict: Verdict
    reason: Reason
    #: (ip:port, verdict) of every endpoint, in order; None: not a Service decision
    endpoints: tuple[tuple[str, Verdict], ...] | None = ()
    extra: tuple[Doc, ...] = ()
    protocol: str = "TCP"
    partial: Verdict = Verdict.DENY
    kind: AddressKind | None = AddressKind.CLUSTER_IP
    note: str | None = None


A, D = Verdict.ALLOW, Verdict.DENY
BOTH = (("10.0.1.1:8080", A), ("10.0.1.2:8080", A))

CASES = [
    Case(
        "a cluster IP is decided on each ready endpoint at the slice's port number",
        "10.0.0.1",
        "10.96.0.10",
        80,
        A,
        Reason.NOT_ISOLATED,
        BOTH,
    ),
    Case(
        "every endpoint denying denies, with their reason",
        "10.0.0.1",
        "10.96.0.10",
        80,
        D,
        Reason.DENIED_INGRESS,
        (("10.0.1.1:8080", D), ("10.0.1.2:8080", D)),
        (DENY_ALL_PAY,),
    ),
    Case(
        "a mix of verdicts is service-partially-allowed, DENY by default",
        "10.0.0.1",
        "10.96.0.10",
        80,
        D,
        Reason.SERVICE_PARTIALLY_ALLOWED,
        (("10.0.1.1:8080", A), ("10.0.1.2:8080", D)),
        (DENY_ZONE_B,),
    ),
    Case(
        "a mix is ALLOW when service_partial is ALLOW",
        "10.0.0.1",
        "10.96.0.10",
        80,
        A,
        Reason.SERVICE_PARTIALLY_ALLOWED,
        (("10.0.1.1:8080", A), ("10.0.1.2:8080", D)),
        (DENY_ZONE_B,),
        partial=A,
    ),
    Case(
        "no ready endpoint denies with its own reason",
        "10.0.0.1",
        "10.96.0.11",
        80,
        D,
        Reason.SERVICE_NO_READY_ENDPOINTS,
        (),
    ),
    Case(
        "a port the Service does not have denies",
        "10.0.0.1",
        "10.96.0.10",
        81,
        D,
        Reason.SERVICE_PORT_NOT_FOUND,
        (),
        note="service-port-not-found: Service pay/api has no port 81/TCP",
    ),
    Case(
        "a protocol the Service port does not have denies",
        "10.0.0.1",
        "10.96.0.10",
        80,
        D,
        Reason.SERVICE_PORT_NOT_FOUND,
        (),
        protocol="UDP",
    ),
    Case(
        "a node port on any node's address is the Service",
        "10.0.0.1",
        "192.168.0.2",
        30080,
        A,
        Reason.NOT_ISOLATED,
        BOTH,
        kind=AddressKind.NODE_PORT,
        note="externalTrafficPolicy Cluster",
    ),
    Case(
        "a node address on another port is the node",
        "10.0.0.1",
        "192.168.0.2",
        30081,
        A,
        Reason.NOT_ISOLATED,
        None,
        kind=None,
    ),
    Case(
        "an externalIP is the Service",
        "10.0.0.1",
        "192.0.2.10",
        80,
        A,
        Reason.NOT_ISOLATED,
        BOTH,
        kind=AddressKind.EXTERNAL_IP,
    ),
    Case(
        "a load-balancer IP is the Service",
        "10.0.0.1",
        "203.0.113.10",
        80,
        A,
        Reason.NOT_ISOLATED,
        BOTH,
        kind=AddressKind.LOAD_BALANCER_IP,
    ),
    Case(
        "the IPv6 cluster IP uses the IPv6 slices",
        "fd00::1",
        "fd00:96::10",
        80,
        A,
        Reason.NOT_ISOLATED,
        (("fd00::11:8080", A),),
    ),
    Case(
        "hairpin to itself through the cluster IP is not loopback",
        "10.0.0.9",
        "10.96.0.12",
        80,
        D,
        Reason.DENIED_INGRESS,
        (("10.0.0.9:80", D),),
        (netpol("deny-self", "shop", podSelector={"matchLabels": {"app": "self"}}, policyTypes=["Ingress"]),),
    ),
    Case(
        "a pod to itself by its own address stays loopback",
        "10.0.0.9",
        "10.0.0.9",
        80,
        A,
        Reason.LOOPBACK,
        None,
        (netpol("deny-self", "shop", podSelector={"matchLabels": {"app": "self"}}, policyTypes=["Ingress"]),),
        kind=None,
    ),
    Case(
        "a headless Service has no address: its endpoint's address is the pod",
        "10.0.0.1",
        "10.0.1.1",
        8080,
        A,
        Reason.NOT_ISOLATED,
        None,
        kind=None,
    ),
    Case(
        "internalTrafficPolicy Local keeps the source node's endpoints",
        "10.0.0.1",
        "10.96.0.13",
        80,
        A,
        Reason.NOT_ISOLATED,
        (("10.0.1.1:8080", A),),
        (
            service("pay", "local", "10.96.0.13", HTTP | {"nodePort": None}, internalTrafficPolicy="Local"),
            eps("pay", "local-a", "local", endpoint("10.0.1.1", "n1"), endpoint("10.0.1.2", "n2")),
        ),
    ),
    Case(
        "externalTrafficPolicy Local on a node port keeps that node's endpoints",
        "10.0.0.1",
        "192.168.0.2",
        30090,
        D,
        Reason.DENIED_INGRESS,
        (("10.0.1.2:8080", D),),
        (
            DENY_ALL_PAY,
            service(
                "pay",
                "np",
                "10.96.0.14",
                HTTP | {"nodePort": 30090},
                type="NodePort",
                externalTrafficPolicy="Local",
            ),
            eps("pay", "np-a", "np", endpoint("10.0.1.1", "n1"), endpoint("10.0.1.2", "n2")),
        ),
        kind=AddressKind.NODE_PORT,
    ),
    Case(
        "externalTrafficPolicy Local with no endpoint on the node denies",
        "10.0.0.1",
        "192.168.0.1",
        30090,
        D,
        Reason.SERVICE_NO_READY_ENDPOINTS,
        (),
        (
            service(
                "pay",
                "np",
                "10.96.0.14",
                HTTP | {"nodePort": 30090},
                type="NodePort",
                externalTrafficPolicy="Local",
            ),
            eps("pay", "np-a", "np", endpoint("10.0.1.2", "n2")),
        ),
        kind=AddressKind.NODE_PORT,
        note="externalTrafficPolicy Local: no endpoint on node n1",
    ),
    Case(
        "no ready endpoint falls back to serving, terminating ones",
        "10.0.0.1",
        "10.96.0.15",
        80,
        A,
        Reason.NOT_ISOLATED,
        (("10.0.1.3:8080", A),),
        (
            service("pay", "drain", "10.96.0.15", HTTP | {"nodePort": None}),
            eps(
                "pay",
                "drain-a",
                "drain",
                endpoint("10.0.1.3", "n2", ready=False, serving=True, terminating=True),
                endpoint("10.0.1.2", "n2", ready=False, serving=False, terminating=True),
            ),
        ),
        note="no ready endpoint: kube-proxy falls back",
    ),
    Case(
        "a node port under Cluster policy notes a verdict that SNAT to the node would change",
        "10.0.0.1",
        "192.168.0.2",
        30080,
        A,
        Reason.ALLOWED_BY_POLICY,
        BOTH,
        (FROM_FRONT_ONLY,),
        kind=AddressKind.NODE_PORT,
        note="snat: with the source rewritten to node n2's address 192.168.0.2, 10.0.1.1:8080 would be DENY",
    ),
    Case(
        "two Services claiming one address: the first by name wins, noted",
        "10.0.0.1",
        "10.96.0.10",
        80,
        A,
        Reason.NOT_ISOLATED,
        BOTH,
        (service("pay", "zzz", "10.96.0.10", {"port": 80}),),
        note="service-conflict: 10.96.0.10 claimed by pay/api, pay/zzz; pay/api (first by name) wins",
    ),
    # R43: a headless Service by name (its flow's destination is svc/NAMESPACE/NAME, what
    # index/ends.py resolves the name to), decided on its endpoints as DNS gives them
    Case(
        "a headless Service by name is decided on each ready endpoint",
        "10.0.0.1",
        "svc/pay/headless",
        8080,
        A,
        Reason.NOT_ISOLATED,
        BOTH,
        kind=AddressKind.HEADLESS,
    ),
    Case(
        "a headless Service by name whose endpoints disagree is service-partially-allowed",
        "10.0.0.1",
        "svc/pay/headless",
        8080,
        D,
        Reason.SERVICE_PARTIALLY_ALLOWED,
        (("10.0.1.1:8080", A), ("10.0.1.2:8080", D)),
        (DENY_ZONE_B,),
        kind=AddressKind.HEADLESS,
    ),
    Case(
        "a headless Service by name with every endpoint denying denies with their reason",
        "10.0.0.1",
        "svc/pay/headless",
        8080,
        D,
        Reason.DENIED_INGRESS,
        (("10.0.1.1:8080", D), ("10.0.1.2:8080", D)),
        (DENY_ALL_PAY,),
        kind=AddressKind.HEADLESS,
    ),
    Case(
        "a headless Service by name maps its Service port to the slices' port like a cluster IP",
        "10.0.0.1",
        "svc/pay/hl-named",
        80,
        A,
        Reason.NOT_ISOLATED,
        (("10.0.1.1:8080", A),),
        (
            service("pay", "hl-named", "None", {"name": "web", "port": 80, "targetPort": "http"}),
            eps("pay", "hl-named-a", "hl-named", endpoint("10.0.1.1"), ports=[("web", 8080)]),
        ),
        kind=AddressKind.HEADLESS,
    ),
    Case(
        "a headless Service by name without that port is service-port-not-found",
        "10.0.0.1",
        "svc/pay/headless",
        9090,
        D,
        Reason.SERVICE_PORT_NOT_FOUND,
        (),
        kind=AddressKind.HEADLESS,
        note="service-port-not-found: Service pay/headless has no port 9090/TCP",
    ),
    Case(
        "a headless Service by name without ports takes the flow's port as is",
        "10.0.0.1",
        "svc/pay/hl-raw",
        5432,
        D,
        Reason.SERVICE_PARTIALLY_ALLOWED,
        (("10.0.1.1:5432", A), ("10.0.1.2:5432", D)),
        (
            DENY_ZONE_B,
            service("pay", "hl-raw", "None"),
            eps("pay", "hl-raw-a", "hl-raw", endpoint("10.0.1.2"), endpoint("10.0.1.1"), ports=[]),
            eps("pay", "hl-raw-b", "hl-raw", endpoint("10.0.1.1"), ports=[]),
        ),
        kind=AddressKind.HEADLESS,
        note="Service pay/hl-raw declares no ports; the flow's port is used as is",
    ),
    Case(
        "a headless Service by name has no terminating fallback: DNS gives only ready endpoints",
        "10.0.0.1",
        "svc/pay/hl-down",
        8080,
        D,
        Reason.SERVICE_NO_READY_ENDPOINTS,
        (),
        (
            service("pay", "hl-down", "None", {"name": "http", "port": 8080}),
            eps(
                "pay",
                "hl-down-a",
                "hl-down",
                endpoint("10.0.1.1", ready=False, serving=True, terminating=True),
            ),
        ),
        kind=AddressKind.HEADLESS,
    ),
    Case(
        "a headless Service by name uses the slices of the source's address family",
        "fd00::1",
        "svc/pay/headless",
        8080,
        A,
        Reason.NOT_ISOLATED,
        (("fd00::11:8080", A),),
        (eps("pay", "headless-v6", "headless", endpoint("fd00::11"), family="IPv6"),),
        kind=AddressKind.HEADLESS,
    ),
    Case(
        "a headless Service by name ignores traffic policies: no kube-proxy translates it",
        "10.0.0.1",
        "svc/pay/hl-local",
        8080,
        A,
        Reason.NOT_ISOLATED,
        BOTH,
        (
            service("pay", "hl-local", "None", {"name": "http", "port": 8080}, internalTrafficPolicy="Local"),
            eps("pay", "hl-local-a", "hl-local", endpoint("10.0.1.1", "n1"), endpoint("10.0.1.2", "n2")),
        ),
        kind=AddressKind.HEADLESS,
    ),
    Case(
        "a name that is no headless Service (made by hand) denies with no ready endpoints",
        "10.0.0.1",
        "svc/pay/api",
        80,
        D,
        Reason.SERVICE_NO_READY_ENDPOINTS,
        (),
        kind=AddressKind.HEADLESS,
        note="headless: pay/api is no headless Service",
    ),
]


Factory = Callable[[Iterable[Object], Verdict], Any]


@pytest.fixture(params=["reference", "index"])
def make(request: pytest.FixtureRequest) -> Factory:
    if request.param == "reference":
        return ReferenceEvaluator
    return lambda objs, partial: Index.from_objects(list(objs), partial)


def objects(extra: Iterable[Doc] = ()) -> list[Object]:
    out = [parse_object(d) for d in (*world(), *extra)]
    return [o for o in out if o is not None]


def endpoints_of(decision: Decision) -> tuple[tuple[str, Verdict], ...] | None:
    if decision.service is None:
        return None
    out = []
    for e in decision.service.endpoints:
        host = e.ip
        out.append((f"{host}:{e.port}", e.decision.verdict))
    return tuple(out)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("explain", [False, True], ids=["plain", "explained"])
def test_service_rule(make: Factory, case: Case, explain: bool) -> None:
    evaluator = make(objects(case.extra), case.partial)
    if case.dst.startswith("svc/"):  # a headless Service by name: the flow index/ends.py makes (R43)
        flow = Flow(case.src, case.dst, case.protocol, case.port)
    else:
        flow = make_flow(case.src, case.dst, case.protocol, case.port)
    decision = evaluator.decide(flow, explain)
    assert (decision.verdict, decision.reason) == (case.verdict, case.reason)
    assert endpoints_of(decision) == case.endpoints
    if case.kind is not None:
        assert decision.service is not None and decision.service.address_kind is case.kind
        assert decision.dst.kind.value == "service"
    if case.note is not None:
        assert any(case.note in n for n in decision.notes), decision.notes


def test_the_trace_names_the_service_its_port_mapping_and_each_endpoint(make: Factory) -> None:
    decision = make(objects(), Verdict.DENY).decide(make_flow("10.0.0.1", "10.96.0.10", "TCP", 80), True)
    trace = decision.service
    assert trace is not None
    assert (
        trace.service,
        trace.address,
        trace.port,
        trace.port_name,
        trace.target_port,
        trace.traffic_policy,
    ) == ("pay/api", "10.96.0.10", 80, "http", "http", "Cluster")
    first = trace.endpoints[0]
    assert first.decision.dst.name == "pay/api-1" and first.node == "n1"
    assert first.decision.ingress is not None and first.decision.ingress.pod == "pay/api-1"
    out = decision.to_dict()
    assert out["dst"] == {"kind": "service", "name": "pay/api", "namespace": "pay"}
    assert [e["ip"] for e in out["service"]["endpoints"]] == ["10.0.1.1", "10.0.1.2"]


def decide(index: Index, dst: str = "10.96.0.10", port: int = 80) -> tuple[Verdict, Reason, Any]:
    d = index.decide(make_flow("10.0.0.1", dst, "TCP", port))
    return d.verdict, d.reason, endpoints_of(d)


def doc_object(doc: Doc) -> Object:
    obj = parse_object(doc)
    assert obj is not None
    return obj


def test_incremental_updates_touch_only_the_service_and_match_a_fresh_build() -> None:
    index = Index.from_objects(objects((DENY_ZONE_B,)))
    assert decide(index)[1] is Reason.SERVICE_PARTIALLY_ALLOWED
    # the denied endpoint becomes unready: every remaining endpoint allows
    slice_doc = eps(
        "pay", "api-a", "api", endpoint("10.0.1.1", "n1"), endpoint("10.0.1.2", "n2", ready=False)
    )
    before = index._gen.services
    index.apply([Upsert(doc_object(slice_doc))])
    after = index._gen.services
    assert before is not None and after is not None
    assert after.view("pay", "empty") is before.view("pay", "empty"), "another Service's entries were rebuilt"
    assert decide(index) == (A, Reason.NOT_ISOLATED, (("10.0.1.1:8080", A),))
    index.check()
    # the slice is replaced by another one
    index.apply(
        [
            Delete((Kind.ENDPOINT_SLICE, "pay", "api-a")),
            Upsert(doc_object(eps("pay", "api-b", "api", endpoint("10.0.1.2", "n2")))),
        ]
    )
    assert decide(index) == (D, Reason.DENIED_INGRESS, (("10.0.1.2:8080", D),))
    index.check()
    # the Service is deleted: its address is nobody's
    index.apply([Delete((Kind.SERVICE, "pay", "api"))])
    assert decide(index) == (A, Reason.NOT_ISOLATED, None)
    index.check()
    # and it comes back
    index.apply([Upsert(doc_object(world()[9]))])
    assert decide(index)[1] is Reason.DENIED_INGRESS
    index.check()


def test_a_world_without_services_publishes_no_service_table() -> None:
    index = Index.from_objects([o for o in objects() if o.kind not in (Kind.SERVICE, Kind.ENDPOINT_SLICE)])
    assert index._gen.services is None
    assert decide(index) == (A, Reason.NOT_ISOLATED, None)  # an external address, as before Services


def write_world(tmp_path: Any, extra: Iterable[Doc] = ()) -> str:
    import yaml

    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump_all([*world(), *extra]))
    return str(path)


def test_decide_shows_the_service_its_endpoints_and_takes_service_partial(tmp_path: Any, cli: Any) -> None:
    source = write_world(tmp_path, (DENY_ZONE_B,))
    args = ("decide", "--source", source, "--src", "10.0.0.1", "--dst", "10.96.0.10", "--port", "80")
    status, out, _ = cli(*args)
    assert status == 1
    assert "reason:      service-partially-allowed" in out
    assert "service:     Service pay/api cluster-ip 10.96.0.10:80/TCP (http) -> targetPort http" in out
    assert "ALLOW  10.0.1.1:8080 pod pay/api-1 on node n1: not-isolated" in out
    assert "DENY  10.0.1.2:8080 pod pay/api-2 on node n2: denied-on-ingress" in out
    status, out, _ = cli(*args, "--service-partial", "allow", "--json", "--explain")
    assert status == 0
    import json

    body = json.loads(out)
    assert body["reason"] == "service-partially-allowed" and body["dst"]["kind"] == "service"
    assert [e["verdict"] for e in body["service"]["endpoints"]] == ["ALLOW", "DENY"]
    assert body["service"]["endpoints"][1]["explanation"]["ingress"]["isolating_policies"] == ["pay/deny-b"]


# --- Services by name (index/ends.py: svc/NAMESPACE/NAME) ----------------------------------


@pytest.mark.parametrize(
    ("src", "port", "port_name", "flow"),
    [
        pytest.param("shop/front", 80, None, ("10.0.0.1", "10.96.0.10", 80), id="by port number"),
        pytest.param("shop/front", None, "http", ("10.0.0.1", "10.96.0.10", 80), id="by Service port name"),
        pytest.param(
            "fd00::1", 80, None, ("fd00::1", "fd00:96::10", 80), id="the source's family picks the IP"
        ),
    ],
)
def test_a_service_by_name_is_its_cluster_ip_and_service_port(
    src: str, port: int | None, port_name: str | None, flow: tuple[str, str, int]
) -> None:
    from netpol_pdp.index.ends import resolve_flow

    index = Index.from_objects(objects())
    resolved = resolve_flow(index.snapshot(), src, "svc/pay/api", "TCP", port, port_name)
    assert resolved.flow == make_flow(flow[0], flow[1], "TCP", flow[2])
    assert resolved.dst.ref == "Service pay/api"
    assert index.decide(resolved.flow).service is not None


@pytest.mark.parametrize(
    ("dst", "port", "port_name", "field", "words"),
    [
        pytest.param("svc/pay/nope", 80, None, "dst_name", "Service pay/nope is not known", id="unknown"),
        pytest.param(
            "svc/pay/headless",
            None,
            "grpc",
            "dst_port_name",
            "has no port 'grpc'",
            id="headless: no such name",
        ),
        pytest.param("svc/pay/api", 8080, None, "dst_port", "has no port 8080 for TCP", id="no such port"),
        pytest.param("svc/pay/api", None, "grpc", "dst_port_name", "has no port 'grpc'", id="no such name"),
        pytest.param("svc/pay", 80, None, "dst_name", "svc/NAMESPACE/NAME", id="malformed"),
    ],
)
def test_a_service_by_name_that_cannot_be_sent_to_is_a_located_error(
    dst: str, port: int | None, port_name: str | None, field: str, words: str
) -> None:
    from netpol_pdp.index.ends import resolve_flow
    from netpol_pdp.index.errors import FlowError

    index = Index.from_objects(objects())
    with pytest.raises(FlowError) as info:
        resolve_flow(index.snapshot(), "shop/front", dst, "TCP", port, port_name)
    assert info.value.field == field and words in info.value.message


@pytest.mark.parametrize(
    ("src", "port", "port_name", "flow"),
    [
        pytest.param("shop/front", 8080, None, ("10.0.0.1", 8080), id="by port number"),
        pytest.param("shop/front", None, "http", ("10.0.0.1", 8080), id="by Service port name"),
        pytest.param("fd00::1", 8080, None, ("fd00::1", 8080), id="the source's address picks the family"),
    ],
)
def test_a_headless_service_by_name_is_its_name_and_service_port(
    src: str, port: int | None, port_name: str | None, flow: tuple[str, int]
) -> None:
    from netpol_pdp.index.ends import resolve_flow

    index = Index.from_objects(objects())
    resolved = resolve_flow(index.snapshot(), src, "svc/pay/headless", "TCP", port, port_name)
    assert resolved.flow == Flow(flow[0], "svc/pay/headless", "TCP", flow[1])
    assert resolved.dst.ref == "Service pay/headless" and resolved.dst.headless == "svc/pay/headless"
    decision = index.decide(resolved.flow)
    assert decision.service is not None and decision.service.address_kind is AddressKind.HEADLESS
    assert decision.service.address == "svc/pay/headless"


def test_a_headless_service_is_no_source() -> None:
    from netpol_pdp.index.ends import resolve_flow
    from netpol_pdp.index.errors import FlowError

    with pytest.raises(FlowError) as info:
        resolve_flow(Index.from_objects(objects()).snapshot(), "svc/pay/headless", "shop/front", "TCP", 80)
    assert info.value.field == "src_name"
    assert info.value.message.startswith("svc/pay/headless: a headless Service has no address to send from")


def test_a_headless_service_without_ports_by_name_takes_a_port_number_not_a_name() -> None:
    from netpol_pdp.index.ends import resolve_flow
    from netpol_pdp.index.errors import FlowError

    index = Index.from_objects(objects([service("pay", "hl-raw", "None")]))
    gen = index.snapshot()
    assert resolve_flow(gen, "shop/front", "svc/pay/hl-raw", "TCP", 5432).flow.dst_port == 5432
    with pytest.raises(FlowError) as info:
        resolve_flow(gen, "shop/front", "svc/pay/hl-raw", "TCP", None, "pg")
    assert info.value.field == "dst_port_name"
    assert info.value.message == "Service pay/hl-raw is headless without ports: give a port number"


def test_decide_to_a_service_by_name_on_the_bundled_example(cli: Any) -> None:
    status, out, _ = cli(
        "decide", "--from", "frontend/web-6d4cf-x2lqp", "--to", "svc/backend/api", "--port", "http"
    )
    assert status == 0
    assert "Service backend/api cluster-ip 10.96.10.20:80/TCP (http)" in out
