"""The incremental NetworkPolicy index: one writer, immutable published generations.

Write side (``apply``, writer thread only) keeps mutable state and, per batch of
events, publishes one new :class:`~netpol_pdp.index.generation.Generation`.
Read side (``decide``/``decide_many``, any thread, lock-free) reads one
published generation per call.

How a change travels (incremental means driven by the change, never a rescan):

- **Identities.** Live, non-hostNetwork pods with equal namespace and labels
  share an identity.  A pod event touches its addresses and, only when it
  creates or empties an identity, that identity.
- **Selector memberships** are stored *on identities* (``IdentityView.selectors``:
  the ids of the peer selectors the identity satisfies).  A compiled rule holds
  selector ids, so identities come and go without recompiling any rule.  A new
  identity finds its candidate selectors through inverted indexes: selectors
  bound to its namespace, selectors anchored on one of its pod labels or its
  namespace's labels (:func:`~netpol_pdp.index.selectors.anchor_of`), and the
  few unanchored ones.  A new selector finds its candidate identities the same
  way, backwards.
- **Namespace relabel**: only identities of that namespace are re-tested.
- **Policy add/change/delete**: its selectors are (un)registered; identities of
  its namespace selected by the old or new ``podSelector`` get their compiled
  :class:`DirPolicy` again, shared across identities with the same policy set.
- **One batch, one settling**: an identity the batch creates is *unsettled*
  until the batch publishes; every step above skips it, and ``_settle`` then
  computes its memberships and policies once, from the batch's final state,
  namespace by namespace (what the identities of a namespace share is looked
  up once).  A first load or a re-list (all pods, then all policies) so
  matches each identity once instead of once per policy of its namespace;
  a batch of one event settles its identity at once, as before.  Compiled
  directions share their :class:`PortIndex` and :class:`IPBlockMatcher` by
  what they are built from (a world has a handful of port shapes).
  tests/test_bulk_build.py: one batch publishes what the same events do one by one.

Semantics: docs/semantics.md, which this module implements and
tests/test_semantics.py mirrors rule by rule.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from netpol_pdp.index import tiers, whynot
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
from netpol_pdp.index.generation import (
    EXTERNAL,
    ClusterDir,
    CompiledRule,
    CowShards,
    DirPolicy,
    Entry,
    Generation,
    IdentityView,
    NodeEntry,
    PodEntry,
)
from netpol_pdp.index.ipblocks import IPBlockMatcher
from netpol_pdp.index.model import (
    CLUSTER_POLICY_KINDS,
    NAMESPACE_NAME_LABEL,
    ClusterPolicy,
    EndpointSlice,
    Event,
    IPBlock,
    Kind,
    Namespace,
    NetworkPolicy,
    Node,
    Object,
    ObjectKey,
    Pod,
    PolicyPort,
    Service,
    TrafficPolicy,
    Upsert,
)
from netpol_pdp.index.ports import PortIndex
from netpol_pdp.index.selectors import Anchor, PeerKey, anchor_of, matches, peer_key
from netpol_pdp.index.services import (
    HEADLESS_PREFIX,
    Candidate,
    ServiceBook,
    ServicePortEntry,
    ServiceTables,
    headless_key,
    pick,
)

log = logging.getLogger(__name__)
_K = TypeVar("_K")
_T = TypeVar("_T")
_V = TypeVar("_V")

#: The decision cache of a generation is dropped when it grows past this many flows.
#: An entry (flow tuple, its address strings, the Decision) costs ~300 bytes, so
#: this bounds the cache near 80 MB under traffic that never repeats; realistic
#: logs have far fewer distinct flows (18,178 in a million-line log, bench/).
CACHE_LIMIT = 1 << 18
#: Batches longer than this run with the cyclic garbage collector paused.
GC_PAUSE_AFTER = 1000
#: Port and ipBlock shapes kept for sharing (at least; more while more directions are compiled).
_SHAPES_KEPT = 1024
INGRESS, EGRESS = "Ingress", "Egress"
_NO_NAMED_PORTS: frozenset[tuple[str, str, int]] = frozenset()


@dataclass(eq=False)
class _Identity:
    """Writer-side identity: pods sharing namespace and labels."""

    id: int
    namespace: str
    labels: Mapping[str, str]
    pods: set[tuple[str, str]] = field(default_factory=set)
    selectors: set[int] = field(default_factory=set)
    policies: dict[str, frozenset[int]] = field(default_factory=dict)  # direction -> policy serials


@dataclass(eq=False)
class _Selector:
    id: int
    key: PeerKey
    anchor: Anchor | None
    refs: int = 0


@dataclass(eq=False)
class _Policy:
    serial: int
    obj: NetworkPolicy
    peer_keys: list[PeerKey]


@dataclass(eq=False)
class _Cluster:
    """A cluster-scoped policy and the selector keys it holds (subject first)."""

    serial: int
    obj: ClusterPolicy
    subject: PeerKey
    peer_keys: list[PeerKey]


class _Claims:
    """Everything that claims one address; the published entry is derived from it."""

    __slots__ = ("host_pods", "nodes", "pods")

    def __init__(self) -> None:
        self.pods: set[tuple[str, str]] = set()  # live, non-hostNetwork
        self.host_pods: set[tuple[str, str]] = set()  # live, hostNetwork
        self.nodes: set[str] = set()


def _pod_name(key: tuple[str, str]) -> str:
    return f"{key[0]}/{key[1]}"


class Index:
    """The decision index.  See the module docstring; API in the README."""

    def __init__(self, service_partial: Verdict = Verdict.DENY) -> None:
        # objects as given
        self._namespaces: dict[str, Namespace] = {}
        self._pods: dict[tuple[str, str], Pod] = {}
        self._nodes: dict[str, Node] = {}
        self._policies: dict[tuple[str, str], _Policy] = {}
        self._svc = ServiceBook()
        #: the verdict of a flow to a Service that some endpoints allow and some deny
        self.service_partial = service_partial
        # derived, writer side
        self._claims: dict[str, _Claims] = {}
        self._identities: dict[tuple[str, frozenset[tuple[str, str]]], _Identity] = {}
        self._identity_by_id: dict[int, _Identity] = {}
        self._pod_identity: dict[tuple[str, str], _Identity] = {}
        self._idents_by_ns: dict[str, set[int]] = defaultdict(set)
        self._idents_by_label: dict[tuple[str, str], set[int]] = defaultdict(set)
        self._ns_by_label: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._selectors: dict[PeerKey, _Selector] = {}
        self._selector_by_id: dict[int, _Selector] = {}
        self._sels_by_ns: dict[str, set[int]] = defaultdict(set)  # namespace-bound selectors
        self._sels_by_anchor: dict[Anchor, set[int]] = defaultdict(set)
        self._sels_unanchored: set[int] = set()
        self._policies_by_ns: dict[str, dict[str, _Policy]] = defaultdict(dict)
        self._policy_by_serial: dict[int, _Policy] = {}
        self._ns_indexed_labels: dict[str, Mapping[str, str]] = {}
        self._dir_cache: dict[tuple[str, frozenset[int]], DirPolicy] = {}
        self._dir_cache_by_serial: dict[int, set[tuple[str, frozenset[int]]]] = defaultdict(set)
        #: the port and ipBlock halves of compiled directions by what they are built from: a
        #: world's thousands of policy sets have a handful of distinct port shapes (medium: 800
        #: compiled directions, 10 port shapes, 3 ipBlock shapes); immutable, so shared
        self._port_indexes: dict[tuple[tuple[int, tuple[PolicyPort, ...]], ...], PortIndex] = {}
        self._ip_matchers: dict[tuple[tuple[int, IPBlock], ...], IPBlockMatcher] = {}
        self._serial = 0
        self._next_id = 1
        # cluster-scoped policies (tiers.py): subjects are registered selectors
        self._cluster: dict[ObjectKey, _Cluster] = {}
        self._cluster_by_serial: dict[int, _Cluster] = {}
        self._cluster_by_subject: dict[int, set[int]] = defaultdict(set)  # selector id -> serials
        self._cluster_cache: dict[tuple[str, frozenset[int]], ClusterDir | None] = {}
        self._node_labels: dict[str, Mapping[str, str]] | None = None  # published snapshot
        self._nodes_changed = False
        # published
        self._addr = CowShards[str, Entry]()
        self._views = CowShards[int, IdentityView]()
        self._objects = CowShards[ObjectKey, Object]()
        self._dirty_idents: set[int] = set()
        self._dirty_ips: set[str] = set()
        #: identities created in this batch: memberships and policies computed once, at publish
        self._unsettled: set[int] = set()
        self._gen = Generation(0, self._addr.freeze(), self._views.freeze(), None, self._objects.freeze())
        self._hits = 0
        self._misses = 0

    # ------------------------------------------------------------------ public API

    @classmethod
    def from_objects(cls, objects: Iterable[Object], service_partial: Verdict = Verdict.DENY) -> Index:
        index = cls(service_partial)
        index._batch(objects, index._upsert)  # apply() of one Upsert per object, without the events
        return index

    @property
    def generation(self) -> int:
        return self._gen.number

    def apply(self, events: Iterable[Event]) -> int:
        """Apply every event, then publish one new generation; returns its number.

        Writer thread only.  ADDED and MODIFIED are both :class:`Upsert`; a
        :class:`Delete` of an absent object is a no-op.
        """
        return self._batch(events, self._event)

    def _event(self, event: Event) -> None:
        if isinstance(event, Upsert):
            self._upsert(event.obj)
        else:
            self._delete(event.key)

    def _batch(self, items: Iterable[_T], step: Callable[[_T], None]) -> int:
        """``step`` each item, then publish one generation (``apply``'s body)."""
        # A large batch (a first load, a re-list) allocates millions of small objects
        # and the cyclic collector then spends most of the build re-scanning them
        # (measured: 60% of a 100,000-pod build).  Nothing built here is cyclic
        # garbage, so the collector is paused for big batches and runs once after.
        paused = False
        try:
            for n, item in enumerate(items):
                if n == GC_PAUSE_AFTER and gc.isenabled():
                    gc.disable()
                    paused = True
                step(item)
            self._publish()
        finally:
            if paused:
                gc.enable()
        return self._gen.number

    def objects(self) -> dict[ObjectKey, Object]:
        out: dict[ObjectKey, Object] = {}
        for ns in self._namespaces.values():
            out[ns.key] = ns
        for pod in self._pods.values():
            out[pod.key] = pod
        for node in self._nodes.values():
            out[node.key] = node
        for pol in self._policies.values():
            out[pol.obj.key] = pol.obj
        for cluster in self._cluster.values():
            out[cluster.obj.key] = cluster.obj
        for svc in self._svc.services.values():
            out[svc.key] = svc
        for eps in self._svc.slices.values():
            out[eps.key] = eps
        return out

    def counts(self) -> dict[str, int]:
        """Objects per kind; the cluster-scoped and Service kinds only when some are held."""
        out = {
            Kind.NAMESPACE.value: len(self._namespaces),
            Kind.POD.value: len(self._pods),
            Kind.NODE.value: len(self._nodes),
            Kind.NETWORK_POLICY.value: len(self._policies),
        }
        for kind, _ns, _name in self._cluster:
            out[kind.value] = out.get(kind.value, 0) + 1
        if self._svc.services:
            out[Kind.SERVICE.value] = len(self._svc.services)
        if self._svc.slices:
            out[Kind.ENDPOINT_SLICE.value] = len(self._svc.slices)
        return out

    def stats(self) -> dict[str, int]:
        """Sizes of the derived structures (for status pages and benchmarks)."""
        return {
            "identities": len(self._identity_by_id),
            "selectors": len(self._selector_by_id),
            "addresses": len(self._claims),
            "compiled_directions": len(self._dir_cache),
        }

    def cache_stats(self) -> tuple[int, int]:
        return self._hits, self._misses

    def snapshot(self) -> Generation:
        """The generation published now: resolve names (ends.py) and decide (``decide(..., gen=)``)
        at this one, so that both see the same state."""
        return self._gen

    def decide(self, flow: Flow, explain: bool = False, gen: Generation | None = None) -> Decision:
        """Decide one (normalised) flow at the current generation, or at ``gen`` (from
        :meth:`snapshot`) even when a newer one is published.  Lock-free."""
        if gen is None:
            gen = self._gen
        if not explain:
            hit = gen.cache.get(flow)
            if hit is not None:
                self._hits += 1
                return hit
        return self._decide_miss(gen, flow, explain)

    def explain(self, flow: Flow, gen: Generation | None = None) -> Decision:
        """``decide(flow, explain=True)`` plus, for each denied direction, the nearest rules that
        did not match and why (index/whynot.py), at one generation.  Off the hot path."""
        if gen is None:
            gen = self._gen
        return whynot.why_not(gen, flow, self._decide_miss(gen, flow, True))

    def explain_many(self, flows: Iterable[Flow], gen: Generation | None = None) -> list[Decision]:
        """:meth:`explain` of every flow at ONE generation, in order (what ``audit --explain``
        and the server's explained batches answer)."""
        if gen is None:
            gen = self._gen
        return [whynot.why_not(gen, f, self._decide_miss(gen, f, True)) for f in flows]

    def decide_many(
        self, flows: Sequence[Flow] | Iterable[Flow], explain: bool = False, gen: Generation | None = None
    ) -> list[Decision]:
        """Decide every flow at ONE generation, in order: ``gen`` (from :meth:`snapshot`) or the current."""
        if gen is None:
            gen = self._gen
        if explain:
            return [self._decide_miss(gen, f, True) for f in flows]
        cache = gen.cache
        out: list[Decision] = []
        append = out.append
        hits = 0
        for f in flows:
            d = cache.get(f)
            if d is None:
                d = self._decide_miss(gen, f, False)
            else:
                hits += 1
            append(d)
        self._hits += hits
        return out

    # ------------------------------------------------------------------ decisions

    def _decide_miss(self, gen: Generation, flow: Flow, explain: bool) -> Decision:
        if not explain:
            self._misses += 1
        decision = None
        if gen.services is not None:
            decision = self._decide_service(gen, gen.services, flow, explain)
        elif flow.dst_ip.startswith(HEADLESS_PREFIX):  # a headless Service's name, no Service at all
            decision = self._decide_headless(gen, None, flow, explain)
        if decision is None:
            decision = self._decide_direct(gen, flow, explain)
        if not explain:
            self._remember(gen, flow, decision)
        return decision

    def _decide_direct(self, gen: Generation, flow: Flow, explain: bool, hairpin: bool = False) -> Decision:
        """A flow between the two addresses as given (no Service translation).
        ``hairpin``: the flow went through a Service address, so a pod reaching
        itself is not loopback (docs/services.md)."""
        src_ip, dst_ip, protocol, port = flow
        s = gen.entry(src_ip)
        d = gen.entry(dst_ip)
        s_pod = s if type(s) is PodEntry else None
        d_pod = d if type(d) is PodEntry else None
        src_ep = s.endpoint if s is not None else EXTERNAL
        dst_ep = d.endpoint if d is not None else EXTERNAL
        notes: tuple[str, ...] = ()
        if s is not None and s.notes:
            notes = s.notes
        if d is not None and d.notes and d is not s:
            notes = notes + tuple(n for n in d.notes if n not in notes) if notes else d.notes
        reason: Reason | None = None
        if s_pod is not None and d_pod is not None and s_pod.name == d_pod.name and not hairpin:
            reason = Reason.LOOPBACK
        elif (s_pod is not None and type(d) is NodeEntry and d.node is not None and d.node == s_pod.node) or (
            d_pod is not None and type(s) is NodeEntry and s.node is not None and s.node == d_pod.node
        ):
            reason = Reason.NODE_TRAFFIC
        elif s_pod is None and d_pod is None:
            host = (type(s) is NodeEntry and s.host_network_pods) or (
                type(d) is NodeEntry and d.host_network_pods
            )
            reason = Reason.HOST_NETWORK if host else Reason.NO_POD
        if reason is not None:
            return Decision(Verdict.ALLOW, reason, gen.number, src_ep, dst_ep, notes, explained=explain)

        if gen.clustered:
            return self._decide_tiered(gen, flow, s, d, s_pod, d_pod, src_ep, dst_ep, notes, explain)
        dst_ports = d_pod.named_ports if d_pod is not None else None
        egress_trace = ingress_trace = None
        egress_ok = ingress_ok = True
        isolated_any = False
        allowed_by: Sequence[int] = ()
        if s_pod is not None:
            policy = gen.identity(s_pod.identity).egress
            if policy is not None:
                isolated_any = True
                peer_sels = gen.identity(d_pod.identity).selectors if d_pod is not None else None
                allowed_by = _evaluate(policy, peer_sels, dst_ip, protocol, port, dst_ports, explain)
                egress_ok = bool(allowed_by)
            if explain:
                egress_trace = _trace("egress", s_pod.name, policy, allowed_by)
        if d_pod is not None:
            policy = gen.identity(d_pod.identity).ingress
            if policy is not None:
                isolated_any = True
                peer_sels = gen.identity(s_pod.identity).selectors if s_pod is not None else None
                allowed_by = _evaluate(policy, peer_sels, src_ip, protocol, port, dst_ports, explain)
                ingress_ok = bool(allowed_by)
            if explain:
                ingress_trace = _trace("ingress", d_pod.name, policy, allowed_by)
        if egress_ok and ingress_ok:
            verdict = Verdict.ALLOW
            reason = Reason.ALLOWED_BY_POLICY if isolated_any else Reason.NOT_ISOLATED
        else:
            verdict = Verdict.DENY
            if not egress_ok and not ingress_ok:
                reason = Reason.DENIED_BOTH
            else:
                reason = Reason.DENIED_EGRESS if not egress_ok else Reason.DENIED_INGRESS
        return Decision(
            verdict, reason, gen.number, src_ep, dst_ep, notes, egress_trace, ingress_trace, explain
        )

    def _decide_service(
        self, gen: Generation, services: ServiceTables, flow: Flow, explain: bool
    ) -> Decision | None:
        """The decision of a flow to a Service address, None when ``flow.dst_ip`` is none
        (docs/services.md: translation, traffic policies, verdicts)."""
        src_ip, dst_ip, protocol, port = flow
        node: str | None = None
        addr = services.address(dst_ip)
        if addr is not None:
            entry = addr.ports.get((protocol, port))
            kind, service, notes = addr.kind, addr.service, addr.notes
            if entry is None:
                s = gen.entry(src_ip)
                return Decision(
                    Verdict.DENY,
                    Reason.SERVICE_PORT_NOT_FOUND,
                    gen.number,
                    s.endpoint if s is not None else EXTERNAL,
                    _service_endpoint(service),
                    (*notes, f"service-port-not-found: Service {service} has no port {port}/{protocol}"),
                    explained=explain,
                    service=ServiceTrace(service, dst_ip, kind, protocol, port),
                )
        else:
            if dst_ip.startswith(HEADLESS_PREFIX):
                return self._decide_headless(gen, services, flow, explain)
            if not services.node_ports:
                return None
            found = services.node_ports.get((protocol, port))
            if found is None:
                return None
            d = gen.entry(dst_ip)
            if type(d) is not NodeEntry:
                return None
            entry, kind, node, notes = found, AddressKind.NODE_PORT, d.node, ()
        s = gen.entry(src_ip)
        return self._translate(gen, flow, s, entry, kind, node, notes, explain)

    def _translate(
        self,
        gen: Generation,
        flow: Flow,
        s: Entry | None,
        entry: ServicePortEntry,
        kind: AddressKind,
        node: str | None,
        notes: tuple[str, ...],
        explain: bool,
    ) -> Decision:
        """Decide ``flow`` to each endpoint of ``entry`` and combine the verdicts."""
        dst_ip = flow.dst_ip
        internal = kind is AddressKind.CLUSTER_IP
        policy = entry.internal_policy if internal else entry.external_policy
        more: list[str] = []
        local_node: str | None = None
        if policy is TrafficPolicy.LOCAL:
            if internal:
                local_node = s.node if s is not None else None
                if local_node is None:
                    more.append(
                        "internalTrafficPolicy Local: the source's node is unknown; "
                        "every endpoint is considered"
                    )
            elif kind is AddressKind.NODE_PORT:
                local_node = node
            else:
                more.append(
                    "externalTrafficPolicy Local: traffic reaches only nodes with a local endpoint; "
                    "every endpoint is considered"
                )
        chosen, fell_back = pick(entry.candidates[6 if ":" in dst_ip else 4], local_node)
        chosen.sort(key=lambda c: (c.ip, c.port))
        if local_node is not None and not chosen:
            more.append(
                f"{'internal' if internal else 'external'}TrafficPolicy Local: "
                f"no endpoint on node {local_node}"
            )
        if fell_back and chosen:
            more.append("no ready endpoint: kube-proxy falls back to the serving, terminating endpoints")
        snat = not internal and policy is TrafficPolicy.CLUSTER
        if snat:
            more.append(
                "externalTrafficPolicy Cluster: kube-proxy may rewrite the source to a node's address "
                "(SNAT); this decision keeps the original source"
            )
        sp = entry.port
        return self._through(
            gen,
            flow,
            s,
            entry.service,
            kind,
            (sp.name, str(sp.target_port), policy.value),
            chosen,
            fell_back,
            notes,
            explain,
            more,
            snat and kind is AddressKind.NODE_PORT,
            node,
        )

    def _through(
        self,
        gen: Generation,
        flow: Flow,
        s: Entry | None,
        service: str,
        kind: AddressKind,
        port_info: tuple[str, str, str],
        chosen: Sequence[Candidate],
        fell_back: bool,
        notes: Sequence[str],
        explain: bool,
        trailing: Sequence[str] = (),
        snat: bool = False,
        node: str | None = None,
    ) -> Decision:
        """The decision of ``flow`` through Service ``service``: each ``chosen`` endpoint decided
        from the same source, combined; ``port_info`` is the trace's (port name, targetPort,
        traffic policy); notes: ``notes``, the endpoints' own, then ``trailing``; ``snat``:
        also decide each endpoint from the addressed node ``node`` (R40)."""
        src_ip, dst_ip, protocol, port = flow
        endpoints: list[ServiceEndpoint] = []
        merged = list(notes)
        more = list(trailing)
        for c in chosen:
            sub = self._decide_direct(gen, Flow(src_ip, c.ip, protocol, c.port), explain, hairpin=True)
            endpoints.append(ServiceEndpoint(c.ip, c.port, sub, c.target, c.node, fell_back))
            merged.extend(n for n in sub.notes if n not in merged)
            if snat:
                alt = self._decide_direct(gen, Flow(dst_ip, c.ip, protocol, c.port), False, hairpin=True)
                if alt.verdict is not sub.verdict:
                    more.append(
                        f"snat: with the source rewritten to node {node}'s address {dst_ip}, "
                        f"{c.ip}:{c.port} would be {alt.verdict.value} ({alt.reason.value})"
                    )
        merged.extend(n for n in more if n not in merged)
        verdict, reason = combine([e.decision for e in endpoints], self.service_partial)
        trace = ServiceTrace(service, dst_ip, kind, protocol, port, *port_info, tuple(endpoints))
        return Decision(
            verdict,
            reason,
            gen.number,
            s.endpoint if s is not None else EXTERNAL,
            _service_endpoint(service),
            tuple(merged),
            explained=explain,
            service=trace,
        )

    def _decide_headless(
        self, gen: Generation, services: ServiceTables | None, flow: Flow, explain: bool
    ) -> Decision:
        """A flow to a headless Service by name (destination ``svc/NAMESPACE/NAME``): to each ready
        endpoint of the source's IP family, as a client resolving the Service's DNS name reaches
        them (docs/services.md, "Headless Services by name")."""
        src_ip, dst_ip, protocol, port = flow
        s = gen.entry(src_ip)
        key = headless_key(dst_ip)
        view = services.view(*key) if key is not None and services is not None else None
        service = f"{key[0]}/{key[1]}" if key is not None else dst_ip
        kind = AddressKind.HEADLESS

        def refused(reason: Reason, note: str) -> Decision:
            return Decision(
                Verdict.DENY,
                reason,
                gen.number,
                s.endpoint if s is not None else EXTERNAL,
                _service_endpoint(service),
                (note,),
                explained=explain,
                service=ServiceTrace(service, dst_ip, kind, protocol, port),
            )

        if view is None or not view.service.headless:
            note = f"headless: {service} is no headless Service"
            return refused(Reason.SERVICE_NO_READY_ENDPOINTS, note)
        family = 6 if ":" in src_ip else 4
        notes: tuple[str, ...] = ()
        if view.service.ports:
            entry = next((e for e in view.ports if e.port.protocol == protocol and e.port.port == port), None)
            if entry is None:
                note = f"service-port-not-found: Service {service} has no port {port}/{protocol}"
                return refused(Reason.SERVICE_PORT_NOT_FOUND, note)
            candidates = entry.candidates[family]
            port_info = (entry.port.name, str(entry.port.target_port), "")
        else:
            candidates = tuple(dataclasses.replace(c, port=port) for c in view.candidates[family])
            port_info = ("", "", "")
            notes = (f"headless: Service {service} declares no ports; the flow's port is used as is",)
        chosen = sorted((c for c in candidates if c.ready), key=lambda c: (c.ip, c.port))
        return self._through(gen, flow, s, service, kind, port_info, chosen, False, notes, explain)

    def _decide_tiered(
        self,
        gen: Generation,
        flow: Flow,
        s: Entry | None,
        d: Entry | None,
        s_pod: PodEntry | None,
        d_pod: PodEntry | None,
        src_ep: Endpoint,
        dst_ep: Endpoint,
        notes: tuple[str, ...],
        explain: bool,
    ) -> Decision:
        """A decision with cluster policy tiers (docs/semantics.md section 7)."""
        src_ip, dst_ip, protocol, port = flow
        dst_ports = d_pod.named_ports if d_pod is not None else None
        more: list[str] = []
        e_ok = i_ok = True
        e_stage = i_stage = tiers.NONE
        e_trace = i_trace = None
        if s_pod is not None:
            e_ok, e_stage, e_trace = self._judge(
                gen, True, s_pod, d, d_pod, dst_ip, protocol, port, dst_ports, explain, more
            )
        if d_pod is not None:
            i_ok, i_stage, i_trace = self._judge(
                gen, False, d_pod, s, s_pod, src_ip, protocol, port, dst_ports, explain, more
            )
        if more:
            merged = list(notes)
            merged.extend(more)
            notes = tuple(merged)
        reason = tiers.reason(e_ok, e_stage, i_ok, i_stage)
        return Decision(
            Verdict.ALLOW if e_ok and i_ok else Verdict.DENY,
            reason,
            gen.number,
            src_ep,
            dst_ep,
            notes,
            e_trace,
            i_trace,
            explain,
        )

    @staticmethod
    def _judge(
        gen: Generation,
        egress: bool,
        own: PodEntry,
        peer: Entry | None,
        peer_pod: PodEntry | None,
        peer_ip: str,
        protocol: str,
        port: int,
        dst_ports: frozenset[tuple[str, str, int]] | None,
        explain: bool,
        notes: list[str],
    ) -> tuple[bool, int, DirectionTrace | None]:
        """One direction at ``own``: (allowed, deciding stage, trace when ``explain``)."""
        view = gen.identity(own.identity)
        if egress:
            cdir, policy, direction = view.cluster_egress, view.egress, "egress"
        else:
            cdir, policy, direction = view.cluster_ingress, view.ingress, "ingress"
        peer_sels = gen.identity(peer_pod.identity).selectors if peer_pod is not None else None
        passed: tuple[TierRuleRef, ...] = ()
        decided = None
        stage = tiers.NONE
        if cdir is not None:
            node_labels = gen.node_labels
            peer_node = (
                node_labels.get(peer.node)
                if node_labels is not None and type(peer) is NodeEntry and peer.node is not None
                else None
            )
            rule = tiers.first_match(
                cdir, True, peer_sels, peer_ip, peer_node, protocol, port, dst_ports, notes
            )
            if rule is not None:
                if rule.pass_:
                    passed = (rule.ref,)
                else:
                    decided, stage = rule, tiers.ADMIN
            if decided is None and policy is None and cdir.admin < len(cdir.rules):
                rule = tiers.first_match(
                    cdir, False, peer_sels, peer_ip, peer_node, protocol, port, dst_ports, notes
                )
                if rule is not None:
                    if rule.pass_:
                        passed = (*passed, rule.ref)
                    else:
                        decided, stage = rule, tiers.BASELINE
        allowed_by: Sequence[int] = ()
        if decided is not None:
            ok = not decided.deny
        elif policy is not None:
            stage = tiers.POLICY
            allowed_by = _evaluate(policy, peer_sels, peer_ip, protocol, port, dst_ports, explain)
            ok = bool(allowed_by)
        else:
            ok = True
        if not explain:
            return ok, stage, None
        if decided is not None:
            isolating = policy.isolating if policy is not None else ()
            trace = DirectionTrace(
                direction, own.name, policy is not None, ok, isolating, decided_by=decided.ref, passed=passed
            )
        else:
            trace = dataclasses.replace(_trace(direction, own.name, policy, allowed_by), passed=passed)
        return ok, stage, trace

    @staticmethod
    def _remember(gen: Generation, flow: Flow, decision: Decision) -> None:
        cache = gen.cache
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        cache[flow] = decision

    # ------------------------------------------------------------------ writer: events

    def _upsert(self, obj: Object) -> None:
        self._objects.set(obj.key, obj)
        if isinstance(obj, Pod):
            key = (obj.namespace, obj.name)
            if key in self._pods:
                self._remove_pod(key)
            self._add_pod(key, obj)
        elif isinstance(obj, NetworkPolicy):
            self._remove_policy((obj.namespace, obj.name))
            self._add_policy(obj)
        elif isinstance(obj, Namespace):
            self._namespaces[obj.name] = obj
            self._relabel_namespace(obj.name)
        elif isinstance(obj, ClusterPolicy):
            self._remove_cluster(obj.key)
            self._add_cluster(obj)
        elif isinstance(obj, Node):
            self._remove_node(obj.name)
            self._nodes[obj.name] = obj
            self._nodes_changed = True
            for ip in obj.addresses:
                self._claim(ip).nodes.add(obj.name)
                self._dirty_ips.add(ip)
        elif isinstance(obj, Service):
            self._svc.upsert_service(obj)
        elif isinstance(obj, EndpointSlice):
            self._svc.upsert_slice(obj)

    def _delete(self, key: ObjectKey) -> None:
        self._objects.pop(key)
        kind, namespace, name = key
        if kind is Kind.POD:
            self._remove_pod((namespace, name))
        elif kind is Kind.NETWORK_POLICY:
            self._remove_policy((namespace, name))
        elif kind is Kind.NAMESPACE:
            if self._namespaces.pop(name, None) is not None:
                self._relabel_namespace(name)
        elif kind is Kind.NODE:
            self._remove_node(name)
        elif kind in CLUSTER_POLICY_KINDS:
            self._remove_cluster(key)
        elif kind is Kind.SERVICE:
            self._svc.delete_service((namespace, name))
        elif kind is Kind.ENDPOINT_SLICE:
            self._svc.delete_slice((namespace, name))

    def _claim(self, ip: str) -> _Claims:
        claims = self._claims.get(ip)
        if claims is None:
            claims = self._claims[ip] = _Claims()
        return claims

    def _ns_labels(self, namespace: str) -> Mapping[str, str]:
        ns = self._namespaces.get(namespace)
        return ns.labels if ns is not None else {NAMESPACE_NAME_LABEL: namespace}

    # pods ------------------------------------------------------------------------

    def _add_pod(self, key: tuple[str, str], pod: Pod) -> None:
        self._pods[key] = pod
        if not pod.live or (pod.host_network and not pod.node_name):
            return  # a hostNetwork pod has its node's address: without a node it has none
        all_claims, dirty = self._claims, self._dirty_ips
        for ip in pod.ips:
            claims = all_claims.get(ip)
            if claims is None:
                claims = all_claims[ip] = _Claims()
            (claims.host_pods if pod.host_network else claims.pods).add(key)
            dirty.add(ip)
        if pod.host_network:
            return
        ident_key = (pod.namespace, frozenset(pod.labels.items()))
        ident = self._identities.get(ident_key)
        if ident is None:
            ident = self._new_identity(ident_key, pod.namespace, pod.labels)
        ident.pods.add(key)
        self._pod_identity[key] = ident

    def _remove_pod(self, key: tuple[str, str]) -> None:
        pod = self._pods.pop(key, None)
        if pod is None:
            return
        for ip in pod.ips:
            claims = self._claims.get(ip)
            if claims is not None:
                claims.pods.discard(key)
                claims.host_pods.discard(key)
                self._dirty_ips.add(ip)
        ident = self._pod_identity.pop(key, None)
        if ident is not None:
            ident.pods.discard(key)
            if not ident.pods:
                self._drop_identity(ident)

    # identities --------------------------------------------------------------------

    def _new_identity(
        self, ident_key: tuple[str, frozenset[tuple[str, str]]], namespace: str, labels: Mapping[str, str]
    ) -> _Identity:
        if namespace not in self._ns_indexed_labels:  # an undeclared namespace still has its name label
            self._index_namespace_labels(namespace)
        ident = _Identity(self._next_id, namespace, dict(labels))
        self._next_id += 1
        self._identities[ident_key] = ident
        self._identity_by_id[ident.id] = ident
        self._idents_by_ns[namespace].add(ident.id)
        for pair in ident.labels.items():
            self._idents_by_label[pair].add(ident.id)
        self._unsettled.add(ident.id)  # memberships and policies: _settle, at publish
        self._dirty_idents.add(ident.id)
        return ident

    def _drop_identity(self, ident: _Identity) -> None:
        del self._identities[(ident.namespace, frozenset(ident.labels.items()))]
        del self._identity_by_id[ident.id]
        self._unsettled.discard(ident.id)
        self._idents_by_ns[ident.namespace].discard(ident.id)
        if not self._idents_by_ns[ident.namespace]:
            del self._idents_by_ns[ident.namespace]
        for pair in ident.labels.items():
            bucket = self._idents_by_label[pair]
            bucket.discard(ident.id)
            if not bucket:
                del self._idents_by_label[pair]
        self._dirty_idents.add(ident.id)

    def _namespace_candidates(self, namespace: str, ns_labels: Mapping[str, str]) -> set[int]:
        """The selectors that may match an identity of ``namespace`` whatever its pod labels:
        bound to the namespace, anchored on one of its labels, or unanchored."""
        cands = set(self._sels_by_ns.get(namespace, ()))
        cands |= self._sels_unanchored
        by_anchor = self._sels_by_anchor
        for k, v in ns_labels.items():
            found = by_anchor.get(("ns", k, v))
            if found:
                cands |= found
        return cands

    def _matching_selectors(
        self, ident: _Identity, shared: set[int] | None = None, ns_labels: Mapping[str, str] | None = None
    ) -> set[int]:
        """The selectors ``ident`` satisfies; ``shared``/``ns_labels``: its namespace's
        candidates and labels when the caller has them (:meth:`_namespace_candidates`)."""
        namespace, labels = ident.namespace, ident.labels
        if ns_labels is None:
            ns_labels = self._ns_labels(namespace)
        cands = set(shared) if shared is not None else self._namespace_candidates(namespace, ns_labels)
        by_anchor = self._sels_by_anchor
        for k, v in labels.items():
            found = by_anchor.get(("pod", k, v))
            if found:
                cands |= found
        by_id = self._selector_by_id
        return {sid for sid in cands if by_id[sid].key.matches(namespace, labels, ns_labels)}

    def _candidate_identities(self, sel: _Selector) -> Iterable[int]:
        key = sel.key
        if key.namespace is not None:
            return self._idents_by_ns.get(key.namespace, set())
        anchor = sel.anchor
        if anchor is None:
            return self._identity_by_id.keys()
        side, k, v = anchor
        if side == "pod":
            return self._idents_by_label.get((k, v), set())
        out: set[int] = set()
        for ns in self._ns_by_label.get((k, v), ()):
            out |= self._idents_by_ns.get(ns, set())
        return out

    def _index_namespace_labels(self, namespace: str) -> None:
        """(Re)index the namespace's labels, declared or implicit, in ``_ns_by_label``."""
        for pair in self._ns_indexed_labels.pop(namespace, {}).items():
            bucket = self._ns_by_label[pair]
            bucket.discard(namespace)
            if not bucket:
                del self._ns_by_label[pair]
        labels = self._ns_labels(namespace)
        for pair in labels.items():
            self._ns_by_label[pair].add(namespace)
        self._ns_indexed_labels[namespace] = labels

    def _relabel_namespace(self, namespace: str) -> None:
        """The namespace's labels may have changed: re-test its identities' global selectors."""
        self._index_namespace_labels(namespace)
        unsettled = self._unsettled
        for ident_id in self._idents_by_ns.get(namespace, ()):
            if ident_id in unsettled:
                continue
            ident = self._identity_by_id[ident_id]
            new = self._matching_selectors(ident)
            if new != ident.selectors:
                ident.selectors = new
                self._dirty_idents.add(ident_id)

    # policies -------------------------------------------------------------------

    def _add_policy(self, obj: NetworkPolicy) -> None:
        self._serial += 1
        peer_keys = [
            peer_key(obj.namespace, peer.pod_selector, peer.namespace_selector)
            for rules in (obj.ingress, obj.egress)
            for rule in rules
            for peer in rule.peers
            if peer.ip_block is None
        ]
        pol = _Policy(self._serial, obj, peer_keys)
        self._policies[(obj.namespace, obj.name)] = pol
        self._policy_by_serial[pol.serial] = pol
        self._policies_by_ns[obj.namespace][obj.name] = pol
        for key in peer_keys:
            if not key.is_any_pod:
                self._ref_selector(key)
        unsettled = self._unsettled
        for ident_id in self._idents_by_ns.get(obj.namespace, ()):
            if ident_id in unsettled:
                continue
            ident = self._identity_by_id[ident_id]
            if matches(obj.pod_selector, ident.labels):
                self._recompute_policies(ident)

    def _remove_policy(self, key: tuple[str, str]) -> None:
        pol = self._policies.pop(key, None)
        if pol is None:
            return
        del self._policies_by_ns[key[0]][key[1]]
        del self._policy_by_serial[pol.serial]
        if not self._policies_by_ns[key[0]]:
            del self._policies_by_ns[key[0]]
        for ident_id in self._idents_by_ns.get(key[0], ()):
            ident = self._identity_by_id[ident_id]
            if any(pol.serial in serials for serials in ident.policies.values()):
                self._recompute_policies(ident)
        for peer in pol.peer_keys:
            if not peer.is_any_pod:
                self._unref_selector(peer)
        for cache_key in self._dir_cache_by_serial.pop(pol.serial, ()):
            self._dir_cache.pop(cache_key, None)
            for other in cache_key[1]:
                if other != pol.serial:
                    self._dir_cache_by_serial[other].discard(cache_key)

    def _ref_selector(self, key: PeerKey) -> None:
        sel = self._selectors.get(key)
        if sel is None:
            sel = _Selector(self._next_id, key, None if key.namespace is not None else anchor_of(key))
            self._next_id += 1
            self._selectors[key] = sel
            self._selector_by_id[sel.id] = sel
            if key.namespace is not None:
                self._sels_by_ns[key.namespace].add(sel.id)
            elif sel.anchor is not None:
                self._sels_by_anchor[sel.anchor].add(sel.id)
            else:
                self._sels_unanchored.add(sel.id)
            unsettled = self._unsettled
            for ident_id in list(self._candidate_identities(sel)):
                if ident_id in unsettled:
                    continue
                ident = self._identity_by_id[ident_id]
                if key.matches(ident.namespace, ident.labels, self._ns_labels(ident.namespace)):
                    ident.selectors.add(sel.id)
                    self._dirty_idents.add(ident_id)
        sel.refs += 1

    def _unref_selector(self, key: PeerKey) -> None:
        sel = self._selectors[key]
        sel.refs -= 1
        if sel.refs:
            return
        del self._selectors[key]
        del self._selector_by_id[sel.id]
        if key.namespace is not None:
            bucket = self._sels_by_ns[key.namespace]
            bucket.discard(sel.id)
            if not bucket:
                del self._sels_by_ns[key.namespace]
        elif sel.anchor is not None:
            bucket = self._sels_by_anchor[sel.anchor]
            bucket.discard(sel.id)
            if not bucket:
                del self._sels_by_anchor[sel.anchor]
        else:
            self._sels_unanchored.discard(sel.id)
        for ident_id in list(self._candidate_identities(sel)):
            ident = self._identity_by_id[ident_id]
            if sel.id in ident.selectors:
                ident.selectors.discard(sel.id)
                self._dirty_idents.add(ident_id)

    def _recompute_policies(self, ident: _Identity, in_namespace: Iterable[_Policy] | None = None) -> None:
        """``ident``'s policies per direction; ``in_namespace``: its namespace's policies, when
        the caller has them."""
        if in_namespace is None:
            in_namespace = self._policies_by_ns.get(ident.namespace, {}).values()
        policies: dict[str, list[int]] = {INGRESS: [], EGRESS: []}
        labels = ident.labels
        for pol in in_namespace:
            if matches(pol.obj.pod_selector, labels):
                for direction in pol.obj.policy_types:
                    policies[direction].append(pol.serial)
        new = {d: frozenset(serials) for d, serials in policies.items()}
        if new != ident.policies:
            ident.policies = new
            self._dirty_idents.add(ident.id)

    def _compiled(self, direction: str, pols: list[_Policy]) -> DirPolicy:
        cache_key = (direction, frozenset(p.serial for p in pols))
        found = self._dir_cache.get(cache_key)
        if found is not None:
            return found
        pols = sorted(pols, key=lambda p: p.obj.qualified_name)
        rules: list[CompiledRule] = []
        port_rules: list[tuple[int, tuple[PolicyPort, ...]]] = []
        blocks: list[tuple[int, IPBlock]] = []
        for pol in pols:
            obj = pol.obj
            for i, rule in enumerate(obj.ingress if direction == INGRESS else obj.egress):
                rule_id = len(rules)
                any_pod = False
                sels: set[int] = set()
                for peer in rule.peers:
                    if peer.ip_block is not None:
                        blocks.append((rule_id, peer.ip_block))
                        continue
                    key = peer_key(obj.namespace, peer.pod_selector, peer.namespace_selector)
                    if key.is_any_pod:
                        any_pod = True
                    else:
                        sels.add(self._selectors[key].id)
                rules.append(CompiledRule(obj.qualified_name, i, not rule.peers, any_pod, frozenset(sels)))
                port_rules.append((rule_id, rule.ports))
        compiled = DirPolicy(
            tuple(p.obj.qualified_name for p in pols),
            tuple(rules),
            self._port_index(tuple(port_rules)),
            self._ip_matcher(tuple(blocks)) if blocks else None,
        )
        self._dir_cache[cache_key] = compiled
        for serial in cache_key[1]:
            self._dir_cache_by_serial[serial].add(cache_key)
        return compiled

    def _port_index(self, port_rules: tuple[tuple[int, tuple[PolicyPort, ...]], ...]) -> PortIndex:
        found = self._port_indexes.get(port_rules)
        if found is None:
            if len(self._port_indexes) > max(_SHAPES_KEPT, len(self._dir_cache)):
                self._port_indexes.clear()  # shapes of policies since deleted: start again
            found = self._port_indexes[port_rules] = PortIndex(list(port_rules))
        return found

    def _ip_matcher(self, blocks: tuple[tuple[int, IPBlock], ...]) -> IPBlockMatcher:
        found = self._ip_matchers.get(blocks)
        if found is None:
            if len(self._ip_matchers) > max(_SHAPES_KEPT, len(self._dir_cache)):
                self._ip_matchers.clear()
            found = self._ip_matchers[blocks] = IPBlockMatcher(list(blocks))
        return found

    # cluster-scoped policies ------------------------------------------------------

    def _subject_identities(self, cluster: _Cluster) -> Iterable[int]:
        sel = self._selectors[cluster.subject]
        return [i for i in self._candidate_identities(sel) if sel.id in self._identity_by_id[i].selectors]

    def _add_cluster(self, obj: ClusterPolicy) -> None:
        self._serial += 1
        cluster = _Cluster(self._serial, obj, tiers.subject_key(obj), tiers.peer_keys(obj))
        self._cluster[obj.key] = cluster
        self._cluster_by_serial[cluster.serial] = cluster
        self._ref_selector(cluster.subject)
        for key in cluster.peer_keys:
            if not key.is_any_pod:
                self._ref_selector(key)
        self._cluster_by_subject[self._selectors[cluster.subject].id].add(cluster.serial)
        self._dirty_idents.update(self._subject_identities(cluster))
        for other in self._cluster.values():
            if other is not cluster and (other.obj.tier, other.obj.priority) == (obj.tier, obj.priority):
                first, second = sorted((obj, other.obj), key=lambda c: c.order)
                log.warning(
                    "%s and %s share the %s tier priority %d: the API leaves their order undefined; "
                    "%s is read first (by name)",
                    first.ref,
                    second.ref,
                    obj.tier.value,
                    obj.priority,
                    first.ref,
                )

    def _remove_cluster(self, key: ObjectKey) -> None:
        cluster = self._cluster.pop(key, None)
        if cluster is None:
            return
        del self._cluster_by_serial[cluster.serial]
        self._dirty_idents.update(self._subject_identities(cluster))
        sid = self._selectors[cluster.subject].id
        self._cluster_by_subject[sid].discard(cluster.serial)
        if not self._cluster_by_subject[sid]:
            del self._cluster_by_subject[sid]
        self._unref_selector(cluster.subject)
        for peer in cluster.peer_keys:
            if not peer.is_any_pod:
                self._unref_selector(peer)
        # compiled directions that name the serial can never be asked for again
        for cache_key in [k for k in self._cluster_cache if cluster.serial in k[1]]:
            del self._cluster_cache[cache_key]

    def _cluster_dirs(self, ident: _Identity) -> tuple[ClusterDir | None, ClusterDir | None]:
        by_subject = self._cluster_by_subject
        serials = frozenset(s for sid in ident.selectors if sid in by_subject for s in by_subject[sid])
        if not serials:
            return None, None
        out: list[ClusterDir | None] = []
        for direction in ("ingress", "egress"):
            cache_key = (direction, serials)
            if cache_key not in self._cluster_cache:
                self._cluster_cache[cache_key] = tiers.compile_direction(
                    direction,
                    [self._cluster_by_serial[s].obj for s in serials],
                    lambda k: self._selectors[k].id,
                )
            out.append(self._cluster_cache[cache_key])
        return out[0], out[1]

    # nodes -----------------------------------------------------------------------

    def _remove_node(self, name: str) -> None:
        node = self._nodes.pop(name, None)
        if node is None:
            return
        self._nodes_changed = True
        for ip in node.addresses:
            claims = self._claims.get(ip)
            if claims is not None:
                claims.nodes.discard(name)
                self._dirty_ips.add(ip)

    # ------------------------------------------------------------------ writer: publish

    def _pod_entry(self, key: tuple[str, str], notes: tuple[str, ...] = ()) -> PodEntry:
        """The entry of an address the pod ``key`` owns."""
        pod = self._pods[key]
        name = f"{key[0]}/{key[1]}"
        ports = pod.ports
        return PodEntry(
            name,
            self._pod_identity[key].id,
            pod.node_name,
            frozenset([(p.name, p.protocol, p.port) for p in ports if p.name]) if ports else _NO_NAMED_PORTS,
            Endpoint(EndpointKind.POD, name, pod.namespace),
            notes,
        )

    def _entry_for(self, ip: str, claims: _Claims) -> Entry | None:
        if claims.pods:
            if len(claims.pods) == 1:  # the common case: nothing to rank
                (only,) = claims.pods
                return self._pod_entry(only)
            ranked = sorted(claims.pods, key=lambda k: (self._pods[k].created, _pod_name(k)))
            wkey = ranked[-1]
            names = ", ".join(_pod_name(k) for k in ranked)
            note = f"ip-conflict: {ip} claimed by {names}; {_pod_name(wkey)} (newest) wins"
            return self._pod_entry(wkey, (note,))
        if claims.nodes or claims.host_pods:
            host = tuple(sorted(_pod_name(k) for k in claims.host_pods))
            if claims.nodes:
                node: str | None = min(claims.nodes)
            else:
                node_names = sorted(n for k in claims.host_pods if (n := self._pods[k].node_name))
                node = node_names[0] if node_names else None
            notes = tuple(
                f"host-network: {p} uses node {node}'s network; its policies are not enforced" for p in host
            )
            return NodeEntry(node, host, Endpoint(EndpointKind.NODE, node, None, host), notes)
        return None

    def _settle(self) -> None:
        """Memberships and policies of the identities created in this batch, each once, from
        the batch's final state (every selector, policy and namespace label is in place)."""
        by_ns: dict[str, list[_Identity]] = defaultdict(list)
        for ident_id in self._unsettled:
            ident = self._identity_by_id[ident_id]
            by_ns[ident.namespace].append(ident)
        self._unsettled.clear()
        for namespace, idents in by_ns.items():  # what a namespace's identities share, once
            ns_labels = self._ns_labels(namespace)
            shared = self._namespace_candidates(namespace, ns_labels)
            policies = list(self._policies_by_ns.get(namespace, {}).values())
            for ident in idents:
                ident.selectors = self._matching_selectors(ident, shared, ns_labels)
                self._recompute_policies(ident, policies)

    def _publish(self) -> None:
        self._settle()
        all_claims, addr = self._claims, self._addr
        for ip in self._dirty_ips:
            claims = all_claims.get(ip)
            if claims is not None and len(claims.pods) == 1:  # one pod owns it: nothing to rank
                (only,) = claims.pods
                addr.set(ip, self._pod_entry(only))
                continue
            entry = self._entry_for(ip, claims) if claims is not None else None
            if entry is None:
                all_claims.pop(ip, None)
                addr.pop(ip)
            else:
                addr.set(ip, entry)
        # identities whose view changed; entries of pods whose identity changed id are
        # covered because a pod's identity only changes through a pod event (dirty ip).
        for ident_id in self._dirty_idents:
            ident = self._identity_by_id.get(ident_id)
            if ident is None:
                self._views.pop(ident_id)
                continue
            ingress = ident.policies.get(INGRESS)
            egress = ident.policies.get(EGRESS)
            c_ingress, c_egress = self._cluster_dirs(ident) if self._cluster_by_subject else (None, None)
            self._views.set(
                ident_id,
                IdentityView(
                    ident.id,
                    ident.namespace,
                    frozenset(ident.selectors),
                    self._dir_for(INGRESS, ingress),
                    self._dir_for(EGRESS, egress),
                    c_ingress,
                    c_egress,
                    tuple(sorted(ident.labels.items())),
                ),
            )
        self._dirty_ips.clear()
        self._dirty_idents.clear()
        if not self._cluster:
            self._node_labels = None
        elif self._node_labels is None or self._nodes_changed:
            self._node_labels = {name: node.labels for name, node in self._nodes.items()}
        self._nodes_changed = False
        self._gen = Generation(
            self._gen.number + 1,
            self._addr.freeze(),
            self._views.freeze(),
            self._node_labels,
            self._objects.freeze(),
            self._svc.publish(),
        )

    def _dir_for(self, direction: str, serials: frozenset[int] | None) -> DirPolicy | None:
        if not serials:
            return None
        found = self._dir_cache.get((direction, serials))
        if found is not None:
            return found
        return self._compiled(direction, [self._policy_by_serial[s] for s in serials])

    # ------------------------------------------------------------------ checks (tests)

    def check(self) -> None:
        """Assert that the incremental state equals a fresh build of the same objects."""
        fresh = Index.from_objects(self.objects().values(), self.service_partial)
        assert set(self._claims) == set(fresh._claims), "address sets differ"
        mine, theirs = self._gen, fresh._gen
        for ip in self._claims:
            a, b = mine.entry(ip), theirs.entry(ip)
            assert a is not None and b is not None, f"{ip}: missing entry"
            assert type(a) is type(b) and a.endpoint == b.endpoint and a.notes == b.notes, (
                f"{ip}: entry differs"
            )
            if isinstance(a, PodEntry) and isinstance(b, PodEntry):
                va, vb = mine.identity(a.identity), theirs.identity(b.identity)
                assert self._selector_keys(va.selectors) == fresh._selector_keys(vb.selectors), (
                    f"{ip}: selector memberships differ"
                )
                for da, db in ((va.ingress, vb.ingress), (va.egress, vb.egress)):
                    assert (da is None) == (db is None), f"{ip}: isolation differs"
                    if da is not None and db is not None:
                        assert da.isolating == db.isolating, f"{ip}: isolating policies differ"
                for ca, cb in (
                    (va.cluster_ingress, vb.cluster_ingress),
                    (va.cluster_egress, vb.cluster_egress),
                ):
                    refs_a = [r.ref for r in ca.rules] if ca is not None else []
                    refs_b = [r.ref for r in cb.rules] if cb is not None else []
                    assert refs_a == refs_b, f"{ip}: cluster policy rules differ"
        published = {o.key: o for o in self._gen.all_objects()}
        assert published == self.objects(), "published objects differ from the writer's"
        assert len(self._views) == len(self._identity_by_id), "published identities differ from writer's"
        for ident in self._identity_by_id.values():
            assert ident.pods, f"identity {ident.id} has no pods"
            assert ident.selectors <= set(self._selector_by_id), f"identity {ident.id}: stale selectors"
        for sel in self._selector_by_id.values():
            assert sel.refs > 0, f"selector {sel.key} unreferenced"
        self._check_services(fresh)

    def _check_services(self, fresh: Index) -> None:
        """The published Service tables equal a fresh build's."""
        mine, theirs = self._gen.services, fresh._gen.services
        assert (mine is None) == (theirs is None), "Service tables present in one build only"
        if mine is None or theirs is None:
            return
        assert _flat(mine.addresses) == _flat(theirs.addresses), "Service address tables differ"
        assert dict(mine.node_ports) == dict(theirs.node_ports), "node port tables differ"
        assert _flat(mine.names) == _flat(theirs.names), "Service name tables differ"

    def _selector_keys(self, ids: frozenset[int]) -> set[PeerKey]:
        return {self._selector_by_id[i].key for i in ids}


def _flat(shards: Iterable[Mapping[_K, _V]]) -> dict[_K, _V]:
    return {k: v for shard in shards for k, v in shard.items()}


def _service_endpoint(service: str) -> Endpoint:
    return Endpoint(EndpointKind.SERVICE, service, service.partition("/")[0])


def combine(decisions: Sequence[Decision], partial: Verdict) -> tuple[Verdict, Reason]:
    """The verdict and reason of a Service flow from its endpoints' decisions: none ->
    DENY ``service-no-ready-endpoints``; all allow -> ALLOW, all deny -> DENY, with
    the endpoints' reason (the first endpoint's when they differ); a mix ->
    ``partial`` with ``service-partially-allowed``."""
    if not decisions:
        return Verdict.DENY, Reason.SERVICE_NO_READY_ENDPOINTS
    allowed = sum(1 for d in decisions if d.allowed)
    if allowed and allowed < len(decisions):
        return partial, Reason.SERVICE_PARTIALLY_ALLOWED
    return decisions[0].verdict, decisions[0].reason


def _evaluate(
    policy: DirPolicy,
    peer_selectors: frozenset[int] | None,
    peer_ip: str,
    protocol: str,
    port: int,
    dst_ports: frozenset[tuple[str, str, int]] | None,
    explain: bool,
) -> tuple[int, ...] | list[int]:
    """Rule ids (of ``policy.rules``) that allow the flow; at most one unless ``explain``.

    ``peer_selectors`` is the peer pod's identity memberships (None: the peer is
    not a pod); ``dst_ports`` the destination pod's named ports.
    """
    candidates = policy.ports.candidates(protocol, port, dst_ports)
    if not candidates:
        return ()
    by_ip = policy.ipblocks.rules_for(peer_ip) if policy.ipblocks is not None else None
    rules = policy.rules
    found: list[int] = []
    for rid in sorted(set(candidates)) if explain else candidates:
        rule = rules[rid]
        if (
            rule.any_peer
            or (by_ip is not None and rid in by_ip)
            or (
                peer_selectors is not None
                and (rule.any_pod or (rule.selectors and not rule.selectors.isdisjoint(peer_selectors)))
            )
        ):
            if not explain:
                return (rid,)
            found.append(rid)
    return found


def _trace(direction: str, pod: str, policy: DirPolicy | None, allowed: Sequence[int]) -> DirectionTrace:
    if policy is None:
        return DirectionTrace(direction, pod, isolated=False, allowed=True)
    refs = tuple(
        sorted(
            {RuleRef(policy.rules[r].policy, policy.rules[r].index) for r in allowed},
            key=lambda r: (r.policy, r.rule),
        )
    )
    return DirectionTrace(direction, pod, True, bool(allowed), policy.isolating, refs)
