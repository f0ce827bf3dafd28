"""Every line of SEMANTICS.md and docs/semantics.md, as a table of worlds, flows and verdicts.

Each test runs on BOTH evaluators (the ``evaluator_factory`` fixture): the slow
reference and the fast index must give the same answer a person would read off
the rule.  Objects are written as manifest dicts and go through ``parse_object``,
exactly as a file source would load them.

The base cluster (every table adds policies or objects to it)::

    namespaces  prod {env=prod, team=a}   dev {env=dev}   lab (never declared)
    nodes       n1 192.168.0.1 (+ ExternalIP 203.0.113.1)   n2 192.168.0.2
                n3 192.168.0.3 (its hostNetwork pod prod/agent)
                n4 (no Node object; its hostNetwork pod prod/probe at 192.168.0.4)
    pods        prod/web  10.0.0.1 + fd00::1  n1  app=web  http:80 dns:53/UDP metrics:9090 sig:7000/SCTP
                prod/db   10.0.0.2            n1  app=db tier=data postgres:5432
                prod/api  10.0.0.3            n2  app=api tier=back http:8080
                prod/front 10.0.0.4           n2  app=front
                dev/web   10.0.1.1            n2  app=web          http:80
                lab/tool  10.0.2.1            n2  app=tool
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import EvaluatorFactory

from netpol_pdp.index.decision import (
    Decision,
    DirectionTrace,
    Endpoint,
    EndpointKind,
    Reason,
    RuleRef,
    Verdict,
)
from netpol_pdp.index.flows import make_flow
from netpol_pdp.index.model import Object
from netpol_pdp.index.validation import parse_object

# --- manifests, written the way a person writes YAML -------------------------------------


def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def node(name: str, internal: str | None = None, external: str | None = None) -> dict[str, Any]:
    addresses = [{"type": "Hostname", "address": name}]
    if internal:
        addresses.append({"type": "InternalIP", "address": internal})
    if external:
        addresses.append({"type": "ExternalIP", "address": external})
    return {"kind": "Node", "metadata": {"name": name}, "status": {"addresses": addresses}}


def pod(
    namespace: str,
    name: str,
    ips: Iterable[str] = (),
    *,
    node: str | None = None,
    labels: Mapping[str, str] | None = None,
    ports: Iterable[tuple[str | None, int, str]] = (),
    host_network: bool = False,
    phase: str | None = "Running",
    created: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if created:
        metadata["creationTimestamp"] = created
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "main",
                "ports": [
                    {"containerPort": n, "protocol": p, **({"name": pn} if pn else {})} for pn, n, p in ports
                ],
            }
        ]
    }
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    status: dict[str, Any] = {"podIPs": [{"ip": ip} for ip in ips]}
    if phase:
        status["phase"] = phase
    return {"kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def netpol(name: str, namespace: str = "prod", **spec: Any) -> dict[str, Any]:
    """A NetworkPolicy; ``spec`` keys are the manifest's own (``podSelector``, ``ingress``...)."""
    spec.setdefault("podSelector", {})
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def labels(**pairs: str) -> dict[str, Any]:
    return {"matchLabels": pairs}


def name_is(namespace: str) -> dict[str, Any]:
    """The selector of one namespace by the label the API server gives it."""
    return labels(**{"kubernetes.io/metadata.name": namespace})


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        e["values"] = list(values)
    return {"matchExpressions": [e]}


def block(cidr: str, *excepts: str) -> dict[str, Any]:
    body: dict[str, Any] = {"cidr": cidr}
    if excepts:
        body["except"] = list(excepts)
    return {"ipBlock": body}


def port(
    value: int | str | None = None, protocol: str | None = None, end: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if value is not None:
        out["port"] = value
    if protocol:
        out["protocol"] = protocol
    if end is not None:
        out["endPort"] = end
    return out


# --- the base cluster ------------------------------------------------------------------

WEB, WEB6, DB, API = "10.0.0.1", "fd00::1", "10.0.0.2", "10.0.0.3"
FRONT, DEV_WEB, TOOL = "10.0.0.4", "10.0.1.1", "10.0.2.1"
N1, N1_EXT, N2, N3, N4 = "192.168.0.1", "203.0.113.1", "192.168.0.2", "192.168.0.3", "192.168.0.4"
EXT, EXT6 = "8.8.8.8", "2001:db8::1"

BASE: list[dict[str, Any]] = [
    ns("prod", env="prod", team="a"),
    ns("dev", env="dev"),
    node("n1", N1, N1_EXT),
    node("n2", N2),
    node("n3", N3),
    pod(
        "prod",
        "web",
        [WEB, WEB6],
        node="n1",
        labels={"app": "web"},
        ports=[("http", 80, "TCP"), ("dns", 53, "UDP"), ("metrics", 9090, "TCP"), ("sig", 7000, "SCTP")],
    ),
    pod(
        "prod", "db", [DB], node="n1", labels={"app": "db", "tier": "data"}, ports=[("postgres", 5432, "TCP")]
    ),
    pod(
        "prod", "api", [API], node="n2", labels={"app": "api", "tier": "back"}, ports=[("http", 8080, "TCP")]
    ),
    pod("prod", "front", [FRONT], node="n2", labels={"app": "front"}),
    pod("dev", "web", [DEV_WEB], node="n2", labels={"app": "web"}, ports=[("http", 80, "TCP")]),
    pod("lab", "tool", [TOOL], node="n2", labels={"app": "tool"}),
    pod("prod", "agent", [N3], node="n3", labels={"app": "agent"}, host_network=True),
    pod("prod", "probe", [N4], node="n4", labels={"app": "probe"}, host_network=True),
]

ALLOW, DENY = Verdict.ALLOW, Verdict.DENY
# The reasons, by the names the tables use.
ALLOWED_BY_POLICY, NOT_ISOLATED = Reason.ALLOWED_BY_POLICY, Reason.NOT_ISOLATED
DENIED_INGRESS, DENIED_EGRESS, DENIED_BOTH = Reason.DENIED_INGRESS, Reason.DENIED_EGRESS, Reason.DENIED_BOTH
LOOPBACK, NODE_TRAFFIC = Reason.LOOPBACK, Reason.NODE_TRAFFIC
HOST_NETWORK, NO_POD = Reason.HOST_NETWORK, Reason.NO_POD


def world(*extra: dict[str, Any], base: bool = True) -> list[Object]:
    objs = []
    for doc in [*(BASE if base else []), *extra]:
        obj = parse_object(doc)
        assert obj is not None
        objs.append(obj)
    return objs


@dataclass(frozen=True)
class Case:
    """One row: the objects added to the base cluster, a flow, and what must come out."""

    id: str
    objects: list[dict[str, Any]]
    src: str
    dst: str
    reason: Reason
    port: int = 80
    protocol: str = "TCP"
    base: bool = True

    @property
    def verdict(self) -> Verdict:
        """The reason decides the verdict: only the three denials deny."""
        return DENY if self.reason in (DENIED_INGRESS, DENIED_EGRESS, DENIED_BOTH) else ALLOW


def decide(
    factory: EvaluatorFactory,
    objects: list[Object],
    src: str,
    dst: str,
    *,
    port: int = 80,
    protocol: str = "TCP",
    explain: bool = False,
) -> Decision:
    flow = make_flow(src, dst, protocol, port if protocol in ("TCP", "UDP", "SCTP") else None)
    return factory(objects).decide(flow, explain=explain)


def run_cases(cases: list[Case]) -> Any:
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])


def check(factory: EvaluatorFactory, case: Case) -> Decision:
    d = decide(
        factory,
        world(*case.objects, base=case.base),
        case.src,
        case.dst,
        port=case.port,
        protocol=case.protocol,
    )
    assert (d.verdict, d.reason) == (case.verdict, case.reason), d
    return d


# Common policies.
DENY_INGRESS = netpol("deny-ingress", policyTypes=["Ingress"])
DENY_EGRESS = netpol("deny-egress", policyTypes=["Egress"])


# --- SEMANTICS "Objects the engine knows" / docs section 1 -----------------------------

# fmt: off
OBJECTS = [
    Case("every namespace carries kubernetes.io/metadata.name=<name>",
         [netpol("p", ingress=[{"from": [{"namespaceSelector": name_is("dev")}]}])],
         DEV_WEB, WEB, ALLOWED_BY_POLICY),
    Case("a declared namespace cannot override its name label",
         [ns("qa", **{"kubernetes.io/metadata.name": "prod"}), pod("qa", "t", ["10.0.3.1"]),
          netpol("p", ingress=[{"from": [{"namespaceSelector": name_is("qa")}]}])],
         "10.0.3.1", WEB, ALLOWED_BY_POLICY),
    Case("an undeclared namespace exists with its name label",
         [netpol("p", ingress=[{"from": [{"namespaceSelector": name_is("lab")}]}])],
         TOOL, WEB, ALLOWED_BY_POLICY),
    Case("an undeclared namespace has no other label",
         [netpol("p", ingress=[{"from": [{"namespaceSelector": expr("env", "Exists")}]}])],
         TOOL, WEB, DENIED_INGRESS),
    Case("a policy in an undeclared namespace isolates its pods",
         [netpol("p", namespace="lab", policyTypes=["Ingress"])], WEB, TOOL, DENIED_INGRESS),
    Case("a pod without an IP takes no part (its namespace's deny-all is moot)",
         [pod("prod", "pending", [], phase="Pending"), DENY_INGRESS], EXT, "10.0.0.9", NO_POD),
    Case("a Succeeded pod takes no part: its address is external",
         [pod("prod", "job", ["10.0.0.9"], phase="Succeeded"), DENY_INGRESS], EXT, "10.0.0.9", NO_POD),
    Case("a Failed pod takes no part: its address is external",
         [pod("prod", "job", ["10.0.0.9"], phase="Failed"), DENY_INGRESS], EXT, "10.0.0.9", NO_POD),
    Case("a Pending pod with an IP takes part",
         [pod("prod", "new", ["10.0.0.9"], phase="Pending"), DENY_INGRESS], EXT, "10.0.0.9", DENIED_INGRESS),
    Case("a pod without a phase but with an IP takes part",
         [pod("prod", "new", ["10.0.0.9"], phase=None), DENY_INGRESS], EXT, "10.0.0.9", DENIED_INGRESS),
    Case("a pod's second (IPv6) address is the pod too", [DENY_INGRESS], EXT6, WEB6, DENIED_INGRESS),
    Case("a node's InternalIP is the node, not external", [DENY_EGRESS], WEB, N2, DENIED_EGRESS),
    Case("any other address is external", [], EXT, EXT6, NO_POD),
]
# fmt: on


@run_cases(OBJECTS)
def test_objects_the_engine_knows(evaluator_factory: EvaluatorFactory, case: Case) -> None:
    check(evaluator_factory, case)


def test_pod_ip_from_status_pod_ip(evaluator_factory: EvaluatorFactory) -> None:
    """``status.podIP`` alone (no ``podIPs``) is the pod's address."""
    doc = pod("prod", "old", [])
    doc["status"] = {"podIP": "10.0.0.9", "phase": "Running"}
    d = decide(evaluator_factory, world(doc), EXT, "10.0.0.9")
    assert d.dst == Endpoint(EndpointKind.POD, "prod/old", "prod")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (WEB, Endpoint(EndpointKind.POD, "prod/web", "prod")),
        (WEB6, Endpoint(EndpointKind.POD, "prod/web", "prod")),
        (TOOL, Endpoint(EndpointKind.POD, "lab/tool", "lab")),
        (N1, Endpoint(EndpointKind.NODE, "n1")),
        (N1_EXT, Endpoint(EndpointKind.NODE, "n1")),
        (N3, Endpoint(EndpointKind.NODE, "n3", host_network_pods=("prod/agent",))),
        (N4, Endpoint(EndpointKind.NODE, "n4", host_network_pods=("prod/probe",))),
        (EXT, Endpoint(EndpointKind.EXTERNAL)),
    ],
    ids=[
        "a pod's IPv4 address resolves to the pod",
        "a pod's IPv6 address resolves to the pod",
        "a pod of an undeclared namespace resolves to the pod",
        "a node's InternalIP resolves to the node",
        "a node's ExternalIP resolves to the node",
        "a hostNetwork pod's address is its node, listing the pod",
        "a hostNetwork pod on a node without a Node object names its spec.nodeName",
        "an unknown address is external",
    ],
)
def test_address_resolution(evaluator_factory: EvaluatorFactory, address: str, expected: Endpoint) -> None:
    d = decide(evaluator_factory, world(), address, EXT)
    assert d.src == expected


# --- SEMANTICS "A flow" / docs section 3: both directions ------------------------------

# fmt: off
DIRECTIONS = [
    Case("no policy anywhere: not isolated", [], WEB, DB, NOT_ISOLATED),
    Case("the source's egress denies",
         [netpol("e", podSelector=labels(app="web"), policyTypes=["Egress"])], WEB, DB, DENIED_EGRESS),
    Case("the destination's ingress denies",
         [netpol("i", podSelector=labels(app="db"))], WEB, DB, DENIED_INGRESS),
    Case("both directions deny", [netpol("all", policyTypes=["Ingress", "Egress"])], WEB, DB, DENIED_BOTH),
    Case("egress allowed by a rule, ingress not isolated: allowed by policy",
         [netpol("e", podSelector=labels(app="web"), egress=[{"to": [{"podSelector": labels(app="db")}]}])],
         WEB, DB, ALLOWED_BY_POLICY),
    Case("ingress allowed by a rule, egress not isolated: allowed by policy",
         [netpol("i", podSelector=labels(app="db"), ingress=[{"from": [{"podSelector": {}}]}])],
         WEB, DB, ALLOWED_BY_POLICY),
    Case("egress allowed but ingress denied: denied on ingress",
         [netpol("e", podSelector=labels(app="web"), egress=[{}]),
          netpol("i", podSelector=labels(app="db"), ingress=[])],
         WEB, DB, DENIED_INGRESS),
    Case("egress is always true when the source is not a pod",
         [netpol("i", podSelector=labels(app="db"), ingress=[{}])], EXT, DB, ALLOWED_BY_POLICY),
    Case("ingress is always true when the destination is not a pod",
         [netpol("e", podSelector=labels(app="web"), egress=[{}])], WEB, EXT, ALLOWED_BY_POLICY),
    Case("a denied egress to an external address is denied on egress",
         [DENY_EGRESS], WEB, EXT, DENIED_EGRESS),
    Case("ingress from an external address to a denying pod is denied on ingress",
         [DENY_INGRESS], EXT, WEB, DENIED_INGRESS),
]
# fmt: on


@run_cases(DIRECTIONS)
def test_a_flow_needs_egress_and_ingress(evaluator_factory: EvaluatorFactory, case: Case) -> None:
    check(evaluator_factory, case)


# --- SEMANTICS "Isolation" -------------------------------------------------------------

# fmt: off
ISOLATION = [
    Case("a policy in another namespace does not isolate",
         [netpol("deny", namespace="dev", policyTypes=["Ingress"])], EXT, WEB, NOT_ISOLATED),
    Case("podSelector {} selects every pod of the namespace",
         [netpol("deny", podSelector={}, policyTypes=["Ingress"])], EXT, DB, DENIED_INGRESS),
    Case("a podSelector that does not select the pod does not isolate it",
         [netpol("deny", podSelector=labels(app="db"), policyTypes=["Ingress"])], EXT, WEB, NOT_ISOLATED),
    Case("policyTypes [Ingress] isolates ingress only",
         [netpol("deny", policyTypes=["Ingress"])], WEB, EXT, NOT_ISOLATED),
    Case("policyTypes [Egress] isolates egress only",
         [netpol("deny", policyTypes=["Egress"])], EXT, WEB, NOT_ISOLATED),
    Case("policyTypes [Egress] isolates egress",
         [netpol("deny", policyTypes=["Egress"])], WEB, EXT, DENIED_EGRESS),
    Case("policyTypes [Ingress] ignores the egress rules it holds",
         [netpol("p", policyTypes=["Ingress"], ingress=[{}], egress=[{"to": [block("1.2.3.4/32")]}])],
         WEB, EXT, NOT_ISOLATED),
    Case("without policyTypes a policy isolates ingress", [netpol("p")], EXT, WEB, DENIED_INGRESS),
    Case("without policyTypes, `egress: []` does NOT isolate egress",
         [netpol("p", egress=[])], WEB, EXT, NOT_ISOLATED),
    Case("without policyTypes, one egress rule isolates egress",
         [netpol("p", egress=[{"to": [block("1.2.3.4/32")]}])], WEB, EXT, DENIED_EGRESS),
    Case("an empty policyTypes list is defaulted like an absent one",
         [netpol("p", policyTypes=[], egress=[{"to": [block("1.2.3.4/32")]}])], WEB, EXT, DENIED_EGRESS),
    Case("an empty policyTypes list still isolates ingress",
         [netpol("p", policyTypes=[], egress=[{}])], EXT, WEB, DENIED_INGRESS),
    Case("policies are additive: a deny-all and an allow together allow",
         [DENY_INGRESS, netpol("allow", ingress=[{"ports": [port(80)]}])], EXT, WEB, ALLOWED_BY_POLICY),
    Case("no policy can deny what another allows, whatever their names",
         [netpol("a-allow", ingress=[{}]), netpol("z-deny", ingress=[])], EXT, WEB, ALLOWED_BY_POLICY),
    Case("an allow for another pod does not widen the isolated pod's allow",
         [DENY_INGRESS, netpol("allow-db", podSelector=labels(app="db"), ingress=[{}])],
         EXT, WEB, DENIED_INGRESS),
    Case("`ingress: []` with Ingress allows nothing",
         [netpol("p", policyTypes=["Ingress"], ingress=[])], DB, WEB, DENIED_INGRESS),
    Case("absent `ingress` with Ingress allows nothing",
         [netpol("p", policyTypes=["Ingress"])], DB, WEB, DENIED_INGRESS),
    Case("`ingress: [{}]` allows everything", [netpol("p", ingress=[{}])], EXT, WEB, ALLOWED_BY_POLICY),
    Case("`egress: []` with Egress allows nothing",
         [netpol("p", policyTypes=["Egress"], egress=[])], WEB, DB, DENIED_EGRESS),
    Case("`egress: [{}]` allows everything", [netpol("p", egress=[{}])], WEB, EXT, ALLOWED_BY_POLICY),
    Case("`egress: [{}]` allows non-TCP protocols too",
         [netpol("p", egress=[{}])], WEB, EXT, ALLOWED_BY_POLICY, protocol="ICMP"),
]
# fmt: on


@run_cases(ISOLATION)
def test_isolation(evaluator_factory: EvaluatorFactory, case: Case) -> None:
    check(evaluator_factory, case)


# --- SEMANTICS "A rule matches a flow" --------------------------------------------------

ALLOW_WEB_FROM_APP_DB = {"from": [{"podSelector": labels(app="db")}]}

# fmt: off
RULES = [
    Case("absent `from` matches a pod",
         [netpol("p", ingress=[{"ports": [port(80)]}])], DB, WEB, ALLOWED_BY_POLICY),
    Case("absent `from` matches a node",
         [netpol("p", ingress=[{"ports": [port(80)]}])], N2, WEB, ALLOWED_BY_POLICY),
    Case("absent `from` matches an external address",
         [netpol("p", ingress=[{"ports": [port(80)]}])], EXT, WEB, ALLOWED_BY_POLICY),
    Case("empty `from` matches any peer",
         [netpol("p", ingress=[{"from": [], "ports": [port(80)]}])], EXT, WEB, ALLOWED_BY_POLICY),
    Case("empty `to` matches any peer",
         [netpol("p", egress=[{"to": [], "ports": [port(80)]}])], WEB, EXT, ALLOWED_BY_POLICY),
    Case("absent `ports` matches any TCP port",
         [netpol("p", ingress=[ALLOW_WEB_FROM_APP_DB])], DB, WEB, ALLOWED_BY_POLICY, port=12345),
    Case("absent `ports` matches any protocol",
         [netpol("p", ingress=[ALLOW_WEB_FROM_APP_DB])], DB, WEB, ALLOWED_BY_POLICY, protocol="UDP", port=53),
    Case("empty `ports` matches any port",
         [netpol("p", ingress=[{**ALLOW_WEB_FROM_APP_DB, "ports": []}])],
         DB, WEB, ALLOWED_BY_POLICY, protocol="SCTP", port=1),
    Case("(choice) a port-less rule matches ICMP",
         [netpol("p", ingress=[ALLOW_WEB_FROM_APP_DB])], DB, WEB, ALLOWED_BY_POLICY, protocol="ICMP"),
    Case("(choice) a port-less rule matches an IANA protocol number",
         [netpol("p", ingress=[ALLOW_WEB_FROM_APP_DB])], DB, WEB, ALLOWED_BY_POLICY, protocol="47"),
    Case("(choice) a rule with ports never matches ICMP",
         [netpol("p", ingress=[{"ports": [port()]}])], DB, WEB, DENIED_INGRESS, protocol="ICMP"),
    Case("(choice) a rule with ports of every protocol still never matches ICMPv6",
         [netpol("p", ingress=[{"ports": [port(protocol=p) for p in ("TCP", "UDP", "SCTP")]}])],
         EXT6, WEB6, DENIED_INGRESS, protocol="ICMPv6"),
    Case("a rule needs its peer to match, not just its port",
         [netpol("p", ingress=[{**ALLOW_WEB_FROM_APP_DB, "ports": [port(80)]}])], API, WEB, DENIED_INGRESS),
    Case("a rule needs its port to match, not just its peer",
         [netpol("p", ingress=[{**ALLOW_WEB_FROM_APP_DB, "ports": [port(80)]}])],
         DB, WEB, DENIED_INGRESS, port=81),
    Case("peers are ORed: the second peer matches",
         [netpol("p", ingress=[{"from": [{"podSelector": labels(app=a)} for a in ("db", "api")]}])],
         API, WEB, ALLOWED_BY_POLICY),
    Case("ports are ORed: the second port matches",
         [netpol("p", ingress=[{"ports": [port(80), port(443)]}])], EXT, WEB, ALLOWED_BY_POLICY, port=443),
    Case("rules are ORed: the second rule matches",
         [netpol("p", ingress=[{"ports": [port(80)]}, {"ports": [port(443)]}])],
         EXT, WEB, ALLOWED_BY_POLICY, port=443),
]
# fmt: on


@run_cases(RULES)
def test_a_rule_matches_a_flow(evaluator_factory: EvaluatorFactory, case: Case) -> None:
    check(evaluator_factory, case)


# --- SEMANTICS "Peers" ----------------------------------------------------------------


def ingress_from(*peers: dict[str, Any], policy_ns: str = "prod", select: str = "web") -> dict[str, Any]:
    return netpol("p", namespace=policy_ns, podSelector=labels(app=select), ingress=[{"from": list(peers)}])


def egress_to(*peers: dict[str, Any]) -> dict[str, Any]:
    return netpol("p", podSelector=labels(app="web"), egress=[{"to": list(peers)}])


# fmt: off
PEERS = [
    Case("podSelector alone matches a pod of the policy's namespace",
         [ingress_from({"podSelector": labels(app="db")})], DB, WEB, ALLOWED_BY_POLICY),
    Case("podSelector alone never matches a pod of another namespace",
         [ingress_from({"podSelector": labels(app="web")}, policy_ns="dev")], WEB, DEV_WEB, DENIED_INGRESS),
    Case("podSelector {} matches every pod of the policy's namespace",
         [ingress_from({"podSelector": {}})], API, WEB, ALLOWED_BY_POLICY),
    Case("podSelector {} matches no pod of another namespace",
         [ingress_from({"podSelector": {}})], DEV_WEB, WEB, DENIED_INGRESS),
    Case("podSelector {} does not match a node",
         [ingress_from({"podSelector": {}})], N2, WEB, DENIED_INGRESS),
    Case("namespaceSelector alone matches every pod of a matching namespace",
         [ingress_from({"namespaceSelector": labels(env="dev")})], DEV_WEB, WEB, ALLOWED_BY_POLICY),
    Case("namespaceSelector alone does not match pods of other namespaces",
         [ingress_from({"namespaceSelector": labels(env="dev")})], DB, WEB, DENIED_INGRESS),
    Case("namespaceSelector {} matches pods of every namespace",
         [ingress_from({"namespaceSelector": {}})], TOOL, WEB, ALLOWED_BY_POLICY),
    Case("namespaceSelector {} does not match an external address",
         [ingress_from({"namespaceSelector": {}})], EXT, WEB, DENIED_INGRESS),
    Case("namespaceSelector {} does not match a node",
         [ingress_from({"namespaceSelector": {}})], N2, WEB, DENIED_INGRESS),
    Case("namespaceSelector {} does not match a hostNetwork pod",
         [ingress_from({"namespaceSelector": {}})], N3, WEB, DENIED_INGRESS),
    Case("podSelector {} does not match a hostNetwork pod of the namespace",
         [ingress_from({"podSelector": {}})], N3, WEB, DENIED_INGRESS),
    Case("both selectors in one element: the pod must match in a matching namespace",
         [ingress_from({"namespaceSelector": labels(env="dev"), "podSelector": labels(app="web")})],
         DEV_WEB, WEB, ALLOWED_BY_POLICY),
    Case("both selectors in one element: a matching pod in another namespace is refused",
         [ingress_from({"namespaceSelector": labels(env="dev"), "podSelector": labels(app="db")})],
         DB, WEB, DENIED_INGRESS),
    Case("both selectors in one element: a non-matching pod of the namespace is refused",
         [ingress_from({"namespaceSelector": labels(env="prod"), "podSelector": labels(app="db")})],
         API, WEB, DENIED_INGRESS),
    Case("two separate elements are an OR: the namespace alone suffices",
         [ingress_from({"namespaceSelector": labels(env="prod")}, {"podSelector": labels(app="db")})],
         API, WEB, ALLOWED_BY_POLICY),
    Case("the combined podSelector applies outside the policy's namespace",
         [ingress_from({"namespaceSelector": labels(env="dev"), "podSelector": labels(app="web")},
                       policy_ns="lab", select="tool")],
         DEV_WEB, TOOL, ALLOWED_BY_POLICY),
    Case("ipBlock matches an external address",
         [ingress_from(block("8.8.0.0/16"))], EXT, WEB, ALLOWED_BY_POLICY),
    Case("ipBlock matches a pod's address too",
         [ingress_from(block("10.0.0.2/32"))], DB, WEB, ALLOWED_BY_POLICY),
    Case("ipBlock matches a node's address",
         [ingress_from(block("192.168.0.0/24"))], N2, WEB, ALLOWED_BY_POLICY),
    Case("ipBlock matches a hostNetwork pod's address",
         [ingress_from(block("192.168.0.3/32"))], N3, WEB, ALLOWED_BY_POLICY),
    Case("ipBlock on egress matches the destination pod's address",
         [egress_to(block("10.0.1.0/24"))], WEB, DEV_WEB, ALLOWED_BY_POLICY),
    Case("ipBlock does not match outside its cidr",
         [ingress_from(block("10.0.1.0/24"))], DB, WEB, DENIED_INGRESS),
    Case("an address in an except is refused",
         [ingress_from(block("10.0.0.0/16", "10.0.0.2/32"))], DB, WEB, DENIED_INGRESS),
    Case("an address in the cidr beside the except is allowed",
         [ingress_from(block("10.0.0.0/16", "10.0.0.2/32"))], API, WEB, ALLOWED_BY_POLICY),
    Case("every except entry is subtracted",
         [ingress_from(block("10.0.0.0/16", "10.0.1.0/24", "10.0.0.3/32"))], API, WEB, DENIED_INGRESS),
    Case("a cidr with host bits set means its network",
         [ingress_from(block("10.0.0.77/24"))], DB, WEB, ALLOWED_BY_POLICY),
    Case("an except with host bits set means its network",
         [ingress_from(block("10.0.0.0/16", "10.0.0.3/24"))], DB, WEB, DENIED_INGRESS),
    Case("ipBlock works for IPv6", [ingress_from(block("2001:db8::/32"))], EXT6, WEB6, ALLOWED_BY_POLICY),
    Case("an IPv6 except is subtracted",
         [ingress_from(block("2001:db8::/32", "2001:db8::/64"))], EXT6, WEB6, DENIED_INGRESS),
    Case("an IPv4 block never matches an IPv6 address",
         [ingress_from(block("0.0.0.0/0"))], EXT6, WEB6, DENIED_INGRESS),
    Case("an IPv6 block never matches an IPv4 address",
         [ingress_from(block("::/0"))], EXT, WEB, DENIED_INGRESS),
    Case("a pod's other address does not matter: the flow's address is matched",
         [ingress_from(block("fd00::/64"), select="db")], WEB, DB, DENIED_INGRESS),
]
# fmt: on


@run_cases(PEERS)
def test_peers(evaluator_factory: EvaluatorFactory, case: Case) -> None:
    check(evaluator_factory, case)


# --- SEMANTICS "Selectors" ------------------------------------------------------------

# prod/db has app=db tier=data; prod/api has app=api tier=back; prod/front has app=front only.
SELECTORS = [
    ("matchLabels: every pair equal", {"matchLabels": {"app": "db", "tier": "data"}}, DB, True),
    ("matchLabels: one pair different refuses", {"matchLabels": {"app": "db", "tier": "back"}}, DB, False),
    ("matchLabels: a missing key refuses", {"matchLabels": {"tier": "data"}}, FRONT, False),
    ("In: key present with a listed value", expr("tier", "In", "data", "back"), API, True),
    ("In: key present with another value refuses", expr("tier", "In", "data"), API, False),
    ("In: key absent refuses", expr("tier", "In", "data"), FRONT, False),
    ("NotIn: key absent matches", expr("tier", "NotIn", "data"), FRONT, True),
    ("NotIn: value not listed matches", expr("tier", "NotIn", "data"), API, True),
    ("NotIn: value listed refuses", expr("tier", "NotIn", "data"), DB, False),
    ("Exists: key present matches", expr("tier", "Exists"), DB, True),
    ("Exists: key absent refuses", expr("tier", "Exists"), FRONT, False),
    ("DoesNotExist: key absent matches", expr("tier", "DoesNotExist"), FRONT, True),
    ("DoesNotExist: key present refuses", expr("tier", "DoesNotExist"), DB, False),
    ("an empty selector matches everything", {}, API, True),
    (
        "matchLabels AND matchExpressions: both hold",
        {"matchLabels": {"app": "db"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
        DB,
        True,
    ),
    (
        "matchLabels AND matchExpressions: one fails",
        {
            "matchLabels": {"app": "api"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["data"]}],
        },
        API,
        False,
    ),
    (
        "every expression must hold",
        {
            "matchExpressions": [
                {"key": "tier", "operator": "Exists"},
                {"key": "app", "operator": "NotIn", "values": ["db"]},
            ]
        },
        DB,
        False,
    ),
]


@pytest.mark.parametrize(
    ("selector", "src", "matches"), [s[1:] for s in SELECTORS], ids=[s[0] for s in SELECTORS]
)
def test_selectors(
    evaluator_factory: EvaluatorFactory, selector: dict[str, Any], src: str, matches: bool
) -> None:
    d = decide(
        evaluator_factory,
        world(netpol("p", podSelector=labels(app="web"), ingress=[{"from": [{"podSelector": selector}]}])),
        src,
        WEB,
    )
    assert d.allowed is matches


@pytest.mark.parametrize(
    ("selector", "src", "matches"),
    [
        (expr("env", "NotIn", "prod"), TOOL, True),
        (expr("env", "NotIn", "prod"), DB, False),
        (expr("env", "In", "prod", "dev"), DEV_WEB, True),
        (expr("team", "DoesNotExist"), DEV_WEB, True),
        (expr("team", "Exists"), DEV_WEB, False),
    ],
    ids=[
        "namespace NotIn: an undeclared namespace lacks the key, so it matches",
        "namespace NotIn: a listed value refuses",
        "namespace In: a listed value matches",
        "namespace DoesNotExist: key absent matches",
        "namespace Exists: key absent refuses",
    ],
)
def test_namespace_selectors(
    evaluator_factory: EvaluatorFactory, selector: dict[str, Any], src: str, matches: bool
) -> None:
    d = decide(
        evaluator_factory, world(netpol("p", ingress=[{"from": [{"namespaceSelector": selector}]}])), src, WEB
    )
    assert d.allowed is matches


def test_policy_pod_selector_uses_every_operator(evaluator_factory: EvaluatorFactory) -> None:
    """The policy's own ``spec.podSelector`` follows the same selector rules."""
    policy = netpol("p", podSelector=expr("tier", "NotIn", "data"), policyTypes=["Ingress"])
    objs = world(policy)
    assert not decide(evaluator_factory, objs, EXT, WEB).allowed  # no tier: selected
    assert not decide(evaluator_factory, objs, EXT, API).allowed  # tier=back: selected
    assert decide(evaluator_factory, objs, EXT, DB).allowed  # tier=data: not selected


# --- SEMANTICS "Ports" ----------------------------------------------------------------


def ingress_ports(*ports: dict[str, Any], select: str = "web") -> dict[str, Any]:
    return netpol("p", podSelector=labels(app=select), ingress=[{"ports": list(ports)}])


def egress_ports(*ports: dict[str, Any]) -> dict[str, Any]:
    return netpol("p", podSelector=labels(app="web"), egress=[{"ports": list(ports)}])


# fmt: off
PORTS = [
    Case("protocol defaults to TCP", [ingress_ports(port(80))], EXT, WEB, ALLOWED_BY_POLICY),
    Case("a default-TCP port refuses UDP",
         [ingress_ports(port(53))], EXT, WEB, DENIED_INGRESS, protocol="UDP", port=53),
    Case("a UDP rule never matches TCP", [ingress_ports(port(53, "UDP"))], EXT, WEB, DENIED_INGRESS, port=53),
    Case("a UDP rule matches UDP",
         [ingress_ports(port(53, "UDP"))], EXT, WEB, ALLOWED_BY_POLICY, protocol="UDP", port=53),
    Case("an SCTP rule matches SCTP",
         [ingress_ports(port(7000, "SCTP"))], EXT, WEB, ALLOWED_BY_POLICY, protocol="SCTP", port=7000),
    Case("an SCTP rule never matches TCP",
         [ingress_ports(port(7000, "SCTP"))], EXT, WEB, DENIED_INGRESS, port=7000),
    Case("port absent with a protocol: every port of that protocol",
         [ingress_ports(port(protocol="UDP"))], EXT, WEB, ALLOWED_BY_POLICY, protocol="UDP", port=65535),
    Case("port absent with a protocol: other protocols refused",
         [ingress_ports(port(protocol="UDP"))], EXT, WEB, DENIED_INGRESS, port=80),
    Case("port absent, protocol absent: every TCP port",
         [ingress_ports({})], EXT, WEB, ALLOWED_BY_POLICY, port=1),
    Case("a numeric port matches itself",
         [ingress_ports(port(8443))], EXT, WEB, ALLOWED_BY_POLICY, port=8443),
    Case("a numeric port refuses its neighbour",
         [ingress_ports(port(8443))], EXT, WEB, DENIED_INGRESS, port=8444),
    Case("a range includes its first port",
         [ingress_ports(port(8000, end=8100))], EXT, WEB, ALLOWED_BY_POLICY, port=8000),
    Case("a range includes its last port",
         [ingress_ports(port(8000, end=8100))], EXT, WEB, ALLOWED_BY_POLICY, port=8100),
    Case("a range includes its middle",
         [ingress_ports(port(8000, end=8100))], EXT, WEB, ALLOWED_BY_POLICY, port=8050),
    Case("a range ends at endPort",
         [ingress_ports(port(8000, end=8100))], EXT, WEB, DENIED_INGRESS, port=8101),
    Case("a range starts at port",
         [ingress_ports(port(8000, end=8100))], EXT, WEB, DENIED_INGRESS, port=7999),
    Case("a range of one port (endPort = port)",
         [ingress_ports(port(80, end=80))], EXT, WEB, ALLOWED_BY_POLICY, port=80),
    Case("a range keeps its protocol",
         [ingress_ports(port(50, "UDP", end=60))], EXT, WEB, DENIED_INGRESS, protocol="TCP", port=53),
    Case("a named port on ingress resolves against the selected pod",
         [ingress_ports(port("http"))], EXT, WEB, ALLOWED_BY_POLICY, port=80),
    Case("a named port on ingress refuses another port number",
         [ingress_ports(port("http"))], EXT, WEB, DENIED_INGRESS, port=8080),
    Case("a named port resolves per destination pod (api's http is 8080)",
         [ingress_ports(port("http"), select="api")], EXT, API, ALLOWED_BY_POLICY, port=8080),
    Case("a named port must match the protocol as well as the name",
         [ingress_ports(port("dns"))], EXT, WEB, DENIED_INGRESS, protocol="TCP", port=53),
    Case("a named UDP port matches UDP to that container port",
         [ingress_ports(port("dns", "UDP"))], EXT, WEB, ALLOWED_BY_POLICY, protocol="UDP", port=53),
    Case("a named port the pod does not have never matches",
         [ingress_ports(port("postgres"))], EXT, WEB, DENIED_INGRESS, port=5432),
    Case("a named port on egress resolves against the peer (destination) pod",
         [egress_ports(port("postgres"))], WEB, DB, ALLOWED_BY_POLICY, port=5432),
    Case("a named port on egress is not resolved against the source pod",
         [egress_ports(port("metrics"))], WEB, DB, DENIED_EGRESS, port=9090),
    Case("a named port never matches an external destination",
         [egress_ports(port("http"))], WEB, EXT, DENIED_EGRESS, port=80),
    Case("a named port never matches a node destination",
         [egress_ports(port("http"))], WEB, N2, DENIED_EGRESS, port=80),
    Case("a named port never matches a hostNetwork pod's address",
         [egress_ports(port("http"))], WEB, N3, DENIED_EGRESS, port=80),
    Case("a named port beside a numeric one: either may match",
         [egress_ports(port("postgres"), port(443))], WEB, EXT, ALLOWED_BY_POLICY, port=443),
]
# fmt: on


@run_cases(PORTS)
def test_ports(evaluator_factory: EvaluatorFactory, case: Case) -> None:
    check(evaluator_factory, case)


def test_named_port_found_in_any_container(evaluator_factory: EvaluatorFactory) -> None:
    """A name declared by a second container (even declared twice) resolves on that container's port."""
    doc = pod("prod", "multi", ["10.0.0.9"], labels={"app": "multi"}, ports=[("web", 80, "TCP")])
    doc["spec"]["containers"].append({"name": "side", "ports": [{"name": "web", "containerPort": 8080}]})
    objs = world(doc, ingress_ports(port("web"), select="multi"))
    assert decide(evaluator_factory, objs, EXT, "10.0.0.9", port=80).allowed
    assert decide(evaluator_factory, objs, EXT, "10.0.0.9", port=8080).allowed
    assert not decide(evaluator_factory, objs, EXT, "10.0.0.9", port=81).allowed


# --- SEMANTICS "Exemptions" / docs section 2 ----------------------------------------

EVERYTHING_DENIED = [netpol("deny", policyTypes=["Ingress", "Egress"])]

# fmt: off
EXEMPTIONS = [
    Case("a pod can always reach itself", EVERYTHING_DENIED, WEB, WEB, LOOPBACK),
    Case("a pod reaches itself across its IPv4 and IPv6 addresses", EVERYTHING_DENIED, WEB6, WEB, LOOPBACK),
    Case("loopback covers every protocol", EVERYTHING_DENIED, WEB, WEB, LOOPBACK, protocol="ICMP"),
    Case("a pod reaches its node's InternalIP", EVERYTHING_DENIED, WEB, N1, NODE_TRAFFIC),
    Case("a pod reaches its node's ExternalIP", EVERYTHING_DENIED, WEB, N1_EXT, NODE_TRAFFIC),
    Case("its node reaches the pod", EVERYTHING_DENIED, N1, DB, NODE_TRAFFIC),
    Case("another node is not exempt", EVERYTHING_DENIED, WEB, N2, DENIED_EGRESS),
    Case("another node reaching the pod is not exempt", EVERYTHING_DENIED, N2, WEB, DENIED_INGRESS),
    Case("(choice) a pod reaches a hostNetwork pod on its own node: node traffic",
         [*EVERYTHING_DENIED, pod("prod", "n1-agent", [N1], node="n1", host_network=True)],
         WEB, N1, NODE_TRAFFIC),
    Case("(choice) a hostNetwork pod's node (no Node object) reaching a pod on it: node traffic",
         [*EVERYTHING_DENIED, pod("prod", "on-n4", ["10.0.0.9"], node="n4")], N4, "10.0.0.9", NODE_TRAFFIC),
    Case("(choice) a hostNetwork pod talking to an external address: host network",
         EVERYTHING_DENIED, N3, EXT, HOST_NETWORK),
    Case("(choice) an external address reaching a hostNetwork pod: its policies are not enforced",
         [netpol("deny-agent", podSelector=labels(app="agent"), policyTypes=["Ingress", "Egress"])],
         EXT, N3, HOST_NETWORK),
    Case("(choice) two hostNetwork pods' nodes: host network", EVERYTHING_DENIED, N3, N4, HOST_NETWORK),
    Case("(choice) a hostNetwork pod reaching an ordinary pod is judged as its node (ingress)",
         EVERYTHING_DENIED, N3, WEB, DENIED_INGRESS),
    Case("(choice) an ordinary pod reaching a hostNetwork pod is judged on its egress only",
         [netpol("out", podSelector=labels(app="web"), egress=[{"to": [block("192.168.0.3/32")]}])],
         WEB, N3, ALLOWED_BY_POLICY),
    Case("(choice) neither end a pod: no pod involved", EVERYTHING_DENIED, EXT, EXT6, NO_POD),
    Case("(choice) node to node: no pod involved", EVERYTHING_DENIED, N1, N2, NO_POD),
    Case("(choice) external to node: no pod involved", EVERYTHING_DENIED, EXT, N1, NO_POD),
    Case("(choice) a node to itself: no pod involved", EVERYTHING_DENIED, N1, N1_EXT, NO_POD),
]
# fmt: on


@run_cases(EXEMPTIONS)
def test_exemptions(evaluator_factory: EvaluatorFactory, case: Case) -> None:
    check(evaluator_factory, case)


def test_a_pod_without_node_name_has_no_node_traffic(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(pod("prod", "floating", ["10.0.0.9"]), *EVERYTHING_DENIED)
    d = decide(evaluator_factory, objs, "10.0.0.9", N1)
    assert (d.verdict, d.reason) == (DENY, Reason.DENIED_EGRESS)


def test_a_hostnetwork_pod_without_node_name_takes_no_part(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(pod("prod", "nowhere", ["10.9.9.9"], host_network=True))
    d = decide(evaluator_factory, objs, "10.9.9.9", EXT)
    assert d.src == Endpoint(EndpointKind.EXTERNAL)
    assert (d.reason, d.notes) == (Reason.NO_POD, ())


def test_a_finished_hostnetwork_pod_takes_no_part(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(pod("prod", "done", ["10.9.9.9"], node="n9", host_network=True, phase="Succeeded"))
    d = decide(evaluator_factory, objs, "10.9.9.9", EXT)
    assert d.src == Endpoint(EndpointKind.EXTERNAL)


# --- host network notes and endpoints -----------------------------------------------


def test_host_network_note_names_pod_and_node(evaluator_factory: EvaluatorFactory) -> None:
    d = decide(evaluator_factory, world(), N3, EXT)
    assert d.src == Endpoint(EndpointKind.NODE, "n3", None, host_network_pods=("prod/agent",))
    assert d.notes == ("host-network: prod/agent uses node n3's network; its policies are not enforced",)


def test_host_network_pods_on_one_address_are_listed_sorted(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(
        pod("kube-system", "proxy", [N3], node="n3", host_network=True),
        pod("a-b", "x", [N3], node="n3", host_network=True),
    )
    d = decide(evaluator_factory, objs, EXT, N3)
    assert d.dst.host_network_pods == ("a-b/x", "kube-system/proxy", "prod/agent")
    assert d.notes == tuple(
        f"host-network: {p} uses node n3's network; its policies are not enforced"
        for p in ("a-b/x", "kube-system/proxy", "prod/agent")
    )


def test_host_network_notes_follow_source_then_destination(evaluator_factory: EvaluatorFactory) -> None:
    d = decide(evaluator_factory, world(), N4, N3)
    assert d.notes == (
        "host-network: prod/probe uses node n4's network; its policies are not enforced",
        "host-network: prod/agent uses node n3's network; its policies are not enforced",
    )


def test_host_network_note_given_once_for_one_address_at_both_ends(
    evaluator_factory: EvaluatorFactory,
) -> None:
    d = decide(evaluator_factory, world(), N3, N3)
    assert d.reason is Reason.HOST_NETWORK
    assert d.notes == ("host-network: prod/agent uses node n3's network; its policies are not enforced",)


def test_host_network_note_on_an_evaluated_flow(evaluator_factory: EvaluatorFactory) -> None:
    d = decide(evaluator_factory, world(), WEB, N3)
    assert d.reason is Reason.NOT_ISOLATED
    assert d.notes == ("host-network: prod/agent uses node n3's network; its policies are not enforced",)


def test_node_object_names_a_shared_address(evaluator_factory: EvaluatorFactory) -> None:
    """A hostNetwork pod on an address a Node lists: the Node names the endpoint and the note."""
    objs = world(pod("prod", "misfiled", [N2], node="elsewhere", host_network=True))
    d = decide(evaluator_factory, objs, N2, EXT)
    assert d.src == Endpoint(EndpointKind.NODE, "n2", None, host_network_pods=("prod/misfiled",))
    assert d.notes == ("host-network: prod/misfiled uses node n2's network; its policies are not enforced",)


def test_least_node_name_wins_a_shared_address(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(
        node("zz", "10.9.9.9"),
        node("aa", "10.9.9.9"),
        pod("x", "h", ["10.9.9.8"], node="q", host_network=True),
        pod("x", "g", ["10.9.9.8"], node="p", host_network=True),
    )
    assert decide(evaluator_factory, objs, "10.9.9.9", EXT).src.name == "aa"
    assert decide(evaluator_factory, objs, "10.9.9.8", EXT).src.name == "p"


def test_an_ordinary_pod_on_a_node_address_is_the_pod(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(pod("prod", "squatter", [N2], node="n1"))
    d = decide(evaluator_factory, objs, N2, EXT)
    assert d.src == Endpoint(EndpointKind.POD, "prod/squatter", "prod")
    assert d.notes == ()


# --- (choice) IP conflicts -----------------------------------------------------------

T1, T2, T3 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"
SHARED = "10.0.0.50"


@pytest.mark.parametrize(
    ("claimants", "winner", "order"),
    [
        ([("prod", "a", T1), ("prod", "b", T2)], "prod/b", "prod/a, prod/b"),
        ([("prod", "b", T2), ("prod", "a", T1)], "prod/b", "prod/a, prod/b"),
        ([("prod", "old", None), ("prod", "new", T1)], "prod/new", "prod/old, prod/new"),
        ([("prod", "a", T1), ("prod", "b", T1)], "prod/b", "prod/a, prod/b"),
        ([("prod", "z", None), ("dev", "z", None)], "prod/z", "dev/z, prod/z"),
        ([("a", "x", T1), ("a-b", "x", T1)], "a/x", "a-b/x, a/x"),
        ([("dev", "c", T3), ("prod", "a", T1), ("lab", "b", T2)], "dev/c", "prod/a, lab/b, dev/c"),
    ],
    ids=[
        "the most recently created pod wins",
        "the winner does not depend on the order objects arrive",
        "a missing creationTimestamp counts as oldest",
        "a tie goes to the greater namespace/name",
        "a tie across namespaces goes to the greater namespace/name",
        "names compare as the text ns/name ('-' sorts before '/')",
        "three claimants are listed oldest first, winner last",
    ],
)
def test_ip_conflict(
    evaluator_factory: EvaluatorFactory, claimants: list[tuple[str, str, str | None]], winner: str, order: str
) -> None:
    docs = [pod(n, p, [SHARED], labels={"app": "web"}, created=t) for n, p, t in claimants]
    d = decide(evaluator_factory, world(*docs), EXT, SHARED)
    assert d.dst.name == winner
    assert d.notes == (f"ip-conflict: {SHARED} claimed by {order}; {winner} (newest) wins",)


def test_ip_conflict_winner_policies_apply(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(
        pod("prod", "old", [SHARED], labels={"app": "web"}, created=T1),
        pod("dev", "new", [SHARED], labels={"app": "new"}, created=T2),
        netpol("deny-new", namespace="dev", podSelector=labels(app="new")),
    )
    d = decide(evaluator_factory, objs, EXT, SHARED)
    assert (d.verdict, d.reason) == (DENY, Reason.DENIED_INGRESS)


@pytest.mark.parametrize(
    "loser",
    [
        pod("prod", "done", [SHARED], phase="Succeeded", created=T3),
        pod("prod", "failed", [SHARED], phase="Failed", created=T3),
        pod("prod", "hostnet", [SHARED], node="n1", host_network=True, created=T3),
    ],
    ids=[
        "a Succeeded pod does not claim an address",
        "a Failed pod does not claim an address",
        "a hostNetwork pod does not claim an ordinary pod's address",
    ],
)
def test_pods_that_do_not_claim(evaluator_factory: EvaluatorFactory, loser: dict[str, Any]) -> None:
    objs = world(pod("prod", "live", [SHARED], created=T1), loser)
    d = decide(evaluator_factory, objs, EXT, SHARED)
    assert d.dst == Endpoint(EndpointKind.POD, "prod/live", "prod")
    assert d.notes == ()


def test_ip_conflict_notes_both_ends(evaluator_factory: EvaluatorFactory) -> None:
    other = "10.0.0.51"
    objs = world(
        pod("prod", "a", [SHARED], created=T1),
        pod("prod", "b", [SHARED], created=T2),
        pod("prod", "c", [other], created=T2),
        pod("prod", "d", [other], created=T1),
    )
    d = decide(evaluator_factory, objs, other, SHARED)
    assert d.notes == (
        f"ip-conflict: {other} claimed by prod/d, prod/c; prod/c (newest) wins",
        f"ip-conflict: {SHARED} claimed by prod/a, prod/b; prod/b (newest) wins",
    )


def test_ip_conflict_loser_is_loopback_to_nobody(evaluator_factory: EvaluatorFactory) -> None:
    """The losing pod's address belongs to the winner: a flow on it is the winner's loopback."""
    objs = world(pod("prod", "a", [SHARED], created=T1), pod("prod", "b", [SHARED], created=T2))
    d = decide(evaluator_factory, objs, SHARED, SHARED)
    assert d.reason is Reason.LOOPBACK
    assert d.notes == (f"ip-conflict: {SHARED} claimed by prod/a, prod/b; prod/b (newest) wins",)


# --- "What a decision reports" / docs section 5 --------------------------------------


def test_explain_lists_every_isolating_policy_and_every_allowing_rule(
    evaluator_factory: EvaluatorFactory,
) -> None:
    objs = world(
        netpol(
            "z-web", podSelector=labels(app="web"), ingress=[{"ports": [port(81)]}, {"ports": [port(80)]}]
        ),
        netpol("a-all", ingress=[{"from": [{"podSelector": labels(app="db")}]}, {}]),
        netpol("m-deny", podSelector=labels(app="web"), policyTypes=["Ingress", "Egress"]),
        netpol("egress-only", policyTypes=["Egress"], egress=[{}]),
        netpol("other", namespace="dev", ingress=[{}]),
    )
    d = decide(evaluator_factory, objs, DB, WEB, explain=True)
    assert d.explained
    assert d.ingress == DirectionTrace(
        "ingress",
        "prod/web",
        isolated=True,
        allowed=True,
        isolating=("prod/a-all", "prod/m-deny", "prod/z-web"),
        allowed_by=(RuleRef("prod/a-all", 0), RuleRef("prod/a-all", 1), RuleRef("prod/z-web", 1)),
    )
    assert d.egress == DirectionTrace(
        "egress",
        "prod/db",
        isolated=True,
        allowed=True,
        isolating=("prod/egress-only",),
        allowed_by=(RuleRef("prod/egress-only", 0),),
    )


def test_explain_a_denied_direction(evaluator_factory: EvaluatorFactory) -> None:
    d = decide(evaluator_factory, world(DENY_INGRESS), EXT, WEB, explain=True)
    assert d.egress is None  # the source is not a pod
    assert d.ingress == DirectionTrace(
        "ingress", "prod/web", isolated=True, allowed=False, isolating=("prod/deny-ingress",)
    )


def test_explain_a_direction_that_is_not_isolated(evaluator_factory: EvaluatorFactory) -> None:
    d = decide(evaluator_factory, world(DENY_INGRESS), WEB, DEV_WEB, explain=True)
    assert d.egress == DirectionTrace("egress", "prod/web", isolated=False, allowed=True)
    assert d.ingress == DirectionTrace("ingress", "dev/web", isolated=False, allowed=True)
    assert d.reason is Reason.NOT_ISOLATED


@pytest.mark.parametrize(
    ("src", "dst", "reason"),
    [
        (WEB, WEB, Reason.LOOPBACK),
        (WEB, N1, Reason.NODE_TRAFFIC),
        (N3, EXT, Reason.HOST_NETWORK),
        (EXT, N1, Reason.NO_POD),
    ],
    ids=["loopback", "node traffic", "host network", "no pod involved"],
)
def test_explain_an_exemption_evaluates_no_direction(
    evaluator_factory: EvaluatorFactory, src: str, dst: str, reason: Reason
) -> None:
    d = decide(evaluator_factory, world(*EVERYTHING_DENIED), src, dst, explain=True)
    assert (d.verdict, d.reason, d.explained, d.egress, d.ingress) == (ALLOW, reason, True, None, None)


def test_without_explain_no_trace_but_notes(evaluator_factory: EvaluatorFactory) -> None:
    d = decide(evaluator_factory, world(DENY_INGRESS), N3, WEB)
    assert (d.explained, d.egress, d.ingress) == (False, None, None)
    assert d.notes == ("host-network: prod/agent uses node n3's network; its policies are not enforced",)
    assert d.to_dict()["notes"] == list(d.notes)
    assert "explanation" not in d.to_dict()


def test_decision_reports_endpoints_and_generation(evaluator_factory: EvaluatorFactory) -> None:
    d = decide(evaluator_factory, world(), TOOL, N2)
    assert d.src == Endpoint(EndpointKind.POD, "lab/tool", "lab")
    assert d.dst == Endpoint(EndpointKind.NODE, "n2")
    assert isinstance(d.generation, int) and d.generation >= 0
    assert d.to_dict()["src"] == {"kind": "pod", "name": "lab/tool", "namespace": "lab"}


def test_the_reference_answers_at_generation_zero() -> None:
    from netpol_pdp.index.reference import ReferenceEvaluator

    assert ReferenceEvaluator(world()).decide(make_flow(WEB, DB, "TCP", 80)).generation == 0


def test_a_later_object_with_the_same_key_replaces_the_earlier(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(pod("prod", "web", ["10.0.0.99"], labels={"app": "web"}))
    assert decide(evaluator_factory, objs, EXT, WEB).dst == Endpoint(EndpointKind.EXTERNAL)
    assert decide(evaluator_factory, objs, EXT, "10.0.0.99").dst.name == "prod/web"


def test_host_network_note_given_once_for_two_addresses_of_one_node(
    evaluator_factory: EvaluatorFactory,
) -> None:
    objs = world(pod("prod", "two-ips", [N3, "192.168.1.3"], node="n3", host_network=True))
    d = decide(evaluator_factory, objs, "192.168.1.3", N3)
    assert d.notes == tuple(
        f"host-network: {p} uses node n3's network; its policies are not enforced"
        for p in ("prod/two-ips", "prod/agent")  # the source's, then the destination's not yet given
    )


@pytest.mark.parametrize(
    ("policy", "src", "dst", "verdict", "reason"),
    [
        (ingress_from(block("10.0.0.0/8")), "::ffff:10.0.0.2", WEB, ALLOW, ALLOWED_BY_POLICY),
        (ingress_from(block("10.0.0.0/8")), EXT6, WEB6, DENY, DENIED_INGRESS),
        (ingress_from(block("::ffff:0:0/96")), DB, WEB, DENY, DENIED_INGRESS),
        (ingress_from(block("::ffff:0:0/96")), "::ffff:10.0.0.2", WEB, DENY, DENIED_INGRESS),
    ],
    ids=[
        "an IPv4-mapped IPv6 address is its IPv4 address: an IPv4 block matches it",
        "an IPv4 block does not match an IPv6 address",
        "an IPv4-mapped IPv6 block does not match an IPv4 address",
        "an IPv4-mapped IPv6 block does not match a mapped address either (it is IPv4)",
    ],
)
def test_ipv4_mapped_addresses_are_ipv4(
    evaluator_factory: EvaluatorFactory,
    policy: dict[str, Any],
    src: str,
    dst: str,
    verdict: Verdict,
    reason: Reason,
) -> None:
    d = decide(evaluator_factory, world(policy), src, dst)
    assert (d.verdict, d.reason) == (verdict, reason)


def test_an_ipv4_mapped_address_is_the_ipv4_pod(evaluator_factory: EvaluatorFactory) -> None:
    """One rule with Envoy's Check (tests/test_envoy.py): a dual-stack socket reports IPv4 peers so."""
    d = decide(evaluator_factory, world(), EXT, "::ffff:10.0.0.1")
    assert d.dst.kind == EndpointKind.POD
    assert make_flow(EXT, "::ffff:10.0.0.1", "TCP", 80).dst_ip == WEB


def test_deleting_a_namespace_leaves_it_undeclared() -> None:
    """Index only (the reference has no updates): its pods stay, with only the name label."""
    if importlib.util.find_spec("netpol_pdp.index.engine") is None:
        pytest.skip("netpol_pdp.index.engine is not on this branch yet")
    from netpol_pdp.index.engine import Index
    from netpol_pdp.index.model import Delete, Kind

    policy = netpol("p", ingress=[{"from": [{"namespaceSelector": expr("env", "DoesNotExist")}]}])
    index = Index.from_objects(world(policy))
    flow = make_flow(DEV_WEB, WEB, "TCP", 80)
    assert not index.decide(flow).allowed  # dev has env=dev
    index.apply([Delete((Kind.NAMESPACE, "", "dev"))])
    index.check()
    d = index.decide(flow, explain=True)
    assert d.allowed and d.src == Endpoint(EndpointKind.POD, "dev/web", "dev")
