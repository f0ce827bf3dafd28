"""Why not (index/whynot.py): the nearest rules that missed a denied direction, and why.

Tables on the base cluster of tests/test_semantics.py: one row per mismatch kind,
each naming the policy field that failed, what it wants and what the flow has.
Then the cap, the order, the tiers, and a property test on random worlds: every
listed near miss really misses per the reference evaluator, and meeting its
mismatches (giving the pod the wanted label, the flow the wanted port...) makes
that rule match per the reference evaluator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import WorldAndFlows, worlds_and_flows, worlds_and_pod_flows
from test_semantics import (
    API,
    DB,
    DEV_WEB,
    EXT,
    EXT6,
    WEB,
    WEB6,
    block,
    expr,
    labels,
    netpol,
    port,
    world,
)
from test_tiers import cnp, ingress, pods, tcp

from netpol_pdp.clients.render import decision_lines
from netpol_pdp.index.decision import Decision, DirectionTrace, NearMiss, Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow, make_flow
from netpol_pdp.index.model import (
    ClusterPolicy,
    ContainerPort,
    Kind,
    Namespace,
    NetworkPolicy,
    Object,
    Operator,
)
from netpol_pdp.index.reference import ReferenceEvaluator
from netpol_pdp.index.whynot import MAX_NEAR_MISSES, MISSING

DB_ONLY = labels(app="db")


def into_db(*rules: dict[str, Any]) -> dict[str, Any]:
    return netpol("db-in", podSelector=DB_ONLY, ingress=list(rules))


def src(peer: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"from": [peer], **more}


@dataclass(frozen=True)
class Row:
    id: str
    policy: dict[str, Any]
    flow: Flow
    field: str
    want: str
    got: str
    message: str
    direction: str = "ingress"


def tcp_flow(a: str, b: str, p: int = 5432, protocol: str = "TCP") -> Flow:
    return make_flow(a, b, protocol, p if protocol in ("TCP", "UDP", "SCTP") else None)


ROWS = [
    Row(
        "a matchLabels value differs",
        into_db(src({"podSelector": labels(app="api")})),
        tcp_flow(WEB, DB),
        "spec.ingress[0].from[0].podSelector.matchLabels.app",
        "api",
        "web",
        "label app differs",
    ),
    Row(
        "a matchLabels key is missing",
        into_db(src({"podSelector": labels(role="client")})),
        tcp_flow(WEB, DB),
        "spec.ingress[0].from[0].podSelector.matchLabels.role",
        "client",
        MISSING,
        "label role missing",
    ),
    Row(
        "an In expression fails on a missing key",
        into_db(src({"podSelector": expr("tier", "In", "back")})),
        tcp_flow(WEB, DB),
        "spec.ingress[0].from[0].podSelector.matchExpressions[0]",
        "tier In [back]",
        f"tier {MISSING}",
        "label tier missing",
    ),
    Row(
        "a NotIn expression fails on a listed value",
        into_db(src({"podSelector": expr("app", "NotIn", "web")})),
        tcp_flow(WEB, DB),
        "spec.ingress[0].from[0].podSelector.matchExpressions[0]",
        "app NotIn [web]",
        "app=web",
        "expression fails",
    ),
    Row(
        "a DoesNotExist expression fails on a present key",
        into_db(src({"podSelector": expr("app", "DoesNotExist")})),
        tcp_flow(WEB, DB),
        "spec.ingress[0].from[0].podSelector.matchExpressions[0]",
        "app DoesNotExist",
        "app=web",
        "expression fails",
    ),
    Row(
        "the namespaceSelector fails on the peer's namespace labels",
        into_db(src({"namespaceSelector": labels(env="prod")})),
        tcp_flow(DEV_WEB, DB),
        "spec.ingress[0].from[0].namespaceSelector.matchLabels.env",
        "prod",
        "dev",
        "label env differs",
    ),
    Row(
        "a podSelector alone wants the policy's namespace",
        into_db(src({"podSelector": labels(app="web")})),
        tcp_flow(DEV_WEB, DB),
        "spec.ingress[0].from[0].podSelector",
        "namespace prod",
        "dev",
        "a podSelector alone selects pods of the policy's namespace",
    ),
    Row(
        "selectors match pods only",
        into_db(src({"podSelector": labels(app="web")})),
        tcp_flow(EXT, DB),
        "spec.ingress[0].from[0]",
        "a pod",
        f"external {EXT}",
        "selectors match pods only",
    ),
    Row(
        "an address outside the cidr",
        into_db(src(block("10.0.0.0/8"))),
        tcp_flow(EXT, DB),
        "spec.ingress[0].from[0].ipBlock.cidr",
        "10.0.0.0/8",
        EXT,
        "address outside the cidr",
    ),
    Row(
        "an address inside an except",
        into_db(src(block("10.0.0.0/24", "10.0.0.0/30"))),
        tcp_flow(WEB, DB),
        "spec.ingress[0].from[0].ipBlock.except[0]",
        "outside 10.0.0.0/30",
        WEB,
        "address inside an except",
    ),
    Row(
        "the other address family",
        netpol("web-in", podSelector=labels(app="web"), ingress=[src(block("10.0.0.0/8"))]),
        tcp_flow(EXT6, WEB6, 80),
        "spec.ingress[0].from[0].ipBlock.cidr",
        "10.0.0.0/8",
        EXT6,
        "address family differs",
    ),
    Row(
        "a port outside the range",
        into_db({"ports": [port(5000, end=5100)]}),
        tcp_flow(WEB, DB, 80),
        "spec.ingress[0].ports[0].port",
        "5000-5100",
        "80",
        "port outside the range",
    ),
    Row(
        "a port that differs",
        into_db({"ports": [port(5432)]}),
        tcp_flow(WEB, DB, 80),
        "spec.ingress[0].ports[0].port",
        "5432",
        "80",
        "port differs",
    ),
    Row(
        "a protocol that differs",
        into_db({"ports": [port(5432, "UDP")]}),
        tcp_flow(WEB, DB, 5432),
        "spec.ingress[0].ports[0].protocol",
        "UDP",
        "TCP",
        "protocol differs",
    ),
    Row(
        "a named port the destination pod lacks",
        into_db({"ports": [port("http")]}),
        tcp_flow(WEB, DB, 80),
        "spec.ingress[0].ports[0].port",
        "http",
        MISSING,
        "named port missing on the destination pod prod/db (no TCP container port http)",
    ),
    Row(
        "a named port that is another number on the pod",
        into_db({"ports": [port("postgres")]}),
        tcp_flow(WEB, DB, 5433),
        "spec.ingress[0].ports[0].port",
        "postgres (5432)",
        "5433",
        "port differs: postgres is TCP 5432 on the destination pod prod/db",
    ),
    Row(
        "a port-less protocol against a rule with ports",
        into_db({"ports": [port(5432)]}),
        tcp_flow(WEB, DB, 0, "ICMP"),
        "spec.ingress[0].ports",
        "TCP, UDP or SCTP",
        "ICMP",
        "only TCP, UDP and SCTP have ports",
    ),
    Row(
        "an egress rule's peer",
        netpol(
            "web-out",
            podSelector=labels(app="web"),
            policyTypes=["Egress"],
            egress=[{"to": [{"podSelector": labels(app="api")}]}],
        ),
        tcp_flow(WEB, DB),
        "spec.egress[0].to[0].podSelector.matchLabels.app",
        "api",
        "db",
        "label app differs",
        "egress",
    ),
]


def explained(objects: list[Object], flow: Flow) -> Decision:
    index = Index.from_objects(objects)
    decision = index.explain(flow)
    assert decision.verdict is Verdict.DENY, decision
    return decision


def trace_of(decision: Decision, direction: str) -> DirectionTrace:
    trace = decision.ingress if direction == "ingress" else decision.egress
    assert trace is not None and not trace.allowed
    return trace


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_each_mismatch_kind_names_the_field_what_it_wants_and_what_the_flow_has(row: Row) -> None:
    trace = trace_of(explained(world(row.policy), row.flow), row.direction)
    assert len(trace.near_misses) == 1
    miss = trace.near_misses[0]
    assert (miss.direction, miss.rule, miss.missed) == (row.direction, 0, 1)
    assert [(m.field, m.want, m.got, m.message) for m in miss.mismatches] == [
        (row.field, row.want, row.got, row.message)
    ]


def test_a_rule_reports_its_nearest_peer_and_its_nearest_port_together() -> None:
    policy = into_db(
        {
            "from": [{"podSelector": labels(app="api", tier="back")}, {"podSelector": labels(app="front")}],
            "ports": [port(5432, "UDP"), port(6000)],
        }
    )
    miss = trace_of(explained(world(policy), tcp_flow(WEB, DB, 80)), "ingress").near_misses[0]
    assert [m.field for m in miss.mismatches] == [
        "spec.ingress[0].from[1].podSelector.matchLabels.app",  # one label off, not two
        "spec.ingress[0].ports[0].protocol",  # the first of two entries one condition off
        "spec.ingress[0].ports[0].port",
    ] or [m.field for m in miss.mismatches] == [
        "spec.ingress[0].from[1].podSelector.matchLabels.app",
        "spec.ingress[0].ports[1].port",
    ]
    assert len(miss.mismatches) == 2


def test_the_list_is_the_nearest_three_fewest_failures_first_and_counts_the_rest() -> None:
    far = {"from": [{"podSelector": labels(app="x", tier="y", role="z")}]}
    near = {"from": [{"podSelector": labels(app="api")}]}
    middle = {"from": [{"podSelector": labels(app="x", tier="y")}]}
    policy = into_db(far, middle, near, far, near)
    trace = trace_of(explained(world(policy), tcp_flow(WEB, DB)), "ingress")
    assert MAX_NEAR_MISSES == 3
    assert [(m.rule, len(m.mismatches), m.missed) for m in trace.near_misses] == [
        (2, 1, 5),
        (4, 1, 5),
        (1, 2, 5),
    ]
    text = "\n".join(
        decision_lines(
            Index.from_objects(world(policy)).explain(tcp_flow(WEB, DB)), tcp_flow(WEB, DB), explain=True
        )
    )
    assert "why not: the nearest 3 of 5 that did not match" in text
    assert (
        "spec.ingress[2].from[0].podSelector.matchLabels.app: label app differs (want api, got web)" in text
    )


def test_a_policy_without_rules_for_the_direction_has_no_near_miss_and_says_so() -> None:
    decision = explained(world(netpol("deny", podSelector=DB_ONLY)), tcp_flow(WEB, DB))
    assert trace_of(decision, "ingress").near_misses == ()
    text = "\n".join(decision_lines(decision, tcp_flow(WEB, DB), explain=True))
    assert "why not: the isolating policies have no ingress rule to come near" in text


def test_allowed_and_unexplained_decisions_carry_no_near_misses() -> None:
    index = Index.from_objects(world(into_db(src({"podSelector": labels(app="web")}))))
    allowed = index.explain(tcp_flow(WEB, DB))
    assert (
        allowed.verdict is Verdict.ALLOW and allowed.ingress is not None and allowed.ingress.near_misses == ()
    )
    assert index.decide(tcp_flow(API, DB)).ingress is None


def test_an_admin_deny_lists_the_admin_accept_rules_read_before_it() -> None:
    policy = cnp(
        "guard",
        pods("prod", app="db"),
        ingress=[
            ingress("Accept", pods("prod", app="api"), name="from-api"),
            ingress("Accept", pods("prod", app="web"), name="web-on-6000", protocols=[tcp(6000)]),
            ingress("Deny", pods("prod"), name="rest"),
        ],
    )
    decision = explained(world(policy), tcp_flow(WEB, DB))
    trace = trace_of(decision, "ingress")
    assert trace.decided_by is not None and trace.decided_by.name == "rest"
    assert [(m.policy, m.rule, m.tier, m.name, m.action) for m in trace.near_misses] == [
        ("ClusterNetworkPolicy guard", 0, "Admin", "from-api", "Accept"),
        ("ClusterNetworkPolicy guard", 1, "Admin", "web-on-6000", "Accept"),
    ]
    assert [m.field for m in trace.near_misses[0].mismatches] == [
        "spec.ingress[0].from[0].pods.podSelector.matchLabels.app"
    ]
    assert [m.field for m in trace.near_misses[1].mismatches] == ["spec.ingress[1].protocols[0]"] or [
        m.field for m in trace.near_misses[1].mismatches
    ] == ["spec.ingress[1].protocols[0].port"]


def test_a_networkpolicy_denial_lists_its_rules_and_the_admin_accepts_that_missed() -> None:
    objects = world(
        cnp("early", pods("prod", app="db"), ingress=[ingress("Accept", pods("prod", app="api"))]),
        into_db(src({"podSelector": labels(app="front")})),
    )
    trace = trace_of(explained(objects, tcp_flow(WEB, DB)), "ingress")
    assert trace.decided_by is None
    assert sorted((m.policy, m.tier) for m in trace.near_misses) == [
        ("ClusterNetworkPolicy early", "Admin"),
        ("prod/db-in", ""),
    ]


# --- the property: each near miss misses, and its fix makes it match -------------------------


def _fix_labels(labels_: dict[str, str], selector_path: str, miss_field: str, rule_sel: Any) -> None:
    """Meet one selector term: ``matchLabels.<k>`` -> set it; ``matchExpressions[i]`` -> satisfy it."""
    rest = miss_field[len(selector_path) + 1 :]
    if rest.startswith("matchLabels."):
        key = rest[len("matchLabels.") :]
        labels_[key] = dict(rule_sel.match_labels)[key]
        return
    req = rule_sel.match_expressions[int(rest[len("matchExpressions[") : -1])]
    if req.operator is Operator.IN:
        labels_[req.key] = sorted(req.values)[0]
    elif req.operator is Operator.EXISTS:
        labels_[req.key] = "x"
    else:
        labels_.pop(req.key, None)


def _fixable(miss: NearMiss) -> bool:
    """Labels of the peer pod or its namespace, the flow's port or protocol, a named port."""

    def one(field: str) -> bool:
        if ".nodes" in field:
            return False
        return (
            "matchLabels." in field or "matchExpressions[" in field or field.endswith((".protocol", ".port"))
        )

    return all(one(m.field) for m in miss.mismatches)


def _apply(objects: list[Object], flow: Flow, miss: NearMiss, peer_ip: str) -> tuple[list[Object], Flow]:
    """The world and flow with every mismatch of ``miss`` met (only fixable kinds reach here)."""
    ref = ReferenceEvaluator(objects)
    by_key = {o.key: o for o in objects}
    peer = ref._resolve(peer_ip).pod
    dst_pod = ref._resolve(flow.dst_ip).pod
    rule = _rule_of(by_key, miss)
    for m in miss.mismatches:
        path, sel = _selector_at(rule, m.field)
        if sel is not None and peer is not None:
            if "namespace" in path.rsplit(".", 1)[-1] or path.endswith(".namespaces"):
                ns = by_key.get((Kind.NAMESPACE, "", peer.namespace))
                current = dict(ns.labels) if isinstance(ns, Namespace) else {}
                current.setdefault("kubernetes.io/metadata.name", peer.namespace)
                _fix_labels(current, path, m.field, sel)
                by_key[(Kind.NAMESPACE, "", peer.namespace)] = Namespace(peer.namespace, current)
            else:
                current = dict(peer.labels)
                _fix_labels(current, path, m.field, sel)
                peer = dataclasses.replace(peer, labels=current)
                by_key[peer.key] = peer
        elif m.field.endswith(".protocol"):
            flow = flow._replace(protocol=m.want)
        elif m.field.endswith(".port"):
            if m.got == MISSING and dst_pod is not None:  # give the destination pod the named port
                proto = flow.protocol
                dst_pod = dataclasses.replace(
                    dst_pod, ports=(*dst_pod.ports, ContainerPort(flow.dst_port, proto, m.want))
                )
                by_key[dst_pod.key] = dst_pod
            elif "(" in m.want:  # a named port of another number: use the pod's number
                flow = flow._replace(dst_port=int(m.want.split("(")[1].split(",")[0].rstrip(")")))
            else:
                flow = flow._replace(dst_port=int(m.want.split("-")[0]))
    return list(by_key.values()), flow


def _rule_of(by_key: dict[Any, Object], miss: NearMiss) -> Any:
    if miss.tier:
        kind, _, name = miss.policy.partition(" ")
        policy = by_key[(Kind(kind), "", name)]
        assert isinstance(policy, ClusterPolicy)
    else:
        namespace, _, name = miss.policy.partition("/")
        policy = by_key[(Kind.NETWORK_POLICY, namespace, name)]
        assert isinstance(policy, NetworkPolicy)
    return (policy, (policy.ingress if miss.direction == "ingress" else policy.egress)[miss.rule])


def _selector_at(rule: Any, field: str) -> tuple[str, Any]:
    """The selector a mismatch's field points into (and its path), or (field, None)."""
    _, r = rule
    for marker in (".namespaceSelector", ".podSelector", ".namespaces", ".nodes"):
        if marker + "." in field:
            head = field[: field.index(marker + ".") + len(marker)]
            j = int(head.split("[")[2].split("]")[0])
            peer = r.peers[j]
            if marker in {".namespaceSelector", ".namespaces"}:
                return head, peer.namespace_selector
            if marker == ".podSelector":
                return head, peer.pod_selector
            return head, peer.node_selector
    return field, None


def _matches(objects: list[Object], flow: Flow, miss: NearMiss) -> bool:
    ref = ReferenceEvaluator(objects)
    policy, rule = _rule_of({o.key: o for o in objects}, miss)
    peer_ip = flow.src_ip if miss.direction == "ingress" else flow.dst_ip
    peer = ref._resolve(peer_ip)
    destination = ref._resolve(flow.dst_ip).pod
    if miss.tier:
        return ref._cluster_ports_match(rule, flow, destination) and any(
            ref._cluster_peer_matches(p, peer) for p in rule.peers
        )
    return ref._rule_matches(rule, policy, flow, peer, destination)


@given(st.one_of(worlds_and_pod_flows(max_flows=8), worlds_and_flows(max_flows=8)))
def test_every_near_miss_misses_and_its_fix_makes_the_rule_match(case: WorldAndFlows) -> None:
    index = Index.from_objects(case.world)
    for flow in case.flows:
        decision = index.explain(flow)
        for trace in (decision.egress, decision.ingress):
            if trace is None or trace.allowed:
                continue
            assert len(trace.near_misses) <= MAX_NEAR_MISSES
            counts = [len(m.mismatches) for m in trace.near_misses]
            assert counts == sorted(counts)
            for miss in trace.near_misses:
                assert miss.mismatches, miss
                assert not _matches(case.world, flow, miss), f"{miss} matches {flow}"
                if not _fixable(miss):
                    continue
                peer_ip = flow.src_ip if miss.direction == "ingress" else flow.dst_ip
                fixed_world, fixed_flow = _apply(case.world, flow, miss, peer_ip)
                assert _matches(fixed_world, fixed_flow, miss), f"fixing {miss} for {flow} leaves it missing"


@settings(max_examples=80)  # cluster worlds are slow to draw; the tiers' table rows cover each case
@given(
    st.one_of(worlds_and_pod_flows(max_flows=6, cluster=True), worlds_and_flows(max_flows=6, cluster=True))
)
def test_near_misses_on_worlds_with_cluster_tiers_miss_and_their_fixes_match(case: WorldAndFlows) -> None:
    index = Index.from_objects(case.world)
    for flow in case.flows:
        decision = index.explain(flow)
        assert dataclasses.replace(
            decision,
            egress=dataclasses.replace(decision.egress, near_misses=()) if decision.egress else None,
            ingress=dataclasses.replace(decision.ingress, near_misses=()) if decision.ingress else None,
        ) == index.decide(flow, explain=True)
        for trace in (decision.egress, decision.ingress):
            for miss in trace.near_misses if trace is not None else ():
                assert not _matches(case.world, flow, miss), f"{miss} matches {flow}"
                if _fixable(miss):
                    peer_ip = flow.src_ip if miss.direction == "ingress" else flow.dst_ip
                    fixed_world, fixed_flow = _apply(case.world, flow, miss, peer_ip)
                    assert _matches(fixed_world, fixed_flow, miss), (
                        f"fixing {miss} for {flow} leaves it missing"
                    )


def test_a_baseline_deny_lists_the_baseline_accept_rules_before_it() -> None:
    objects = world(
        cnp(
            "floor",
            pods("prod", app="db"),
            tier="Baseline",
            ingress=[
                ingress("Accept", pods("prod", app="api"), name="api-in"),
                ingress("Deny", pods("prod"), name="rest"),
                ingress("Accept", pods("prod", app="web"), name="never-read"),
            ],
        )
    )
    trace = trace_of(explained(objects, tcp_flow(WEB, DB)), "ingress")
    assert trace.decided_by is not None and (trace.decided_by.tier, trace.decided_by.name) == (
        "Baseline",
        "rest",
    )
    assert [(m.tier, m.name, m.missed) for m in trace.near_misses] == [("Baseline", "api-in", 1)]
    assert [(m.field, m.want, m.got) for m in trace.near_misses[0].mismatches] == [
        ("spec.ingress[0].from[0].pods.podSelector.matchLabels.app", "api", "web")
    ]
