"""Who can reach / what can it reach (index/reach.py), as tables and against the reference.

Tables run on test_semantics.py's base cluster (its docstring draws it).  The
property tests draw random worlds (ipBlocks, named ports, namespace selectors,
cluster policy tiers) and check that a reach answer holds exactly the peers the
reference evaluator allows when every flow is decided one by one (R41).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import EXTERNAL_IPS, PORTS, cluster_worlds, world_ips, worlds
from test_differential import examples
from test_semantics import block, labels, name_is, netpol, port, world
from test_tiers import cnp, ingress, ns_subject, pods, tcp

from netpol_pdp.index.engine import Index
from netpol_pdp.index.model import LabelSelector, Object, Pod
from netpol_pdp.index.portsets import EVERYTHING, PortSet
from netpol_pdp.index.reach import ReachAnswer, ReachError, TargetReach, catalogue, reach
from netpol_pdp.index.reference import ReferenceEvaluator


def ask(objects: list[Object], direction: str, pod: str, **kw: Any) -> TargetReach:
    """The answer for the pod's IPv4 address (a dual-stack pod gets one per family)."""
    answer = reach(Index.from_objects(objects)._gen, direction, pod=pod, **kw)
    assert ":" not in answer.targets[0].address
    return answer.targets[0]


def pod_ports(target: TargetReach) -> dict[str, str]:
    """``{pod name: port text}`` over every pod group."""
    return {name: g.ports.text() for g in target.pod_peers for name in g.pods}


# --- port sets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ports", "text"),
    [
        pytest.param(
            PortSet({"TCP": [(80, 80), (443, 443), (81, 81)]}), "TCP 80-81,443", id="adjacent merge"
        ),
        pytest.param(PortSet({"UDP": [(53, 53)], "TCP": [(53, 53)]}), "TCP 53; UDP 53", id="protocol order"),
        pytest.param(EVERYTHING, "all ports and protocols", id="everything"),
        pytest.param(
            EVERYTHING - PortSet({"OTHER": [(0, 0)]}) & PortSet({"TCP": [(1, 65535)]}),
            "TCP all ports",
            id="whole protocol",
        ),
        pytest.param(
            PortSet({"TCP": [(1, 100)]}) - PortSet({"TCP": [(50, 60)]}), "TCP 1-49,61-100", id="hole"
        ),
        pytest.param(PortSet(), "none", id="empty"),
    ],
)
def test_port_sets_print_merged_ranges(ports: PortSet, text: str) -> None:
    assert ports.text() == text


# --- tables on the base cluster ------------------------------------------------------------

WEB_FROM_DB = netpol(
    "web-from-db",
    podSelector=labels(app="web"),
    ingress=[{"from": [{"podSelector": labels(app="db")}], "ports": [port(80), port(8000, end=8010)]}],
)


def test_an_unisolated_pod_is_reached_by_every_pod_on_every_port() -> None:
    target = ask(world(), "ingress", "prod/web")
    assert pod_ports(target)["prod/db"] == "all ports and protocols"
    assert all(g.rules for g in target.pod_peers)


def test_ingress_names_the_allowed_pods_ports_and_rule() -> None:
    target = ask(world(WEB_FROM_DB), "ingress", "prod/web")
    assert pod_ports(target) == {"prod/db": "TCP 80,8000-8010"}
    (group,) = target.pod_peers
    assert group.namespace == "prod" and dict(group.labels) == {"app": "db", "tier": "data"}
    assert group.rules == (
        "prod/web-from-db ingress rule 0",
        "peer: not isolated for egress",
    )


def test_a_pod_peer_faces_its_own_egress_too() -> None:
    db_egress = netpol(
        "db-out", podSelector=labels(app="db"), policyTypes=["Egress"], egress=[{"ports": [port(80)]}]
    )
    target = ask(world(WEB_FROM_DB, db_egress), "ingress", "prod/web")
    assert pod_ports(target) == {"prod/db": "TCP 80"}
    assert target.pod_peers[0].rules == ("prod/web-from-db ingress rule 0", "prod/db-out egress rule 0")


def test_a_port_filter_keeps_only_that_port() -> None:
    target = ask(world(WEB_FROM_DB), "ingress", "prod/web", protocol="TCP", port=8005)
    assert pod_ports(target) == {"prod/db": "TCP 8005"}
    assert ask(world(WEB_FROM_DB), "ingress", "prod/web", protocol="UDP", port=80).pod_peers == ()


def test_named_ports_resolve_on_the_destination() -> None:
    web_out = netpol(
        "web-out",
        podSelector=labels(app="web"),
        policyTypes=["Egress"],
        egress=[{"to": [{"namespaceSelector": {}}], "ports": [port("http")]}],
    )
    target = ask(world(web_out), "egress", "prod/web")
    ports = pod_ports(target)
    assert ports["prod/api"] == "TCP 8080" and ports["dev/web"] == "TCP 80"
    assert "prod/db" not in ports  # no port named http


def test_namespace_selectors_pick_peers_by_namespace_labels() -> None:
    from_dev = netpol(
        "from-dev",
        podSelector=labels(app="web"),
        ingress=[{"from": [{"namespaceSelector": labels(env="dev")}]}],
    )
    assert set(pod_ports(ask(world(from_dev), "ingress", "prod/web"))) == {"dev/web"}


def test_ip_ranges_are_cidr_minus_except_merged() -> None:
    out = netpol(
        "out",
        podSelector=labels(app="web"),
        policyTypes=["Egress"],
        egress=[
            {"to": [block("10.0.0.0/8", "10.0.0.0/24")], "ports": [port(443)]},
            {"to": [block("172.16.0.0/12")], "ports": [port(443)]},
        ],
    )
    target = ask(world(out), "egress", "prod/web")
    tens, private = sorted(target.range_peers, key=lambda g: g.rules)
    assert tens.ports.text() == private.ports.text() == "TCP 443"
    assert private.cidrs == ("172.16.0.0/12",) and private.rules == ("prod/out egress rule 1",)
    assert set(tens.cidrs) == {
        "10.0.1.0/24", "10.0.2.0/23", "10.0.4.0/22", "10.0.8.0/21", "10.0.16.0/20", "10.0.32.0/19",
        "10.0.64.0/18", "10.0.128.0/17", "10.1.0.0/16", "10.2.0.0/15", "10.4.0.0/14", "10.8.0.0/13",
        "10.16.0.0/12", "10.32.0.0/11", "10.64.0.0/10", "10.128.0.0/9",
    }  # fmt: skip
    assert tens.rules == ("prod/out egress rule 0",)
    # pod addresses inside the ipBlock are pods (dev/web 10.0.1.1, lab/tool 10.0.2.1): both sides judged
    assert pod_ports(target) == {"dev/web": "TCP 443", "lab/tool": "TCP 443"}


def test_an_unisolated_pod_reaches_every_address_of_its_family() -> None:
    (ranges,) = ask(world(), "egress", "prod/db").range_peers
    assert ranges.cidrs == ("0.0.0.0/0",) and ranges.ports == EVERYTHING


def test_nodes_are_judged_on_the_pods_side_only() -> None:
    to_nodes = netpol(
        "to-nodes",
        podSelector=labels(app="web"),
        policyTypes=["Egress"],
        egress=[{"to": [block("192.168.0.0/24")], "ports": [port(10250)]}],
    )
    target = ask(world(to_nodes), "egress", "prod/web")
    assert {g.node: g.ports.text() for g in target.node_peers} == {
        "n1": "TCP 10250", "n2": "TCP 10250", "n3": "TCP 10250", "n4": "TCP 10250",
    }  # fmt: skip
    assert target.own_nodes == ("n1",)  # node-traffic: n1 is reached on every port anyway


def test_an_admin_deny_cuts_ports_out_of_a_network_policy_allow() -> None:
    deny = cnp(
        "no-8005",
        ns_subject("prod"),
        ingress=[ingress("Deny", pods("prod", app="db"), protocols=[tcp(8005)])],
    )
    target = ask(world(WEB_FROM_DB, deny), "ingress", "prod/web")
    assert pod_ports(target) == {"prod/db": "TCP 80,8000-8004,8006-8010"}


def test_an_admin_accept_is_named_and_needs_no_network_policy() -> None:
    accept = cnp(
        "db-in", ns_subject("prod"), ingress=[ingress("Accept", pods("prod", app="db"), protocols=[tcp(22)])]
    )
    deny_all = netpol("deny", podSelector={}, policyTypes=["Ingress"])
    target = ask(world(deny_all, accept), "ingress", "prod/web")
    assert pod_ports(target) == {"prod/db": "TCP 22"}
    assert target.pod_peers[0].rules[0] == "ClusterNetworkPolicy db-in ingress rule 0: Accept"


def test_a_baseline_deny_applies_only_where_nothing_isolates() -> None:
    base = cnp("base", ns_subject("prod"), tier="Baseline", ingress=[ingress("Deny", {"namespaces": {}})])
    target = ask(world(base), "ingress", "prod/web")
    assert pod_ports(target) == {}
    assert ask(world(base, WEB_FROM_DB), "ingress", "prod/web").pod_peers[0].pods == ("prod/db",)


def test_a_selector_target_is_answered_per_class() -> None:
    gen = Index.from_objects(world(WEB_FROM_DB))._gen
    answer = reach(gen, "ingress", namespace="prod", selector=LabelSelector((("app", "web"),)))
    assert [(t.pods, t.address) for t in answer.targets] == [
        (("prod/web",), "10.0.0.1"),
        (("prod/web",), "fd00::1"),
    ]
    everyone = reach(gen, "ingress", namespace="prod")
    assert sorted({p for t in everyone.targets for p in t.pods}) == [
        "prod/api",
        "prod/db",
        "prod/front",
        "prod/web",
    ]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        pytest.param({"pod": "prod/nope"}, "pod prod/nope", id="unknown pod"),
        pytest.param({"namespace": "nowhere"}, "namespace nowhere", id="empty namespace"),
        pytest.param({}, "a target is required", id="no target"),
    ],
)
def test_a_target_that_names_no_pod_is_a_clear_error(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ReachError, match=field):
        reach(Index.from_objects(world())._gen, "ingress", **kw)


def test_the_catalogue_is_built_once_per_generation() -> None:
    index = Index.from_objects(world())
    assert catalogue(index._gen) is catalogue(index._gen)


# --- against the reference, on random worlds ------------------------------------------------


def allowed_in(answer: ReachAnswer, index_pods: dict[str, list[str]], protocol: str, port_: int) -> set[str]:
    """Every address the answer says is allowed on (protocol, port), exemptions included."""
    (target,) = answer.targets
    family = ipaddress.ip_address(target.address).version
    out: set[str] = set()

    def same_family(ips: list[str]) -> list[str]:
        return [ip for ip in ips if ipaddress.ip_address(ip).version == family]

    for g in target.pod_peers:
        if g.ports.contains(protocol, port_):
            assert g.count == len(g.pods)
            for name in g.pods:
                out.update(same_family(index_pods[name]))
    for n in target.node_peers:
        if n.ports.contains(protocol, port_):
            out.update(n.addresses)
    return out


def check_world(objects: list[Object], data: st.DataObject) -> None:
    index = Index.from_objects(objects)
    gen = index._gen
    cat = catalogue(gen)
    names = sorted(cat.by_name)
    if not names:
        return
    ref = ReferenceEvaluator(objects)
    pod = data.draw(st.sampled_from(names), label="pod")
    direction = data.draw(st.sampled_from(["ingress", "egress"]), label="direction")
    policy_ports = sorted({*PORTS, *(cp.port for o in objects if isinstance(o, Pod) for cp in o.ports)})
    protocol = data.draw(st.sampled_from(["TCP", "TCP", "UDP", "SCTP", "ICMP"]), label="protocol")
    port_ = (
        0 if protocol == "ICMP" else data.draw(st.sampled_from([*policy_ports, 1, 65535, 81]), label="port")
    )
    filtered = data.draw(st.booleans(), label="filtered")
    answer = reach(
        gen, direction, pod=pod, protocol=protocol if filtered else None, port=port_ if filtered else None
    )
    index_pods = {name: [ip for ip, _ in entries] for name, entries in cat.by_name.items()}
    peers = sorted(set(world_ips(objects)) | set(EXTERNAL_IPS))
    known = {ip for ip in peers if gen.entry(ip) is not None}
    for target in answer.targets:
        single = ReachAnswer(answer.direction, answer.generation, None, None, (target,))
        expected = ref.reach(target.address, direction, peers, protocol, port_)
        got = allowed_in(single, index_pods, protocol, port_)
        exempt = {ip for n in target.own_nodes for _, e in cat.nodes if e.node == n for ip in [_]}
        exempt |= set(index_pods[pod])
        family = ipaddress.ip_address(target.address).version
        exempt = {ip for ip in exempt if ipaddress.ip_address(ip).version == family}
        assert exempt <= expected, "exemptions are always allowed"
        in_cluster = expected & known
        assert got - exempt == in_cluster - exempt, f"{direction} {pod} {protocol} {port_}"
        for ip in sorted(set(peers) - known):
            if ipaddress.ip_address(ip).version != family:
                continue
            in_range = any(
                g.ports.contains(protocol, port_)
                and any(ipaddress.ip_address(ip) in ipaddress.ip_network(c) for c in g.cidrs)
                for g in target.range_peers
            )
            assert in_range == (ip in expected), f"{direction} {pod} external {ip} {protocol} {port_}"


@settings(max_examples=examples(0.75), deadline=None)
@given(worlds, st.data())
def test_reach_agrees_with_deciding_every_peer_one_by_one(objects: list[Object], data: st.DataObject) -> None:
    check_world(objects, data)


@settings(max_examples=examples(0.75), deadline=None)
@given(cluster_worlds, st.data())
def test_reach_agrees_with_the_reference_with_cluster_policy_tiers(
    objects: list[Object], data: st.DataObject
) -> None:
    check_world(objects, data)


def test_namespaces_selector_reaches_through_name_label() -> None:
    from_prod = netpol(
        "from-prod", namespace="dev", ingress=[{"from": [{"namespaceSelector": name_is("prod")}]}]
    )
    target = ask(world(from_prod), "ingress", "dev/web")
    assert {g.namespace for g in target.pod_peers} == {"prod"}
