"""The reference evaluator: docs/semantics.md read aloud, slowly, with no cleverness.

It exists to be *obviously* right, so that the fast index can be tested against it
(``tests/test_differential.py``).  It shares nothing with the index beyond the
model, flow and decision types: its own selector matching, its own CIDR matching
(``ipaddress``), its own port matching and address resolution.  Every query scans
every object; that is the point, not a defect.

The numbered rules below are docs/semantics.md (and SEMANTICS.md) line by line; the
code cites them as ``# R<n>``.

Resolving an address (docs/semantics.md section 1):

R1. A pod *takes part* iff it has an IP and its phase is not Succeeded/Failed
    (``Pod.live``).  A hostNetwork pod without ``spec.nodeName`` takes no part
    either: it has no node whose network it could use.
R2. An address is a **pod** when a live, non-hostNetwork pod lists it.
R3. Two or more such pods claiming one address: the newest wins, ordered by
    (``created``, the text ``namespace/name``) -- a missing timestamp counts as
    oldest, ties go to the greater text.  The decision notes
    ``ip-conflict: <ip> claimed by <oldest>, ..., <winner>; <winner> (newest) wins``.
R4. Otherwise the address is a **node** when a Node lists it among its
    InternalIP/ExternalIP addresses, or a live hostNetwork pod is on it.  The node
    is named by the Node object (the least name if several list it), else by the
    hostNetwork pods' ``spec.nodeName`` (the least, if they disagree).  The
    endpoint lists every live hostNetwork pod on the address, sorted, and the
    decision notes, for each, ``host-network: ns/p uses node <node>'s network;
    its policies are not enforced`` (``<node>`` is the endpoint's node).
R5. Otherwise the address is **external**.
R6. Notes are listed for the source end, then the destination end, without
    repeating a note already given.
R7. A namespace's labels are its declared labels plus
    ``kubernetes.io/metadata.name=<name>``; a namespace that was never declared
    has only that label.

Exemptions, checked first, in this order (section 2):

R8.  ``loopback``: both ends resolve to the same pod.
R9.  ``node-traffic``: one end is a pod with a ``spec.nodeName`` and the other end
     resolves to the node of that name (either direction).
R10. ``host-network``: neither end is a pod, and one end is a hostNetwork pod's address.
R11. ``no-pod-involved``: neither end is a pod.
     An exemption evaluates no direction (no trace, even when explained).

The two directions (section 3):

R12. The flow is allowed iff the source's egress allows it and the destination's
     ingress allows it.  A direction whose end is not a pod is not evaluated.
R13. A pod is isolated for a direction iff some policy of its own namespace
     selects it (``spec.podSelector``) with that direction among its effective
     policy types (already defaulted by validation).
R14. A pod not isolated for a direction allows everything in it.
R15. An isolated pod allows a flow iff some rule, of that direction, of some
     policy isolating it, matches; egress rules take the destination as peer,
     ingress rules the source.  Policies are additive.
R16. Reasons: ``denied-on-egress`` / ``denied-on-ingress`` / ``denied-on-both``;
     else ``allowed-by-policy`` when an isolated direction was allowed by a rule;
     else ``not-isolated``.

A rule matches (section 4):

R17. Its peers match (no peers: any end at all) and its ports match (no ports:
     any port of any protocol).  Peers are ORed; ports are ORed.
R18. ``podSelector`` alone: a pod of the *policy's* namespace whose labels match.
R19. ``namespaceSelector`` alone: a pod whose namespace's labels match; never a
     node, a hostNetwork pod or an external address.
R20. Both in one peer: a pod matching ``podSelector`` in a namespace matching
     ``namespaceSelector``.
R21. ``ipBlock``: the peer's *address* (whatever it resolves to, pod addresses
     included) is in ``cidr`` and in no ``except``; the other IP family never matches.
R22. Selectors: every ``matchLabels`` pair equal, and every expression: ``In`` key
     present with a listed value; ``NotIn`` key absent or value not listed;
     ``Exists``; ``DoesNotExist``.  Empty matches everything.
R23. A port entry matches when the flow's protocol is the entry's protocol and:
     no ``port`` -> any port; a number -> equal, or within ``port..endPort``;
     a name -> some container port of the *destination* pod has that name, that
     protocol and the flow's port.  A name never matches a destination that is
     not a pod.
R24. A flow whose protocol is not TCP/UDP/SCTP is matched only by rules without ports.

Explanation (section 5):

R25. Each evaluated direction reports the pod (``ns/name``), whether isolated,
     every isolating policy (``ns/name``, sorted) and every rule that allowed it,
     sorted by (policy, rule index).  A direction that is not isolated is allowed
     with no isolating policy and no rule.  The reference always answers at
     generation 0.

Cluster-scoped policy tiers (section 6; ClusterNetworkPolicy v1alpha2, and
AdminNetworkPolicy / BaselineAdminNetworkPolicy v1alpha1 read as the same tiers):

R26. A direction is judged at its own pod, as in R12.  Its cluster rules are those
     of every cluster policy whose subject selects the pod (``namespaces``: the
     pod's namespace labels match; ``pods``: namespace labels and pod labels
     match), the policy's ingress or egress rules, ordered by (tier, priority,
     name, kind) and then rule index.
R27. Admin tier first: the first rule that matches decides -- Accept allows, Deny
     denies, and nothing else is consulted for that direction; Pass ends the Admin
     tier.  Then NetworkPolicy: if the pod is isolated (R13) it decides as in R15.
     Otherwise the Baseline tier, the same way (its Pass ends it).  Otherwise allow.
R28. A cluster rule matches when one of its peers matches and (no ports, or the
     flow's protocol is TCP/UDP/SCTP and a port entry matches).  Peers:
     ``namespaces``/``pods`` match a pod end as in R26 (never a node, hostNetwork
     pod or external address); ``networks`` match the peer's address (any
     resolution, same family); ``nodes`` match an end that resolves to a node
     whose Node object's labels match; ``domainNames`` never match.
R29. Port entries: a number or ``start..end`` of a protocol as in R23; a named
     port matches when the destination pod has a container port of that name with
     the flow's protocol and port.
R30. A rule with a ``domainNames`` peer whose ports match but which did not match
     adds the note ``domain-names: <Kind name> egress rule <i> (<name>) names
     domains, which no IP can be matched against: skipped`` when it is passed over
     in a tier that was evaluated.
R31. Reasons: a denial by an Admin rule gives ``denied-by-admin-policy``; else a
     NetworkPolicy denial gives R16's reason for the directions NetworkPolicy
     denied; else ``denied-by-baseline-policy``.  Allowed: an Admin Accept gives
     ``allowed-by-admin-policy``; else a NetworkPolicy-isolated direction gives
     ``allowed-by-policy``; else a Baseline Accept ``allowed-by-baseline-policy``;
     else ``not-isolated``.
R32. The trace of a direction names the deciding cluster rule (``decided_by``) and
     the Pass rules that matched (``passed``); ``isolated``/``isolating`` always
     describe NetworkPolicy, ``allowed_by`` is filled when NetworkPolicy decided.

Services (docs/services.md):

R33. A flow is *to a Service* when its destination is a cluster IP, an externalIP
     or a load-balancer ingress IP of a Service (the least ``namespace/name`` when
     several claim it, noted ``service-conflict: ...``), or when it resolves to a
     node (R4) and its protocol and port are some Service port's ``nodePort``
     (the least Service again).  Headless and ExternalName Services have no address.
R34. A Service address whose ports hold none with the flow's protocol and port
     denies with ``service-port-not-found``.
R35. The Service port's candidates: every EndpointSlice of the Service's namespace
     labelled ``kubernetes.io/service-name=<service>``, of the address's IP family,
     taken in slice-name order; of each, the port with the Service port's name and
     protocol (none, or no number: the slice adds nothing); each endpoint's first
     address with that port number; an (address, port) already taken is skipped.
R36. Traffic policy: ``internalTrafficPolicy`` for a cluster IP, else
     ``externalTrafficPolicy``.  Local keeps the candidates on one node: the
     source's node for a cluster IP (unknown: all, noted), the addressed node for
     a node port; for externalIPs and load-balancer IPs all are kept (noted).
R37. Of those, the ready ones; when none is ready, the serving and terminating
     ones (noted).  Sorted by (address, port).
R38. Each is decided as a flow from the same source to (address, port) by R1-R32,
     except that a pod reaching itself is not ``loopback`` (hairpin).
R39. None: DENY ``service-no-ready-endpoints``.  All allow: ALLOW, all deny: DENY,
     with the first endpoint's reason.  Otherwise ``service-partially-allowed``
     with the configured verdict (DENY by default).
R40. For an external address kind with traffic policy Cluster the decision notes
     the possible SNAT; for a node port it also notes, per endpoint, a verdict that
     differs when the source is the addressed node's address.

Queries (docs/queries.md), by enumeration:

R41. Reach: the peers of an address A of a pod for ``ingress`` are the addresses P
     of A's family for which the flow P -> A is allowed; for ``egress``, those for
     which A -> P is allowed -- each decided as above, exemptions included.
R42. Matrix: the cell (from, to, protocol, port) is the decision of the flow from
     the first address of ``from`` to the first address of ``to`` of the same
     family (IPv4 first); pods without a common family have no cell.

Headless Services by name (docs/services.md; numbered after the queries, which
came first):

R43. A flow whose destination is the text ``svc/NAMESPACE/NAME`` naming a headless
     Service (what ``svc/...`` names resolve to, as the Service has no address) is
     decided the way a client resolving the Service's DNS name reaches it, with no
     kube-proxy translation (so no traffic policy and no terminating fallback): its
     candidates are those of R35 for the Service port with the flow's protocol and
     port (none: DENY ``service-port-not-found``, R34) in the SOURCE's IP family;
     a headless Service without ports has as candidates every endpoint's first
     address of every slice of that family (slice-name order, each address once)
     with the flow's port (noted).  The ready ones, sorted by (address, port), are
     decided and combined by R38-R39; the trace's address kind is ``headless``.
     A name that is no headless Service denies with ``service-no-ready-endpoints``
     (noted).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from netpol_pdp.index.decision import (
    AddressKind,
    Decision,
    DirectionTrace,
    Endpoint,
    EndpointKind,
    Reason,
    RuleRef,
    ServiceEndpoint,
    ServiceTrace,
    TierRuleRef,
    Verdict,
)
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import (
    NAMED_PORT_PROTOCOL,
    NAMESPACE_NAME_LABEL,
    Action,
    ClusterPeer,
    ClusterPolicy,
    ClusterRule,
    EndpointSlice,
    LabelSelector,
    Namespace,
    NetworkPolicy,
    Node,
    Object,
    Operator,
    Peer,
    Pod,
    PolicyPort,
    Rule,
    Service,
    ServicePort,
    SliceEndpoint,
    Tier,
    TrafficPolicy,
)

_PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")


def _same_ip(a: str, b: str) -> bool:
    return ipaddress.ip_address(a) == ipaddress.ip_address(b)


def _qualified(pod: Pod) -> str:
    return f"{pod.namespace}/{pod.name}"


@dataclass(frozen=True)
class _End:
    """One end of a flow: its address, what it resolved to, and the notes that produced."""

    ip: str
    endpoint: Endpoint
    pod: Pod | None
    notes: tuple[str, ...]


class ReferenceEvaluator:
    """Decides flows by scanning every object, rule by rule (see the module docstring)."""

    def __init__(self, objects: Iterable[Object], service_partial: Verdict = Verdict.DENY) -> None:
        self.service_partial = service_partial
        world: dict[object, Object] = {}
        for obj in objects:
            world[obj.key] = obj  # a later object with the same key replaces an earlier one
        self.namespaces = {o.name: o for o in world.values() if isinstance(o, Namespace)}
        self.pods = [o for o in world.values() if isinstance(o, Pod)]
        self.nodes = [o for o in world.values() if isinstance(o, Node)]
        self.policies = [o for o in world.values() if isinstance(o, NetworkPolicy)]
        self.services = sorted(
            (o for o in world.values() if isinstance(o, Service)), key=lambda o: (o.namespace, o.name)
        )
        self.slices = sorted(
            (o for o in world.values() if isinstance(o, EndpointSlice)), key=lambda o: o.name
        )
        self.cluster_policies = sorted(
            (o for o in world.values() if isinstance(o, ClusterPolicy)), key=lambda c: c.order
        )

    # --- section 1: addresses -----------------------------------------------------------

    def _takes_part(self, pod: Pod) -> bool:
        # R1
        if not pod.live:
            return False
        return not (pod.host_network and not pod.node_name)

    def _resolve(self, ip: str) -> _End:
        # R2, R3
        claimants = [
            p
            for p in self.pods
            if self._takes_part(p) and not p.host_network and any(_same_ip(ip, x) for x in p.ips)
        ]
        if claimants:
            claimants.sort(key=lambda p: (p.created, _qualified(p)))
            winner = claimants[-1]
            notes: tuple[str, ...] = ()
            if len(claimants) > 1:
                names = ", ".join(_qualified(p) for p in claimants)
                notes = (f"ip-conflict: {ip} claimed by {names}; {_qualified(winner)} (newest) wins",)
            endpoint = Endpoint(EndpointKind.POD, _qualified(winner), winner.namespace)
            return _End(ip, endpoint, winner, notes)
        # R4
        node_names = sorted(n.name for n in self.nodes if any(_same_ip(ip, a) for a in n.addresses))
        host_pods = [
            p
            for p in self.pods
            if self._takes_part(p) and p.host_network and any(_same_ip(ip, x) for x in p.ips)
        ]
        if node_names or host_pods:
            name = node_names[0] if node_names else min(p.node_name or "" for p in host_pods)
            listed = tuple(sorted(_qualified(p) for p in host_pods))
            notes = tuple(
                f"host-network: {p} uses node {name}'s network; its policies are not enforced" for p in listed
            )
            return _End(ip, Endpoint(EndpointKind.NODE, name, None, host_network_pods=listed), None, notes)
        # R5
        return _End(ip, Endpoint(EndpointKind.EXTERNAL), None, ())

    def _namespace_labels(self, name: str) -> Mapping[str, str]:
        # R7
        declared = self.namespaces.get(name)
        labels = dict(declared.labels) if declared is not None else {}
        labels[NAMESPACE_NAME_LABEL] = name
        return labels

    # --- section 4: rules ---------------------------------------------------------------

    @staticmethod
    def _selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
        # R22
        for key, value in selector.match_labels:
            if labels.get(key) != value:
                return False
        for req in selector.match_expressions:
            present = req.key in labels
            if req.operator is Operator.IN:
                ok = present and labels[req.key] in req.values
            elif req.operator is Operator.NOT_IN:
                ok = not present or labels[req.key] not in req.values
            elif req.operator is Operator.EXISTS:
                ok = present
            else:
                ok = not present
            if not ok:
                return False
        return True

    def _peer_matches(self, peer: Peer, policy: NetworkPolicy, other: _End) -> bool:
        if peer.ip_block is not None:
            # R21
            address = ipaddress.ip_address(other.ip)
            block = peer.ip_block
            if address.version != block.cidr.version or address not in block.cidr:
                return False
            return not any(address in ex for ex in block.except_ if ex.version == address.version)
        pod = other.pod
        if pod is None:
            return False  # R19: selectors match pods only
        if peer.namespace_selector is None:
            # R18
            in_namespace = pod.namespace == policy.namespace
        else:
            # R19, R20
            in_namespace = self._selector_matches(
                peer.namespace_selector, self._namespace_labels(pod.namespace)
            )
        if not in_namespace:
            return False
        if peer.pod_selector is None:
            return True
        return self._selector_matches(peer.pod_selector, pod.labels)

    @staticmethod
    def _port_matches(entry: PolicyPort, flow: Flow, destination: Pod | None) -> bool:
        # R23
        if entry.protocol != flow.protocol:
            return False
        if entry.port is None:
            return True
        if isinstance(entry.port, int):
            last = entry.end_port if entry.end_port is not None else entry.port
            return entry.port <= flow.dst_port <= last
        if destination is None:
            return False
        return any(
            cp.name == entry.port and cp.protocol == entry.protocol and cp.port == flow.dst_port
            for cp in destination.ports
        )

    def _rule_matches(
        self, rule: Rule, policy: NetworkPolicy, flow: Flow, peer: _End, destination: Pod | None
    ) -> bool:
        # R17
        if rule.peers and not any(self._peer_matches(p, policy, peer) for p in rule.peers):
            return False
        if not rule.ports:
            return True
        if flow.protocol not in _PORT_PROTOCOLS:
            return False  # R24
        return any(self._port_matches(e, flow, destination) for e in rule.ports)

    # --- section 3: directions ----------------------------------------------------------

    def _np_direction(
        self, direction: str, pod: Pod, flow: Flow, peer: _End, destination: Pod | None
    ) -> DirectionTrace:
        policy_type = "Egress" if direction == "egress" else "Ingress"
        # R13
        isolating = sorted(
            (
                p
                for p in self.policies
                if p.namespace == pod.namespace
                and policy_type in p.policy_types
                and self._selector_matches(p.pod_selector, pod.labels)
            ),
            key=lambda p: p.qualified_name,
        )
        if not isolating:
            # R14
            return DirectionTrace(direction, _qualified(pod), isolated=False, allowed=True)
        # R15
        allowed_by: list[RuleRef] = []
        for policy in isolating:
            rules = policy.egress if direction == "egress" else policy.ingress
            for i, rule in enumerate(rules):
                if self._rule_matches(rule, policy, flow, peer, destination):
                    allowed_by.append(RuleRef(policy.qualified_name, i))
        allowed_by.sort(key=lambda r: (r.policy, r.rule))
        return DirectionTrace(
            direction,
            _qualified(pod),
            isolated=True,
            allowed=bool(allowed_by),
            isolating=tuple(p.qualified_name for p in isolating),
            allowed_by=tuple(allowed_by),
        )

    # --- section 6: cluster policy tiers ------------------------------------------------

    def _pod_in(self, peer: ClusterPeer, pod: Pod) -> bool:
        # R26, R28 (namespaces / pods)
        if peer.namespace_selector is None:
            return False
        if not self._selector_matches(peer.namespace_selector, self._namespace_labels(pod.namespace)):
            return False
        return peer.pod_selector is None or self._selector_matches(peer.pod_selector, pod.labels)

    def _cluster_peer_matches(self, peer: ClusterPeer, other: _End) -> bool:
        # R28
        if peer.namespace_selector is not None:
            return other.pod is not None and self._pod_in(peer, other.pod)
        if peer.networks:
            address = ipaddress.ip_address(other.ip)
            return any(address.version == net.version and address in net for net in peer.networks)
        if peer.node_selector is not None:
            if other.endpoint.kind is not EndpointKind.NODE:
                return False
            return any(
                n.name == other.endpoint.name and self._selector_matches(peer.node_selector, n.labels)
                for n in self.nodes
            )
        return False  # domainNames

    def _cluster_ports_match(self, rule: ClusterRule, flow: Flow, destination: Pod | None) -> bool:
        if not rule.ports:
            return True
        if flow.protocol not in _PORT_PROTOCOLS:
            return False  # R24
        for entry in rule.ports:
            if entry.protocol == NAMED_PORT_PROTOCOL:
                # R29
                if destination is not None and any(
                    cp.name == entry.port and cp.protocol == flow.protocol and cp.port == flow.dst_port
                    for cp in destination.ports
                ):
                    return True
            elif self._port_matches(entry, flow, destination):
                return True
        return False

    def _tier(
        self,
        tier: Tier,
        direction: str,
        pod: Pod,
        flow: Flow,
        peer: _End,
        destination: Pod | None,
        notes: list[str],
    ) -> tuple[TierRuleRef | None, TierRuleRef | None]:
        """(the deciding Accept/Deny rule, the Pass rule) of one tier; both None: no match."""
        for policy in self.cluster_policies:  # R26: already in (tier, priority, name, kind) order
            if policy.tier is not tier or not self._pod_in(policy.subject, pod):
                continue
            rules = policy.egress if direction == "egress" else policy.ingress
            for i, rule in enumerate(rules):
                ports_ok = self._cluster_ports_match(rule, flow, destination)
                if ports_ok and any(self._cluster_peer_matches(p, peer) for p in rule.peers):
                    ref = TierRuleRef(tier.value, policy.ref, i, rule.name, rule.action.value)
                    if rule.action is Action.PASS:
                        return None, ref
                    return ref, None
                if ports_ok and any(p.domain_names for p in rule.peers):
                    # R30
                    named = f" ({rule.name})" if rule.name else ""
                    notes.append(
                        f"domain-names: {policy.ref} {direction} rule {i}{named} names domains, "
                        "which no IP can be matched against: skipped"
                    )
        return None, None

    def _direction(
        self, direction: str, pod: Pod, flow: Flow, peer: _End, destination: Pod | None, notes: list[str]
    ) -> tuple[DirectionTrace, str]:
        """The trace and which stage decided: ``admin``, ``policy``, ``baseline`` or ``none``."""
        np_trace = self._np_direction(direction, pod, flow, peer, destination)
        passed: list[TierRuleRef] = []
        # R27
        decided, passed_by = self._tier(Tier.ADMIN, direction, pod, flow, peer, destination, notes)
        stage = "admin"
        if decided is None:
            if passed_by is not None:
                passed.append(passed_by)
            if np_trace.isolated:
                return DirectionTrace(
                    direction,
                    np_trace.pod,
                    True,
                    np_trace.allowed,
                    np_trace.isolating,
                    np_trace.allowed_by,
                    passed=tuple(passed),
                ), "policy"
            decided, passed_by = self._tier(Tier.BASELINE, direction, pod, flow, peer, destination, notes)
            stage = "baseline"
            if decided is None:
                if passed_by is not None:
                    passed.append(passed_by)
                return DirectionTrace(direction, np_trace.pod, False, True, passed=tuple(passed)), "none"
        # R32
        return DirectionTrace(
            direction,
            np_trace.pod,
            np_trace.isolated,
            decided.action == Action.ACCEPT.value,
            np_trace.isolating,
            decided_by=decided,
            passed=tuple(passed),
        ), stage

    # --- the decision -------------------------------------------------------------------

    # --- Services ------------------------------------------------------------------

    def _service_for(self, flow: Flow) -> tuple[Service, AddressKind, list[str]] | None:
        # R33
        claimants = []
        for svc in self.services:
            addresses = (
                [(ip, AddressKind.CLUSTER_IP) for ip in svc.cluster_ips]
                + [(ip, AddressKind.EXTERNAL_IP) for ip in svc.external_ips]
                + [(ip, AddressKind.LOAD_BALANCER_IP) for ip in svc.load_balancer_ips]
            )
            for ip, kind in addresses:
                if _same_ip(ip, flow.dst_ip):
                    claimants.append((svc, kind))
                    break
        if claimants:
            svc, kind = claimants[0]
            notes = []
            if len(claimants) > 1:
                names = ", ".join(c.qualified_name for c, _ in claimants)
                notes.append(
                    f"service-conflict: {flow.dst_ip} claimed by {names}; "
                    f"{svc.qualified_name} (first by name) wins"
                )
            return svc, kind, notes
        if self._resolve(flow.dst_ip).endpoint.kind is not EndpointKind.NODE:
            return None
        for svc in self.services:
            for sp in svc.ports:
                if sp.node_port == flow.dst_port and sp.protocol == flow.protocol:
                    return svc, AddressKind.NODE_PORT, []
        return None

    def _candidates(
        self, svc: Service, sp: ServicePort, ip_family: str
    ) -> list[tuple[str, int, SliceEndpoint]]:
        # R35
        out: list[tuple[str, int, SliceEndpoint]] = []
        for eps in self.slices:
            if eps.namespace != svc.namespace or eps.service != svc.name or eps.address_type != ip_family:
                continue
            numbers = [p.port for p in eps.ports if p.name == sp.name and p.protocol == sp.protocol]
            if not numbers or numbers[0] is None:
                continue
            for ep in eps.endpoints:
                if not ep.addresses:
                    continue
                if any(ip == ep.addresses[0] and port == numbers[0] for ip, port, _ in out):
                    continue
                out.append((ep.addresses[0], numbers[0], ep))
        return out

    def _decide_headless(self, flow: Flow, explain: bool) -> Decision:
        # R43
        namespace, _, name = flow.dst_ip[len("svc/") :].partition("/")
        qualified = f"{namespace}/{name}"
        src = self._resolve(flow.src_ip)
        dst_ep = Endpoint(EndpointKind.SERVICE, qualified, namespace)
        kind = AddressKind.HEADLESS
        found = [s for s in self.services if s.namespace == namespace and s.name == name and s.headless]
        if not found:
            return Decision(
                Verdict.DENY,
                Reason.SERVICE_NO_READY_ENDPOINTS,
                0,
                src.endpoint,
                dst_ep,
                (f"headless: {qualified} is no headless Service",),
                explained=explain,
                service=ServiceTrace(qualified, flow.dst_ip, kind, flow.protocol, flow.dst_port),
            )
        svc = found[0]
        ip_family = "IPv6" if ipaddress.ip_address(flow.src_ip).version == 6 else "IPv4"
        notes: list[str] = []
        if svc.ports:
            matching = [p for p in svc.ports if p.port == flow.dst_port and p.protocol == flow.protocol]
            if not matching:
                return Decision(
                    Verdict.DENY,
                    Reason.SERVICE_PORT_NOT_FOUND,
                    0,
                    src.endpoint,
                    dst_ep,
                    (
                        f"service-port-not-found: Service {qualified} "
                        f"has no port {flow.dst_port}/{flow.protocol}",
                    ),
                    explained=explain,
                    service=ServiceTrace(qualified, flow.dst_ip, kind, flow.protocol, flow.dst_port),
                )
            candidates = self._candidates(svc, matching[0], ip_family)
            port_name, target_port = matching[0].name, str(matching[0].target_port)
        else:
            candidates = []
            for eps in self.slices:
                if eps.namespace != namespace or eps.service != name or eps.address_type != ip_family:
                    continue
                for ep in eps.endpoints:
                    if ep.addresses and all(ip != ep.addresses[0] for ip, _, _ in candidates):
                        candidates.append((ep.addresses[0], flow.dst_port, ep))
            port_name = target_port = ""
            notes.append(f"headless: Service {qualified} declares no ports; the flow's port is used as is")
        chosen = sorted([c for c in candidates if c[2].ready], key=lambda c: (c[0], c[1]))
        endpoints = self._endpoints(flow, chosen, False, explain, notes)
        verdict, reason = self._combined(endpoints)
        trace = ServiceTrace(
            qualified,
            flow.dst_ip,
            kind,
            flow.protocol,
            flow.dst_port,
            port_name,
            target_port,
            "",
            tuple(endpoints),
        )
        return Decision(
            verdict, reason, 0, src.endpoint, dst_ep, tuple(notes), explained=explain, service=trace
        )

    def _endpoints(
        self,
        flow: Flow,
        chosen: list[tuple[str, int, SliceEndpoint]],
        fell_back: bool,
        explain: bool,
        notes: list[str],
    ) -> list[ServiceEndpoint]:
        # R38: each endpoint decided from the same source; its notes added to ``notes``
        endpoints = []
        for ip, number, ep in chosen:
            sub = self._decide_direct(Flow(flow.src_ip, ip, flow.protocol, number), explain, hairpin=True)
            endpoints.append(ServiceEndpoint(ip, number, sub, ep.target, ep.node_name, fell_back))
            for n in sub.notes:
                if n not in notes:
                    notes.append(n)
        return endpoints

    def _combined(self, endpoints: list[ServiceEndpoint]) -> tuple[Verdict, Reason]:
        # R39
        allowed = [e for e in endpoints if e.decision.verdict is Verdict.ALLOW]
        if not endpoints:
            return Verdict.DENY, Reason.SERVICE_NO_READY_ENDPOINTS
        if len(allowed) == len(endpoints) or not allowed:
            return endpoints[0].decision.verdict, endpoints[0].decision.reason
        return self.service_partial, Reason.SERVICE_PARTIALLY_ALLOWED

    def _decide_service(self, flow: Flow, explain: bool) -> Decision | None:
        if flow.dst_ip.startswith("svc/"):
            return self._decide_headless(flow, explain)
        found = self._service_for(flow)
        if found is None:
            return None
        svc, kind, notes = found
        src = self._resolve(flow.src_ip)
        dst_ep = Endpoint(EndpointKind.SERVICE, svc.qualified_name, svc.namespace)
        if kind is AddressKind.NODE_PORT:
            port = next(p for p in svc.ports if p.node_port == flow.dst_port and p.protocol == flow.protocol)
        else:
            matching = [p for p in svc.ports if p.port == flow.dst_port and p.protocol == flow.protocol]
            if not matching:
                # R34
                notes.append(
                    f"service-port-not-found: Service {svc.qualified_name} "
                    f"has no port {flow.dst_port}/{flow.protocol}"
                )
                return Decision(
                    Verdict.DENY,
                    Reason.SERVICE_PORT_NOT_FOUND,
                    0,
                    src.endpoint,
                    dst_ep,
                    tuple(notes),
                    explained=explain,
                    service=ServiceTrace(svc.qualified_name, flow.dst_ip, kind, flow.protocol, flow.dst_port),
                )
            port = matching[0]
        ip_family = "IPv6" if ipaddress.ip_address(flow.dst_ip).version == 6 else "IPv4"
        candidates = self._candidates(svc, port, ip_family)
        # R36
        more: list[str] = []
        if kind is AddressKind.CLUSTER_IP:
            policy = svc.internal_traffic_policy
        else:
            policy = svc.external_traffic_policy
        node = None
        if policy is TrafficPolicy.LOCAL:
            if kind is AddressKind.CLUSTER_IP:
                if src.pod is not None:
                    node = src.pod.node_name
                elif src.endpoint.kind is EndpointKind.NODE:
                    node = src.endpoint.name
                if node is None:
                    more.append(
                        "internalTrafficPolicy Local: the source's node is unknown; "
                        "every endpoint is considered"
                    )
            elif kind is AddressKind.NODE_PORT:
                node = self._resolve(flow.dst_ip).endpoint.name
            else:
                more.append(
                    "externalTrafficPolicy Local: traffic reaches only nodes with a local endpoint; "
                    "every endpoint is considered"
                )
            if node is not None:
                candidates = [c for c in candidates if c[2].node_name == node]
        # R37
        chosen = [c for c in candidates if c[2].ready]
        fell_back = False
        if not chosen:
            fell_back = True
            chosen = [c for c in candidates if c[2].serving and c[2].terminating]
        chosen.sort(key=lambda c: (c[0], c[1]))
        if node is not None and not chosen:
            which = "internal" if kind is AddressKind.CLUSTER_IP else "external"
            more.append(f"{which}TrafficPolicy Local: no endpoint on node {node}")
        if fell_back and chosen:
            more.append("no ready endpoint: kube-proxy falls back to the serving, terminating endpoints")
        snat = kind is not AddressKind.CLUSTER_IP and policy is TrafficPolicy.CLUSTER
        if snat:
            more.append(
                "externalTrafficPolicy Cluster: kube-proxy may rewrite the source to a node's address "
                "(SNAT); this decision keeps the original source"
            )
        endpoints = self._endpoints(flow, chosen, fell_back, explain, notes)
        if snat and kind is AddressKind.NODE_PORT:
            # R40
            for e in endpoints:
                alt = self._decide_direct(Flow(flow.dst_ip, e.ip, flow.protocol, e.port), False, hairpin=True)
                if alt.verdict is not e.decision.verdict:
                    node_name = self._resolve(flow.dst_ip).endpoint.name
                    more.append(
                        f"snat: with the source rewritten to node {node_name}'s address {flow.dst_ip}, "
                        f"{e.ip}:{e.port} would be {alt.verdict.value} ({alt.reason.value})"
                    )
        for n in more:
            if n not in notes:
                notes.append(n)
        verdict, reason = self._combined(endpoints)
        trace = ServiceTrace(
            svc.qualified_name,
            flow.dst_ip,
            kind,
            flow.protocol,
            flow.dst_port,
            port.name,
            str(port.target_port),
            policy.value,
            tuple(endpoints),
        )
        return Decision(
            verdict, reason, 0, src.endpoint, dst_ep, tuple(notes), explained=explain, service=trace
        )

    def decide(self, flow: Flow, explain: bool = False) -> Decision:
        """The decision for ``flow`` at generation 0 (with both traces when ``explain``)."""
        decision = self._decide_service(flow, explain)
        if decision is not None:
            return decision
        return self._decide_direct(flow, explain)

    def _decide_direct(self, flow: Flow, explain: bool, hairpin: bool = False) -> Decision:
        """R1-R32 for the two addresses as given; ``hairpin``: no loopback (R38)."""
        src = self._resolve(flow.src_ip)
        dst = self._resolve(flow.dst_ip)
        notes: list[str] = []
        for note in (*src.notes, *dst.notes):  # R6
            if note not in notes:
                notes.append(note)

        def exempt(reason: Reason) -> Decision:
            return Decision(
                Verdict.ALLOW, reason, 0, src.endpoint, dst.endpoint, tuple(notes), explained=explain
            )

        # R8
        if src.pod is not None and dst.pod is not None and src.pod.key == dst.pod.key and not hairpin:
            return exempt(Reason.LOOPBACK)
        # R9
        for pod_end, other in ((src, dst), (dst, src)):
            if (
                pod_end.pod is not None
                and pod_end.pod.node_name
                and other.endpoint.kind is EndpointKind.NODE
                and other.endpoint.name == pod_end.pod.node_name
            ):
                return exempt(Reason.NODE_TRAFFIC)
        if src.pod is None and dst.pod is None:
            # R10, R11
            if src.endpoint.host_network_pods or dst.endpoint.host_network_pods:
                return exempt(Reason.HOST_NETWORK)
            return exempt(Reason.NO_POD)

        # R12
        egress = ingress = None
        stages: dict[str, str] = {}
        if src.pod is not None:
            egress, stages["egress"] = self._direction("egress", src.pod, flow, dst, dst.pod, notes)
        if dst.pod is not None:
            ingress, stages["ingress"] = self._direction("ingress", dst.pod, flow, src, dst.pod, notes)
        egress_ok = egress is None or egress.allowed
        ingress_ok = ingress is None or ingress.allowed
        denied = [d for d, t in (("egress", egress), ("ingress", ingress)) if t is not None and not t.allowed]
        allowed = [d for d, t in (("egress", egress), ("ingress", ingress)) if t is not None and t.allowed]
        np_denied = [d for d in denied if stages[d] == "policy"]
        # R16, R31
        if any(stages[d] == "admin" for d in denied):
            reason = Reason.DENIED_BY_ADMIN
        elif len(np_denied) == 2:
            reason = Reason.DENIED_BOTH
        elif np_denied:
            reason = Reason.DENIED_EGRESS if np_denied == ["egress"] else Reason.DENIED_INGRESS
        elif denied:
            reason = Reason.DENIED_BY_BASELINE
        elif any(stages[d] == "admin" for d in allowed):
            reason = Reason.ALLOWED_BY_ADMIN
        elif any(stages[d] == "policy" for d in allowed):
            reason = Reason.ALLOWED_BY_POLICY
        elif any(stages[d] == "baseline" for d in allowed):
            reason = Reason.ALLOWED_BY_BASELINE
        else:
            reason = Reason.NOT_ISOLATED
        verdict = Verdict.ALLOW if egress_ok and ingress_ok else Verdict.DENY
        return Decision(
            verdict,
            reason,
            0,
            src.endpoint,
            dst.endpoint,
            tuple(notes),
            egress=egress if explain else None,
            ingress=ingress if explain else None,
            explained=explain,
        )

    # --- queries (docs/queries.md) ------------------------------------------------------

    def pod_addresses(self, pod: str) -> list[str]:
        """The addresses that resolve to the pod ``ns/name`` (R2, R3), in the pod's order."""
        found = [p for p in self.pods if _qualified(p) == pod]
        if not found:
            return []
        return [ip for ip in found[0].ips if self._resolve(ip).pod is found[0]]

    def reach(self, address: str, direction: str, peers: Iterable[str], protocol: str, port: int) -> set[str]:
        """R41: the addresses of ``peers`` that reach ``address`` (ingress) or that it reaches (egress)."""
        out: set[str] = set()
        family = ipaddress.ip_address(address).version
        for peer in peers:
            if ipaddress.ip_address(peer).version != family:
                continue
            if direction == "ingress":
                flow = Flow(peer, address, protocol, port)
            else:
                flow = Flow(address, peer, protocol, port)
            if self.decide(flow).allowed:
                out.add(peer)
        return out

    def matrix_cell(self, source: str, destination: str, protocol: str, port: int) -> bool | None:
        """R42: whether pod ``source`` reaches pod ``destination``; None when they share no family."""
        for family in (4, 6):
            src = [ip for ip in self.pod_addresses(source) if ipaddress.ip_address(ip).version == family]
            dst = [ip for ip in self.pod_addresses(destination) if ipaddress.ip_address(ip).version == family]
            if src and dst:
                return self.decide(Flow(src[0], dst[0], protocol, port)).allowed
        return None
