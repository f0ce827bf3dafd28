"""Cluster-scoped policy tiers: compiling rules (writer) and finding the first match (readers).

docs/semantics.md section 6.  Per direction the Admin tier is read first, rules
in (priority, name, kind, rule index) order; the first rule that matches decides
(Accept / Deny) or ends the tier (Pass).  NetworkPolicy comes next, then the
Baseline tier the same way, then the default allow.  The engine calls
:func:`first_match` only when a generation holds cluster policies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from netpol_pdp.index.decision import Reason, TierRuleRef
from netpol_pdp.index.generation import ClusterDir, TierRule
from netpol_pdp.index.ipblocks import IPBlockMatcher
from netpol_pdp.index.model import (
    NAMED_PORT_PROTOCOL,
    NAMESPACE_NAME_LABEL,
    PORT_PROTOCOLS,
    Action,
    ClusterPolicy,
    IPBlock,
    Namespace,
    Object,
    Pod,
    PolicyPort,
    Tier,
)
from netpol_pdp.index.ports import PortIndex
from netpol_pdp.index.selectors import PeerKey, matches, peer_key

#: Which stage decided a direction (small ints: compared on the decision path).
NONE, BASELINE, POLICY, ADMIN = 0, 1, 2, 3


def subject_key(policy: ClusterPolicy) -> PeerKey:
    """The subject as a selector key (a ``namespaces`` subject is every pod of those namespaces)."""
    return peer_key("", policy.subject.pod_selector, policy.subject.namespace_selector)


def peer_keys(policy: ClusterPolicy) -> list[PeerKey]:
    """Selector keys of every ``namespaces``/``pods`` peer of the policy."""
    return [
        peer_key("", peer.pod_selector, peer.namespace_selector)
        for rules in (policy.ingress, policy.egress)
        for rule in rules
        for peer in rule.peers
        if peer.namespace_selector is not None
    ]


def _expand(ports: tuple[PolicyPort, ...]) -> tuple[PolicyPort, ...]:
    """A named port of a cluster rule matches with the container port's protocol: any of three."""
    out: list[PolicyPort] = []
    for p in ports:
        if p.protocol == NAMED_PORT_PROTOCOL:
            out.extend(PolicyPort(proto, p.port) for proto in PORT_PROTOCOLS)
        else:
            out.append(p)
    return tuple(out)


def compile_direction(
    direction: str, policies: Sequence[ClusterPolicy], selector_id: Callable[[PeerKey], int]
) -> ClusterDir | None:
    """The ordered cluster rules of ``policies`` for ``direction`` (``ingress``/``egress``)."""
    ordered = sorted(policies, key=lambda c: c.order)
    rules: list[TierRule] = []
    port_rules: list[tuple[int, tuple[PolicyPort, ...]]] = []
    blocks: list[tuple[int, IPBlock]] = []
    admin = 0
    for policy in ordered:
        for i, rule in enumerate(policy.egress if direction == "egress" else policy.ingress):
            rule_id = len(rules)
            any_pod = False
            sels: set[int] = set()
            nodes = []
            domains = False
            for peer in rule.peers:
                if peer.namespace_selector is not None:
                    key = peer_key("", peer.pod_selector, peer.namespace_selector)
                    if key.is_any_pod:
                        any_pod = True
                    else:
                        sels.add(selector_id(key))
                elif peer.node_selector is not None:
                    nodes.append(peer.node_selector)
                elif peer.networks:
                    blocks.extend((rule_id, IPBlock(net)) for net in peer.networks)
                else:
                    domains = True
            named = f" ({rule.name})" if rule.name else ""
            note = (
                f"domain-names: {policy.ref} {direction} rule {i}{named} names domains, "
                "which no IP can be matched against: skipped"
                if domains
                else None
            )
            ref = TierRuleRef(policy.tier.value, policy.ref, i, rule.name, rule.action.value)
            networks = any(peer.networks for peer in rule.peers)
            rules.append(
                TierRule(
                    ref,
                    rule.action is Action.DENY,
                    rule.action is Action.PASS,
                    any_pod,
                    frozenset(sels),
                    tuple(nodes),
                    note,
                    networks,
                )
            )
            port_rules.append((rule_id, _expand(rule.ports)))
            if policy.tier is Tier.ADMIN:
                admin = len(rules)
    if not rules:
        return None
    return ClusterDir(tuple(rules), admin, PortIndex(port_rules), IPBlockMatcher(blocks) if blocks else None)


def first_match(
    cdir: ClusterDir,
    admin: bool,
    peer_selectors: frozenset[int] | None,
    peer_ip: str,
    peer_node_labels: Mapping[str, str] | None,
    protocol: str,
    port: int,
    dst_ports: frozenset[tuple[str, str, int]] | None,
    notes: list[str],
) -> TierRule | None:
    """The first rule of one tier that matches the flow, or None; notes skipped domain rules."""
    lo, hi = (0, cdir.admin) if admin else (cdir.admin, len(cdir.rules))
    if lo == hi:
        return None
    candidates = cdir.ports.candidates(protocol, port, dst_ports)
    if not candidates:
        return None
    by_ip: frozenset[int] | None = None  # looked up once, and only for a rule with networks
    rules = cdir.rules
    # the portless rules come as one tuple in rule order; anything else may repeat, unsorted
    ordered = candidates if candidates is cdir.ports.portless else sorted(set(candidates))
    for rid in ordered:
        if rid < lo:
            continue
        if rid >= hi:
            break
        rule = rules[rid]
        if peer_selectors is not None and (
            rule.any_pod or (rule.selectors and not rule.selectors.isdisjoint(peer_selectors))
        ):
            return rule
        if rule.networks and cdir.ipblocks is not None:
            if by_ip is None:
                by_ip = cdir.ipblocks.rules_for(peer_ip)
            if rid in by_ip:
                return rule
        if (
            rule.nodes
            and peer_node_labels is not None
            and any(matches(s, peer_node_labels) for s in rule.nodes)
        ):
            return rule
        if rule.domain_note is not None:
            notes.append(rule.domain_note)
    return None


def priority_ties(objects: Iterable[Object]) -> list[str]:
    """Warnings for cluster policies of one tier and one priority whose subjects select a
    common live pod of ``objects`` (the API leaves their order undefined; we read by name)."""
    policies = sorted((o for o in objects if isinstance(o, ClusterPolicy)), key=lambda c: c.order)
    pods = [o for o in objects if isinstance(o, Pod) and o.live and not o.host_network]
    ns_labels = {o.name: o.labels for o in objects if isinstance(o, Namespace)}

    def selected(policy: ClusterPolicy) -> set[tuple[str, str]]:
        key = subject_key(policy)
        return {
            (p.namespace, p.name)
            for p in pods
            if key.matches(
                p.namespace, p.labels, ns_labels.get(p.namespace, {NAMESPACE_NAME_LABEL: p.namespace})
            )
        }

    out: list[str] = []
    for i, a in enumerate(policies):
        for b in policies[i + 1 :]:
            if (a.tier, a.priority) != (b.tier, b.priority):
                break
            common = selected(a) & selected(b)
            if common:
                ns, name = min(common)
                out.append(
                    f"warning: {a.ref} and {b.ref} share the {a.tier.value} tier priority {a.priority} "
                    f"and both select {ns}/{name}: the API leaves their order undefined; "
                    f"{a.ref} is read first (by name)"
                )
    return out


def reason(e_ok: bool, e_stage: int, i_ok: bool, i_stage: int) -> Reason:
    """The decision's reason from each direction's outcome and deciding stage (an end that
    is not a pod counts as allowed by no stage)."""
    if not (e_ok and i_ok):
        if (not e_ok and e_stage == ADMIN) or (not i_ok and i_stage == ADMIN):
            return Reason.DENIED_BY_ADMIN
        e_np, i_np = not e_ok and e_stage == POLICY, not i_ok and i_stage == POLICY
        if e_np and i_np:
            return Reason.DENIED_BOTH
        if e_np:
            return Reason.DENIED_EGRESS
        if i_np:
            return Reason.DENIED_INGRESS
        return Reason.DENIED_BY_BASELINE
    top = max(e_stage, i_stage)
    if top == ADMIN:
        return Reason.ALLOWED_BY_ADMIN
    if top == POLICY:
        return Reason.ALLOWED_BY_POLICY
    if top == BASELINE:
        return Reason.ALLOWED_BY_BASELINE
    return Reason.NOT_ISOLATED
