"""docs/semantics.md section 6 (cluster policy tiers), rule by rule, as tables.

Every row runs on BOTH evaluators (``evaluator_factory``: the reference, then the
index) and, unless marked v1alpha2-only, in BOTH API versions: written as a
``ClusterNetworkPolicy`` (v1alpha2) and translated to an ``AdminNetworkPolicy`` /
``BaselineAdminNetworkPolicy`` (v1alpha1).  The base cluster is test_semantics.py's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import EvaluatorFactory
from test_semantics import (
    API,
    DB,
    DEV_WEB,
    EXT,
    EXT6,
    FRONT,
    N1,
    N2,
    N3,
    TOOL,
    WEB,
    decide,
    labels,
    name_is,
    netpol,
    node,
    world,
)

from netpol_pdp.index.decision import Reason, TierRuleRef, Verdict
from netpol_pdp.index.flows import Flow, make_flow

ADMIN_DENY, ADMIN_ALLOW = Reason.DENIED_BY_ADMIN, Reason.ALLOWED_BY_ADMIN
BASE_DENY, BASE_ALLOW = Reason.DENIED_BY_BASELINE, Reason.ALLOWED_BY_BASELINE
NP_ALLOW, NOT_ISOLATED = Reason.ALLOWED_BY_POLICY, Reason.NOT_ISOLATED
DENIED_INGRESS, DENIED_EGRESS, LOOPBACK = Reason.DENIED_INGRESS, Reason.DENIED_EGRESS, Reason.LOOPBACK
DENIALS = {ADMIN_DENY, BASE_DENY, DENIED_INGRESS, DENIED_EGRESS, Reason.DENIED_BOTH}

# --- manifests ---------------------------------------------------------------------------


def cnp(
    name: str,
    subject: dict[str, Any],
    *,
    tier: str = "Admin",
    priority: int = 10,
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A v1alpha2 ClusterNetworkPolicy."""
    spec: dict[str, Any] = {"tier": tier, "priority": priority, "subject": subject}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def ns_subject(namespace: str) -> dict[str, Any]:
    return {"namespaces": name_is(namespace)}


def pods(namespace: str, **pod_labels: str) -> dict[str, Any]:
    return {"pods": {"namespaceSelector": name_is(namespace), "podSelector": labels(**pod_labels)}}


def rule(
    action: str, *peers: dict[str, Any], protocols: list[dict[str, Any]] | None = None, **kw: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"action": action, **kw}
    if protocols is not None:
        out["protocols"] = protocols
    out["peers"] = list(peers)
    return out


def ingress(action: str, *peers: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = rule(action, *peers, **kw)
    r["from"] = r.pop("peers")
    return r


def egress(action: str, *peers: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = rule(action, *peers, **kw)
    r["to"] = r.pop("peers")
    return r


def tcp(number: int) -> dict[str, Any]:
    return {"tcp": {"destinationPort": {"number": number}}}


def udp(number: int) -> dict[str, Any]:
    return {"udp": {"destinationPort": {"number": number}}}


def sctp(number: int) -> dict[str, Any]:
    return {"sctp": {"destinationPort": {"number": number}}}


def tcp_range(start: int, end: int) -> dict[str, Any]:
    return {"tcp": {"destinationPort": {"range": {"start": start, "end": end}}}}


def named(name: str) -> dict[str, Any]:
    return {"destinationNamedPort": name}


def labelled_node(name: str, ip: str, **node_labels: str) -> dict[str, Any]:
    doc = node(name, ip)
    doc["metadata"]["labels"] = node_labels
    return doc


def to_v1alpha1(doc: dict[str, Any]) -> dict[str, Any]:
    """The same policy as an AdminNetworkPolicy, or (Baseline) the BaselineAdminNetworkPolicy."""
    if doc.get("kind") != "ClusterNetworkPolicy":
        return doc
    spec = copy.deepcopy(doc["spec"])
    baseline = spec.pop("tier") == "Baseline"
    if baseline:
        spec.pop("priority")
    for direction in ("ingress", "egress"):
        for r in spec.get(direction, []):
            r["action"] = {"Accept": "Allow"}.get(r["action"], r["action"])
            if "protocols" in r:
                r["ports"] = [_v1alpha1_port(p) for p in r.pop("protocols")]
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy" if baseline else "AdminNetworkPolicy",
        "metadata": {"name": "default" if baseline else doc["metadata"]["name"]},
        "spec": spec,
    }


def _v1alpha1_port(entry: dict[str, Any]) -> dict[str, Any]:
    if "destinationNamedPort" in entry:
        return {"namedPort": entry["destinationNamedPort"]}
    ((proto, body),) = entry.items()
    dest = body["destinationPort"]
    if "number" in dest:
        return {"portNumber": {"protocol": proto.upper(), "port": dest["number"]}}
    return {"portRange": {"protocol": proto.upper(), **dest["range"]}}


# --- the tables ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    objects: list[dict[str, Any]]
    src: str
    dst: str
    reason: Reason
    port: int = 80
    protocol: str = "TCP"
    #: v1alpha1 cannot say it (Baseline Pass, two Baseline policies, ...)
    v1alpha2_only: bool = False
    notes: tuple[str, ...] = field(default=())


#: peers and subjects the tables use
DEV, PROD, LAB = ({"namespaces": name_is(n)} for n in ("dev", "prod", "lab"))
EVERY_NS: dict[str, Any] = {"namespaces": {}}
IN_PROD, IN_DEV = ns_subject("prod"), ns_subject("dev")
DEV_TO_PROD = cnp("dev-to-prod", IN_PROD, ingress=[ingress("Deny", DEV)])
NP_DENY_ALL = netpol("deny-all", policyTypes=["Ingress"])
NP_FROM_DEV = netpol("from-dev", ingress=[{"from": [{"namespaceSelector": name_is("dev")}]}])

# fmt: off
TIERS = [
    # Admin tier: first matching rule decides
    Case("an Admin Deny denies", [DEV_TO_PROD], DEV_WEB, WEB, ADMIN_DENY),
    Case("an Admin rule matches only its peers", [DEV_TO_PROD], TOOL, WEB, NOT_ISOLATED),
    Case("an Admin rule applies only to its subject", [DEV_TO_PROD], WEB, DEV_WEB, NOT_ISOLATED),
    Case("an Admin Accept overrides a NetworkPolicy that denies",
         [NP_DENY_ALL, cnp("a", IN_PROD, ingress=[ingress("Accept", DEV)])],
         DEV_WEB, WEB, ADMIN_ALLOW),
    Case("an Admin Deny overrides a NetworkPolicy that allows",
         [NP_FROM_DEV, DEV_TO_PROD], DEV_WEB, WEB, ADMIN_DENY),
    Case("an egress Accept does not bypass the destination's ingress",
         [NP_DENY_ALL, cnp("a", IN_DEV, egress=[egress("Accept", PROD)])],
         DEV_WEB, WEB, DENIED_INGRESS),
    Case("Pass skips the rest of the Admin tier",
         [cnp("a", IN_PROD, priority=1, ingress=[ingress("Pass", DEV)]),
          cnp("b", IN_PROD, priority=2, ingress=[ingress("Deny", DEV)])],
         DEV_WEB, WEB, NOT_ISOLATED),
    Case("Pass hands the direction to NetworkPolicy",
         [NP_DENY_ALL, cnp("a", IN_PROD, ingress=[ingress("Pass", DEV)])],
         DEV_WEB, WEB, DENIED_INGRESS),
    Case("Pass hands the direction to the Baseline tier when no NetworkPolicy selects the pod",
         [cnp("a", IN_PROD, ingress=[ingress("Pass", DEV)]),
          cnp("b", IN_PROD, tier="Baseline", ingress=[ingress("Deny", DEV)])],
         DEV_WEB, WEB, BASE_DENY),
    Case("a lower priority number is read first",
         [cnp("a", IN_PROD, priority=20, ingress=[ingress("Deny", DEV)]),
          cnp("b", IN_PROD, priority=5, ingress=[ingress("Accept", DEV)])],
         DEV_WEB, WEB, ADMIN_ALLOW),
    Case("rules of one policy are read in order",
         [cnp("a", IN_PROD, ingress=[ingress("Accept", DEV),
                                               ingress("Deny", EVERY_NS)])],
         DEV_WEB, WEB, ADMIN_ALLOW),
    Case("a later rule still decides what the first does not match",
         [cnp("a", IN_PROD, ingress=[ingress("Accept", DEV),
                                               ingress("Deny", EVERY_NS)])],
         TOOL, WEB, ADMIN_DENY),
    Case("equal priorities are read by name (a deterministic choice)",
         [cnp("b-deny", IN_PROD, ingress=[ingress("Deny", DEV)]),
          cnp("a-accept", IN_PROD, ingress=[ingress("Accept", DEV)])],
         DEV_WEB, WEB, ADMIN_ALLOW),
    # NetworkPolicy, then Baseline
    Case("a NetworkPolicy that selects the pod decides before the Baseline tier",
         [NP_FROM_DEV, cnp("b", IN_PROD, tier="Baseline",
                           ingress=[ingress("Deny", DEV)])],
         DEV_WEB, WEB, NP_ALLOW),
    Case("a NetworkPolicy for the other direction leaves this one to the Baseline tier",
         [netpol("eg", policyTypes=["Egress"]), cnp("b", IN_PROD, tier="Baseline",
                                                   ingress=[ingress("Deny", DEV)])],
         DEV_WEB, WEB, BASE_DENY),
    Case("a Baseline Deny denies", [cnp("b", IN_PROD, tier="Baseline",
                                        ingress=[ingress("Deny", EVERY_NS)])],
         DEV_WEB, WEB, BASE_DENY),
    Case("a Baseline Accept allows", [cnp("b", IN_PROD, tier="Baseline",
                                          ingress=[ingress("Accept", EVERY_NS)])],
         DEV_WEB, WEB, BASE_ALLOW),
    Case("a Baseline Pass falls through to the default allow",
         [cnp("a", IN_PROD, tier="Baseline", priority=1, ingress=[ingress("Pass", EVERY_NS)]),
          cnp("b", IN_PROD, tier="Baseline", priority=2, ingress=[ingress("Deny", EVERY_NS)])],
         DEV_WEB, WEB, NOT_ISOLATED, v1alpha2_only=True),
    Case("no tier matching: allowed, and no implicit isolation",
         [cnp("a", IN_PROD, ingress=[ingress("Deny", LAB)])],
         DEV_WEB, WEB, NOT_ISOLATED),
    Case("an Admin denial outranks a NetworkPolicy denial in the reason",
         [cnp("a", IN_DEV, egress=[egress("Deny", PROD)]), NP_DENY_ALL],
         DEV_WEB, WEB, ADMIN_DENY),
    Case("a NetworkPolicy denial outranks a Baseline denial in the reason",
         [cnp("b", IN_DEV, tier="Baseline", egress=[egress("Deny", EVERY_NS)]), NP_DENY_ALL],
         DEV_WEB, WEB, DENIED_INGRESS),
    # subjects
    Case("a pods subject selects by namespace and pod labels",
         [cnp("a", pods("prod", app="db"), ingress=[ingress("Deny", EVERY_NS)])],
         DEV_WEB, DB, ADMIN_DENY),
    Case("a pods subject leaves other pods of the namespace alone",
         [cnp("a", pods("prod", app="db"), ingress=[ingress("Deny", EVERY_NS)])],
         DEV_WEB, WEB, NOT_ISOLATED),
    Case("a hostNetwork pod is never a subject",
         [cnp("a", IN_PROD, egress=[egress("Deny", {"networks": ["0.0.0.0/0"]})])],
         N3, DEV_WEB, NOT_ISOLATED),
    Case("a pod connecting to its own IP is not subject to cluster policy",
         [cnp("a", IN_PROD, egress=[egress("Deny", {"networks": ["0.0.0.0/0"]})])],
         WEB, WEB, LOOPBACK),
    # peers
    Case("a pods peer matches namespace and pod labels",
         [cnp("a", IN_PROD, egress=[egress("Deny", pods("prod", app="db"))])],
         WEB, DB, ADMIN_DENY),
    Case("a pods peer does not match other pods",
         [cnp("a", IN_PROD, egress=[egress("Deny", pods("prod", app="db"))])],
         WEB, API, NOT_ISOLATED),
    Case("a namespaces peer never matches a hostNetwork pod",
         [cnp("a", IN_DEV, ingress=[ingress("Deny", EVERY_NS)])],
         N3, DEV_WEB, NOT_ISOLATED),
    Case("networks match pod addresses: 0.0.0.0/0 includes pod-to-pod traffic",
         [cnp("a", IN_PROD, egress=[egress("Deny", {"networks": ["0.0.0.0/0"]})])],
         WEB, DEV_WEB, ADMIN_DENY),
    Case("networks match external addresses",
         [cnp("a", IN_PROD, egress=[egress("Deny", {"networks": ["8.8.8.0/24"]})])],
         WEB, EXT, ADMIN_DENY),
    Case("networks of one family never match the other",
         [cnp("a", IN_PROD, egress=[egress("Deny", {"networks": ["0.0.0.0/0"]})])],
         "fd00::1", EXT6, NOT_ISOLATED),
    Case("nodes match node addresses by the Node's labels",
         [labelled_node("n5", "192.168.0.5", role="infra"),
          cnp("a", IN_PROD, egress=[egress("Deny", {"nodes": labels(role="infra")})])],
         WEB, "192.168.0.5", ADMIN_DENY),
    Case("nodes do not match a node whose labels differ",
         [labelled_node("n5", "192.168.0.5", role="infra"),
          cnp("a", IN_PROD, egress=[egress("Deny", {"nodes": labels(role="infra")})])],
         WEB, N2, NOT_ISOLATED),
    Case("an empty nodes selector matches every node",
         [cnp("a", IN_PROD, egress=[egress("Deny", {"nodes": {}})])],
         FRONT, N1, ADMIN_DENY),
    Case("nodes do not match pods",
         [cnp("a", IN_PROD, egress=[egress("Deny", {"nodes": {}})])],
         WEB, DEV_WEB, NOT_ISOLATED),
    Case("domainNames never match: the next rule decides, with a note",
         [cnp("a", IN_PROD, egress=[egress("Accept", {"domainNames": ["dns.google"]}, name="google"),
                                              egress("Deny", {"networks": ["0.0.0.0/0"]})])],
         WEB, EXT, ADMIN_DENY,
         notes=("domain-names: {kind} a egress rule 0 (google) names domains, "
                "which no IP can be matched against: skipped",)),
    # protocols and ports
    Case("a TCP port matches", [cnp("a", IN_PROD, ingress=[ingress("Deny", EVERY_NS,
                                                                            protocols=[tcp(80)])])],
         DEV_WEB, WEB, ADMIN_DENY),
    Case("another TCP port does not", [cnp("a", IN_PROD, ingress=[ingress("Deny", EVERY_NS,
                                                                                  protocols=[tcp(81)])])],
         DEV_WEB, WEB, NOT_ISOLATED),
    Case("a UDP port needs UDP", [cnp("a", IN_PROD, ingress=[ingress("Deny", EVERY_NS,
                                                                             protocols=[udp(80)])])],
         DEV_WEB, WEB, NOT_ISOLATED),
    Case("a UDP port matches UDP", [cnp("a", IN_PROD, ingress=[ingress("Deny", EVERY_NS,
                                                                               protocols=[udp(53)])])],
         DEV_WEB, WEB, ADMIN_DENY, port=53, protocol="UDP"),
    Case("an SCTP port matches SCTP", [cnp("a", IN_PROD, ingress=[ingress("Deny", EVERY_NS,
                                                                                  protocols=[sctp(7000)])])],
         DEV_WEB, WEB, ADMIN_DENY, port=7000, protocol="SCTP"),
    Case("a range includes its ends",
         [cnp("a", IN_PROD, ingress=[ingress("Deny", EVERY_NS, protocols=[tcp_range(70, 80)])])],
         DEV_WEB, WEB, ADMIN_DENY),
    Case("a named port is resolved on the destination pod",
         [cnp("a", IN_DEV, egress=[egress("Deny", EVERY_NS, protocols=[named("http")])])],
         DEV_WEB, API, ADMIN_DENY, port=8080),
    Case("a named port does not match another port of the destination",
         [cnp("a", IN_DEV, egress=[egress("Deny", EVERY_NS, protocols=[named("http")])])],
         DEV_WEB, API, NOT_ISOLATED, port=80),
    Case("a named port carries its container port's protocol",
         [cnp("a", IN_PROD, ingress=[ingress("Deny", EVERY_NS, protocols=[named("dns")])])],
         DEV_WEB, WEB, ADMIN_DENY, port=53, protocol="UDP"),
    Case("a rule with protocols never matches ICMP",
         [cnp("a", IN_PROD, ingress=[ingress("Deny", EVERY_NS, protocols=[tcp(80)])])],
         DEV_WEB, WEB, NOT_ISOLATED, port=0, protocol="ICMP"),
    Case("a rule without protocols matches ICMP",
         [cnp("a", IN_PROD, ingress=[ingress("Deny", EVERY_NS)])],
         DEV_WEB, WEB, ADMIN_DENY, port=0, protocol="ICMP"),
]
# fmt: on

VERSIONS = ["v1alpha2", "v1alpha1"]


def _rows() -> list[Any]:
    rows = []
    for case in TIERS:
        for version in VERSIONS:
            if version == "v1alpha1" and case.v1alpha2_only:
                continue
            rows.append(pytest.param(case, version, id=f"{version}: {case.id}"))
    return rows


def _objects(case: Case, version: str) -> list[dict[str, Any]]:
    docs = case.objects if version == "v1alpha2" else [to_v1alpha1(d) for d in case.objects]
    kinds = [d["kind"] for d in docs]
    assert kinds.count("BaselineAdminNetworkPolicy") <= 1, (
        "v1alpha1 has one Baseline policy: mark v1alpha2_only"
    )
    return docs


@pytest.mark.parametrize(("case", "version"), _rows())
def test_tier_rule(evaluator_factory: EvaluatorFactory, case: Case, version: str) -> None:
    d = decide(
        evaluator_factory,
        world(*_objects(case, version)),
        case.src,
        case.dst,
        port=case.port,
        protocol=case.protocol,
    )
    expected = Verdict.DENY if case.reason in DENIALS else Verdict.ALLOW
    assert (d.verdict, d.reason) == (expected, case.reason), d
    kind = "ClusterNetworkPolicy" if version == "v1alpha2" else "AdminNetworkPolicy"
    domain_notes = tuple(n for n in d.notes if n.startswith("domain-names:"))
    assert domain_notes == tuple(n.format(kind=kind) for n in case.notes)


# --- explanations ---------------------------------------------------------------------------


def test_trace_names_tier_policy_rule_and_action(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(
        cnp(
            "pass-dev",
            IN_PROD,
            priority=1,
            ingress=[ingress("Pass", DEV, name="hand-to-teams")],
        ),
        cnp(
            "baseline",
            IN_PROD,
            tier="Baseline",
            ingress=[
                ingress("Accept", LAB),
                ingress("Deny", EVERY_NS, name="default-deny"),
            ],
        ),
    )
    d = evaluator_factory(objs).decide(_flow(DEV_WEB, WEB), explain=True)
    assert d.reason is BASE_DENY
    assert d.ingress is not None and d.egress is not None
    assert d.ingress.decided_by == TierRuleRef(
        "Baseline", "ClusterNetworkPolicy baseline", 1, "default-deny", "Deny"
    )
    assert d.ingress.passed == (
        TierRuleRef("Admin", "ClusterNetworkPolicy pass-dev", 0, "hand-to-teams", "Pass"),
    )
    assert not d.ingress.allowed and not d.ingress.isolated
    assert d.egress.decided_by is None and d.egress.allowed
    body = d.to_dict()["explanation"]["ingress"]
    assert body["decided_by"] == {
        "tier": "Baseline",
        "policy": "ClusterNetworkPolicy baseline",
        "rule": 1,
        "name": "default-deny",
        "action": "Deny",
    }
    assert [p["action"] for p in body["passed"]] == ["Pass"]


def test_trace_keeps_network_policy_isolation_when_admin_decides(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(NP_FROM_DEV, DEV_TO_PROD)
    d = evaluator_factory(objs).decide(_flow(DEV_WEB, WEB), explain=True)
    assert d.ingress is not None and d.ingress.decided_by is not None
    assert d.ingress.isolated and d.ingress.isolating == ("prod/from-dev",) and d.ingress.allowed_by == ()
    assert d.ingress.decided_by.policy == "ClusterNetworkPolicy dev-to-prod"


def test_a_world_without_cluster_policies_answers_as_before(evaluator_factory: EvaluatorFactory) -> None:
    objs = world(NP_FROM_DEV)
    d = evaluator_factory(objs).decide(_flow(DEV_WEB, WEB), explain=True)
    assert d.reason is NP_ALLOW
    assert d.ingress is not None and "decided_by" not in d.ingress.to_dict()


def test_admin_and_network_policy_and_baseline_versions_mix(evaluator_factory: EvaluatorFactory) -> None:
    """An ANP (v1alpha1) and a CNP (v1alpha2) share the Admin tier by priority."""
    anp = to_v1alpha1(cnp("anp", IN_PROD, priority=3, ingress=[ingress("Accept", EVERY_NS)]))
    later = cnp("cnp", IN_PROD, priority=4, ingress=[ingress("Deny", EVERY_NS)])
    d = decide(evaluator_factory, world(anp, later), DEV_WEB, WEB)
    assert d.reason is ADMIN_ALLOW
    earlier = cnp("cnp", IN_PROD, priority=2, ingress=[ingress("Deny", EVERY_NS)])
    assert decide(evaluator_factory, world(anp, earlier), DEV_WEB, WEB).reason is ADMIN_DENY


def _flow(src: str, dst: str) -> Flow:
    return make_flow(src, dst, "TCP", 80)
