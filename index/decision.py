"""What a decision reports: the verdict, a short reason code, and (when asked) why.

The reason codes are a closed set so that clients, metrics and audit summaries
can group on them.  The explanation is built only when ``explain=True``: the hot
path returns a verdict and reason; the per-direction trace costs more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"


class Reason(StrEnum):
    """Why a verdict was reached.  Exemptions come first, then policy outcomes."""

    #: Source and destination are the same pod (any of its IPs).
    LOOPBACK = "loopback"
    #: A pod talking to the node it runs on (any address of that node, either way).
    NODE_TRAFFIC = "node-traffic"
    #: Neither end is a pod (choice: ALLOW).
    NO_POD = "no-pod-involved"
    #: Neither end is an ordinary pod and at least one is a hostNetwork pod, whose
    #: policies are not enforced (choice: it is treated as its node).
    HOST_NETWORK = "host-network"
    #: Every pod end involved is not isolated in the direction that concerns it.
    NOT_ISOLATED = "not-isolated"
    #: At least one isolated direction was allowed by a policy rule; the other (if
    #: any) was allowed too.
    ALLOWED_BY_POLICY = "allowed-by-policy"
    DENIED_INGRESS = "denied-on-ingress"
    DENIED_EGRESS = "denied-on-egress"
    DENIED_BOTH = "denied-on-both"
    #: Cluster-scoped policy decided (docs/semantics.md section 6).  A denial by an
    #: Admin rule outranks a NetworkPolicy denial, which outranks a Baseline one;
    #: among allows, an Admin Accept outranks a NetworkPolicy allow, then Baseline.
    ALLOWED_BY_ADMIN = "allowed-by-admin-policy"
    DENIED_BY_ADMIN = "denied-by-admin-policy"
    ALLOWED_BY_BASELINE = "allowed-by-baseline-policy"
    DENIED_BY_BASELINE = "denied-by-baseline-policy"
    #: The flow is addressed to a Service (docs/services.md): some of its endpoints
    #: allow it and some do not (DENY unless ``service_partial`` is ALLOW).
    SERVICE_PARTIALLY_ALLOWED = "service-partially-allowed"
    #: The Service port has no ready (nor serving, terminating) endpoint: DENY.
    SERVICE_NO_READY_ENDPOINTS = "service-no-ready-endpoints"
    #: The address is a Service's but no port of it matches the flow's: DENY.
    SERVICE_PORT_NOT_FOUND = "service-port-not-found"


class EndpointKind(StrEnum):
    POD = "pod"
    NODE = "node"
    EXTERNAL = "external"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What an address is: a pod (``name`` = ``ns/pod``), a node, or external.

    A hostNetwork pod's address is a node endpoint with ``host_network_pods``
    naming the pods on it.
    """

    kind: EndpointKind
    name: str | None = None
    namespace: str | None = None
    host_network_pods: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.kind is EndpointKind.EXTERNAL:
            return "external"
        return f"{self.kind.value} {self.name}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.name is not None:
            out["name"] = self.name
        if self.namespace is not None:
            out["namespace"] = self.namespace
        if self.host_network_pods:
            out["host_network_pods"] = list(self.host_network_pods)
        return out


@dataclass(frozen=True, slots=True)
class RuleRef:
    """``policy`` (``ns/name``) and the index of the rule in its ingress/egress list."""

    policy: str
    rule: int

    def __str__(self) -> str:
        return f"{self.policy} rule {self.rule}"


@dataclass(frozen=True, slots=True)
class TierRuleRef:
    """A cluster policy rule that matched: tier, ``Kind name``, rule index and name, action."""

    tier: str
    policy: str
    rule: int
    name: str
    action: str

    def __str__(self) -> str:
        named = f" ({self.name})" if self.name else ""
        return f"{self.tier} tier {self.policy} rule {self.rule}{named}: {self.action}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "policy": self.policy,
            "rule": self.rule,
            "name": self.name,
            "action": self.action,
        }


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One condition a rule failed: the policy ``field`` (Kubernetes path), what it
    wants, what the flow has, and the failure in words (index/whynot.py)."""

    field: str
    want: str
    got: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (want {self.want}, got {self.got})"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "want": self.want, "got": self.got, "message": self.message}


@dataclass(frozen=True, slots=True)
class NearMiss:
    """A rule that did not match a denied direction and the conditions it failed.

    ``policy`` is ``ns/name`` (NetworkPolicy, ``tier`` empty) or ``Kind name``
    (cluster policy, with ``tier``, ``name``, ``action``); ``missed`` counts every
    rule of the direction that missed (the list holds the nearest few).
    """

    policy: str
    rule: int
    direction: str
    mismatches: tuple[Mismatch, ...]
    tier: str = ""
    name: str = ""
    action: str = ""
    missed: int = 0

    def __str__(self) -> str:
        if self.tier:
            named = f" ({self.name})" if self.name else ""
            return f"{self.tier} tier {self.policy} {self.direction} rule {self.rule}{named}: {self.action}"
        return f"{self.policy} {self.direction} rule {self.rule}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "policy": self.policy,
            "rule": self.rule,
            "direction": self.direction,
            "mismatches": [m.to_dict() for m in self.mismatches],
            "missed": self.missed,
        }
        if self.tier:
            out.update(tier=self.tier, name=self.name, action=self.action)
        return out


@dataclass(frozen=True, slots=True)
class DirectionTrace:
    """How one direction was judged (ingress of the destination, egress of the source).

    ``pod`` is the pod the direction belongs to; ``isolating`` lists every policy
    that selects it for this direction (empty when not isolated); ``allowed_by``
    lists every rule that matched (empty when denied or not isolated).
    ``decided_by`` is the cluster policy rule (Accept or Deny) that decided the
    direction, None when NetworkPolicy (or the default) did; ``passed`` the Pass
    rules that matched on the way (at most one per tier).  ``isolated`` and
    ``isolating`` always describe NetworkPolicy; ``allowed_by`` is filled only when
    the NetworkPolicy tier decided.  ``near_misses`` (a denied direction, filled by
    index/whynot.py when asked) lists the nearest rules that did not match and why.
    """

    direction: str
    pod: str
    isolated: bool
    allowed: bool
    isolating: tuple[str, ...] = ()
    allowed_by: tuple[RuleRef, ...] = ()
    decided_by: TierRuleRef | None = None
    passed: tuple[TierRuleRef, ...] = ()
    near_misses: tuple[NearMiss, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "direction": self.direction,
            "pod": self.pod,
            "isolated": self.isolated,
            "allowed": self.allowed,
            "isolating_policies": list(self.isolating),
            "allowed_by": [{"policy": r.policy, "rule": r.rule} for r in self.allowed_by],
        }
        if self.decided_by is not None:
            out["decided_by"] = self.decided_by.to_dict()
        if self.passed:
            out["passed"] = [r.to_dict() for r in self.passed]
        if self.near_misses:
            out["near_misses"] = [m.to_dict() for m in self.near_misses]
        return out


class AddressKind(StrEnum):
    """Which of a Service's addresses a flow was sent to."""

    CLUSTER_IP = "cluster-ip"
    EXTERNAL_IP = "external-ip"
    LOAD_BALANCER_IP = "load-balancer-ip"
    NODE_PORT = "node-port"
    #: a headless Service by name: no address, its endpoints as DNS gives them
    HEADLESS = "headless"


@dataclass(frozen=True, slots=True)
class ServiceEndpoint:
    """One endpoint a Service flow was translated to, and its own decision.

    ``terminating``: a serving, terminating endpoint used because the port had no
    ready one (kube-proxy's fallback).
    """

    ip: str
    port: int
    decision: Decision
    target: str | None = None
    node: str | None = None
    terminating: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ip": self.ip, "port": self.port, **self.decision.to_dict()}
        out.pop("generation", None)
        if self.target is not None:
            out["target"] = self.target
        if self.node is not None:
            out["node"] = self.node
        if self.terminating:
            out["terminating"] = True
        return out


@dataclass(frozen=True, slots=True)
class ServiceTrace:
    """How a flow to a Service address was translated: the Service, the port mapping
    (``port`` as addressed, ``port_name``, ``target_port`` as declared) and every
    endpoint's verdict.  ``traffic_policy`` is the one that applied (internal for a
    cluster IP, external otherwise)."""

    service: str
    address: str
    address_kind: AddressKind
    protocol: str
    port: int
    port_name: str = ""
    target_port: str = ""
    traffic_policy: str = "Cluster"
    endpoints: tuple[ServiceEndpoint, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "address": self.address,
            "address_kind": self.address_kind.value,
            "protocol": self.protocol,
            "port": self.port,
            "port_name": self.port_name,
            "target_port": self.target_port,
            "traffic_policy": self.traffic_policy,
            "endpoints": [e.to_dict() for e in self.endpoints],
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one flow.

    ``ingress``/``egress`` are filled only when explained, and only for a
    direction that was evaluated (an exemption evaluates none; a Service decision
    keeps them on each endpoint's own decision in ``service``).  ``notes`` carry
    the choices that shaped the answer (hostNetwork ends, IP conflicts) and are
    always present, explained or not.
    """

    verdict: Verdict
    reason: Reason
    generation: int
    src: Endpoint
    dst: Endpoint
    notes: tuple[str, ...] = ()
    egress: DirectionTrace | None = None
    ingress: DirectionTrace | None = None
    explained: bool = False
    #: set iff the flow was addressed to a Service (always, explained or not)
    service: ServiceTrace | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": self.verdict.value,
            "reason": self.reason.value,
            "generation": self.generation,
            "src": self.src.to_dict(),
            "dst": self.dst.to_dict(),
        }
        if self.notes:
            out["notes"] = list(self.notes)
        if self.service is not None:
            out["service"] = self.service.to_dict()
        if self.explained:
            out["explanation"] = {
                "egress": self.egress.to_dict() if self.egress else None,
                "ingress": self.ingress.to_dict() if self.ingress else None,
            }
        return out
