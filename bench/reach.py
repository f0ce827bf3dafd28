"""What ``reach`` and ``matrix`` cost, as ratios to one decision, taken in one run.

``python -m netpol_pdp.bench.reach [--size large] [--pods 20] [--flows 2000]`` builds a
generated world once and reports, at one generation:

- **decide (cache miss)**: the unit, microseconds per flow over ``flows`` uniform flows;
- **the catalogue**: the one pass over the generation's addresses that every
  reach query of that generation shares (index/reach.py), built on the first query;
- **reach**, ingress and egress, for ``pods`` pods spread over the world (the
  catalogue warm): the median and the worst, and the median as a ratio to one
  decision -- and to deciding every pod of the world against the pod once, which
  is what enumerating flows would cost at the very least (one port);
- **matrix** of one namespace (its pod count given) on one port.

Each figure asserts the world it ran on (pod count) and how much it timed.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections import Counter
from typing import Any

from netpol_pdp.bench import results
from netpol_pdp.bench.flowmix import endpoints, make_flows
from netpol_pdp.bench.worlds import SIZES, generate_world
from netpol_pdp.index.engine import Index
from netpol_pdp.index.matrix import matrix
from netpol_pdp.index.model import Pod
from netpol_pdp.index.reach import _Latest, catalogue, reach


def run(size: str, n_pods: int, n_flows: int) -> dict[str, Any]:
    world = generate_world(size)
    objects = world.objects
    pods = [o for o in objects if isinstance(o, Pod) and o.live and not o.host_network and o.ips]
    assert len(pods) >= SIZES[size].pods // 2, f"the {size} world has {len(pods)} pods"
    index = Index.from_objects(objects)
    gen = index.snapshot()

    flows = make_flows(endpoints(objects), "uniform", n_flows)
    assert len(flows) == n_flows
    gc.collect()
    start = time.perf_counter()
    for f in flows:
        index._decide_miss(gen, f, False)
    decide_s = (time.perf_counter() - start) / n_flows

    _Latest.value = None
    start = time.perf_counter()
    catalogue(gen)
    catalogue_s = time.perf_counter() - start

    picked = pods[:: max(1, len(pods) // n_pods)][:n_pods]
    timings: dict[str, list[float]] = {"ingress": [], "egress": []}
    groups: dict[str, int] = {"ingress": 0, "egress": 0}
    for pod in picked:
        for direction in ("ingress", "egress"):
            gc.collect()
            start = time.perf_counter()
            answer = reach(gen, direction, pod=f"{pod.namespace}/{pod.name}")
            timings[direction].append(time.perf_counter() - start)
            groups[direction] += sum(len(t.pod_peers) + len(t.range_peers) for t in answer.targets)
    by_ns = Counter(p.namespace for p in pods)
    namespace, ns_pods = next((ns, c) for ns, c in by_ns.most_common() if c <= 60)
    gc.collect()
    start = time.perf_counter()
    m = matrix(index, [("TCP", 80)], namespace, gen=gen)
    matrix_s = time.perf_counter() - start
    assert len(m.pods) == ns_pods
    return {
        "size": size,
        "pods": len(pods),
        "identities": index.stats()["identities"],
        "flows": n_flows,
        "decide_miss_s": decide_s,
        "catalogue_s": catalogue_s,
        "reach_pods": len(picked),
        "reach": {
            d: {"median_s": statistics.median(t), "max_s": max(t), "groups": groups[d]}
            for d, t in timings.items()
        },
        "matrix": {"namespace": namespace, "pods": ns_pods, "cells": ns_pods * ns_pods, "s": matrix_s},
    }


def text(data: dict[str, Any]) -> str:
    unit = data["decide_miss_s"]
    enumerate_s = unit * data["pods"]
    rows = [["decide (cache miss), per flow", results.duration(unit), "1x", ""]]
    rows.append(
        [
            "catalogue (first query of a generation)",
            results.duration(data["catalogue_s"]),
            f"{data['catalogue_s'] / unit:,.0f}x",
            f"{data['catalogue_s'] / enumerate_s:.2f}x",
        ]
    )
    for direction, r in data["reach"].items():
        rows.append(
            [
                f"reach {direction}, median of {data['reach_pods']} pods "
                f"(max {results.duration(r['max_s'])})",
                results.duration(r["median_s"]),
                f"{r['median_s'] / unit:,.0f}x",
                f"{r['median_s'] / enumerate_s:.2f}x",
            ]
        )
    mx = data["matrix"]
    rows.append(
        [
            f"matrix {mx['namespace']}: {mx['pods']} pods, TCP/80 ({mx['cells']:,} cells)",
            results.duration(mx["s"]),
            f"{mx['s'] / unit:,.0f}x",
            f"{mx['s'] / (unit * mx['cells']):.2f}x of its cells' misses",
        ]
    )
    return "\n".join(
        [
            f"world {data['size']}: {data['pods']:,} pods, {data['identities']:,} identities",
            "",
            results.table(
                ["query", "time", "/ one decide miss", f"/ {data['pods']:,} decide misses (enumerating)"],
                rows,
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netpol_pdp.bench.reach", description=__doc__)
    parser.add_argument("--size", default="large", choices=sorted(SIZES))
    parser.add_argument("--pods", type=int, default=20, help="pods asked about (each both directions)")
    parser.add_argument("--flows", type=int, default=2000, help="flows of the decide-miss unit")
    args = parser.parse_args(argv)
    data = run(args.size, args.pods, args.flows)
    out = text(data)
    results.write("reach", data, out)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
