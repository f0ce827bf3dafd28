"""Why not: for a denied direction, the nearest rules that did not match, and why.

A denial says *which* policies isolated the pod; a person fixing the policy also
needs to know *how far* each rule was from allowing the flow: which label of
which selector failed, which port or protocol, which ``except``.  This module
answers that, off the hot path, from the model objects of the decision's own
generation (``Generation.object``), for a decision the index has already
explained.

Which rules are candidates (they are the rules that were read and missed):

- NetworkPolicy decided (the pod is isolated, no cluster rule decided): every
  rule of every isolating policy for that direction, and the Admin tier's Accept
  rules read before it (up to a Pass);
- an Admin Deny decided: the Admin Accept rules before it;
- a Baseline Deny decided: the Admin Accept rules read, and the Baseline Accept
  rules before the Deny.

For each candidate, the mismatches are the failed conditions of its nearest
peer (one of ``from``/``to``; none when the rule has no peers) plus those of
its nearest port entry (none when it has no ports): the rule would match if
every listed condition were met.  "Nearest" is fewest mismatches; the list is
cut to :data:`MAX_NEAR_MISSES` per direction and ``missed`` says how many rules
missed in all.

Mismatch kinds (``Mismatch.message``; ``field`` is the policy's Kubernetes path):

- ``label <k> missing`` / ``label <k> differs`` (matchLabels), ``label <k>
  missing`` / ``expression fails`` (matchExpressions), on the peer pod's or its
  namespace's labels;
- ``a podSelector alone selects pods of the policy's namespace``;
- ``selectors match pods only`` (the peer is a node or external);
- ``address outside the cidr`` / ``address inside an except`` / ``address family
  differs`` (ipBlock), ``address in none of the networks``;
- ``protocol differs``, ``port outside the range``, ``named port missing on the
  destination pod``, ``only TCP, UDP and SCTP have ports``;
- ``domain names never match an address`` (a cluster ``domainNames`` peer).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from netpol_pdp.index.decision import Decision, DirectionTrace, Mismatch, NearMiss, TierRuleRef, Verdict
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.generation import ClusterDir, Generation, NodeEntry, PodEntry, TierRule
from netpol_pdp.index.model import (
    NAMED_PORT_PROTOCOL,
    NAMESPACE_NAME_LABEL,
    PORT_PROTOCOLS,
    Action,
    ClusterPeer,
    ClusterPolicy,
    ClusterRule,
    Kind,
    LabelSelector,
    Namespace,
    NetworkPolicy,
    Node,
    Operator,
    Peer,
    Pod,
    PolicyPort,
    Rule,
    Tier,
)

#: Near misses listed per denied direction (the nearest; ``NearMiss.missed`` counts all).
MAX_NEAR_MISSES = 3
MISSING = "(missing)"
_NEEDS_KEY = (Operator.IN, Operator.EXISTS)


@dataclass(frozen=True, slots=True)
class _End:
    """One end of the flow as the rules see it."""

    ip: str
    pod: Pod | None
    node: Node | None
    namespace_labels: Mapping[str, str]

    def describe(self) -> str:
        if self.pod is not None:
            return f"pod {self.pod.namespace}/{self.pod.name}"
        if self.node is not None:
            return f"node {self.node.name} ({self.ip})"
        return f"external {self.ip}"


def _end(gen: Generation, ip: str) -> _End:
    entry = gen.entry(ip)
    if type(entry) is PodEntry:
        namespace, _, name = entry.name.partition("/")
        pod = gen.object((Kind.POD, namespace, name))
        if isinstance(pod, Pod):
            return _End(ip, pod, None, _namespace_labels(gen, namespace))
    if type(entry) is NodeEntry and entry.node is not None:
        node = gen.object((Kind.NODE, "", entry.node))
        return _End(ip, None, node if isinstance(node, Node) else None, {})
    return _End(ip, None, None, {})


def _namespace_labels(gen: Generation, name: str) -> Mapping[str, str]:
    ns = gen.object((Kind.NAMESPACE, "", name))
    labels = dict(ns.labels) if isinstance(ns, Namespace) else {}
    labels[NAMESPACE_NAME_LABEL] = name
    return labels


# --- conditions -----------------------------------------------------------------------------


def selector_mismatches(selector: LabelSelector, labels: Mapping[str, str], path: str) -> list[Mismatch]:
    """Every term of ``selector`` that ``labels`` fail."""
    out: list[Mismatch] = []
    for key, value in selector.match_labels:
        got = labels.get(key)
        if got != value:
            message = f"label {key} missing" if got is None else f"label {key} differs"
            out.append(Mismatch(f"{path}.matchLabels.{key}", value, MISSING if got is None else got, message))
    for x, req in enumerate(selector.match_expressions):
        got = labels.get(req.key)
        values = ", ".join(sorted(req.values))
        if req.operator is Operator.IN:
            ok = got is not None and got in req.values
            want = f"{req.key} In [{values}]"
        elif req.operator is Operator.NOT_IN:
            ok = got is None or got not in req.values
            want = f"{req.key} NotIn [{values}]"
        elif req.operator is Operator.EXISTS:
            ok = got is not None
            want = f"{req.key} Exists"
        else:
            ok = got is None
            want = f"{req.key} DoesNotExist"
        if not ok:
            shown = f"{req.key} {MISSING}" if got is None else f"{req.key}={got}"
            message = (
                f"label {req.key} missing"
                if got is None and req.operator in _NEEDS_KEY
                else "expression fails"
            )
            out.append(Mismatch(f"{path}.matchExpressions[{x}]", want, shown, message))
    return out


def _ip_in(ip: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    address = ipaddress.ip_address(ip)
    return address.version == network.version and address in network


def _np_peer(peer: Peer, policy: NetworkPolicy, other: _End, path: str) -> list[Mismatch]:
    block = peer.ip_block
    if block is not None:
        p = f"{path}.ipBlock"
        if ipaddress.ip_address(other.ip).version != block.cidr.version:
            return [Mismatch(f"{p}.cidr", str(block.cidr), other.ip, "address family differs")]
        if not _ip_in(other.ip, block.cidr):
            return [Mismatch(f"{p}.cidr", str(block.cidr), other.ip, "address outside the cidr")]
        for x, ex in enumerate(block.except_):
            if _ip_in(other.ip, ex):
                return [Mismatch(f"{p}.except[{x}]", f"outside {ex}", other.ip, "address inside an except")]
        return []
    pod = other.pod
    if pod is None:
        return [Mismatch(path, "a pod", other.describe(), "selectors match pods only")]
    out: list[Mismatch] = []
    if peer.namespace_selector is None:
        if pod.namespace != policy.namespace:
            out.append(
                Mismatch(
                    f"{path}.podSelector",
                    f"namespace {policy.namespace}",
                    pod.namespace,
                    "a podSelector alone selects pods of the policy's namespace",
                )
            )
    else:
        out += selector_mismatches(
            peer.namespace_selector, other.namespace_labels, f"{path}.namespaceSelector"
        )
    if peer.pod_selector is not None:
        out += selector_mismatches(peer.pod_selector, pod.labels, f"{path}.podSelector")
    return out


def _cluster_peer(peer: ClusterPeer, other: _End, path: str) -> list[Mismatch]:
    if peer.namespace_selector is not None:
        p = f"{path}.pods" if peer.pod_selector is not None else f"{path}.namespaces"
        if other.pod is None:
            return [Mismatch(p, "a pod", other.describe(), "selectors match pods only")]
        if peer.pod_selector is None:
            return selector_mismatches(peer.namespace_selector, other.namespace_labels, p)
        return selector_mismatches(
            peer.namespace_selector, other.namespace_labels, f"{p}.namespaceSelector"
        ) + selector_mismatches(peer.pod_selector, other.pod.labels, f"{p}.podSelector")
    if peer.networks:
        if any(_ip_in(other.ip, n) for n in peer.networks):
            return []
        nets = ", ".join(str(n) for n in peer.networks)
        return [Mismatch(f"{path}.networks", nets, other.ip, "address in none of the networks")]
    if peer.node_selector is not None:
        if other.node is None:
            return [Mismatch(f"{path}.nodes", "a node", other.describe(), "a nodes peer matches nodes only")]
        return selector_mismatches(peer.node_selector, other.node.labels, f"{path}.nodes")
    return [
        Mismatch(f"{path}.domainNames", "an address", "domain names", "domain names never match an address")
    ]


def _port(entry: PolicyPort, flow: Flow, destination: _End, path: str) -> list[Mismatch]:
    out: list[Mismatch] = []
    named_any = entry.protocol == NAMED_PORT_PROTOCOL
    protocol = flow.protocol if named_any else entry.protocol
    if not named_any and entry.protocol != flow.protocol:
        out.append(Mismatch(f"{path}.protocol", entry.protocol, flow.protocol, "protocol differs"))
    if entry.port is None:
        return out
    if isinstance(entry.port, int):
        last = entry.end_port if entry.end_port is not None else entry.port
        if not entry.port <= flow.dst_port <= last:
            want = str(entry.port) if last == entry.port else f"{entry.port}-{last}"
            message = "port differs" if last == entry.port else "port outside the range"
            out.append(Mismatch(f"{path}.port", want, str(flow.dst_port), message))
        return out
    pod = destination.pod
    if pod is None:
        out.append(
            Mismatch(
                f"{path}.port", entry.port, destination.describe(), "a named port needs a pod destination"
            )
        )
        return out
    same = sorted({cp.port for cp in pod.ports if cp.name == entry.port and cp.protocol == protocol})
    where = f"the destination pod {pod.namespace}/{pod.name}"
    if not same:
        message = f"named port missing on {where} (no {protocol} container port {entry.port})"
        out.append(Mismatch(f"{path}.port", entry.port, MISSING, message))
    elif flow.dst_port not in same:
        numbers = ", ".join(map(str, same))
        message = f"port differs: {entry.port} is {protocol} {numbers} on {where}"
        out.append(Mismatch(f"{path}.port", f"{entry.port} ({numbers})", str(flow.dst_port), message))
    return out


def _nearest(options: Sequence[list[Mismatch]]) -> list[Mismatch]:
    return min(options, key=len) if options else []


def _ports(ports: Sequence[PolicyPort], flow: Flow, destination: _End, path: str) -> list[Mismatch]:
    if not ports:
        return []
    if flow.protocol not in PORT_PROTOCOLS:
        return [Mismatch(path, "TCP, UDP or SCTP", flow.protocol, "only TCP, UDP and SCTP have ports")]
    return _nearest([_port(e, flow, destination, f"{path}[{k}]") for k, e in enumerate(ports)])


def np_rule_mismatches(
    policy: NetworkPolicy, direction: str, index: int, rule: Rule, flow: Flow, peer: _End, destination: _End
) -> list[Mismatch]:
    """Why NetworkPolicy ``policy``'s rule ``index`` of ``direction`` misses the flow (empty: it matches)."""
    base = f"spec.{direction}[{index}]"
    peers_field = "from" if direction == "ingress" else "to"
    peers = (
        _nearest([_np_peer(p, policy, peer, f"{base}.{peers_field}[{j}]") for j, p in enumerate(rule.peers)])
        if rule.peers
        else []
    )
    return peers + _ports(rule.ports, flow, destination, f"{base}.ports")


def cluster_rule_mismatches(
    policy: ClusterPolicy,
    direction: str,
    index: int,
    rule: ClusterRule,
    flow: Flow,
    peer: _End,
    destination: _End,
) -> list[Mismatch]:
    """Why cluster policy ``policy``'s rule ``index`` of ``direction`` misses the flow."""
    base = f"spec.{direction}[{index}]"
    peers_field = "from" if direction == "ingress" else "to"
    peers = _nearest([_cluster_peer(p, peer, f"{base}.{peers_field}[{j}]") for j, p in enumerate(rule.peers)])
    ports_field = "protocols" if policy.kind is Kind.CLUSTER_NETWORK_POLICY else "ports"
    return peers + _ports(rule.ports, flow, destination, f"{base}.{ports_field}")


# --- candidates -----------------------------------------------------------------------------


def _cluster_candidates(
    gen: Generation, cdir: ClusterDir | None, trace: DirectionTrace
) -> list[tuple[ClusterPolicy, TierRuleRef]]:
    """The Accept rules read before the deciding point (R27): the Admin tier up to its
    deciding or Pass rule, and the Baseline tier up to its Deny when it decided."""
    if cdir is None:
        return []
    stops = {trace.decided_by, *trace.passed}

    def read(rules: Sequence[TierRule]) -> list[TierRuleRef]:
        out: list[TierRuleRef] = []
        for rule in rules:
            if rule.ref in stops:
                break
            out.append(rule.ref)
        return out

    refs = read(cdir.rules[: cdir.admin])
    if trace.decided_by is not None and trace.decided_by.tier == Tier.BASELINE.value:
        refs += read(cdir.rules[cdir.admin :])
    out: list[tuple[ClusterPolicy, TierRuleRef]] = []
    for ref in refs:
        if ref.action != Action.ACCEPT.value:
            continue
        kind_text, _, name = ref.policy.partition(" ")
        policy = gen.object((Kind(kind_text), "", name))
        if isinstance(policy, ClusterPolicy):
            out.append((policy, ref))
    return out


def _direction_misses(
    gen: Generation, flow: Flow, trace: DirectionTrace, own: _End, peer: _End, destination: _End
) -> tuple[NearMiss, ...]:
    direction = trace.direction
    found: list[tuple[int, int, NearMiss]] = []
    own_entry = gen.entry(own.ip)
    cdir = None
    if type(own_entry) is PodEntry:
        view = gen.identity(own_entry.identity)
        cdir = view.cluster_egress if direction == "egress" else view.cluster_ingress
    np_decided = trace.decided_by is None and trace.isolated
    for policy, ref in _cluster_candidates(gen, cdir, trace):
        rules = policy.egress if direction == "egress" else policy.ingress
        mismatches = cluster_rule_mismatches(
            policy, direction, ref.rule, rules[ref.rule], flow, peer, destination
        )
        if mismatches:
            miss = NearMiss(
                ref.policy, ref.rule, direction, tuple(mismatches), ref.tier, ref.name, ref.action
            )
            found.append((len(mismatches), len(found), miss))
    if np_decided:
        for qualified in trace.isolating:
            namespace, _, name = qualified.partition("/")
            np_policy = gen.object((Kind.NETWORK_POLICY, namespace, name))
            if not isinstance(np_policy, NetworkPolicy):
                continue
            np_rules = np_policy.egress if direction == "egress" else np_policy.ingress
            for i, np_rule in enumerate(np_rules):
                mismatches = np_rule_mismatches(np_policy, direction, i, np_rule, flow, peer, destination)
                if mismatches:
                    miss = NearMiss(qualified, i, direction, tuple(mismatches))
                    found.append((len(mismatches), len(found), miss))
    found.sort(key=lambda t: (t[0], t[1]))
    return tuple(dataclasses.replace(m, missed=len(found)) for _, _, m in found[:MAX_NEAR_MISSES])


def why_not(gen: Generation, flow: Flow, decision: Decision) -> Decision:
    """``decision`` (explained, made at ``gen``) with the near misses of each denied direction."""
    if decision.verdict is Verdict.ALLOW or not decision.explained:
        return decision
    src, dst = _end(gen, flow.src_ip), _end(gen, flow.dst_ip)
    egress, ingress = decision.egress, decision.ingress
    if egress is not None and not egress.allowed:
        egress = dataclasses.replace(egress, near_misses=_direction_misses(gen, flow, egress, src, dst, dst))
    if ingress is not None and not ingress.allowed:
        ingress = dataclasses.replace(
            ingress, near_misses=_direction_misses(gen, flow, ingress, dst, src, dst)
        )
    return dataclasses.replace(decision, egress=egress, ingress=ingress)
