"""What decisions by name and why-not cost, as ratios taken in one run.

``python -m netpol_pdp.bench.names [--size large] [--events 31] [--flows 2000]`` builds a
generated world once and reports:

- **pod events with and without the objects snapshot**: the generation now holds
  every object by key (index/generation.py) so that names and why-not read the
  decision's own state; each pod add / relabel / delete is timed on the real
  index and on the same index with that snapshot stubbed out, interleaved (the
  median of ``events`` applications each), and the ratio given;
- **resolving a flow by name** (``index/ends.py``, two pods by ``ns/name``)
  next to deciding it (cache miss): microseconds per flow, and the ratio;
- **why-not**: ``Index.explain`` (the explained decision plus its near misses)
  next to ``decide(explain=True)`` on denied flows of the realistic mix.

Each figure asserts the world it ran on (pod count) and how many flows it timed.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from netpol_pdp.bench import results
from netpol_pdp.bench.events import update_events
from netpol_pdp.bench.flowmix import endpoints, make_flows
from netpol_pdp.bench.worlds import SIZES, generate_world
from netpol_pdp.index.decision import Verdict
from netpol_pdp.index.ends import resolve_flow
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.generation import SHARDS
from netpol_pdp.index.model import Object, Pod


class _NoSnapshot:
    """A stand-in for the index's objects CowShards that keeps nothing (the state before names)."""

    _frozen: tuple[dict[Any, Any], ...] = tuple({} for _ in range(SHARDS))

    def set(self, key: object, value: object) -> None:
        pass

    def pop(self, key: object) -> None:
        pass

    def freeze(self) -> tuple[dict[Any, Any], ...]:
        return self._frozen


def _event_medians(objects: list[Object], rounds: int) -> dict[str, tuple[float, float]]:
    """pod event -> (median seconds with the snapshot, without), applications interleaved."""
    real = Index.from_objects(objects)
    stub = Index.from_objects(objects)
    stub._objects = _NoSnapshot()  # type: ignore[assignment]
    out: dict[str, tuple[float, float]] = {}
    for event in update_events(objects)[:3]:  # pod add, pod relabel, pod delete
        samples: dict[int, list[float]] = {0: [], 1: []}
        for _ in range(rounds):
            for which, index in ((0, real), (1, stub)):
                start = time.perf_counter()
                index.apply(event.do)
                samples[which].append(time.perf_counter() - start)
                index.apply(event.undo)
        out[event.name] = (statistics.median(samples[0]), statistics.median(samples[1]))
    return out


def _per_flow(fn: Callable[[], object], n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / n


def _pod_pairs(objects: Sequence[Object], n: int) -> list[tuple[str, str, int]]:
    pods = [o for o in objects if isinstance(o, Pod) and o.live and not o.host_network and o.ports]
    step = max(1, len(pods) // n)
    picked = pods[::step][:n]
    return [
        (f"{a.namespace}/{a.name}", f"{b.namespace}/{b.name}", b.ports[0].port)
        for a, b in zip(picked, picked[1:] + picked[:1], strict=True)
    ]


def run(size: str, rounds: int, n: int) -> dict[str, Any]:
    world = generate_world(size)
    objects = world.objects
    pods = sum(1 for o in objects if isinstance(o, Pod))
    assert pods >= SIZES[size].pods // 2, f"the {size} world has {pods} pods"
    events = _event_medians(objects, rounds)

    index = Index.from_objects(objects)
    gen = index.snapshot()
    pairs = _pod_pairs(objects, n)
    assert len(pairs) >= min(n, 100), f"only {len(pairs)} pod pairs"
    resolved = [resolve_flow(gen, s, d, "TCP", p).flow for s, d, p in pairs]
    resolve_s = _per_flow(lambda: [resolve_flow(gen, s, d, "TCP", p) for s, d, p in pairs], len(pairs))
    decide_s = _per_flow(lambda: [index._decide_miss(gen, f, False) for f in resolved], len(resolved))

    ends = endpoints(objects)
    flows: list[Flow] = make_flows(ends, "uniform", n * 10)
    denied = [f for f in flows if index.decide(f).verdict is Verdict.DENY][:n]
    assert len(denied) >= min(n, 50), f"only {len(denied)} denied flows"
    traced_s = _per_flow(lambda: [index.decide(f, explain=True) for f in denied], len(denied))
    explain_s = _per_flow(lambda: [index.explain(f) for f in denied], len(denied))
    misses = sum(
        len(t.near_misses) for f in denied for t in (index.explain(f).ingress, index.explain(f).egress) if t
    )
    return {
        "size": size,
        "pods": pods,
        "events": {k: {"with": a, "without": b, "ratio": a / b} for k, (a, b) in events.items()},
        "resolve_s": resolve_s,
        "decide_miss_s": decide_s,
        "pairs": len(pairs),
        "denied_flows": len(denied),
        "near_misses": misses,
        "decide_explained_s": traced_s,
        "explain_s": explain_s,
    }


def text(data: dict[str, Any]) -> str:
    rows = [
        [name, results.duration(e["with"]), results.duration(e["without"]), f"{e['ratio']:.2f}x"]
        for name, e in data["events"].items()
    ]
    lines = [
        f"world {data['size']}: {data['pods']:,} pods",
        "",
        results.table(["pod event", "with objects snapshot", "without", "ratio"], rows),
        "",
        results.table(
            ["per flow", "time", "ratio"],
            [
                ["decide (cache miss)", results.duration(data["decide_miss_s"]), "1.00x"],
                [
                    f"resolve ns/name -> ns/name ({data['pairs']} pairs)",
                    results.duration(data["resolve_s"]),
                    f"{data['resolve_s'] / data['decide_miss_s']:.2f}x",
                ],
                ["decide(explain=True), denied", results.duration(data["decide_explained_s"]), "1.00x"],
                [
                    f"explain with why-not ({data['denied_flows']} denied, "
                    f"{data['near_misses']} near misses)",
                    results.duration(data["explain_s"]),
                    f"{data['explain_s'] / data['decide_explained_s']:.2f}x",
                ],
            ],
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netpol_pdp.bench.names", description=__doc__)
    parser.add_argument("--size", default="large", choices=sorted(SIZES))
    parser.add_argument("--events", type=int, default=31, help="applications of each pod event (median)")
    parser.add_argument("--flows", type=int, default=2000, help="flows per timed figure")
    args = parser.parse_args(argv)
    data = run(args.size, args.events, args.flows)
    out = text(data)
    results.write("names", data, out)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
