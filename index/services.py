"""The Service tables: a Service address and port -> the endpoints kube-proxy would pick.

Shape and why:

- **Address table** ``ip -> ServiceAddress`` (cluster IPs of both families,
  externalIPs, load-balancer ingress IPs), sharded copy-on-write like the pod
  address map, and **node-port table** ``(protocol, nodePort) -> ServicePortEntry``
  (a small dict, copied when a NodePort Service changes).  A :class:`ServicePortEntry`
  holds the *candidates* of one Service port per IP family, already translated
  the way kube-proxy does: each EndpointSlice of the Service (label
  ``kubernetes.io/service-name``) of that family contributes the first address of
  each endpoint with the slice port whose name and protocol are the Service port's
  (so a named ``targetPort`` is the number the slice resolved), deduplicated by
  address and port.  Readiness and node are kept per candidate, because which
  ones are used depends on the flow (:func:`pick`: traffic policy Local keeps the
  node's own; no ready endpoint falls back to serving, terminating ones).
- **Name table** ``(namespace, name) -> ServiceView`` for flows that name a Service,
  and for flows to a headless Service by name: their destination is the text
  ``svc/NAMESPACE/NAME`` (:data:`HEADLESS_PREFIX`, :func:`headless_key`), since a
  headless Service has no address; they are decided on its endpoints as DNS gives
  them (docs/services.md, "Headless Services by name").
- Not indexed: headless and ExternalName Services (no address to translate;
  the name table still holds them), FQDN slices (no address), slices owned by no
  Service.

Incremental: the writer (:class:`ServiceBook`, writer thread only) marks a Service
dirty when it or one of its slices changes, and republishes only that Service's
entries.  A world without Services publishes ``None`` and the decision path looks
at nothing (one attribute test per cache miss).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from netpol_pdp.index.decision import AddressKind
from netpol_pdp.index.generation import SHARD_MASK, CowShards
from netpol_pdp.index.model import EndpointSlice, Service, ServicePort, TrafficPolicy

ServiceKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One endpoint address of a Service port (port: the slice's number)."""

    ip: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    node: str | None
    target: str | None


@dataclass(frozen=True, slots=True)
class ServicePortEntry:
    """One port of one Service and its candidates per IP family (4, 6)."""

    service: str  # ns/name
    port: ServicePort
    candidates: Mapping[int, tuple[Candidate, ...]]
    external_policy: TrafficPolicy
    internal_policy: TrafficPolicy


@dataclass(frozen=True, slots=True)
class ServiceAddress:
    """An address of a Service: which kind, and its ports by (protocol, port)."""

    service: str
    kind: AddressKind
    ports: Mapping[tuple[str, int], ServicePortEntry]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A Service by name: its object and its port entries (for flows that name it)."""

    service: Service
    ports: tuple[ServicePortEntry, ...]
    #: a headless Service's endpoint addresses per family, whatever their ports (port 0: the
    #: flow's port is used, for a headless Service without ports)
    candidates: Mapping[int, tuple[Candidate, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceTables:
    """The published, immutable Service tables of one generation."""

    addresses: tuple[dict[str, ServiceAddress], ...]
    node_ports: Mapping[tuple[str, int], ServicePortEntry]
    names: tuple[dict[ServiceKey, ServiceView], ...]

    def address(self, ip: str) -> ServiceAddress | None:
        return self.addresses[hash(ip) & SHARD_MASK].get(ip)

    def view(self, namespace: str, name: str) -> ServiceView | None:
        key = (namespace, name)
        return self.names[hash(key) & SHARD_MASK].get(key)


#: The destination of a flow to a headless Service by name: ``svc/NAMESPACE/NAME``
#: (no address is ever this text, so it cannot collide with one).
HEADLESS_PREFIX = "svc/"


def headless_key(dst: str) -> ServiceKey | None:
    """The (namespace, name) of a headless Service destination ``svc/NAMESPACE/NAME``, else None."""
    if not dst.startswith(HEADLESS_PREFIX):
        return None
    namespace, _, name = dst[len(HEADLESS_PREFIX) :].partition("/")
    return (namespace, name) if namespace and name else None


def family(ip: str) -> int:
    return ipaddress.ip_address(ip).version


def pick(candidates: Iterable[Candidate], node: str | None) -> tuple[list[Candidate], bool]:
    """The endpoints kube-proxy uses: the ready ones (on ``node`` when given); when
    there is none, the serving, terminating ones.  Returns (endpoints, fell back)."""
    usable = [c for c in candidates if node is None or c.node == node]
    ready = [c for c in usable if c.ready]
    if ready:
        return ready, False
    return [c for c in usable if c.serving and c.terminating], True


def translate(
    svc: Service, slices: Iterable[EndpointSlice]
) -> tuple[list[ServicePortEntry], dict[int, tuple[Candidate, ...]]]:
    """The port entries of ``svc`` from its slices, and (for headless Services) every
    endpoint address, per family, with port 0 (the flow's port is used)."""
    ordered = sorted(slices, key=lambda s: s.name)
    entries: list[ServicePortEntry] = []
    for sp in svc.ports:
        by_family: dict[int, list[Candidate]] = {4: [], 6: []}
        seen: set[tuple[str, int]] = set()
        for eps in ordered:
            if eps.address_type not in ("IPv4", "IPv6"):
                continue
            slice_port = next((p for p in eps.ports if p.name == sp.name and p.protocol == sp.protocol), None)
            if slice_port is None or slice_port.port is None:
                continue
            for ep in eps.endpoints:
                if not ep.addresses or (ep.addresses[0], slice_port.port) in seen:
                    continue
                seen.add((ep.addresses[0], slice_port.port))
                by_family[family(ep.addresses[0])].append(
                    Candidate(
                        ep.addresses[0],
                        slice_port.port,
                        ep.ready,
                        ep.serving,
                        ep.terminating,
                        ep.node_name,
                        ep.target,
                    )
                )
        entries.append(
            ServicePortEntry(
                svc.qualified_name,
                sp,
                {f: tuple(c) for f, c in by_family.items()},
                svc.external_traffic_policy,
                svc.internal_traffic_policy,
            )
        )
    headless: dict[int, list[Candidate]] = {4: [], 6: []}
    if svc.headless:
        seen_ip: set[str] = set()
        for eps in ordered:
            if eps.address_type not in ("IPv4", "IPv6"):
                continue
            for ep in eps.endpoints:
                if ep.addresses and ep.addresses[0] not in seen_ip:
                    seen_ip.add(ep.addresses[0])
                    headless[family(ep.addresses[0])].append(
                        Candidate(
                            ep.addresses[0],
                            0,
                            ep.ready,
                            ep.serving,
                            ep.terminating,
                            ep.node_name,
                            ep.target,
                        )
                    )
    return entries, {f: tuple(c) for f, c in headless.items()}


def addresses_of(svc: Service) -> list[tuple[str, AddressKind]]:
    """Every address of ``svc`` that kube-proxy translates, with its kind."""
    out = [(ip, AddressKind.CLUSTER_IP) for ip in svc.cluster_ips]
    out += [(ip, AddressKind.EXTERNAL_IP) for ip in svc.external_ips]
    out += [(ip, AddressKind.LOAD_BALANCER_IP) for ip in svc.load_balancer_ips]
    return out


class _Claims:
    """Who claims a key (an address or a node port); the least Service key wins."""

    def __init__(self) -> None:
        self.by_key: dict[object, set[ServiceKey]] = defaultdict(set)

    def add(self, key: object, owner: ServiceKey) -> None:
        self.by_key[key].add(owner)

    def discard(self, key: object, owner: ServiceKey) -> None:
        owners = self.by_key.get(key)
        if owners is not None:
            owners.discard(owner)
            if not owners:
                del self.by_key[key]

    def winner(self, key: object) -> tuple[ServiceKey | None, list[ServiceKey]]:
        owners = sorted(self.by_key.get(key, ()))
        return (owners[0] if owners else None), owners


class ServiceBook:
    """Writer side of the Service tables.  Writer thread only."""

    def __init__(self) -> None:
        self.services: dict[ServiceKey, Service] = {}
        self.slices: dict[ServiceKey, EndpointSlice] = {}
        self._slices_of: dict[ServiceKey, set[str]] = defaultdict(set)  # Service key -> slice names
        self._dirty: set[ServiceKey] = set()
        self._entries: dict[ServiceKey, list[ServicePortEntry]] = {}
        self._addr_claims = _Claims()
        self._port_claims = _Claims()
        self._claimed: dict[ServiceKey, tuple[list[tuple[str, AddressKind]], list[tuple[str, int]]]] = {}
        self._addresses = CowShards[str, ServiceAddress]()
        self._names = CowShards[ServiceKey, ServiceView]()
        self._node_ports: dict[tuple[str, int], ServicePortEntry] = {}
        self._dirty_addresses: set[str] = set()
        self._dirty_ports: set[tuple[str, int]] = set()
        self._published: ServiceTables | None = None

    # events ------------------------------------------------------------------------

    def upsert_service(self, svc: Service) -> None:
        self.services[(svc.namespace, svc.name)] = svc
        self._dirty.add((svc.namespace, svc.name))

    def delete_service(self, key: ServiceKey) -> None:
        if self.services.pop(key, None) is not None:
            self._dirty.add(key)

    def upsert_slice(self, eps: EndpointSlice) -> None:
        self.delete_slice((eps.namespace, eps.name))
        self.slices[(eps.namespace, eps.name)] = eps
        if eps.service is not None:
            self._slices_of[(eps.namespace, eps.service)].add(eps.name)
            self._dirty.add((eps.namespace, eps.service))

    def delete_slice(self, key: ServiceKey) -> None:
        old = self.slices.pop(key, None)
        if old is None or old.service is None:
            return
        owner = (old.namespace, old.service)
        names = self._slices_of[owner]
        names.discard(old.name)
        if not names:
            del self._slices_of[owner]
        self._dirty.add(owner)

    # publishing --------------------------------------------------------------------

    def _refresh(self, key: ServiceKey) -> None:
        """Recompute one Service's entries and claims (its slices only)."""
        old_addrs, old_ports = self._claimed.pop(key, ([], []))
        for ip, _kind in old_addrs:
            self._addr_claims.discard(ip, key)
            self._dirty_addresses.add(ip)
        for port_key in old_ports:
            self._port_claims.discard(port_key, key)
            self._dirty_ports.add(port_key)
        svc = self.services.get(key)
        if svc is None:
            self._entries.pop(key, None)
            self._names.pop(key)
            return
        slices = [self.slices[(key[0], n)] for n in self._slices_of.get(key, ())]
        entries, headless = translate(svc, slices)
        self._entries[key] = entries
        self._names.set(key, ServiceView(svc, tuple(entries), headless))
        addrs = addresses_of(svc)
        ports = [(e.port.protocol, e.port.node_port) for e in entries if e.port.node_port is not None]
        port_keys = [(p, n) for p, n in ports if n is not None]
        self._claimed[key] = (addrs, port_keys)
        for ip, _kind in addrs:
            self._addr_claims.add(ip, key)
            self._dirty_addresses.add(ip)
        for port_key in port_keys:
            self._port_claims.add(port_key, key)
            self._dirty_ports.add(port_key)

    def _address_for(self, ip: str) -> ServiceAddress | None:
        owner, owners = self._addr_claims.winner(ip)
        if owner is None:
            return None
        svc = self.services[owner]
        kind = next(k for a, k in self._claimed[owner][0] if a == ip)
        ports = {(e.port.protocol, e.port.port): e for e in self._entries[owner]}
        notes: tuple[str, ...] = ()
        if len(owners) > 1:
            names = ", ".join(f"{ns}/{n}" for ns, n in owners)
            notes = (f"service-conflict: {ip} claimed by {names}; {svc.qualified_name} (first by name) wins",)
        return ServiceAddress(svc.qualified_name, kind, ports, notes)

    def publish(self) -> ServiceTables | None:
        """Apply the dirty Services; the tables to publish (None: no Service at all)."""
        if not self._dirty and self._published is not None:
            return self._published
        for key in self._dirty:
            self._refresh(key)
        self._dirty.clear()
        for ip in self._dirty_addresses:
            entry = self._address_for(ip)
            if entry is None:
                self._addresses.pop(ip)
            else:
                self._addresses.set(ip, entry)
        if self._dirty_ports:
            node_ports = dict(self._node_ports)
            for port_key in self._dirty_ports:
                owner, _ = self._port_claims.winner(port_key)
                found = None
                if owner is not None:
                    found = next(
                        (e for e in self._entries[owner] if (e.port.protocol, e.port.node_port) == port_key),
                        None,
                    )
                if found is None:
                    node_ports.pop(port_key, None)
                else:
                    node_ports[port_key] = found
            self._node_ports = node_ports
        self._dirty_addresses.clear()
        self._dirty_ports.clear()
        if not self.services:
            self._published = None
            return None
        self._published = ServiceTables(self._addresses.freeze(), self._node_ports, self._names.freeze())
        return self._published
