"""Who can reach a pod, and what can it reach: answered from one published generation.

docs/queries.md "Who can reach".  Read side only: everything is computed from the
generation's compiled identities and rules (:class:`DirPolicy`, :class:`ClusterDir`,
their :class:`PortIndex` and :class:`IPBlockMatcher`), never by enumerating flows.

What an answer means, for a target pod T and a direction:

- **ingress** ("who can reach T"): the peers P for which a flow P -> T is allowed;
  **egress** ("what can T reach"): the peers P for which T -> P is allowed.
- A **pod** peer is judged on both sides, as a decision is: for ingress, P's
  egress (toward T's address) *and* T's ingress; for egress, T's egress and P's
  ingress.  A **node** address (a node's, or a hostNetwork pod's) and an **IP
  range** outside the cluster are judged on T's side only: nothing else applies.
- Each peer comes with the port set allowed (``TCP 80,443; UDP 53``, ranges
  merged; ``other protocols`` for ICMP, GRE and the rest) and the rules that
  allow some of it: NetworkPolicy rules as ``ns/policy ingress rule 0``, tier rules
  as ``AdminNetworkPolicy name egress rule 1 (name): Accept``, and
  ``<the target's identity>: not isolated for <direction>`` or ``peer: not isolated
  for <direction>`` where nothing isolates that side.
- The exemptions are not policy and are listed apart: a pod always reaches itself
  (``loopback``) and its own node (``node-traffic``), whatever the groups say.
- IP ranges are ``cidr`` minus ``except`` arithmetic on the direction's ipBlocks
  and ``networks`` (netaddr ``IPSet``), merged per port set, in T's address
  family.  They describe addresses outside the cluster: pod and node addresses
  inside a range are answered, exactly, in the pods and nodes sections.

Shape and why: peers are grouped before anything is judged.  Pod addresses with
the same identity, the same named ports (when they are the destination) and the
same ipBlock matches on T's side get one judgement, so a query costs one pass
over the generation's pod addresses (a catalogue built once per generation and
kept beside it) plus one judgement per group.  Judgements reuse each rule's port
set, built once per query per (:class:`PortIndex`, named ports).

A selector target (namespace + labels) is answered per *target class*: selected
pods with the same identity, named ports and address matches in the peers'
ipBlocks share one answer, so a Deployment is usually one class.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netaddr import IPNetwork, IPSet

from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import normalize_port, normalize_protocol
from netpol_pdp.index.generation import (
    SHARD_MASK,
    ClusterDir,
    DirPolicy,
    Generation,
    IdentityView,
    NodeEntry,
    PodEntry,
)
from netpol_pdp.index.ipblocks import IPBlockMatcher
from netpol_pdp.index.model import PORT_PROTOCOLS, LabelSelector, PolicyPort
from netpol_pdp.index.ports import PortIndex
from netpol_pdp.index.portsets import EVERYTHING, NOTHING, PortSet
from netpol_pdp.index.selectors import matches, parse_selector_text

INGRESS, EGRESS = "ingress", "egress"
DIRECTIONS = (INGRESS, EGRESS)
#: pod names listed per group (the count is always exact)
NAMES_LISTED = 50
_NONE: frozenset[int] = frozenset()
NamedPorts = frozenset[tuple[str, str, int]]


class ReachError(ValueError):
    """A reach query that names no pod, or a bad target: the message says which."""


# ---------------------------------------------------------------- the answer


@dataclass(frozen=True, slots=True)
class PodGroup:
    """Pods of one identity (namespace + labels) allowed on the same ports by the same rules."""

    namespace: str
    labels: tuple[tuple[str, str], ...]
    count: int
    pods: tuple[str, ...]  # sorted, at most NAMES_LISTED
    ports: PortSet
    rules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "labels": dict(self.labels),
            "count": self.count,
            "pods": list(self.pods),
            "ports": self.ports.text(),
            "port_ranges": self.ports.to_dict(),
            "rules": list(self.rules),
        }


@dataclass(frozen=True, slots=True)
class NodeGroup:
    """The addresses of one node (or of hostNetwork pods without a Node object)."""

    node: str | None
    addresses: tuple[str, ...]
    ports: PortSet
    rules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "addresses": list(self.addresses),
            "ports": self.ports.text(),
            "port_ranges": self.ports.to_dict(),
            "rules": list(self.rules),
        }


@dataclass(frozen=True, slots=True)
class RangeGroup:
    """Addresses outside the cluster allowed on the same ports by the same rules, as merged CIDRs."""

    cidrs: tuple[str, ...]
    ports: PortSet
    rules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cidrs": list(self.cidrs),
            "ports": self.ports.text(),
            "port_ranges": self.ports.to_dict(),
            "rules": list(self.rules),
        }


@dataclass(frozen=True, slots=True)
class TargetReach:
    """The answer for one class of target pods."""

    namespace: str
    labels: tuple[tuple[str, str], ...]
    pods: tuple[str, ...]
    address: str  # the class's first address (its family is the answer's)
    own_nodes: tuple[str, ...]  # always reached (node-traffic)
    pod_peers: tuple[PodGroup, ...]
    node_peers: tuple[NodeGroup, ...]
    range_peers: tuple[RangeGroup, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "labels": dict(self.labels),
            "pods": list(self.pods),
            "address": self.address,
            "own_nodes": list(self.own_nodes),
            "pods_allowed": [g.to_dict() for g in self.pod_peers],
            "nodes_allowed": [g.to_dict() for g in self.node_peers],
            "ranges_allowed": [g.to_dict() for g in self.range_peers],
        }


@dataclass(frozen=True, slots=True)
class ReachAnswer:
    direction: str
    generation: int
    protocol: str | None
    port: int | None
    targets: tuple[TargetReach, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "generation": self.generation,
            "protocol": self.protocol,
            "port": self.port,
            "targets": [t.to_dict() for t in self.targets],
        }


# ---------------------------------------------------------------- the catalogue


class _Memo:
    """Each rule's port set per (PortIndex, destination named ports); a generation's queries
    share one (its catalogue's), which also keeps the PortIndex objects, so ids stay unique."""

    def __init__(self) -> None:
        self.sets: dict[tuple[int, NamedPorts | None], dict[int, PortSet]] = {}
        self.keep: list[PortIndex] = []  # keeps ids stable for the memo's life

    def rule_sets(self, pindex: PortIndex, dst_ports: NamedPorts | None) -> dict[int, PortSet]:
        key = (id(pindex), dst_ports)
        found = self.sets.get(key)
        if found is None:
            found = {rid: _ports_of(ports, dst_ports) for rid, ports in pindex.rules}
            self.sets[key] = found
            self.keep.append(pindex)
        return found


#: the addresses of one identity with one family and named ports: (family, named ports, addresses, names)
Group = tuple[int, NamedPorts, list[tuple[str, PodEntry]], list[str]]


#: a class of identities (see ``Catalogue.classes``)
Klass = tuple[
    IdentityView, list[tuple[int, list[Group]]], dict[tuple[int, NamedPorts], list[tuple[int, list[str]]]]
]


@dataclass(slots=True)
class Catalogue:
    """Pod and node addresses of one generation, by identity and by pod name (built once).

    ``groups``: identity -> ``(family, named ports, addresses, pod names)``, so that a
    query without address-dependent rules judges an identity once, not each address.
    """

    by_identity: dict[int, list[tuple[str, PodEntry]]] = field(default_factory=lambda: defaultdict(list))
    by_name: dict[str, list[tuple[str, PodEntry]]] = field(default_factory=lambda: defaultdict(list))
    nodes: list[tuple[str, NodeEntry]] = field(default_factory=list)
    groups: dict[int, list[Group]] = field(default_factory=dict)
    texts: dict[int, str] = field(default_factory=dict)
    #: namespace -> identity ids (matrix and selector targets read one namespace)
    by_namespace: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    #: each rule's port set per (PortIndex, named ports), shared by the generation's queries
    memo: _Memo = field(default_factory=_Memo)
    #: identities that every query judges alike (equal memberships and compiled policies):
    #: ``(a view of the class, [(identity, its groups)], {(family, named ports): [(identity, names)]})``
    classes: list[Klass] = field(default_factory=list)

    def text(self, view: IdentityView) -> str:
        """:func:`identity_text` of ``view``, remembered."""
        found = self.texts.get(view.id)
        if found is None:
            found = self.texts[view.id] = identity_text(view.namespace, view.labels)
        return found


class _Latest:
    """The catalogue of the latest generation asked about (one slot: generations only move on)."""

    value: tuple[Generation, Catalogue] | None = None
    lock = threading.Lock()


def catalogue(gen: Generation) -> Catalogue:
    """The catalogue of ``gen``, built on first use and kept for the latest generation asked."""
    last = _Latest.value
    if last is not None and last[0] is gen:
        return last[1]
    with _Latest.lock:
        last = _Latest.value
        if last is not None and last[0] is gen:
            return last[1]
        cat = Catalogue()
        for shard in gen.addresses:
            for ip, entry in shard.items():
                if type(entry) is PodEntry:
                    cat.by_identity[entry.identity].append((ip, entry))
                    cat.by_name[entry.name].append((ip, entry))
                elif type(entry) is NodeEntry:
                    cat.nodes.append((ip, entry))
        for entries in (*cat.by_identity.values(), *cat.by_name.values()):
            entries.sort()
        cat.nodes.sort()
        for ident_id in cat.by_identity:
            cat.by_namespace[gen.identity(ident_id).namespace].append(ident_id)
        for ident_id, entries in cat.by_identity.items():
            split: dict[tuple[int, NamedPorts], list[tuple[str, PodEntry]]] = defaultdict(list)
            for ip, entry in entries:
                split[(_family(ip), entry.named_ports)].append((ip, entry))
            cat.groups[ident_id] = [(f, n, e, [x.name for _, x in e]) for (f, n), e in split.items()]
        by_class: dict[tuple[object, ...], Klass] = {}
        for ident_id, ident_groups in cat.groups.items():
            view = gen.identity(ident_id)
            key = (
                view.selectors, id(view.ingress), id(view.egress), id(view.cluster_ingress),
                id(view.cluster_egress),
            )  # fmt: skip
            klass = by_class.setdefault(key, (view, [], defaultdict(list)))
            klass[1].append((ident_id, ident_groups))
            for fam, named, _entries, names in ident_groups:
                klass[2][(fam, named)].append((ident_id, names))
        cat.classes = list(by_class.values())
        _Latest.value = (gen, cat)
        return cat


def identities(gen: Generation) -> Iterable[IdentityView]:
    return (view for shard in gen.identities for view in shard.values())


# ---------------------------------------------------------------- judging one side


def _ports_of(ports: tuple[PolicyPort, ...], dst_ports: NamedPorts | None) -> PortSet:
    """The port set of one rule's ``ports`` (named ports resolved on the destination pod)."""
    if not ports:
        return EVERYTHING
    by: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for p in ports:
        if p.port is None:
            by[p.protocol].append((1, 65535))
        elif isinstance(p.port, int):
            by[p.protocol].append((p.port, p.end_port or p.port))
        else:
            by[p.protocol].extend(
                (num, num) for name, proto, num in dst_ports or () if name == p.port and proto == p.protocol
            )
    return PortSet(by)


Allowed = tuple[PortSet, tuple[tuple[str, PortSet], ...]]


def judge(
    owner: str,
    direction: str,
    policy: DirPolicy | None,
    cdir: ClusterDir | None,
    peer_selectors: frozenset[int] | None,
    np_ip: frozenset[int],
    tier_ip: frozenset[int],
    peer_node_labels: Mapping[str, str] | None,
    dst_ports: NamedPorts | None,
    memo: _Memo,
) -> Allowed:
    """The ports one direction at ``owner`` allows a peer, and what allows each part.

    The peer is given by what rules can test: its identity's selector memberships
    (None: not a pod), the rule ids whose ipBlocks (``np_ip``) and ``networks``
    (``tier_ip``) hold its address, its node's labels.  Port by port this is the
    decision path's order (docs/semantics.md section 6): the Admin tier's first
    matching rule, then NetworkPolicy when isolated, else the Baseline tier, else allow.
    """
    allowed = NOTHING
    by: list[tuple[str, PortSet]] = []
    to_policy = EVERYTHING
    sets: dict[int, PortSet] = {}
    if cdir is not None:
        sets = memo.rule_sets(cdir.ports, dst_ports)
        allowed, to_policy = _tier(
            direction, cdir, 0, cdir.admin, sets, peer_selectors, tier_ip, peer_node_labels, by
        )
        # what Admin Pass rules or no Admin rule left: to NetworkPolicy or the Baseline tier
    if policy is not None:
        np_sets = memo.rule_sets(policy.ports, dst_ports)
        for rid, rule in enumerate(policy.rules):
            if (
                rule.any_peer
                or rid in np_ip
                or (
                    peer_selectors is not None
                    and (rule.any_pod or (rule.selectors and not rule.selectors.isdisjoint(peer_selectors)))
                )
            ):
                hit = np_sets[rid] & to_policy
                if hit:
                    allowed |= hit
                    by.append((f"{rule.policy} {direction} rule {rule.index}", hit))
        return allowed, tuple(by)
    rest = to_policy
    if cdir is not None and cdir.admin < len(cdir.rules):
        accepted, rest = _tier(
            direction, cdir, cdir.admin, len(cdir.rules),
            sets, peer_selectors, tier_ip, peer_node_labels, by, rest,
        )  # fmt: skip
        allowed |= accepted
    if rest:
        allowed |= rest
        by.append((f"{owner}: not isolated for {direction}", rest))
    return allowed, tuple(by)


def _tier(
    direction: str,
    cdir: ClusterDir,
    lo: int,
    hi: int,
    sets: Mapping[int, PortSet],
    peer_selectors: frozenset[int] | None,
    tier_ip: frozenset[int],
    peer_node_labels: Mapping[str, str] | None,
    by: list[tuple[str, PortSet]],
    open_: PortSet = EVERYTHING,
) -> tuple[PortSet, PortSet]:
    """One tier's rules ``[lo, hi)``, first match per port: (accepted, passed on or unmatched)."""
    accepted = NOTHING
    passed = NOTHING
    for rid in range(lo, hi):
        if not open_:
            break
        rule = cdir.rules[rid]
        if not (
            (
                peer_selectors is not None
                and (rule.any_pod or (rule.selectors and not rule.selectors.isdisjoint(peer_selectors)))
            )
            or (rule.networks and rid in tier_ip)
            or (
                rule.nodes
                and peer_node_labels is not None
                and any(matches(s, peer_node_labels) for s in rule.nodes)
            )
        ):
            continue
        hit = sets[rid] & open_
        if not hit:
            continue
        open_ = open_ - hit
        if rule.pass_:
            passed |= hit
        elif not rule.deny:
            accepted |= hit
            ref = rule.ref
            named = f" ({ref.name})" if ref.name else ""
            by.append((f"{ref.policy} {direction} rule {ref.rule}{named}: {ref.action}", hit))
    return accepted, passed | open_


def _sides(view: IdentityView, direction: str) -> tuple[DirPolicy | None, ClusterDir | None]:
    if direction == INGRESS:
        return view.ingress, view.cluster_ingress
    return view.egress, view.cluster_egress


def _selectors_named(policy: DirPolicy | None, cdir: ClusterDir | None) -> frozenset[int]:
    """Every selector id the rules of one side test a peer pod against."""
    out: set[int] = set()
    for rules in (policy.rules if policy else (), cdir.rules if cdir else ()):
        for rule in rules:
            out |= rule.selectors
    return frozenset(out)


def _ip_rules(matcher: IPBlockMatcher | None, ip: str) -> frozenset[int]:
    return matcher.rules_for(ip) if matcher is not None else _NONE


def identity_text(namespace: str, labels: Iterable[tuple[str, str]]) -> str:
    """``shop{app=web,tier=front}``: an identity as people read it."""
    return namespace + "{" + ",".join(f"{k}={v}" for k, v in labels) + "}"


# ---------------------------------------------------------------- the query


def _family(ip: str) -> int:
    return 6 if ":" in ip else 4


def _judged(
    allowed: Allowed, other: Allowed | None = None, only: PortSet | None = None
) -> tuple[PortSet, tuple[str, ...]]:
    """Both sides' ports intersected (and with ``only``), and the rules that allow some of it."""
    ports, by = allowed
    if other is not None:
        ports = ports & other[0]
        by = by + other[1]
    if only is not None:
        ports = ports & only
    if not ports:
        return ports, ()
    rules = tuple(dict.fromkeys(ref for ref, part in by if part & ports))
    return ports, rules


class _Target:
    """One target class: its view, first address, named ports and pods."""

    def __init__(self, view: IdentityView, ip: str, entry: PodEntry) -> None:
        self.view = view
        self.ip = ip
        self.named = entry.named_ports
        self.entries: list[tuple[str, PodEntry]] = [(ip, entry)]


def reach(
    gen: Generation,
    direction: str,
    pod: str | None = None,
    namespace: str | None = None,
    selector: LabelSelector | None = None,
    protocol: str | None = None,
    port: int | None = None,
) -> ReachAnswer:
    """Who can reach (``ingress``) or what can be reached from (``egress``) a pod ``ns/name``, or
    the pods of ``namespace`` matching ``selector`` (None: all of them); optionally only the
    flows of ``protocol`` (normalised) and ``port``."""
    if direction not in DIRECTIONS:
        raise ReachError(f"direction: must be ingress or egress (got {direction!r})")
    cat = catalogue(gen)
    if pod is not None:
        entries = cat.by_name.get(pod)
        if not entries:
            raise ReachError(f"pod {pod}: no such live pod with an address at generation {gen.number}")
    else:
        if namespace is None:
            raise ReachError("a target is required: a pod (ns/name) or a namespace and a selector")
        entries = [
            (ip, e)
            for ident_id in cat.by_namespace.get(namespace, ())
            if selector is None or matches(selector, dict(gen.identity(ident_id).labels))
            for ip, e in cat.by_identity[ident_id]
        ]
        if not entries:
            what = "" if selector is None else " matching the selector"
            raise ReachError(f"namespace {namespace}: no live pod{what} at generation {gen.number}")
    only = PortSet.single(protocol, port or 0) if protocol is not None else None
    memo = cat.memo
    targets = _classes(gen, direction, entries)
    answers = [_answer(gen, cat, direction, t, memo, only) for t in targets]
    return ReachAnswer(direction, gen.number, protocol, port, tuple(answers))


def _classes(gen: Generation, direction: str, entries: list[tuple[str, PodEntry]]) -> list[_Target]:
    """Target addresses grouped into classes that get the same answer (see the module docstring)."""
    # matchers on the peers' side that test the target's address
    matchers: list[IPBlockMatcher] = []
    if len(entries) > 1:
        seen: set[int] = set()
        other = EGRESS if direction == INGRESS else INGRESS
        for view in identities(gen):
            policy, cdir = _sides(view, other)
            for m in (policy.ipblocks if policy else None, cdir.ipblocks if cdir else None):
                if m is not None and id(m) not in seen:
                    seen.add(id(m))
                    matchers.append(m)
    classes: dict[tuple[object, ...], _Target] = {}
    for ip, entry in entries:
        key = (entry.identity, entry.named_ports, _family(ip), tuple(m.rules_for(ip) for m in matchers))
        found = classes.get(key)
        if found is None:
            classes[key] = _Target(gen.identity(entry.identity), ip, entry)
        else:
            found.entries.append((ip, entry))
    return sorted(classes.values(), key=lambda t: (t.entries[0][1].name, t.ip))


def _answer(
    gen: Generation,
    cat: Catalogue,
    direction: str,
    target: _Target,
    memo: _Memo,
    only: PortSet | None,
) -> TargetReach:
    view = target.view
    own_policy, own_cdir = _sides(view, direction)
    other = EGRESS if direction == INGRESS else INGRESS
    family = _family(target.ip)
    owner = cat.text(view)
    np_m = own_policy.ipblocks if own_policy is not None else None
    tier_m = own_cdir.ipblocks if own_cdir is not None else None
    node_labels = gen.node_labels

    # pods: peers with the same judgement inputs share one judgement.  The target's side
    # reads of a peer only its memberships in the selectors its rules name (``relevant``) and
    # its address (ipBlocks, when the target's side has any); the peer's side is its compiled
    # policy (shared across identities) facing the target.
    per_address = np_m is not None or tier_m is not None
    relevant = _selectors_named(own_policy, own_cdir)
    peer_cache: dict[tuple[int, int, NamedPorts | None], Allowed] = {}
    combined: dict[tuple[object, ...], tuple[PortSet, tuple[str, ...]]] = {}
    groups: dict[tuple[int, PortSet, tuple[str, ...]], list[str]] = defaultdict(list)

    def both(
        sample: IdentityView, base: tuple[object, ...], sels: frozenset[int], peer_policy: DirPolicy | None,
        peer_cdir: ClusterDir | None, dst_ports: NamedPorts | None, np_ip: frozenset[int],
        tier_ip: frozenset[int],
    ) -> tuple[PortSet, tuple[str, ...]]:  # fmt: skip
        key = (base, dst_ports, np_ip, tier_ip)
        found = combined.get(key)
        if found is not None:
            return found
        own = judge(owner, direction, own_policy, own_cdir, sels, np_ip, tier_ip, None, dst_ports, memo)
        if not own[0]:
            found = combined[key] = (NOTHING, ())
            return found
        theirs_key = (id(peer_policy), id(peer_cdir), dst_ports)
        theirs = peer_cache.get(theirs_key)
        if theirs is None:
            theirs = peer_cache[theirs_key] = judge(
                "peer", other, peer_policy, peer_cdir, view.selectors,
                _ip_rules(peer_policy.ipblocks if peer_policy else None, target.ip),
                _ip_rules(peer_cdir.ipblocks if peer_cdir else None, target.ip),
                None, dst_ports, memo,
            )  # fmt: skip
        found = combined[key] = _judged(own, theirs, only)
        return found

    np_get = np_m.rules_for if np_m is not None else None
    tier_get = tier_m.rules_for if tier_m is not None else None
    for sample, members, by_ports in cat.classes:
        peer_policy, peer_cdir = _sides(sample, other)
        sels = sample.selectors & relevant
        base = (sels, id(peer_policy), id(peer_cdir))
        if not per_address:  # one judgement per class and destination named ports
            for (fam, named), listed in by_ports.items():
                if fam != family:
                    continue
                dst = target.named if direction == INGRESS else named
                ports, rules = both(sample, base, sels, peer_policy, peer_cdir, dst, _NONE, _NONE)
                if ports:
                    for ident_id, names in listed:
                        groups[(ident_id, ports, rules)].extend(names)
            continue
        for ident_id, ident_groups in members:
            for fam, named, entries, _names in ident_groups:
                if fam != family:
                    continue
                dst = target.named if direction == INGRESS else named
                for ip, entry in entries:
                    np_ip = np_get(ip) if np_get is not None else _NONE
                    tier_ip = tier_get(ip) if tier_get is not None else _NONE
                    found = combined.get((base, dst, np_ip, tier_ip))
                    if found is None:
                        found = both(sample, base, sels, peer_policy, peer_cdir, dst, np_ip, tier_ip)
                    if found[0]:
                        groups[(ident_id, found[0], found[1])].append(entry.name)
    pod_peers = []
    for (ident_id, ports, rules), names in groups.items():
        peer_view = gen.identities[ident_id & SHARD_MASK][ident_id]
        unique = sorted(set(names))
        pod_peers.append(
            PodGroup(
                peer_view.namespace,
                peer_view.labels,
                len(unique),
                tuple(unique[:NAMES_LISTED]),
                ports,
                rules,
            )
        )
    pod_peers.sort(key=lambda g: (g.namespace, g.labels, g.rules))

    # nodes: the target's side only
    by_node: dict[tuple[str | None, PortSet, tuple[str, ...]], list[str]] = defaultdict(list)
    for ip, node in cat.nodes:
        if _family(ip) != family:
            continue
        labels = node_labels.get(node.node) if node_labels is not None and node.node is not None else None
        node_dst = target.named if direction == INGRESS else None
        allowed = judge(
            owner, direction, own_policy, own_cdir, None, _ip_rules(np_m, ip), _ip_rules(tier_m, ip),
            labels, node_dst, memo,
        )  # fmt: skip
        ports, rules = _judged(allowed, None, only)
        if ports:
            by_node[(node.node, ports, rules)].append(ip)
    node_peers = sorted(
        (NodeGroup(n, tuple(ips), p, r) for (n, p, r), ips in by_node.items()),
        key=lambda g: (g.node or "", g.addresses),
    )

    range_peers = _ranges(owner, direction, own_policy, own_cdir, family, target, memo, only)
    own_nodes = sorted({e.node for _, e in target.entries if e.node is not None})
    return TargetReach(
        view.namespace,
        view.labels,
        tuple(sorted({e.name for _, e in target.entries})),
        target.ip,
        tuple(own_nodes),
        tuple(pod_peers),
        tuple(node_peers),
        range_peers,
    )


def _ranges(
    owner: str,
    direction: str,
    policy: DirPolicy | None,
    cdir: ClusterDir | None,
    family: int,
    target: _Target,
    memo: _Memo,
    only: PortSet | None,
) -> tuple[RangeGroup, ...]:
    """Addresses outside the cluster, cut into regions at every prefix of the target's side."""
    np_m = policy.ipblocks if policy is not None else None
    tier_m = cdir.ipblocks if cdir is not None else None
    prefixes = {
        IPNetwork(p)
        for m in (np_m, tier_m)
        if m is not None
        for p in m.prefixes()
        if (":" in p) == (family == 6)
    }
    root = IPNetwork("::/0" if family == 6 else "0.0.0.0/0")
    prefixes.add(root)
    ordered = sorted(prefixes, key=lambda n: n.prefixlen)
    dst_ports = target.named if direction == INGRESS else None
    by: dict[tuple[PortSet, tuple[str, ...]], IPSet] = {}
    for i, net in enumerate(ordered):
        inner = [o for o in ordered[i + 1 :] if o.prefixlen > net.prefixlen and o in net]
        region = IPSet([net]) - IPSet(inner) if inner else IPSet([net])
        if not region:
            continue
        key = str(net)
        np_ip, tier_ip = _ip_rules(np_m, key), _ip_rules(tier_m, key)
        allowed = judge(owner, direction, policy, cdir, None, np_ip, tier_ip, None, dst_ports, memo)
        ports, rules = _judged(allowed, None, only)
        if not ports:
            continue
        found = by.get((ports, rules))
        by[(ports, rules)] = region if found is None else found | region
    out = [RangeGroup(tuple(str(c) for c in s.iter_cidrs()), p, r) for (p, r), s in by.items()]
    return tuple(sorted(out, key=lambda g: (g.ports.text(), g.cidrs)))


def query(
    gen: Generation,
    direction: str = "",
    pod: str | None = None,
    namespace: str | None = None,
    selector: str = "",
    protocol: str | None = None,
    port: int | None = None,
) -> list[ReachAnswer]:
    """A reach query as callers send it (the CLI, gRPC): ``direction`` ``ingress``, ``egress`` or
    empty for both; ``selector`` as ``kubectl -l`` takes it; ``protocol``/``port`` unnormalised.
    Every bad argument is a :class:`ReachError` naming its field."""
    directions = DIRECTIONS if not direction else (direction.lower(),)
    if directions[0] not in DIRECTIONS:
        raise ReachError(f"direction: must be ingress, egress or empty for both (got {direction!r})")
    if pod and (namespace or selector):
        raise ReachError("pod: give a pod, or a namespace and a selector, not both")
    if selector and not namespace:
        raise ReachError("selector: needs a namespace")
    if pod and pod.count("/") != 1:
        raise ReachError(f"pod: must be namespace/name (got {pod!r})")
    try:
        parsed = parse_selector_text(selector) if selector else None
    except ValueError as err:
        raise ReachError(f"selector: {err}") from None
    proto: str | None = None
    number: int | None = None
    if protocol or port:
        try:
            proto = normalize_protocol(protocol or "TCP", "protocol")
            if proto in PORT_PROTOCOLS and not port:
                raise FlowError("port", f"is required for {proto}")
            if proto not in PORT_PROTOCOLS and port:
                raise FlowError("port", f"{proto} has no ports")
            number = normalize_port(port or None, proto, "port")
        except FlowError as err:
            raise ReachError(str(err)) from None
    return [
        reach(
            gen, d, pod=pod or None, namespace=namespace or None, selector=parsed, protocol=proto, port=number
        )
        for d in directions
    ]
