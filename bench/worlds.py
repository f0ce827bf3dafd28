"""Synthetic clusters shaped like real ones, for benchmarks.

Why synthetic: a benchmark needs worlds of a known, reproducible size (small ->
large) whose *shape* is what the index is built for, so that the figures say
something about production.  The shape modelled here:

- namespaces carry ``team`` and ``env`` labels; three system namespaces exist
  (``kube-system`` with kube-dns, ``monitoring`` with Prometheus, ``ingress-nginx``);
- workloads are deployments: replicas share their labels (``app``, ``tier``,
  ``pod-template-hash``), so *identities* (namespace + labels) are far fewer
  than pods, as in a real cluster;
- nodes have an InternalIP and a /23 pod range; each node runs one hostNetwork
  pod (a kube-proxy-like daemon); a few pods are completed jobs (phase
  ``Succeeded``), which take no part;
- every user namespace has a default-deny ingress policy plus policies drawn,
  in rotation, from the common recipes: allow from the same app, allow from a
  labelled namespace on a named port, combined namespace+pod selectors,
  ``matchExpressions`` of every operator, ipBlock egress with ``except``,
  port ranges, DNS egress to kube-system.

Everything is produced as plain manifest dicts (the API's shape) and validated
through :func:`~netpol_pdp.index.validation.parse_object`, so a generated world
exercises the same path as a real one.  The generator is deterministic for a
given seed and asserts the size of what it built (STYLE.md 12).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from netpol_pdp.index.model import OPTIONAL_KINDS, Kind, Object
from netpol_pdp.index.validation import parse_object

Manifest = dict[str, Any]


@dataclass(frozen=True, slots=True)
class WorldSpec:
    """How big a world is.  ``namespaces`` includes the three system namespaces."""

    name: str
    pods: int
    policies: int
    namespaces: int
    nodes: int


#: The sizes of issue 5.  ``tiny`` exists for smoke tests (seconds, not figures).
SIZES: dict[str, WorldSpec] = {
    "tiny": WorldSpec("tiny", pods=120, policies=20, namespaces=7, nodes=2),
    "small": WorldSpec("small", pods=1_000, policies=100, namespaces=23, nodes=5),
    "medium": WorldSpec("medium", pods=10_000, policies=1_000, namespaces=203, nodes=50),
    "large": WorldSpec("large", pods=100_000, policies=10_000, namespaces=2_000, nodes=500),
}

SYSTEM_NAMESPACES = ("kube-system", "monitoring", "ingress-nginx")
TEAMS = (
    "payments", "checkout", "search", "catalog", "identity", "billing", "growth", "ads",
    "media", "data", "ml", "platform", "risk", "support", "notify", "geo",
)  # fmt: skip
ENVS = ("prod", "staging", "dev")
ENV_WEIGHTS = (5, 3, 2)
#: Replica counts and how often each occurs: most deployments are small, a few are big.
REPLICAS = (1, 2, 3, 4, 6, 10, 16)
REPLICA_WEIGHTS = (14, 22, 28, 14, 10, 8, 4)

#: Node addresses and pod ranges (RFC 1918; each node gets a /23 of POD_NET).
NODE_NET = ipaddress.IPv4Network("172.16.0.0/16")
POD_NET = ipaddress.IPv4Network("10.64.0.0/10")
POD_RANGE_SIZE = 512
#: What ipBlock egress rules let out: the internet, minus private ranges.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


@dataclass(frozen=True, slots=True)
class Archetype:
    """A kind of workload: its tier and the container ports its pods declare."""

    tier: str
    ports: tuple[tuple[str, int, str], ...]  # (name, containerPort, protocol)


ARCHETYPES: dict[str, Archetype] = {
    "web": Archetype("frontend", (("http", 8080, "TCP"), ("metrics", 9090, "TCP"))),
    "api": Archetype("backend", (("http", 8080, "TCP"), ("grpc", 50051, "TCP"), ("metrics", 9090, "TCP"))),
    "worker": Archetype("backend", (("metrics", 9090, "TCP"),)),
    "postgres": Archetype("db", (("postgres", 5432, "TCP"),)),
    "redis": Archetype("db", (("redis", 6379, "TCP"),)),
    "gateway": Archetype("frontend", (("http", 8080, "TCP"), ("admin", 8001, "TCP"))),
    "batch": Archetype("backend", ()),
    # system workloads, not drawn for user namespaces
    "coredns": Archetype("system", (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP"))),
    "prometheus": Archetype("monitoring", (("web", 9090, "TCP"),)),
}
ARCHETYPE_ORDER = ("web", "api", "worker", "postgres", "api", "redis", "gateway", "worker", "batch")


@dataclass(slots=True)
class Deployment:
    """One workload of the world: its pods share ``labels``."""

    namespace: str
    name: str
    labels: dict[str, str]
    archetype: str
    pod_names: list[str] = field(default_factory=list)
    pod_ips: list[str] = field(default_factory=list)


@dataclass(slots=True)
class World:
    """A generated cluster: manifests (the API's shape) and what was generated.

    ``objects`` holds the validated model objects (``parse_object`` of each
    manifest), filled by :func:`generate_world` unless ``validate=False``.
    """

    spec: WorldSpec
    seed: int
    manifests: list[Manifest]
    deployments: list[Deployment]
    node_ips: list[str]
    objects: list[Object] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Manifests per kind: the four core kinds always; cluster policy and Service kinds when present."""
        out = {k.value: 0 for k in Kind if k not in OPTIONAL_KINDS}
        for m in self.manifests:
            out[m["kind"]] = out.get(m["kind"], 0) + 1
        return out

    @property
    def identities(self) -> int:
        """Distinct (namespace, labels) among deployment pods."""
        return len({(d.namespace, tuple(sorted(d.labels.items()))) for d in self.deployments})


def _ip(net: ipaddress.IPv4Network, offset: int) -> str:
    return str(net.network_address + offset)


def _selector(match_labels: dict[str, str] | None = None, exprs: list[Manifest] | None = None) -> Manifest:
    out: Manifest = {}
    if match_labels:
        out["matchLabels"] = dict(match_labels)
    if exprs:
        out["matchExpressions"] = exprs
    return out


def _policy(ns: str, name: str, spec: Manifest) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


class _Builder:
    """Holds the generator's state (random source, IP allocation) while a world is built."""

    def __init__(self, spec: WorldSpec, seed: int) -> None:
        if spec.namespaces <= len(SYSTEM_NAMESPACES):
            raise ValueError(f"world {spec.name}: needs more than {len(SYSTEM_NAMESPACES)} namespaces")
        self.spec = spec
        self.rng = random.Random(seed)
        self.manifests: list[Manifest] = []
        self.deployments: list[Deployment] = []
        self.node_names = [f"node-{i:04d}" for i in range(spec.nodes)]
        self.node_ips = [_ip(NODE_NET, 256 + i) for i in range(spec.nodes)]
        self.node_used = [0] * spec.nodes
        self.pod_count = 0
        self.ns_labels: dict[str, dict[str, str]] = {}

    # --- cluster objects ---------------------------------------------------------------

    def namespace(self, name: str, labels: dict[str, str]) -> None:
        self.ns_labels[name] = labels
        self.manifests.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        )

    def nodes(self) -> None:
        zones = ("a", "b", "c")
        for i, (name, ip) in enumerate(zip(self.node_names, self.node_ips, strict=True)):
            self.manifests.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": {"topology.kubernetes.io/zone": f"zone-{zones[i % 3]}"},
                    },
                    "status": {
                        "addresses": [
                            {"type": "InternalIP", "address": ip},
                            {"type": "Hostname", "address": name},
                        ]
                    },
                }
            )

    def _place(self) -> tuple[str, str]:
        """A node with room, and the next free pod IP in its range."""
        n = self.rng.randrange(self.spec.nodes)
        for _ in range(self.spec.nodes):
            if self.node_used[n] < POD_RANGE_SIZE - 3:
                break
            n = (n + 1) % self.spec.nodes
        else:
            raise ValueError(f"world {self.spec.name}: more pods than the nodes' pod ranges hold")
        self.node_used[n] += 1
        return self.node_names[n], _ip(POD_NET, n * POD_RANGE_SIZE + 1 + self.node_used[n])

    def pod(
        self,
        ns: str,
        name: str,
        labels: dict[str, str],
        ports: tuple[tuple[str, int, str], ...],
        *,
        phase: str = "Running",
        node: int | None = None,
    ) -> str:
        """Add one pod manifest; returns its IP (the node's for hostNetwork pods)."""
        host_network = node is not None
        if node is not None:
            node_name, ip = self.node_names[node], self.node_ips[node]
        else:
            node_name, ip = self._place()
        container: Manifest = {"name": "main", "image": f"registry.example/{labels.get('app', name)}:1"}
        if ports:
            container["ports"] = [{"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports]
        spec: Manifest = {"nodeName": node_name, "containers": [container]}
        if host_network:
            spec["hostNetwork"] = True
        self.manifests.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": spec,
                "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}]},
            }
        )
        self.pod_count += 1
        return ip

    def deployment(
        self, ns: str, app: str, archetype: str, replicas: int, extra: dict[str, str]
    ) -> Deployment:
        arch = ARCHETYPES[archetype]
        template_hash = f"{self.rng.getrandbits(40):010x}"[:10]
        labels = {"app": app, "tier": arch.tier, "pod-template-hash": template_hash, **extra}
        dep = Deployment(ns, app, labels, archetype)
        for _ in range(replicas):
            suffix = f"{self.rng.getrandbits(25):05x}"[-5:]
            pod_name = f"{app}-{template_hash}-{suffix}"
            dep.pod_names.append(pod_name)
            dep.pod_ips.append(self.pod(ns, pod_name, labels, arch.ports))
        self.deployments.append(dep)
        return dep

    # --- system namespaces -----------------------------------------------------------------

    def system(self) -> int:
        """kube-system (DNS + one hostNetwork pod per node), monitoring, ingress; returns pods made."""
        self.namespace("kube-system", {"purpose": "system"})
        self.namespace("monitoring", {"purpose": "monitoring", "team": "platform"})
        self.namespace("ingress-nginx", {"purpose": "ingress", "team": "platform"})
        before = self.pod_count
        for node in range(self.spec.nodes):
            self.pod(
                "kube-system",
                f"kube-proxy-{node:04d}",
                {"k8s-app": "kube-proxy"},
                (("metrics", 10249, "TCP"),),
                node=node,
            )
        dns_replicas = 2 if self.spec.pods < 5_000 else 4
        self.deployment("kube-system", "coredns", "coredns", dns_replicas, {"k8s-app": "kube-dns"})
        self.deployment("monitoring", "prometheus", "prometheus", 2 if self.spec.pods < 5_000 else 3, {})
        self.deployment("ingress-nginx", "ingress-nginx-controller", "gateway", 2, {})
        return self.pod_count - before

    # --- user namespaces ---------------------------------------------------------------------

    def user_namespaces(self) -> list[str]:
        names = []
        for i in range(self.spec.namespaces - len(SYSTEM_NAMESPACES)):
            team = TEAMS[i % len(TEAMS)]
            env = self.rng.choices(ENVS, ENV_WEIGHTS)[0]
            name = f"{team}-{env}-{i:04d}"
            labels = {"team": team, "env": env}
            if i % 4 == 0:
                labels["istio-injection"] = "enabled"
            self.namespace(name, labels)
            names.append(name)
        return names

    def workloads(self, namespaces: list[str], budget: int) -> None:
        """Fill ``budget`` pods over the namespaces as deployments (and a few finished jobs)."""
        per_ns = [budget // len(namespaces)] * len(namespaces)
        for i in range(budget % len(namespaces)):
            per_ns[i] += 1
        for i, (ns, want) in enumerate(zip(namespaces, per_ns, strict=True)):
            made = 0
            k = 0
            if want >= 20:  # a finished job pod: present in the API, no part in decisions
                self.pod(
                    ns, f"migrate-{i:04d}-x7k2p", {"job-name": f"migrate-{i:04d}"}, (), phase="Succeeded"
                )
                made += 1
            while made < want:
                archetype = ARCHETYPE_ORDER[(i + k) % len(ARCHETYPE_ORDER)]
                replicas = min(want - made, self.rng.choices(REPLICAS, REPLICA_WEIGHTS)[0])
                if archetype in ("postgres", "redis"):
                    replicas = min(replicas, 3)
                app = archetype if k < len(ARCHETYPE_ORDER) else f"{archetype}-{k}"
                extra = {"version": "v2"} if k % 5 == 4 else {}
                if k % 7 == 6:
                    extra["canary"] = "true"
                self.deployment(ns, app, archetype, replicas, extra)
                made += replicas
                k += 1

    # --- policies ------------------------------------------------------------------------------

    def policies(self, namespaces: list[str], total: int) -> None:
        """``total`` policies: a default-deny per namespace first, then recipes in rotation."""
        by_ns: dict[str, list[Deployment]] = {}
        for d in self.deployments:
            by_ns.setdefault(d.namespace, []).append(d)
        recipes = (
            self.allow_same_app,
            self.allow_from_ingress_namespace,
            self.allow_monitoring,
            self.backend_from_frontends,
            self.db_from_team,
            self.egress_lockdown,
            self.node_port_range,
            self.allow_from_prod_range,
        )
        made = 0
        rounds = 0
        while made < total:
            for i, ns in enumerate(namespaces):
                if made >= total:
                    break
                deps = by_ns.get(ns, [])
                if rounds == 0:
                    policy = self.default_deny(ns)
                else:
                    recipe = recipes[(i * 4 + rounds - 1) % len(recipes)]
                    policy = recipe(ns, deps, rounds)
                self.manifests.append(policy)
                made += 1
            rounds += 1

    def _pick(self, deps: list[Deployment], tier: str | None = None) -> Deployment | None:
        fit = [d for d in deps if tier is None or d.labels["tier"] == tier]
        return self.rng.choice(fit) if fit else None

    def default_deny(self, ns: str) -> Manifest:
        return _policy(ns, "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})

    def allow_same_app(self, ns: str, deps: list[Deployment], n: int) -> Manifest:
        d = self._pick(deps)
        app = d.labels["app"] if d else "web"
        sel = _selector({"app": app})
        return _policy(
            ns, f"allow-same-app-{n}", {"podSelector": sel, "ingress": [{"from": [{"podSelector": sel}]}]}
        )

    def allow_from_ingress_namespace(self, ns: str, deps: list[Deployment], n: int) -> Manifest:
        return _policy(
            ns,
            f"allow-from-ingress-{n}",
            {
                "podSelector": _selector({"tier": "frontend"}),
                "ingress": [
                    {
                        "from": [{"namespaceSelector": _selector({"purpose": "ingress"})}],
                        "ports": [{"port": "http"}],
                    }
                ],
            },
        )

    def allow_monitoring(self, ns: str, deps: list[Deployment], n: int) -> Manifest:
        return _policy(
            ns,
            f"allow-prometheus-scrape-{n}",
            {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": _selector({"purpose": "monitoring"}),
                                "podSelector": _selector({"app": "prometheus"}),
                            }
                        ],
                        "ports": [{"port": "metrics", "protocol": "TCP"}],
                    }
                ],
            },
        )

    def backend_from_frontends(self, ns: str, deps: list[Deployment], n: int) -> Manifest:
        return _policy(
            ns,
            f"backend-from-frontends-{n}",
            {
                "podSelector": _selector(exprs=[{"key": "tier", "operator": "In", "values": ["backend"]}]),
                "ingress": [
                    {
                        "from": [
                            {
                                "podSelector": _selector(
                                    exprs=[
                                        {"key": "tier", "operator": "In", "values": ["frontend", "backend"]},
                                        {"key": "canary", "operator": "DoesNotExist"},
                                    ]
                                )
                            }
                        ],
                        "ports": [{"port": 8080}, {"port": "grpc"}],
                    }
                ],
            },
        )

    def db_from_team(self, ns: str, deps: list[Deployment], n: int) -> Manifest:
        team = self.ns_labels[ns].get("team", "platform")
        return _policy(
            ns,
            f"db-from-team-{n}",
            {
                "podSelector": _selector({"tier": "db"}),
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": _selector(
                                    {"team": team}, [{"key": "env", "operator": "NotIn", "values": ["dev"]}]
                                ),
                                "podSelector": _selector(exprs=[{"key": "tier", "operator": "Exists"}]),
                            }
                        ],
                        "ports": [{"port": 5432}, {"port": 6379}],
                    }
                ],
            },
        )

    def egress_lockdown(self, ns: str, deps: list[Deployment], n: int) -> Manifest:
        d = self._pick(deps, "backend")
        app = d.labels["app"] if d else "api"
        return _policy(
            ns,
            f"egress-lockdown-{n}",
            {
                "podSelector": _selector({"app": app}),
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": _selector(
                                    {"kubernetes.io/metadata.name": "kube-system"}
                                ),
                                "podSelector": _selector({"k8s-app": "kube-dns"}),
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    },
                    {"to": [{"podSelector": {}}]},
                    {
                        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                        "ports": [{"port": 443}],
                    },
                ],
            },
        )

    def node_port_range(self, ns: str, deps: list[Deployment], n: int) -> Manifest:
        d = self._pick(deps, "frontend")
        app = d.labels["app"] if d else "web"
        return _policy(
            ns,
            f"allow-nodes-range-{n}",
            {
                "podSelector": _selector({"app": app}),
                "ingress": [
                    {
                        "from": [{"ipBlock": {"cidr": str(NODE_NET)}}],
                        "ports": [{"port": 30000, "endPort": 32767}, {"port": "http"}],
                    }
                ],
            },
        )

    def allow_from_prod_range(self, ns: str, deps: list[Deployment], n: int) -> Manifest:
        return _policy(
            ns,
            f"allow-from-prod-{n}",
            {
                "podSelector": _selector(exprs=[{"key": "tier", "operator": "NotIn", "values": ["db"]}]),
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": _selector({"env": "prod"})},
                            {"ipBlock": {"cidr": str(POD_NET), "except": [str(next(POD_NET.subnets(6)))]}},
                        ],
                        "ports": [{"port": 8000, "endPort": 8099}],
                    }
                ],
            },
        )


def generate_world(size: str | WorldSpec, seed: int = 0, *, validate: bool = True) -> World:
    """Build a world of the given size, deterministically for ``seed``.

    With ``validate`` every manifest goes through ``parse_object`` and the
    resulting objects are kept in ``World.objects``.  Asserts the counts.
    """
    spec = SIZES[size] if isinstance(size, str) else size
    b = _Builder(spec, seed)
    b.nodes()
    system_pods = b.system()
    namespaces = b.user_namespaces()
    b.workloads(namespaces, spec.pods - system_pods)
    b.policies(namespaces, spec.policies)
    world = World(spec, seed, b.manifests, b.deployments, b.node_ips)
    counts = world.counts()
    expected = {
        "Namespace": spec.namespaces,
        "Pod": spec.pods,
        "Node": spec.nodes,
        "NetworkPolicy": spec.policies,
    }
    assert counts == expected, f"world {spec.name} has {counts}, expected {expected}"
    if validate:
        world.objects = [obj for m in world.manifests if (obj := parse_object(m)) is not None]
        assert len(world.objects) == len(world.manifests), (
            "every generated manifest is a kind the index reads"
        )
    return world


def _documents_by_file(world: World) -> Iterator[tuple[str, list[Manifest]]]:
    """The layout on disk: cluster-wide objects, then one pods and one policies file per namespace."""
    by_kind: dict[str, list[Manifest]] = {}
    per_ns: dict[tuple[str, str], list[Manifest]] = {}
    for m in world.manifests:
        kind = m["kind"]
        if kind in ("Namespace", "Node"):
            by_kind.setdefault(kind, []).append(m)
        else:
            folder = "pods" if kind == "Pod" else "policies"
            per_ns.setdefault((folder, m["metadata"]["namespace"]), []).append(m)
    yield "namespaces.yaml", by_kind.get("Namespace", [])
    yield "nodes.yaml", by_kind.get("Node", [])
    for (folder, ns), docs in per_ns.items():
        yield f"{folder}/{ns}.yaml", docs


def write_world(world: World, out: Path) -> list[Path]:
    """Write the world as multi-document YAML files under ``out``; returns the files written."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: ~10x faster
    written = []
    for rel, docs in _documents_by_file(world):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            yaml.dump_all(docs, fh, Dumper=dumper, sort_keys=False, default_flow_style=False)
        written.append(path)
    return written
