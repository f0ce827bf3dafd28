"""The objects the engine knows, as validated, immutable values.

These are produced only by :mod:`netpol_pdp.index.validation` from manifest dicts
(the shape the Kubernetes API returns), so every instance is already valid and
already defaulted: protocols are upper case, CIDRs are networks, policy types are
the *effective* ones, and namespaces carry ``kubernetes.io/metadata.name``.

The model holds data only.  Matching logic lives twice, on purpose: once fast in
the index, once obvious in :mod:`netpol_pdp.index.reference`, so that the
property tests compare two independent readings of SEMANTICS.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, TypeAlias

IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")


class Kind(StrEnum):
    NAMESPACE = "Namespace"
    POD = "Pod"
    NODE = "Node"
    NETWORK_POLICY = "NetworkPolicy"
    CLUSTER_NETWORK_POLICY = "ClusterNetworkPolicy"
    ADMIN_NETWORK_POLICY = "AdminNetworkPolicy"
    BASELINE_ADMIN_NETWORK_POLICY = "BaselineAdminNetworkPolicy"
    SERVICE = "Service"
    ENDPOINT_SLICE = "EndpointSlice"


#: The cluster-scoped policy kinds (policy.networking.k8s.io), read as tiers.
CLUSTER_POLICY_KINDS = (
    Kind.CLUSTER_NETWORK_POLICY,
    Kind.ADMIN_NETWORK_POLICY,
    Kind.BASELINE_ADMIN_NETWORK_POLICY,
)


#: The Service kinds (v1 Service, discovery.k8s.io/v1 EndpointSlice): they translate a
#: Service address to pod addresses (docs/services.md) and decide nothing themselves.
SERVICE_KINDS = (Kind.SERVICE, Kind.ENDPOINT_SLICE)
#: Kinds counted only when some are held (the four core kinds are always counted).
OPTIONAL_KINDS = CLUSTER_POLICY_KINDS + SERVICE_KINDS

#: The label by which an EndpointSlice names the Service that owns it.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class Operator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``matchExpressions`` entry; ``values`` is empty for Exists/DoesNotExist."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """``matchLabels`` AND ``matchExpressions``; empty matches everything.

    ``match_labels`` is a sorted tuple so that equal selectors are equal values
    (the index deduplicates selectors by value).
    """

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions


@dataclass(frozen=True, slots=True)
class IPBlock:
    """``cidr`` minus every ``except`` network (host bits already cleared)."""

    cidr: IPNetwork
    except_: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True, slots=True)
class Peer:
    """One ``from``/``to`` element: either selectors (one or both) or an ipBlock.

    ``pod_selector is None and namespace_selector is not None`` means "every pod
    of the matching namespaces"; ``namespace_selector is None and pod_selector is
    not None`` means "pods of the policy's own namespace".
    """

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None


@dataclass(frozen=True, slots=True)
class PolicyPort:
    """One ``ports`` entry. ``port`` is None (every port), an int, or a port name."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One ingress or egress rule; empty ``peers``/``ports`` mean "any"."""

    peers: tuple[Peer, ...] = ()
    ports: tuple[PolicyPort, ...] = ()


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    kind: Literal[Kind.NAMESPACE] = Kind.NAMESPACE

    @property
    def key(self) -> ObjectKey:
        return (Kind.NAMESPACE, "", self.name)

    @property
    def ref(self) -> str:
        return f"Namespace {self.name}"


@dataclass(frozen=True, slots=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod.  ``ips`` is podIPs (or podIP), normalised; ``live`` says it takes part.

    A pod takes part iff it has at least one IP and its phase is not
    Succeeded/Failed.  ``created`` is ``metadata.creationTimestamp`` as epoch
    seconds (0.0 when absent) and breaks IP conflicts: the newest pod wins.
    """

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    node_name: str | None = None
    host_network: bool = False
    ips: tuple[str, ...] = ()
    phase: str | None = None
    ports: tuple[ContainerPort, ...] = ()
    created: float = 0.0

    kind: Literal[Kind.POD] = Kind.POD

    @property
    def key(self) -> ObjectKey:
        return (Kind.POD, self.namespace, self.name)

    @property
    def ref(self) -> str:
        return f"Pod {self.namespace}/{self.name}"

    @property
    def live(self) -> bool:
        return bool(self.ips) and self.phase not in ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    addresses: tuple[str, ...] = ()
    #: read by ClusterNetworkPolicy ``nodes`` peers only
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    kind: Literal[Kind.NODE] = Kind.NODE

    @property
    def key(self) -> ObjectKey:
        return (Kind.NODE, "", self.name)

    @property
    def ref(self) -> str:
        return f"Node {self.name}"


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """A NetworkPolicy with *effective* policy types already computed.

    ``ingress``/``egress`` hold the rules; a direction absent from
    ``policy_types`` is ignored whatever its rules say.
    """

    namespace: str
    name: str
    pod_selector: LabelSelector = LabelSelector()
    policy_types: frozenset[str] = frozenset({"Ingress"})
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()

    kind: Literal[Kind.NETWORK_POLICY] = Kind.NETWORK_POLICY

    @property
    def key(self) -> ObjectKey:
        return (Kind.NETWORK_POLICY, self.namespace, self.name)

    @property
    def ref(self) -> str:
        return f"NetworkPolicy {self.namespace}/{self.name}"

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"


class Tier(StrEnum):
    """The two tiers of cluster-scoped policy (NetworkPolicy sits between them)."""

    ADMIN = "Admin"
    BASELINE = "Baseline"


class Action(StrEnum):
    """A cluster policy rule's action; v1alpha1 ``Allow`` is read as ``Accept``."""

    ACCEPT = "Accept"
    DENY = "Deny"
    PASS = "Pass"


#: ``PolicyPort.protocol`` of a cluster policy's named port: the protocol is the
#: named container port's own (``destinationNamedPort`` / ``namedPort`` carry none).
NAMED_PORT_PROTOCOL = ""


@dataclass(frozen=True, slots=True)
class ClusterPeer:
    """One peer (or subject) of a cluster policy; exactly one kind is set.

    - ``namespaces``: ``namespace_selector`` set, ``pod_selector`` None (every pod of
      the matching namespaces);
    - ``pods``: both selectors set;
    - ``nodes``: ``node_selector`` (egress only);
    - ``networks``: ``networks`` (egress only; any address, pod addresses included);
    - ``domainNames``: ``domain_names`` (egress, Accept only; never matches an IP).
    """

    namespace_selector: LabelSelector | None = None
    pod_selector: LabelSelector | None = None
    node_selector: LabelSelector | None = None
    networks: tuple[IPNetwork, ...] = ()
    domain_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterRule:
    """One ingress/egress rule: ``action`` when a peer and a port match.

    ``ports`` empty means any port of any protocol; a named port has protocol
    :data:`NAMED_PORT_PROTOCOL`.
    """

    name: str
    action: Action
    peers: tuple[ClusterPeer, ...]
    ports: tuple[PolicyPort, ...] = ()


#: The order of kinds inside one (tier, priority, name), so that an ANP and a CNP
#: with the same name and priority still have a fixed order.
_KIND_ORDER = {k: i for i, k in enumerate(CLUSTER_POLICY_KINDS)}
#: A BaselineAdminNetworkPolicy has no priority: it is read after every Baseline CNP.
BANP_PRIORITY = 1001


@dataclass(frozen=True, slots=True)
class ClusterPolicy:
    """A ClusterNetworkPolicy (v1alpha2), AdminNetworkPolicy or BaselineAdminNetworkPolicy.

    Cluster-scoped: the key has no namespace.  ``subject`` is a ClusterPeer with
    ``namespaces`` or ``pods`` set.  ``priority`` of a BANP is :data:`BANP_PRIORITY`.
    """

    kind: Kind
    name: str
    tier: Tier
    priority: int
    subject: ClusterPeer
    ingress: tuple[ClusterRule, ...] = ()
    egress: tuple[ClusterRule, ...] = ()

    @property
    def key(self) -> ObjectKey:
        return (self.kind, "", self.name)

    @property
    def ref(self) -> str:
        return f"{self.kind.value} {self.name}"

    @property
    def order(self) -> tuple[int, int, str, int]:
        """Evaluation order: tier, ascending priority, then name (the API leaves ties open)."""
        return (0 if self.tier is Tier.ADMIN else 1, self.priority, self.name, _KIND_ORDER[self.kind])


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"
    EXTERNAL_NAME = "ExternalName"


class TrafficPolicy(StrEnum):
    """``externalTrafficPolicy`` / ``internalTrafficPolicy``."""

    CLUSTER = "Cluster"
    LOCAL = "Local"


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One ``spec.ports`` entry.  ``name`` is "" when unset (only a single-port Service
    may leave it unset); ``target_port`` is a number or a container port name
    (defaulted to ``port``); ``node_port`` is None unless allocated."""

    port: int
    protocol: str = "TCP"
    name: str = ""
    target_port: int | str | None = None
    node_port: int | None = None


@dataclass(frozen=True, slots=True)
class Service:
    """A v1 Service.  ``cluster_ips`` is ``clusterIPs`` (or ``clusterIP``), normalised,
    empty for a headless (``clusterIP: None``) or ExternalName Service;
    ``load_balancer_ips`` is ``status.loadBalancer.ingress[].ip``."""

    namespace: str
    name: str
    type: ServiceType = ServiceType.CLUSTER_IP
    cluster_ips: tuple[str, ...] = ()
    headless: bool = False
    ports: tuple[ServicePort, ...] = ()
    selector: Mapping[str, str] | None = field(default=None, hash=False)
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    external_traffic_policy: TrafficPolicy = TrafficPolicy.CLUSTER
    internal_traffic_policy: TrafficPolicy = TrafficPolicy.CLUSTER

    kind: Literal[Kind.SERVICE] = Kind.SERVICE

    @property
    def key(self) -> ObjectKey:
        return (Kind.SERVICE, self.namespace, self.name)

    @property
    def ref(self) -> str:
        return f"Service {self.namespace}/{self.name}"

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class SliceEndpoint:
    """One ``endpoints`` entry.  Conditions are already defaulted as the API documents:
    ``ready`` unset means ready, ``serving`` unset means ``ready``, ``terminating``
    unset means not terminating.  ``target`` is ``targetRef`` as ``Kind ns/name``."""

    addresses: tuple[str, ...]
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str | None = None
    target: str | None = None
    hostname: str | None = None


@dataclass(frozen=True, slots=True)
class SlicePort:
    """One ``ports`` entry; ``name`` "" when unset; ``port`` None means every port."""

    name: str = ""
    protocol: str = "TCP"
    port: int | None = None


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    """A discovery.k8s.io/v1 EndpointSlice; ``service`` is its ``kubernetes.io/service-name``
    label (None: owned by no Service, read by nothing)."""

    namespace: str
    name: str
    address_type: str = "IPv4"
    service: str | None = None
    endpoints: tuple[SliceEndpoint, ...] = ()
    ports: tuple[SlicePort, ...] = ()

    kind: Literal[Kind.ENDPOINT_SLICE] = Kind.ENDPOINT_SLICE

    @property
    def key(self) -> ObjectKey:
        return (Kind.ENDPOINT_SLICE, self.namespace, self.name)

    @property
    def ref(self) -> str:
        return f"EndpointSlice {self.namespace}/{self.name}"


Object: TypeAlias = Namespace | Pod | Node | NetworkPolicy | ClusterPolicy | Service | EndpointSlice
#: (kind, namespace or "", name): identifies an object across updates.
ObjectKey: TypeAlias = tuple[Kind, str, str]


@dataclass(frozen=True, slots=True)
class Upsert:
    """Add or replace an object (ADDED and MODIFIED are the same to the index)."""

    obj: Object

    @property
    def key(self) -> ObjectKey:
        return self.obj.key


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the object with this key (a no-op when absent)."""

    key: ObjectKey


Event: TypeAlias = Upsert | Delete
