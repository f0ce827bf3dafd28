"""Cluster-scoped policy tiers on a generated world, next to the same world without them.

``python -m netpol_pdp.bench.tiers [--size large] [--admin 50] [--baseline 20]`` builds
the world twice in one process (without, then with ``admin`` Admin-tier and
``baseline`` Baseline-tier ClusterNetworkPolicies) and reports, for both:

- **build**: ``Index.from_objects`` of every object;
- **policy event**: replacing one NetworkPolicy by a changed copy and back (the
  median of ``events`` such batches), and, in the world with them, the same for
  one ClusterNetworkPolicy;
- **cache-miss decisions/s**: the same distinct realistic flows, each decided once
  on a fresh generation (every decision a miss), best of ``repeat`` runs, the two worlds' runs interleaved.

Figures are ratios within one run (the machine is shared and noisy); the target
is misses with CNPs >= 0.8x misses without.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netpol_pdp.bench import results
from netpol_pdp.bench.flowmix import endpoints, make_flows
from netpol_pdp.bench.worlds import SIZES, World, generate_world
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import ClusterPolicy, NetworkPolicy, Object, Upsert
from netpol_pdp.index.validation import parse_object

Manifest = dict[str, Any]


MONITORING: Manifest = {"namespaces": {"matchLabels": {"purpose": "monitoring"}}}


def _name_is(namespace: str) -> Manifest:
    return {"matchLabels": {"kubernetes.io/metadata.name": namespace}}


def cluster_policies(world: World, admin: int, baseline: int, seed: int = 0) -> list[Manifest]:
    """``admin`` Admin and ``baseline`` Baseline ClusterNetworkPolicies shaped like a platform team's."""
    rng = random.Random(seed)
    namespaces = sorted(
        {d.namespace for d in world.deployments} - {"kube-system", "monitoring", "ingress-nginx"}
    )
    teams = sorted({ns.split("-")[0] for ns in namespaces})
    out: list[Manifest] = []
    for i in range(admin):
        shape = i % 5
        if shape == 0:  # guard a system namespace: DNS passes, monitoring accepted, the rest denied
            subject: Manifest = {"namespaces": _name_is("kube-system")}
            ingress = [
                {"name": "dns", "action": "Pass", "from": [{"namespaces": {}}],
                 "protocols": [{"udp": {"destinationPort": {"number": 53}}},
                               {"tcp": {"destinationPort": {"number": 53}}}]},
                {"name": "monitoring", "action": "Accept", "from": [MONITORING]},
                {"name": "rest", "action": "Deny", "from": [{"namespaces": {}}]},
            ]  # fmt: skip
            spec: Manifest = {"subject": subject, "ingress": ingress}
        elif shape == 1:  # prod may not be reached from dev
            team = rng.choice(teams)
            spec = {
                "subject": {"namespaces": {"matchLabels": {"team": team, "env": "prod"}}},
                "ingress": [{"action": "Deny", "from": [{"namespaces": {"matchLabels": {"env": "dev"}}}]}],
            }
        elif shape == 2:  # egress to a set of external ranges denied for one team
            team = rng.choice(teams)
            nets = [f"{rng.randrange(11, 200)}.{rng.randrange(256)}.0.0/16" for _ in range(3)]
            spec = {
                "subject": {"namespaces": {"matchLabels": {"team": team}}},
                "egress": [{"action": "Deny", "to": [{"networks": nets}]}],
            }
        elif shape == 3:  # one namespace's databases: accept from the same team, pass the rest
            ns = rng.choice(namespaces)
            spec = {
                "subject": {"pods": {"namespaceSelector": _name_is(ns), "podSelector": {}}},
                "ingress": [
                    {"action": "Accept", "from": [{"namespaces": {"matchLabels": {"team": ns.split("-")[0]}}}],  # noqa: E501
                     "protocols": [{"tcp": {"destinationPort": {"range": {"start": 5432, "end": 5440}}}}]},
                    {"action": "Pass", "from": [{"namespaces": {}}]},
                ],
            }  # fmt: skip
        else:  # no node access except from monitoring
            spec = {
                "subject": {"namespaces": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}},
                "egress": [{"action": "Deny", "to": [{"nodes": {}}],
                            "protocols": [{"tcp": {"destinationPort": {"number": 10250}}}]}],
            }  # fmt: skip
        spec.update(tier="Admin", priority=rng.randrange(0, 1001))
        out.append(_cnp(f"admin-{i:03d}", spec))
    for i in range(baseline):
        ns = namespaces[i * len(namespaces) // max(1, baseline)]
        spec = {
            "tier": "Baseline",
            "priority": 100 + i,
            "subject": {"namespaces": _name_is(ns)},
            "ingress": [
                {"action": "Accept", "from": [{"namespaces": _name_is(ns)}]},
                {"action": "Accept", "from": [MONITORING]},
                {"action": "Deny", "from": [{"namespaces": {}}]},
            ],
        }
        out.append(_cnp(f"baseline-{i:03d}", spec))
    return out


def _cnp(name: str, spec: Manifest) -> Manifest:
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def _event_cost(index: Index, obj: Object, events: int) -> float:
    """Median seconds of one batch replacing ``obj`` by a changed copy (alternating with the original)."""
    changed = _changed(obj)
    samples = []
    for i in range(events):
        start = time.perf_counter()
        index.apply([Upsert(changed if i % 2 == 0 else obj)])
        samples.append(time.perf_counter() - start)
    index.apply([Upsert(obj)])
    return statistics.median(samples)


def _changed(obj: Object) -> Object:
    """The same policy with one more rule (a real recompile, not a no-op)."""
    if isinstance(obj, NetworkPolicy):
        return dataclasses.replace(obj, ingress=(*obj.ingress, *obj.ingress[:1]))
    assert isinstance(obj, ClusterPolicy)
    return dataclasses.replace(obj, ingress=(*obj.ingress, *obj.ingress[:1]))


def _misses(index: Index, flows: Sequence[Flow]) -> float:
    """Decisions/s over ``flows`` on a fresh generation (an empty cache: every decision a miss)."""
    index.apply([])
    start = time.perf_counter()
    for f in flows:
        index.decide(f)
    return len(flows) / (time.perf_counter() - start)


def run(
    size: str, admin: int, baseline: int, *, flows: int, events: int, repeat: int, seed: int
) -> dict[str, Any]:
    world = generate_world(size, seed)
    base = world.objects
    cnps = [
        obj for m in cluster_policies(world, admin, baseline, seed) if (obj := parse_object(m)) is not None
    ]
    assert len(cnps) == admin + baseline
    mixed = [*base, *cnps]
    oracle = Index.from_objects(base)
    allowed = lambda f: oracle.decide(f).allowed  # noqa: E731 (the realistic mix screens its pairs)
    generated = make_flows(endpoints(base, seed), "realistic", flows, seed, allowed=allowed)
    flow_list = list(dict.fromkeys(generated))
    policy = next(o for o in base if isinstance(o, NetworkPolicy) and o.ingress)
    out: dict[str, Any] = {
        "size": size,
        "admin": admin,
        "baseline": baseline,
        "distinct_flows": len(flow_list),
    }
    indexes: dict[str, Index] = {}
    for label, objects in (("without", base), ("with", mixed)):
        gc.collect()
        start = time.perf_counter()
        indexes[label] = Index.from_objects(objects)
        out[label] = {"build_s": time.perf_counter() - start, "misses_runs": []}
    for _ in range(repeat):  # interleaved, so that a noisy moment hits both alike
        for label, index in indexes.items():
            gc.collect()
            out[label]["misses_runs"].append(_misses(index, flow_list))
    cnp = next(c for c in cnps if isinstance(c, ClusterPolicy) and c.ingress)
    for label, index in indexes.items():
        entry = out[label]
        entry["misses_per_s"] = max(entry["misses_runs"])
        entry["policy_event_s"] = _event_cost(index, policy, events)
        if label == "with":
            entry["cnp_event_s"] = _event_cost(index, cnp, events)
        reasons: dict[str, int] = {}
        for f in flow_list:
            reason = index.decide(f).reason.value
            reasons[reason] = reasons.get(reason, 0) + 1
        entry["reasons"] = reasons
    out["misses_ratio"] = out["with"]["misses_per_s"] / out["without"]["misses_per_s"]
    out["build_ratio"] = out["with"]["build_s"] / out["without"]["build_s"]
    out["policy_event_ratio"] = out["with"]["policy_event_s"] / out["without"]["policy_event_s"]
    return out


def report(data: dict[str, Any]) -> str:
    w, c = data["without"], data["with"]
    rows = [
        ("build", results.duration(w["build_s"]), results.duration(c["build_s"]),
         f"{data['build_ratio']:.2f}x"),
        ("NetworkPolicy event", results.duration(w["policy_event_s"]), results.duration(c["policy_event_s"]),
         f"{data['policy_event_ratio']:.2f}x"),
        ("ClusterNetworkPolicy event", "-", results.duration(c["cnp_event_s"]), "-"),
        ("cache-miss decisions/s", results.si(w["misses_per_s"]), results.si(c["misses_per_s"]),
         f"{data['misses_ratio']:.2f}x"),
    ]  # fmt: skip
    head = (
        f"world {data['size']}: {data['admin']} Admin + {data['baseline']} Baseline ClusterNetworkPolicies, "
        f"{data['distinct_flows']} distinct flows\n\n"
    )
    table = results.table(("", "without CNPs", "with CNPs", "with / without"), rows)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(c["reasons"].items()))
    return f"{head}{table}\n\nreasons with CNPs: {reasons}\n"


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="large")
    parser.add_argument("--admin", type=int, default=50)
    parser.add_argument("--baseline", type=int, default=20)
    parser.add_argument("--flows", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=21)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--output", type=Path, help="folder for the result files (default: the bench results folder)"
    )
    args = parser.parse_args(argv)
    data = run(args.size, args.admin, args.baseline, flows=args.flows, events=args.events,
               repeat=args.repeat, seed=args.seed)  # fmt: skip
    data["machine"] = results.machine()
    text = report(data)
    results.write(f"tiers-{args.size}", data, text, args.output)
    return text


if __name__ == "__main__":
    print(main())
