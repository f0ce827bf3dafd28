"""Services in a generated world: one Service per deployment, with its EndpointSlice.

What is measured, in ONE process on ONE index (ratios, as docs/benchmarks.md asks):

- **EndpointSlice event**: one endpoint of one deployment's slice turns unready, then
  ready again (each an ``apply`` of one Upsert), next to a ``pod relabel`` event of
  bench/events.py on the same index;
- **decision to a ClusterIP** (a cache miss: ``Index._decide_miss``) next to the
  same source's decision to one of that Service's pod IPs and port, over many
  distinct (source, Service) pairs;
- **decision to a headless Service by name** (``svc/NAMESPACE/NAME``, R43) next
  to the ClusterIP decision, after a headless twin of each of those Services
  (same endpoints) was added to the same index.

Run: ``python -m netpol_pdp.bench.services --size large`` (``--size tiny`` is the test's).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import time
from collections.abc import Sequence
from typing import Any

from netpol_pdp.bench.events import update_events
from netpol_pdp.bench.worlds import Deployment, World, generate_world
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import Object, Upsert
from netpol_pdp.index.validation import parse_object

#: Cluster IPs come from here (outside the pod and node networks of bench/worlds.py).
SERVICE_NET = ipaddress.IPv4Network("10.96.0.0/12")
PORT, TARGET = 80, 8080


def service_manifests(
    dep: Deployment, cluster_ip: str, ready: bool = True, name: str | None = None
) -> list[dict[str, Any]]:
    """The Service of ``dep`` (port 80 -> targetPort 8080) and its one EndpointSlice; ``name``
    (and ``cluster_ip`` ``None``): a headless twin of that name."""
    name = name or dep.name
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": dep.namespace},
        "spec": {
            "clusterIP": cluster_ip,
            "selector": dep.labels,
            "ports": [{"port": PORT, "targetPort": TARGET}],
        },
    }
    endpoints = [
        {"addresses": [ip], "conditions": {"ready": ready or i > 0}} for i, ip in enumerate(dep.pod_ips)
    ]
    eps = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-abcde",
            "namespace": dep.namespace,
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "", "port": TARGET, "protocol": "TCP"}],
    }
    return [svc, eps]


def _parsed(docs: list[dict[str, Any]]) -> list[Object]:
    out = [parse_object(d) for d in docs]
    assert all(o is not None for o in out)
    return [o for o in out if o is not None]


def with_services(world: World) -> tuple[list[Object], list[tuple[Deployment, str]]]:
    """The world's objects plus a Service and slice per deployment with pods; asserts the count."""
    by_key: dict[tuple[str, str], Deployment] = {}
    for d in world.deployments:  # a name may repeat in a namespace (a DaemonSet per node...): one Service
        if d.pod_ips:
            by_key.setdefault((d.namespace, d.name), d)
    deps = list(by_key.values())
    placed = [(d, str(SERVICE_NET.network_address + 1 + i)) for i, d in enumerate(deps)]
    extra = _parsed([doc for dep, ip in placed for doc in service_manifests(dep, ip)])
    assert len(extra) == 2 * len(deps), "one Service and one EndpointSlice per deployment"
    return [*world.objects, *extra], placed


def _per_event(index: Index, do: Sequence[Upsert], undo: Sequence[Upsert], rounds: int) -> float:
    total = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        index.apply(do)
        total += time.perf_counter() - start
        index.apply(undo)
    return total / rounds


def run(size: str, rounds: int = 200, flows: int = 5000, seed: int = 0) -> dict[str, Any]:
    world = generate_world(size, seed)
    objects, placed = with_services(world)
    started = time.perf_counter()
    index = Index.from_objects(objects)
    build = time.perf_counter() - started
    rng = random.Random(seed)
    # an EndpointSlice event vs a pod relabel, alternating on one index
    dep, ip = max(placed, key=lambda p: len(p[0].pod_ips))
    unready = _parsed(service_manifests(dep, ip, ready=False))[1]
    ready = _parsed(service_manifests(dep, ip, ready=True))[1]
    relabel = next(e for e in update_events(list(world.objects)) if e.name == "pod relabel")
    slice_s = _per_event(index, [Upsert(unready)], [Upsert(ready)], rounds)
    pod_s = _per_event(index, relabel.do, relabel.undo, rounds)  # type: ignore[arg-type]
    # decisions (misses): to a ClusterIP vs to one of its pod IPs
    sources = [p for d, _ in placed for p in d.pod_ips]
    pairs = [(rng.choice(sources), rng.choice(placed)) for _ in range(flows)]
    to_vip = [Flow(s, vip, "TCP", PORT) for s, (_, vip) in pairs]
    to_pod = [Flow(s, d.pod_ips[0], "TCP", TARGET) for s, (d, _) in pairs]
    gen = index._gen
    timings = {}
    for name, batch in (("pod", to_pod), ("vip", to_vip), ("pod again", to_pod), ("vip again", to_vip)):
        start = time.perf_counter()
        for f in batch:
            index._decide_miss(gen, f, False)
        timings[name] = (time.perf_counter() - start) / len(batch)
    pod_us = min(timings["pod"], timings["pod again"]) * 1e6
    vip_us = min(timings["vip"], timings["vip again"]) * 1e6
    # a headless twin of every Service in the pairs, then decisions to it by name (R43) vs the
    # ClusterIP, on the same index after that update
    twins = {(d.namespace, d.name): d for _, (d, _) in pairs}
    index.apply(
        [
            Upsert(o)
            for d in twins.values()
            for o in _parsed(service_manifests(d, "None", name=f"{d.name}-headless"))
        ]
    )
    gen = index._gen
    to_headless = [Flow(s, f"svc/{d.namespace}/{d.name}-headless", "TCP", PORT) for s, (d, _) in pairs]
    for name, batch in (
        ("vip2", to_vip),
        ("headless", to_headless),
        ("vip3", to_vip),
        ("headless2", to_headless),
    ):
        start = time.perf_counter()
        for f in batch:
            decision = index._decide_miss(gen, f, False)
        timings[name] = (time.perf_counter() - start) / len(batch)
    assert decision.service is not None and decision.service.address_kind.value == "headless"
    vip2_us = min(timings["vip2"], timings["vip3"]) * 1e6
    headless_us = min(timings["headless"], timings["headless2"]) * 1e6
    endpoints = sum(len(d.pod_ips) for d, _ in placed) / len(placed)
    return {
        "size": size,
        "services": len(placed),
        "endpoints_per_service": round(endpoints, 2),
        "largest_slice": len(dep.pod_ips),
        "build_s": round(build, 2),
        "endpointslice_event_us": round(slice_s * 1e6, 1),
        "pod_relabel_event_us": round(pod_s * 1e6, 1),
        "slice_vs_pod_event": round(slice_s / pod_s, 2),
        "decision_pod_ip_us": round(pod_us, 2),
        "decision_cluster_ip_us": round(vip_us, 2),
        "cluster_ip_vs_pod_ip_decision": round(vip_us / pod_us, 2),
        "decision_headless_by_name_us": round(headless_us, 2),
        "headless_by_name_vs_cluster_ip_decision": round(headless_us / vip2_us, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netpol_pdp.bench.services", description=__doc__)
    parser.add_argument("--size", default="large", choices=("tiny", "small", "medium", "large"))
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--flows", type=int, default=5000)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.size, args.rounds, args.flows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
