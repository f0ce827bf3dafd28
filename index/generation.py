"""The read side: an immutable published generation and the values it holds.

Threading contract: everything reachable from a :class:`Generation` is never
mutated after it is published.  The single writer (:class:`~netpol_pdp.index.engine.Index`
``apply``) builds the next generation beside it, sharing every unchanged part,
and publishes it by one attribute assignment; readers take ``gen = index._gen``
once per request or batch and use nothing else.  No lock is taken on the
decision path.

Shape and why:

- **Address map** ``ip -> PodEntry | NodeEntry`` split in :data:`SHARDS` dicts by
  hash.  A pod event copies one shard (a few hundred entries) instead of the
  whole map (100,000 entries copy in ~2 ms; a shard in ~5 µs), which keeps pod
  events well under a millisecond in large worlds.
- **Identity map** ``identity id -> IdentityView``, sharded the same way.  Pods
  with equal namespace and labels share one identity; an entry refers to its
  identity by id so that a policy change that touches a thousand identities
  never rewrites the pods' address entries.
- :class:`DirPolicy` — the compiled policy of one identity for one direction,
  shared by every identity selected by the same set of policies.
- :class:`ClusterDir` — the cluster-scoped policy rules (ClusterNetworkPolicy,
  AdminNetworkPolicy, BaselineAdminNetworkPolicy) of one identity for one
  direction, in evaluation order, shared like :class:`DirPolicy`.  A generation
  of a world without them has ``clustered`` False and the decision path never
  looks at them.
- **Objects by key** ``(kind, namespace, name) -> model object``, sharded the
  same way: what the decision path never reads but the questions *about* a
  decision do (:mod:`~netpol_pdp.index.ends` resolves ``ns/name`` and
  ``node/NAME`` here, :mod:`~netpol_pdp.index.whynot` reads the policies), so
  that they see exactly the state the decision saw.
- **Service tables** (:mod:`~netpol_pdp.index.services`): Service address and
  port -> endpoints, None in a world without Services.
- **Decision cache** keyed by the flow itself, owned by the generation, so a new
  generation starts with an empty one: invalidation by generation is free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from netpol_pdp.index.decision import Decision, Endpoint, EndpointKind, TierRuleRef
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.ipblocks import IPBlockMatcher
from netpol_pdp.index.model import LabelSelector, Object, ObjectKey
from netpol_pdp.index.ports import PortIndex

if TYPE_CHECKING:
    from netpol_pdp.index.services import ServiceTables

SHARD_BITS = 8
SHARDS = 1 << SHARD_BITS
SHARD_MASK = SHARDS - 1

K = TypeVar("K")
V = TypeVar("V")

EXTERNAL = Endpoint(EndpointKind.EXTERNAL)


class CowShards(Generic[K, V]):
    """Writer-side sharded dict with copy-on-write against the last published state.

    Writer thread only.  ``freeze()`` returns the tuple of shard dicts to
    publish; after it, the next write to a shard copies it first.
    """

    __slots__ = ("_fresh", "_shards")

    def __init__(self) -> None:
        self._shards: list[dict[K, V]] = [{} for _ in range(SHARDS)]
        self._fresh: set[int] = set(range(SHARDS))  # shards not yet published: safe to mutate

    def _writable(self, key: K) -> dict[K, V]:
        i = hash(key) & SHARD_MASK
        if i not in self._fresh:
            self._shards[i] = dict(self._shards[i])
            self._fresh.add(i)
        return self._shards[i]

    def set(self, key: K, value: V) -> None:
        i = hash(key) & SHARD_MASK  # _writable, inline: a first build sets every key once
        if i in self._fresh:
            self._shards[i][key] = value
        else:
            shard = self._shards[i] = dict(self._shards[i])
            self._fresh.add(i)
            shard[key] = value

    def get(self, key: K) -> V | None:
        return self._shards[hash(key) & SHARD_MASK].get(key)

    def pop(self, key: K) -> None:
        shard = self._shards[hash(key) & SHARD_MASK]
        if key in shard:
            self._writable(key).pop(key)

    def items(self) -> list[tuple[K, V]]:
        return [kv for shard in self._shards for kv in shard.items()]

    def __len__(self) -> int:
        return sum(len(s) for s in self._shards)

    def freeze(self) -> tuple[dict[K, V], ...]:
        self._fresh.clear()
        return tuple(self._shards)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule of one policy, ready to test a peer.

    ``any_peer``: no ``from``/``to`` (everything matches); ``any_pod``: a
    ``namespaceSelector: {}`` peer (every pod); ``selectors``: ids of the other
    selector peers (a pod matches when its identity carries one of them);
    ipBlock peers live in the direction's :class:`IPBlockMatcher`.
    """

    policy: str
    index: int
    any_peer: bool
    any_pod: bool
    selectors: frozenset[int]


@dataclass(frozen=True, slots=True)
class DirPolicy:
    """The compiled policy of an isolated identity for one direction."""

    isolating: tuple[str, ...]
    rules: tuple[CompiledRule, ...]
    ports: PortIndex
    ipblocks: IPBlockMatcher | None


@dataclass(frozen=True, slots=True)
class TierRule:
    """One cluster policy rule ready to test a peer (``networks`` live in the
    direction's :class:`IPBlockMatcher`, ports in its :class:`PortIndex`).

    ``deny``/``pass_`` give the action (neither: Accept); ``nodes`` the ``nodes``
    peers' selectors; ``domain_note`` the note a passed-over ``domainNames`` rule adds.
    """

    ref: TierRuleRef
    deny: bool
    pass_: bool
    any_pod: bool
    selectors: frozenset[int]
    nodes: tuple[LabelSelector, ...]
    domain_note: str | None
    #: the rule has ``networks`` peers (in the direction's IPBlockMatcher)
    networks: bool = False


@dataclass(frozen=True, slots=True)
class ClusterDir:
    """The cluster rules of an identity for one direction: ``rules[:admin]`` are the
    Admin tier's, the rest the Baseline tier's, each in evaluation order."""

    rules: tuple[TierRule, ...]
    admin: int
    ports: PortIndex
    ipblocks: IPBlockMatcher | None


@dataclass(frozen=True, slots=True)
class IdentityView:
    """What readers know of an identity: its selector memberships and compiled policy."""

    id: int
    namespace: str
    selectors: frozenset[int]
    ingress: DirPolicy | None
    egress: DirPolicy | None
    cluster_ingress: ClusterDir | None = None
    cluster_egress: ClusterDir | None = None
    #: the identity's pod labels, sorted (read by reach queries, never on the decision path)
    labels: tuple[tuple[str, str], ...] = ()


class PodEntry(NamedTuple):
    """An address owned by a live, non-hostNetwork pod.

    A named tuple, not a frozen dataclass like its neighbours: a first load builds one per
    pod address, and a tuple is built in a third of the time (0.4 vs 1.4 µs, measured).
    """

    name: str  # ns/name
    identity: int
    node: str | None
    named_ports: frozenset[tuple[str, str, int]]
    endpoint: Endpoint
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """An address of a node, or of a hostNetwork pod (treated as its node)."""

    node: str | None
    host_network_pods: tuple[str, ...]
    endpoint: Endpoint
    notes: tuple[str, ...]


Entry = PodEntry | NodeEntry


class Generation:
    """One published, immutable state of the index (plus its private decision cache)."""

    __slots__ = (
        "addresses",
        "cache",
        "clustered",
        "identities",
        "node_labels",
        "number",
        "objects",
        "services",
    )

    def __init__(
        self,
        number: int,
        addresses: tuple[dict[str, Entry], ...],
        identities: tuple[dict[int, IdentityView], ...],
        node_labels: Mapping[str, Mapping[str, str]] | None = None,
        objects: tuple[dict[ObjectKey, Object], ...] | None = None,
        services: ServiceTables | None = None,
    ) -> None:
        self.number = number
        self.addresses = addresses
        self.identities = identities
        #: every object as given, by key (read by ends.py and whynot.py, never by decide)
        self.objects: tuple[dict[ObjectKey, Object], ...] = (
            objects if objects is not None else tuple({} for _ in range(SHARDS))
        )
        #: node name -> labels, present iff some cluster-scoped policy exists
        self.node_labels = node_labels
        self.clustered = node_labels is not None
        #: the Service tables (services.py), None when the world has no Service
        self.services = services
        self.cache: dict[Flow, Decision] = {}

    def entry(self, ip: str) -> Entry | None:
        return self.addresses[hash(ip) & SHARD_MASK].get(ip)

    def identity(self, ident: int) -> IdentityView:
        return self.identities[ident & SHARD_MASK][ident]

    def object(self, key: ObjectKey) -> Object | None:
        """The object with ``key`` as of this generation, None when absent."""
        return self.objects[hash(key) & SHARD_MASK].get(key)

    def all_objects(self) -> list[Object]:
        """Every object of this generation (a scan: for explanations, not decisions)."""
        return [o for shard in self.objects for o in shard.values()]
