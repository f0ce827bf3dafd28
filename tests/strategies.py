"""Hypothesis strategies: random clusters, flows and event sequences for the differential tests.

Everything is drawn as a *manifest dict* (the shape the Kubernetes API returns)
and turned into model objects by ``parse_object``, so that validation runs on
every generated object: a valid manifest that validation rejects fails the test.

The pools are deliberately tiny (a handful of namespaces, label values, IPs and
ports) so that random worlds are dense with coincidences: selectors that match,
IP conflicts, ipBlocks that contain pod and node addresses, named ports that
resolve, hostNetwork pods sharing a node's address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from netpol_pdp.index.flows import Flow, make_flow
from netpol_pdp.index.model import (
    CLUSTER_POLICY_KINDS,
    Delete,
    Event,
    Node,
    Object,
    ObjectKey,
    Pod,
    Service,
    Upsert,
)
from netpol_pdp.index.validation import parse_object

Draw = Callable[[st.SearchStrategy[Any]], Any]
Manifest = dict[str, Any]

# --- pools ---------------------------------------------------------------------------------

NAMESPACES = ["default", "prod", "a", "a-b"]
POD_NAMES = ["web", "db", "api", "x", "job"]
NODE_NAMES = ["n1", "n2", "n3"]
POLICY_NAMES = ["deny", "allow", "p1", "p2"]
LABEL_KEYS = ["app", "tier", "example.com/role", "kubernetes.io/metadata.name"]
LABEL_VALUES = ["web", "db", "", "prod", "a"]
POD_IPS_V4 = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.1", "10.0.1.2"]
POD_IPS_V6 = ["fd00::1", "fd00::2", "fd00::1:1"]
NODE_IPS = ["192.168.0.1", "192.168.0.2", "fd00:ff::1"]
EXTERNAL_IPS = [
    "8.8.8.8",
    "10.0.0.4",
    "10.0.2.1",
    "2001:db8::1",
    "fd00::9",
    "0.0.0.0",
    "255.255.255.255",
    "::",
]
ALL_IPS = POD_IPS_V4 + POD_IPS_V6 + NODE_IPS + EXTERNAL_IPS
CIDRS = [
    "10.0.0.0/8",
    "10.0.0.0/24",
    "10.0.0.0/30",
    "10.0.0.2/31",
    "10.0.1.0/24",
    "10.0.0.1/32",
    "10.0.0.77/24",  # host bits set: means 10.0.0.0/24
    "192.168.0.0/16",
    "0.0.0.0/0",
    "fd00::/16",
    "fd00::/64",
    "fd00::1/128",
    "fd00::1:0/112",
    "::/0",
    "2001:db8::/32",
]
PORTS = [53, 80, 443, 5432, 8080, 9090]
PORT_NAMES = ["http", "dns", "metrics", "pg", "web-1"]
PROTOCOLS = ["TCP", "UDP", "SCTP"]
TIMESTAMPS = [None, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-02T00:00:00+00:00"]
PHASES = ["Running", "Running", "Running", "Pending", None, "Succeeded", "Failed", "Unknown"]

# --- selectors -----------------------------------------------------------------------------

label_maps = st.dictionaries(st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES), max_size=3)


@st.composite
def match_expressions(draw: Draw) -> Manifest:
    key = draw(st.sampled_from(LABEL_KEYS))
    operator = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    expr: Manifest = {"key": key, "operator": operator}
    if operator in ("In", "NotIn"):
        expr["values"] = draw(st.lists(st.sampled_from(LABEL_VALUES), min_size=1, max_size=3))
    elif draw(st.booleans()) and draw(st.booleans()):
        expr["values"] = []  # allowed: "values must be empty" for Exists/DoesNotExist
    return expr


@st.composite
def selectors(draw: Draw) -> Manifest:
    """A label selector: often ``{}``, else matchLabels and/or matchExpressions (present or empty)."""
    shape = draw(st.sampled_from(["empty", "labels", "exprs", "both", "empty-fields"]))
    if shape == "empty":
        return {}
    if shape == "empty-fields":
        return {"matchLabels": {}, "matchExpressions": []}
    sel: Manifest = {}
    if shape in ("labels", "both"):
        sel["matchLabels"] = draw(label_maps.filter(bool))
    if shape in ("exprs", "both"):
        sel["matchExpressions"] = draw(st.lists(match_expressions(), min_size=1, max_size=2))
    return sel


def namespace_selectors() -> st.SearchStrategy[Manifest]:
    """Any selector, or the common "this namespace by name" (declared or not)."""
    by_name = st.sampled_from(NAMESPACES).map(lambda ns: {"matchLabels": {"kubernetes.io/metadata.name": ns}})
    return st.one_of(selectors(), by_name)


# --- peers and ports -----------------------------------------------------------------------


@st.composite
def ip_blocks(draw: Draw) -> Manifest:
    """A cidr from the pool with 0-2 excepts strictly inside it (preferably around a known address)."""
    cidr_text = draw(st.sampled_from(CIDRS))
    cidr = ipaddress.ip_network(cidr_text, strict=False)
    block: Manifest = {"cidr": cidr_text}
    if cidr.prefixlen < cidr.max_prefixlen and draw(st.booleans()):
        inside = [ip for ip in ALL_IPS if ipaddress.ip_address(ip) in cidr]
        excepts = []
        for _ in range(draw(st.integers(1, 2))):
            if inside and draw(st.integers(0, 3)):
                base = ipaddress.ip_address(draw(st.sampled_from(inside)))
            else:
                base = cidr.network_address + draw(st.integers(0, cidr.num_addresses - 1))
            length = draw(st.integers(cidr.prefixlen + 1, cidr.max_prefixlen))
            net = ipaddress.ip_network(f"{base}/{length}", strict=False)
            # host bits in an except are allowed too: write the base address sometimes
            excepts.append(f"{base}/{length}" if draw(st.booleans()) else str(net))
        block["except"] = excepts
    return block


@st.composite
def peers(draw: Draw) -> Manifest:
    kind = draw(st.sampled_from(["pod", "ns", "both", "both", "ip", "ip"]))
    if kind == "ip":
        return {"ipBlock": draw(ip_blocks())}
    peer: Manifest = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = draw(selectors())
    if kind in ("ns", "both"):
        peer["namespaceSelector"] = draw(namespace_selectors())
    return peer


@st.composite
def policy_ports(draw: Draw) -> Manifest:
    entry: Manifest = {}
    protocol = draw(st.sampled_from([None, *PROTOCOLS]))
    if protocol is not None:
        entry["protocol"] = protocol
    kind = draw(st.sampled_from(["none", "number", "number", "range", "name", "name"]))
    if kind == "number":
        entry["port"] = draw(st.sampled_from(PORTS))
    elif kind == "range":
        start = draw(st.sampled_from(PORTS))
        entry["port"] = start
        entry["endPort"] = draw(st.sampled_from([start, start + 1, *[p for p in PORTS if p > start], 65535]))
    elif kind == "name":
        entry["port"] = draw(st.sampled_from(PORT_NAMES))
    return entry


def _absent_empty_or(strategy: st.SearchStrategy[list[Manifest]]) -> st.SearchStrategy[list[Manifest] | None]:
    """None (field absent), [] (present and empty) or a non-empty list."""
    return st.one_of(st.none(), st.just([]), strategy, strategy)


@st.composite
def rules(draw: Draw, peers_field: str) -> Manifest:
    rule: Manifest = {}
    peer_list = draw(_absent_empty_or(st.lists(peers(), min_size=1, max_size=3)))
    if peer_list is not None:
        rule[peers_field] = peer_list
    port_list = draw(_absent_empty_or(st.lists(policy_ports(), min_size=1, max_size=3)))
    if port_list is not None:
        rule["ports"] = port_list
    return rule


# --- objects -------------------------------------------------------------------------------


def _metadata(draw: Draw, name: str, namespace: str | None, labels: dict[str, str] | None) -> Manifest:
    """``metadata``; the ``default`` namespace is sometimes written, sometimes left to defaulting."""
    meta: Manifest = {"name": name}
    if namespace is not None and (namespace != "default" or draw(st.booleans())):
        meta["namespace"] = namespace
    if labels is not None:
        meta["labels"] = labels
    return meta


@st.composite
def namespace_manifests(draw: Draw, name: str | None = None) -> Manifest:
    name = name or draw(st.sampled_from(NAMESPACES))
    labels = draw(st.one_of(st.none(), label_maps))
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(draw, name, None, labels)}


@st.composite
def node_manifests(draw: Draw, name: str | None = None) -> Manifest:
    name = name or draw(st.sampled_from(NODE_NAMES))
    addresses = [{"type": "Hostname", "address": name}]
    for ip in draw(st.lists(st.sampled_from(NODE_IPS + POD_IPS_V4[:1]), max_size=2, unique=True)):
        addresses.append({"type": draw(st.sampled_from(["InternalIP", "ExternalIP"])), "address": ip})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"addresses": addresses},
    }


@st.composite
def container_ports(draw: Draw) -> Manifest:
    cp: Manifest = {"containerPort": draw(st.sampled_from(PORTS))}
    if draw(st.booleans()):
        cp["name"] = draw(st.sampled_from(PORT_NAMES))
    protocol = draw(st.sampled_from([None, None, *PROTOCOLS]))
    if protocol is not None:
        cp["protocol"] = protocol
    return cp


@st.composite
def pod_manifests(draw: Draw, namespace: str | None = None, name: str | None = None) -> Manifest:
    namespace = namespace or draw(st.sampled_from(NAMESPACES))
    name = name or draw(st.sampled_from(POD_NAMES))
    host_network = draw(st.integers(0, 5)) == 0
    meta = _metadata(draw, name, namespace, draw(st.one_of(st.none(), label_maps)))
    created = draw(st.sampled_from(TIMESTAMPS))
    if created is not None:
        meta["creationTimestamp"] = created
    containers = [
        {"name": f"c{i}", "ports": draw(st.lists(container_ports(), max_size=3))}
        for i in range(draw(st.integers(0, 2)))
    ]
    spec: Manifest = {"containers": containers}
    node = draw(st.sampled_from([None, *NODE_NAMES]))
    if node is not None:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    if host_network:
        ips = draw(st.lists(st.sampled_from(NODE_IPS + POD_IPS_V4[:1]), max_size=2, unique=True))
    else:
        family = draw(st.sampled_from(["v4", "v4", "dual", "dual", "v6", "none"]))
        v4 = [draw(st.sampled_from(POD_IPS_V4))] if family in ("v4", "dual") else []
        v6 = [draw(st.sampled_from(POD_IPS_V6))] if family in ("v6", "dual") else []
        ips = v4 + v6 if draw(st.booleans()) else v6 + v4
    status: Manifest = {}
    phase = draw(st.sampled_from(PHASES))
    if phase is not None:
        status["phase"] = phase
    style = draw(st.sampled_from(["podIPs", "podIP", "both"]))
    if ips and style in ("podIPs", "both"):
        status["podIPs"] = [{"ip": ip} for ip in ips]
    if ips and style in ("podIP", "both"):
        status["podIP"] = ips[0]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


@st.composite
def policy_manifests(draw: Draw, namespace: str | None = None, name: str | None = None) -> Manifest:
    namespace = namespace or draw(st.sampled_from(NAMESPACES))
    name = name or draw(st.sampled_from(POLICY_NAMES))
    spec: Manifest = {}
    if draw(st.integers(0, 9)):  # podSelector is required by the API, but a file may omit it
        spec["podSelector"] = draw(st.one_of(st.just({}), selectors()))  # {} half the time: isolation
    ingress = draw(_absent_empty_or(st.lists(rules("from"), min_size=1, max_size=3)))
    if ingress is not None:
        spec["ingress"] = ingress
    egress = draw(_absent_empty_or(st.lists(rules("to"), min_size=1, max_size=3)))
    if egress is not None:
        spec["egress"] = egress
    types = draw(
        st.sampled_from(
            [None, None, [], ["Ingress"], ["Egress"], ["Ingress", "Egress"], ["Egress", "Ingress"]]
        )
    )
    if types is not None:
        spec["policyTypes"] = types
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(draw, name, namespace, None),
        "spec": spec,
    }


# --- cluster-scoped policies (ClusterNetworkPolicy v1alpha2, ANP/BANP v1alpha1) ------------

CLUSTER_POLICY_NAMES = ["c1", "c2", "c3"]
PRIORITIES = [0, 5, 5, 10, 1000]  # ties on purpose: the order by name decides them
DOMAIN_NAMES = ["example.com", "*.example.com", "kubernetes.io"]
NODE_LABELS = st.dictionaries(
    st.sampled_from(["role", "zone"]), st.sampled_from(["infra", "a", "b"]), max_size=2
)


@st.composite
def labelled_node_manifests(draw: Draw, name: str | None = None) -> Manifest:
    doc = draw(node_manifests(name))
    doc["metadata"]["labels"] = draw(NODE_LABELS)
    return doc


@st.composite
def _namespaced_pods(draw: Draw) -> Manifest:
    body: Manifest = {"podSelector": draw(selectors())}
    if draw(st.booleans()):
        body["namespaceSelector"] = draw(namespace_selectors())
    return {"pods": body}


@st.composite
def _cluster_peer(draw: Draw, egress: bool, domains: bool) -> Manifest:
    kinds = ["namespaces", "pods", "pods"]
    if egress:
        kinds += ["networks", "networks", "nodes"] + (["domainNames"] if domains else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "namespaces":
        return {"namespaces": draw(st.one_of(st.just({}), namespace_selectors()))}
    if kind == "pods":
        return draw(_namespaced_pods())
    if kind == "nodes":
        return {"nodes": draw(selectors())}
    if kind == "networks":
        return {"networks": draw(st.lists(st.sampled_from(CIDRS), min_size=1, max_size=3, unique=True))}
    return {"domainNames": draw(st.lists(st.sampled_from(DOMAIN_NAMES), min_size=1, max_size=2, unique=True))}


@st.composite
def _cluster_port(draw: Draw, v1alpha2: bool, named_ok: bool) -> Manifest:
    kind = draw(st.sampled_from(["number", "number", "range"] + (["name"] if named_ok else [])))
    protocol = draw(st.sampled_from(PROTOCOLS))
    if kind == "name":
        name = draw(st.sampled_from(PORT_NAMES))
        return {"destinationNamedPort": name} if v1alpha2 else {"namedPort": name}
    if kind == "number":
        number = draw(st.sampled_from(PORTS))
        if v1alpha2:
            return {protocol.lower(): {"destinationPort": {"number": number}}}
        return {"portNumber": {"protocol": protocol, "port": number}}
    start = draw(st.sampled_from(PORTS))
    end = draw(st.sampled_from([start + 1, *[p for p in PORTS if p > start], 65535]))
    if v1alpha2:
        return {protocol.lower(): {"destinationPort": {"range": {"start": start, "end": end}}}}
    return {"portRange": {"protocol": protocol, "start": start, "end": end}}


@st.composite
def _cluster_rule(draw: Draw, egress: bool, actions: list[str], v1alpha2: bool, banp: bool) -> Manifest:
    action = draw(st.sampled_from(actions))
    domains = not banp and action in ("Accept", "Allow")
    to = draw(st.lists(_cluster_peer(egress, domains), min_size=1, max_size=3))
    rule: Manifest = {"action": action, "to" if egress else "from": to}
    if draw(st.booleans()):
        rule["name"] = draw(st.sampled_from(["r", "allow-dns", "x" * 100]))
    if draw(st.booleans()):
        named_ok = not (egress and any(set(p) & {"networks", "nodes", "domainNames"} for p in to))
        ports = draw(st.lists(_cluster_port(v1alpha2, named_ok), min_size=1, max_size=3))
        rule["protocols" if v1alpha2 else "ports"] = ports
    return rule


@st.composite
def cluster_policy_manifests(draw: Draw, kind: str | None = None, name: str | None = None) -> Manifest:
    """A ClusterNetworkPolicy (either tier), an AdminNetworkPolicy or the BaselineAdminNetworkPolicy."""
    kind = kind or draw(
        st.sampled_from(["ClusterNetworkPolicy"] * 3 + ["AdminNetworkPolicy", "BaselineAdminNetworkPolicy"])
    )
    v1alpha2 = kind == "ClusterNetworkPolicy"
    banp = kind == "BaselineAdminNetworkPolicy"
    name = "default" if banp else name or draw(st.sampled_from(CLUSTER_POLICY_NAMES))
    spec: Manifest = {}
    if v1alpha2:
        spec["tier"] = draw(st.sampled_from(["Admin", "Baseline"]))
        actions = ["Accept", "Deny", "Pass"]
    else:
        actions = ["Allow", "Deny"] if banp else ["Allow", "Deny", "Pass"]
    if not banp:
        spec["priority"] = draw(st.sampled_from(PRIORITIES))
    spec["subject"] = draw(  # every namespace a third of the time: subjects that select
        st.one_of(
            st.just({"namespaces": {}}),
            st.builds(lambda s: {"namespaces": s}, namespace_selectors()),
            _namespaced_pods(),
        )
    )
    for direction, egress in (("ingress", False), ("egress", True)):
        rules = draw(st.lists(_cluster_rule(egress, actions, v1alpha2, banp), max_size=3))
        if rules or draw(st.booleans()):
            spec[direction] = rules
    version = "v1alpha2" if v1alpha2 else "v1alpha1"
    return {
        "apiVersion": f"policy.networking.k8s.io/{version}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def parse(doc: Manifest) -> Object:
    """A generated manifest is valid by construction: validation must accept it."""
    obj = parse_object(doc)
    assert obj is not None, doc
    return obj


# --- Services and EndpointSlices ----------------------------------------------------------

SERVICE_NAMES = ["s1", "s2"]
SERVICE_NAMESPACES = ["default", "prod"]  # fewer than NAMESPACES: slices meet their Services
SLICE_NAMES = ["e1", "e2", "e3"]
SERVICE_IPS_V4 = ["10.96.0.1", "10.96.0.2"]
SERVICE_IPS_V6 = ["fd00:96::1"]
SERVICE_PORT_NAMES = ["", "http", "web-1"]
NODE_PORTS = [30080, 30081]
SERVICE_EXTERNAL_IPS = ["192.0.2.1", "10.96.0.2"]  # the second also a cluster IP: a conflict on purpose
LB_IPS = ["203.0.113.1"]


@st.composite
def service_manifests(draw: Draw, namespace: str | None = None, name: str | None = None) -> Manifest:
    """A valid Service: any type, one or both families or headless, 1-2 ports, traffic policies."""
    namespace = namespace or draw(st.sampled_from(SERVICE_NAMESPACES))
    name = name or draw(st.sampled_from(SERVICE_NAMES))
    stype = draw(st.sampled_from(["ClusterIP", "ClusterIP", "NodePort", "LoadBalancer"]))
    spec: Manifest = {"type": stype}
    shape = draw(st.sampled_from(["v4", "v6", "dual", "headless", "unallocated"]))
    if shape == "headless" and stype == "ClusterIP":
        spec["clusterIP"] = "None"
    elif shape in ("v4", "dual", "headless"):
        spec["clusterIP"] = draw(st.sampled_from(SERVICE_IPS_V4))
        if shape == "dual":
            spec["clusterIPs"] = [spec["clusterIP"], SERVICE_IPS_V6[0]]
    elif shape == "v6":
        spec["clusterIPs"] = SERVICE_IPS_V6[:]
    count = draw(st.integers(1, 2))
    names = draw(
        st.lists(st.sampled_from(SERVICE_PORT_NAMES[1:]), min_size=count, max_size=count, unique=True)
    )
    numbers = draw(st.lists(st.sampled_from(PORTS), min_size=count, max_size=count, unique=True))
    node_ports = draw(st.lists(st.sampled_from(NODE_PORTS), min_size=count, max_size=count, unique=True))
    ports = []
    for i in range(count):
        port: Manifest = {"port": numbers[i]}
        if count > 1 or draw(st.booleans()):
            port["name"] = names[i]
        target = draw(st.sampled_from([None, *PORTS, *PORT_NAMES]))
        if target is not None:
            port["targetPort"] = target
        protocol = draw(st.sampled_from([None, None, None, None, *PROTOCOLS]))
        if protocol is not None:
            port["protocol"] = protocol
        if stype != "ClusterIP" and draw(st.booleans()):
            port["nodePort"] = node_ports[i]
        ports.append(port)
    spec["ports"] = ports
    if draw(st.integers(0, 3)) == 0:
        spec["externalIPs"] = draw(st.lists(st.sampled_from(SERVICE_EXTERNAL_IPS), min_size=1, unique=True))
    if stype != "ClusterIP" or "externalIPs" in spec:
        spec["externalTrafficPolicy"] = draw(st.sampled_from(["Cluster", "Local"]))
    spec["internalTrafficPolicy"] = draw(st.sampled_from(["Cluster", "Cluster", "Local"]))
    doc: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(draw, name, namespace, None),
        "spec": spec,
    }
    if stype == "LoadBalancer" and draw(st.booleans()):
        doc["status"] = {"loadBalancer": {"ingress": [{"ip": LB_IPS[0]}]}}
    return doc


@st.composite
def slice_manifests(
    draw: Draw,
    namespace: str | None = None,
    name: str | None = None,
    owner: str | None = None,
    port_names: list[str] | None = None,
) -> Manifest:
    """A valid EndpointSlice of one family owned by one of the Services (or none), with
    endpoints ready, unready or terminating on pod (and other) addresses; ``owner`` and
    ``port_names``: the slice of that Service, with its port names."""
    namespace = namespace or draw(st.sampled_from(SERVICE_NAMESPACES))
    name = name or draw(st.sampled_from(SLICE_NAMES))
    family = draw(st.sampled_from(["IPv4", "IPv4", "IPv6"]))
    pool = [*POD_IPS_V4, "8.8.8.8"] if family == "IPv4" else POD_IPS_V6
    endpoints = []
    for ip in draw(st.lists(st.sampled_from(pool), max_size=4)):
        ep: Manifest = {"addresses": [ip]}
        conditions = {
            k: v
            for k in ("ready", "serving", "terminating")
            if (v := draw(st.sampled_from([None, True, False]))) is not None
        }
        if conditions:
            ep["conditions"] = conditions
        node = draw(st.sampled_from([None, *NODE_NAMES]))
        if node:
            ep["nodeName"] = node
        endpoints.append(ep)
    ports = []
    names = port_names or draw(
        st.lists(st.sampled_from(SERVICE_PORT_NAMES), min_size=1, max_size=2, unique=True)
    )
    for pname in names:
        port: Manifest = {"name": pname, "port": draw(st.sampled_from([*PORTS, None]))}
        protocol = draw(st.sampled_from([None, None, None, *PROTOCOLS]))
        if protocol:
            port["protocol"] = protocol
        ports.append(port)
    labels = {}
    if owner is not None or draw(st.integers(0, 5)):
        labels["kubernetes.io/service-name"] = owner or draw(st.sampled_from(SERVICE_NAMES))
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": _metadata(draw, name, namespace, labels),
        "addressType": family,
        "endpoints": endpoints,
        "ports": ports,
    }


any_manifest = st.one_of(
    namespace_manifests(),
    node_manifests(),
    pod_manifests(),
    pod_manifests(),
    policy_manifests(),
    policy_manifests(),
)


any_cluster_manifest = st.one_of(
    any_manifest, labelled_node_manifests(), cluster_policy_manifests(), cluster_policy_manifests()
)


any_service_manifest = st.one_of(
    any_manifest, service_manifests(), slice_manifests(), slice_manifests(), slice_manifests()
)


@st.composite
def world_manifests(draw: Draw, cluster: bool = False, services: bool = False) -> list[Manifest]:
    """A cluster: some namespaces (others stay undeclared), nodes, pods and policies.

    ``cluster``: nodes carry labels and 1-4 cluster-scoped policies join the NetworkPolicies.
    ``services``: 1-3 Services and 1-4 EndpointSlices join them.
    """
    docs: list[Manifest] = []
    docs += draw(st.lists(namespace_manifests(), max_size=3))
    docs += draw(st.lists(labelled_node_manifests() if cluster else node_manifests(), max_size=3))
    docs += draw(st.lists(pod_manifests(), min_size=1, max_size=8))
    docs += draw(st.lists(policy_manifests(), min_size=0 if cluster else 1, max_size=2 if cluster else 5))
    if cluster:
        docs += draw(st.lists(cluster_policy_manifests(), min_size=1, max_size=4))
    if services:
        svcs = draw(st.lists(service_manifests(), min_size=1, max_size=3))
        docs += svcs
        for svc in svcs:  # most Services get a slice of their own, with their port names
            if draw(st.integers(0, 4)):
                meta = svc["metadata"]
                docs.append(
                    draw(
                        slice_manifests(
                            meta.get("namespace", "default"),
                            f"{meta['name']}-{draw(st.sampled_from(SLICE_NAMES))}",
                            meta["name"],
                            [p.get("name", "") for p in svc["spec"]["ports"]],
                        )
                    )
                )
        docs += draw(st.lists(slice_manifests(), max_size=2))
    return docs


def to_world(docs: list[Manifest]) -> list[Object]:
    """The objects of a list of manifests, later ones replacing earlier ones of the same key."""
    world: dict[ObjectKey, Object] = {}
    for doc in docs:
        obj = parse(doc)
        world[obj.key] = obj
    return list(world.values())


worlds: st.SearchStrategy[list[Object]] = world_manifests().map(to_world)
cluster_worlds: st.SearchStrategy[list[Object]] = world_manifests(cluster=True).map(to_world)
service_worlds: st.SearchStrategy[list[Object]] = world_manifests(services=True).map(to_world)

# --- flows -------------------------------------------------------------------------------


def world_ips(world: list[Object]) -> list[str]:
    """Every address the world knows: pod IPs (live or not) and node addresses."""
    ips: set[str] = set()
    for obj in world:
        if isinstance(obj, Pod):
            ips.update(obj.ips)
        elif isinstance(obj, Node):
            ips.update(obj.addresses)
        elif isinstance(obj, Service):
            ips.update((*obj.cluster_ips, *obj.external_ips, *obj.load_balancer_ips))
    return sorted(ips)


def live_pod_ips(world: list[Object]) -> list[str]:
    return sorted({ip for obj in world if isinstance(obj, Pod) and obj.live for ip in obj.ips})


def world_ports(world: list[Object]) -> list[int]:
    ports = {cp.port for obj in world if isinstance(obj, Pod) for cp in obj.ports}
    for obj in world:
        if isinstance(obj, Service):
            ports.update(p.port for p in obj.ports)
            ports.update(p.node_port for p in obj.ports if p.node_port is not None)
    return sorted(ports)


def service_targets(world: list[Object]) -> list[tuple[str, str, int]]:
    """(address, protocol, port) of every Service port on its addresses and every node port
    on every node address: flows to Services would hardly ever be drawn by chance; a headless
    Service's ports on its name ``svc/NAMESPACE/NAME`` (R43; without ports: port 80)."""
    node_ips = sorted({ip for obj in world if isinstance(obj, Node) for ip in obj.addresses})
    out: set[tuple[str, str, int]] = set()
    for obj in world:
        if isinstance(obj, Service):
            for p in obj.ports:
                for ip in (*obj.cluster_ips, *obj.external_ips, *obj.load_balancer_ips):
                    out.add((ip, p.protocol, p.port))
                if p.node_port is not None:
                    out.update((ip, p.protocol, p.node_port) for ip in node_ips)
            if obj.headless:
                name = f"svc/{obj.namespace}/{obj.name}"
                out.update((name, p.protocol, p.port) for p in obj.ports)
                if not obj.ports:
                    out.update({(name, "TCP", 80), (name, "UDP", 53)})
    return sorted(out)


def flows(world: list[Object]) -> st.SearchStrategy[Flow]:
    """A flow biased toward the world's own addresses and ports, with odd protocols now and then."""
    choices = [st.sampled_from(ALL_IPS)]
    for pool in (world_ips(world), live_pod_ips(world)):
        if pool:
            choices += [st.sampled_from(pool)] * 2
    ips = st.one_of(choices)
    ports = world_ports(world)
    port_values = st.one_of(
        st.sampled_from(PORTS),
        st.sampled_from(ports) if ports else st.sampled_from(PORTS),
        st.sampled_from([1, 54, 79, 81, 444, 5433, 8081, 9089, 65535]),
        st.integers(1, 65535),
    )
    protocols = st.sampled_from(["TCP", "TCP", "TCP", "UDP", "UDP", "SCTP", "ICMP", "ICMPv6", 47, "50"])

    targets = service_targets(world)

    @st.composite
    def one(draw: Draw) -> Flow:
        if targets and draw(st.booleans()):
            dst, protocol, port = draw(st.sampled_from(targets))
            if dst.startswith("svc/"):  # a headless Service by name: the flow index/ends.py makes
                src = make_flow(draw(ips), "10.0.0.1", protocol, port).src_ip
                return Flow(src, dst, protocol, port)
            return make_flow(draw(ips), dst, protocol, port)
        protocol = draw(protocols)
        port = draw(port_values) if protocol in PROTOCOLS else None
        src, dst = draw(ips), draw(ips)
        if src == dst and draw(st.booleans()):
            dst = draw(ips)  # loopback is easy to hit: keep it, but not half the time
        return make_flow(src, dst, protocol, port)

    return one()


def pod_flows(world: list[Object]) -> st.SearchStrategy[Flow]:
    """A flow between two live pods' addresses at one of the world's container ports (or a
    common port): the flows a denial names labels, namespaces and ports for (why-not tests)."""
    ips = live_pod_ips(world) or ALL_IPS
    ports = world_ports(world) or PORTS

    @st.composite
    def one(draw: Draw) -> Flow:
        src = draw(st.sampled_from(ips))
        same = [ip for ip in ips if (":" in ip) == (":" in src)]  # mostly one family: fewer trivial misses
        dst = draw(st.sampled_from(same if draw(st.integers(0, 4)) else ips))
        port = draw(st.one_of(st.sampled_from(ports), st.sampled_from(PORTS)))
        return make_flow(src, dst, draw(st.sampled_from(PROTOCOLS)), port)

    return one()


@st.composite
def worlds_and_pod_flows(draw: Draw, max_flows: int = 12, cluster: bool = False) -> WorldAndFlows:
    world = draw(cluster_worlds if cluster else worlds)
    return WorldAndFlows(world, draw(st.lists(pod_flows(world), min_size=1, max_size=max_flows)))


@dataclass(frozen=True)
class WorldAndFlows:
    world: list[Object]
    flows: list[Flow]


@st.composite
def worlds_and_flows(
    draw: Draw, max_flows: int = 12, cluster: bool = False, services: bool = False
) -> WorldAndFlows:
    world = draw(service_worlds if services else cluster_worlds if cluster else worlds)
    return WorldAndFlows(world, draw(st.lists(flows(world), min_size=1, max_size=max_flows)))


# --- event sequences -----------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """A starting world, then batches of events; ``final`` is the world they lead to."""

    initial: list[Object]
    batches: list[list[Event]]
    final: list[Object]


def _replacement(key: ObjectKey, cluster: bool = False) -> st.SearchStrategy[Manifest]:
    """A new manifest for an existing object (a relabel, new IPs, new rules...)."""
    kind, namespace, name = key
    if kind == "Namespace":
        return namespace_manifests(name)
    if kind == "Node":
        return labelled_node_manifests(name) if cluster else node_manifests(name)
    if kind in CLUSTER_POLICY_KINDS:
        return cluster_policy_manifests(kind.value, name)
    if kind == "Service":
        return service_manifests(namespace, name)
    if kind == "EndpointSlice":
        return slice_manifests(namespace, name)
    if kind == "Pod":
        return pod_manifests(namespace, name)
    return policy_manifests(namespace, name)


@st.composite
def histories(draw: Draw, max_events: int = 14, cluster: bool = False, services: bool = False) -> History:
    """Random upserts (new objects, changed objects), deletes (present or not), in 1-4 batches.

    ``cluster``: the worlds and the new objects include cluster-scoped policies;
    ``services``: Services and EndpointSlices (endpoints turning ready or unready,
    slices replaced, Services deleted are all changes and deletes of these).
    """
    manifests = any_service_manifest if services else any_cluster_manifest if cluster else any_manifest
    initial = to_world(draw(world_manifests(cluster, services)))
    current: dict[ObjectKey, Object] = {o.key: o for o in initial}
    events: list[Event] = []
    for _ in range(draw(st.integers(1, max_events))):
        action = draw(st.sampled_from(["new", "change", "change", "delete", "delete-missing"]))
        if action in ("change", "delete") and current:
            key = draw(st.sampled_from(sorted(current)))
            if action == "delete":
                events.append(Delete(key))
                del current[key]
                continue
            obj = parse(draw(_replacement(key, cluster)))
        elif action == "delete-missing":
            obj = parse(draw(manifests))
            if obj.key not in current:
                events.append(Delete(obj.key))
                continue
        else:
            obj = parse(draw(manifests))
        events.append(Upsert(obj))
        current[obj.key] = obj
    cuts = sorted(draw(st.lists(st.integers(0, len(events)), max_size=3)))
    batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    return History(initial, batches, list(current.values()))
