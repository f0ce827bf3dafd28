"""Flow mixes over any world: a realistic log and a uniform random one.

Both work from model objects alone (a generated world or a loaded folder such as
the bundled example), so the same mix can be run against any cluster.

- **realistic**: what a flow log looks like.  Traffic runs between a few
  *service pairs* (client workload -> server workload on one of its ports),
  drawn with Zipf-like weights so that a handful of pairs carry most flows, with
  DNS lookups to kube-dns, egress to the internet, ingress from outside and node
  health checks mixed in, plus a small share of random noise (scans, stale
  addresses) that is mostly denied.  Each flow picks a random replica at both
  ends, so IPs vary while identities repeat: exactly the repetition the decision
  cache is built for.
- **uniform**: every end drawn uniformly from all pod and node addresses and a
  pool of external ones, ports half from declared container ports and half
  uniform over 1..65535.  Almost every flow is a distinct cache key: this mix
  measures cache misses.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import Node, Object, Pod

MIXES = ("realistic", "uniform")
#: Documentation ranges (RFC 5737): "the internet" in generated flows, never routed.
EXTERNAL_NETS = (ipaddress.IPv4Network("203.0.113.0/24"), ipaddress.IPv4Network("198.51.100.0/24"))
#: Zipf exponent of the service-pair popularity: ~1 is what access logs show.
ZIPF_S = 1.1


@dataclass(frozen=True, slots=True)
class Workload:
    """Live, ordinary pods sharing namespace and labels (one identity), with their ports."""

    namespace: str
    labels: tuple[tuple[str, str], ...]
    ips: tuple[str, ...]
    ports: tuple[tuple[str, int], ...]  # (protocol, port)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What flows can be drawn from: workloads, node addresses, external addresses."""

    workloads: tuple[Workload, ...]
    node_ips: tuple[str, ...]
    external_ips: tuple[str, ...]
    #: pod IP -> an address of the node it runs on (kubelet health checks come from there)
    node_of: dict[str, str]

    @property
    def pod_ips(self) -> list[str]:
        return [ip for w in self.workloads for ip in w.ips]


def endpoints(objects: Sequence[Object], seed: int = 0) -> Endpoints:
    """Group the live, non-hostNetwork pods into workloads; collect node and external addresses."""
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[list[str], set[tuple[str, int]]]] = {}
    node_ips: list[str] = []
    pod_node: dict[str, str] = {}
    node_addr: dict[str, str] = {}
    for obj in objects:
        if isinstance(obj, Pod) and obj.live and not obj.host_network:
            key = (obj.namespace, tuple(sorted(obj.labels.items())))
            ips, ports = groups.setdefault(key, ([], set()))
            ips.extend(obj.ips)
            ports.update((p.protocol, p.port) for p in obj.ports)
            if obj.node_name:
                pod_node.update(dict.fromkeys(obj.ips, obj.node_name))
        elif isinstance(obj, Node):
            node_ips.extend(obj.addresses)
            if obj.addresses:
                node_addr[obj.name] = obj.addresses[0]
    workloads = tuple(
        Workload(ns, labels, tuple(ips), tuple(sorted(ports)))
        for (ns, labels), (ips, ports) in groups.items()
    )
    rng = random.Random(seed)
    candidates = [str(net.network_address + rng.randrange(1, 255)) for net in EXTERNAL_NETS for _ in range(8)]
    # A world may use documentation ranges itself (the example's nodes do): never call those external.
    known = set(node_ips) | {ip for o in objects if isinstance(o, Pod) for ip in o.ips}
    external = tuple(dict.fromkeys(ip for ip in candidates if ip not in known)) or ("192.0.2.1",)
    node_of = {ip: node_addr[name] for ip, name in pod_node.items() if name in node_addr}
    return Endpoints(workloads, tuple(node_ips), external, node_of)


Pattern: TypeAlias = tuple[str, "Workload | None", "Workload | None", str, int]


def _zipf_cum_weights(n: int) -> list[float]:
    return list(itertools.accumulate(1.0 / (k + 1) ** ZIPF_S for k in range(n)))


def _port_of(w: Workload, rng: random.Random) -> tuple[str, int]:
    return rng.choice(w.ports) if w.ports else ("TCP", 80)


def realistic_flows(
    ends: Endpoints,
    n: int,
    seed: int = 0,
    *,
    pairs: int = 200,
    allowed: Callable[[Flow], bool] | None = None,
    denied_share: float = 0.1,
) -> list[Flow]:
    """``n`` flows of a realistic log (see the module docstring); deterministic for ``seed``.

    ``allowed`` (a verdict oracle, e.g. ``lambda f: index.decide(f).allowed``)
    makes the service pairs look like a working cluster's: about
    ``1 - denied_share`` of them allowed, the rest denied (misconfigurations,
    probes).  Without it pairs are drawn blind, and in a default-deny world most
    of them are denied.
    """
    if not ends.workloads:
        raise ValueError("realistic flows need at least one live pod")
    rng = random.Random(seed)
    ws = ends.workloads
    by_ns: dict[str, list[Workload]] = {}
    for w in ws:
        by_ns.setdefault(w.namespace, []).append(w)
    dns = [w for w in ws if ("k8s-app", "kube-dns") in w.labels]

    def pod_pair() -> Pattern:
        client = rng.choice(ws)
        same_ns = by_ns[client.namespace]
        roll = rng.random()
        if roll < 0.15:
            server = client  # replicas of one app talking to each other
        elif roll < 0.8 and len(same_ns) > 1:
            server = rng.choice(same_ns)
        else:
            server = rng.choice(ws)
        return ("pod", client, server, *_port_of(server, rng))

    def special() -> Pattern:
        """DNS lookups, egress to the internet, ingress from outside, node health checks."""
        roll = rng.random()
        if roll < 0.4 and dns:
            return ("pod", rng.choice(ws), rng.choice(dns), "UDP", 53)
        if roll < 0.7:
            return ("egress", rng.choice(ws), None, "TCP", 443)
        server = rng.choice(ws)
        kind = "node" if roll < 0.85 and ends.node_of else "ingress"
        return (kind, None, server, *_port_of(server, rng))

    def representative(p: Pattern) -> Flow:
        kind, client, server, proto, port = p
        dst = server.ips[-1] if server else ends.external_ips[0]
        src = ends.external_ips[0]
        if client is not None:
            src = client.ips[0]
        elif kind == "node":
            src = ends.node_of.get(dst, src)
        return Flow(src, dst, proto, port)

    def screen(make: Callable[[], Pattern], count: int) -> list[Pattern]:
        if allowed is None:
            return [make() for _ in range(count)]
        want_denied = round(count * denied_share)
        good: list[Pattern] = []
        bad: list[Pattern] = []
        for _ in range(count * 50):
            if len(good) >= count - want_denied and len(bad) >= want_denied:
                break
            p = make()
            (good if allowed(representative(p)) else bad).append(p)
        # A world with too few allowed pairs gets denied ones instead: the mix stays n flows.
        good = good[: count - want_denied]
        bad = bad[: count - len(good)]
        # The most popular few are working traffic; denied pairs rank below them.
        head = min(len(good), max(1, count // 20))
        tail = good[head:] + bad
        rng.shuffle(tail)
        return good[:head] + tail

    # A pattern is (kind, client, server, protocol, port); the popular ones repeat.
    patterns = screen(pod_pair, pairs)
    specials = screen(special, max(4, pairs // 5))
    # One special in five ranks: DNS and health checks rank high in real logs too.
    ranked: list[Pattern] = []
    for i, p in enumerate(patterns):
        if i % 4 == 0 and specials:
            ranked.append(specials.pop(0))
        ranked.append(p)
    ranked.extend(specials)
    cum = _zipf_cum_weights(len(ranked))
    picks = rng.choices(ranked, cum_weights=cum, k=n)
    noise = max(1, n // 50)
    noise_at = set(rng.sample(range(n), min(noise, n)))
    uniform = uniform_flows(ends, len(noise_at), seed + 1)
    out: list[Flow] = []
    choice, sample = rng.choice, rng.sample
    u = iter(uniform)
    for i, (kind, client, server, proto, port) in enumerate(picks):
        if i in noise_at:
            out.append(next(u))
            continue
        if kind == "pod":
            if client is server and len(client.ips) > 1:  # type: ignore[union-attr]
                src, dst = sample(client.ips, 2)  # type: ignore[union-attr]
            else:
                src, dst = choice(client.ips), choice(server.ips)  # type: ignore[union-attr]
        elif kind == "egress":
            src, dst = choice(client.ips), choice(ends.external_ips)  # type: ignore[union-attr]
        elif kind == "ingress":
            src, dst = choice(ends.external_ips), choice(server.ips)  # type: ignore[union-attr]
        else:
            dst = choice(server.ips)  # type: ignore[union-attr]
            src = ends.node_of.get(dst) or choice(ends.external_ips)
        out.append(Flow(src, dst, proto, port))
    assert len(out) == n, f"realistic mix built {len(out)} flows, expected {n}"
    return out


def uniform_flows(ends: Endpoints, n: int, seed: int = 0) -> list[Flow]:
    """``n`` flows with uniformly random ends, protocols and ports; deterministic for ``seed``."""
    rng = random.Random(seed)
    addresses = [*ends.pod_ips, *ends.node_ips, *ends.external_ips]
    known_ports = sorted({p for w in ends.workloads for p in w.ports}) or [("TCP", 80)]
    protos = ("TCP", "UDP", "SCTP")
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            proto, port = rng.choice(known_ports)
        else:
            proto, port = rng.choices(protos, (80, 15, 5))[0], rng.randint(1, 65535)
        out.append(Flow(rng.choice(addresses), rng.choice(addresses), proto, port))
    assert len(out) == n, f"uniform mix built {len(out)} flows, expected {n}"
    return out


def make_flows(
    ends: Endpoints, mix: str, n: int, seed: int = 0, *, allowed: Callable[[Flow], bool] | None = None
) -> list[Flow]:
    """``n`` flows of the named mix; ``allowed`` screens the realistic mix's pairs (see there)."""
    if mix == "realistic":
        return realistic_flows(ends, n, seed, allowed=allowed)
    if mix == "uniform":
        return uniform_flows(ends, n, seed)
    raise ValueError(f"unknown flow mix {mix!r}: must be one of {', '.join(MIXES)}")


def write_flows(flows: Sequence[Flow], path: Path) -> None:
    """JSON Lines, one flow a line, the shape ``netpol-pdp audit`` reads."""
    with path.open("w", encoding="utf-8") as fh:
        for f in flows:
            fh.write(
                json.dumps(
                    {"src_ip": f.src_ip, "dst_ip": f.dst_ip, "protocol": f.protocol, "dst_port": f.dst_port}
                )
            )
            fh.write("\n")
