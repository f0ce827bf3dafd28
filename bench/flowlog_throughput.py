"""Flow-log audit throughput: a 1,000,000-line Hubble log over the example cluster.

    python -m netpol_pdp.bench.flowlog_throughput [--lines 1000000] [--keep DIR]

Writes a Hubble log (``hubble observe -o json`` shape) whose flows are the
example cluster's real conversations -- pod to pod on their ports, the
internet to the gateway, pods to outside -- with replies (~15 %), DNS-only L7
records (~2 %) and node-status events among them, and with the enforcer's
verdict set from the policy on most flows and flipped on a few (so the
observed-vs-policy comparison has work to do).  Then it times, each as flows
per second of log lines and as a ratio to *merely parsing the same log with
the standard library* (``json.loads`` per line and reading the four flow
fields, nothing else):

1. ``netpol-pdp audit LOG`` in one process;
2. ``--jobs 2`` (two local worker processes);
3. ``--dask local --jobs 2`` (a LocalCluster of two worker processes on loopback).

Every run writes its decisions to ``/dev/null``.  The figures are wall-clock
times; on a shared machine, compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from netpol_pdp.clients.cli import main as cli_main
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.model import Kind, Pod

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cluster"
EXTERNAL = ["203.0.113.7", "198.51.100.10", "192.0.2.44", "8.8.8.8"]


def conversations(index: Index) -> list[tuple[Flow, str, str]]:
    """(flow, source pod name, destination pod name) for every pod pair on every destination port."""
    pods = [
        o
        for k, o in index.objects().items()
        if k[0] is Kind.POD and isinstance(o, Pod) and o.live and not o.host_network
    ]
    out: list[tuple[Flow, str, str]] = []
    for src in pods:
        for dst in pods:
            if src is dst:
                continue
            for cp in dst.ports:
                out.append((Flow(src.ips[0], dst.ips[0], cp.protocol, cp.port), src.name, dst.name))
        for ip in EXTERNAL:
            out.append((Flow(src.ips[0], ip, "TCP", 443), src.name, ""))
    for dst in pods:
        for cp in dst.ports:
            out.append((Flow(EXTERNAL[0], dst.ips[0], cp.protocol, cp.port), "", dst.name))
    return out


def hubble_line(
    rng: random.Random, t: float, flow: Flow, src: str, dst: str, verdict: str, reply: bool
) -> str:
    l4 = {flow.protocol: {"source_port": rng.randint(32768, 60999), "destination_port": flow.dst_port}}
    if reply:
        l4 = {flow.protocol: {"source_port": flow.dst_port, "destination_port": rng.randint(32768, 60999)}}
    body: dict[str, object] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z",
        "verdict": verdict,
        "IP": {
            "source": flow.dst_ip if reply else flow.src_ip,
            "destination": flow.src_ip if reply else flow.dst_ip,
            "ipVersion": "IPv4",
        },
        "l4": l4,
        "source": {"pod_name": dst if reply else src},
        "destination": {"pod_name": src if reply else dst},
        "Type": "L3_L4",
        "node_name": "default/node-a",
        "traffic_direction": "INGRESS",
        "is_reply": reply,
    }
    if verdict == "DROPPED":
        body["drop_reason_desc"] = "POLICY_DENIED"
    return json.dumps(
        {"flow": body, "node_name": "default/node-a", "time": body["time"]}, separators=(",", ":")
    )


def write_log(path: Path, lines: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    index = Index.from_objects(ManifestSource(EXAMPLE).load().objects.values())
    pairs = conversations(index)
    verdicts = {f: index.decide(f).allowed for f, _, _ in pairs}
    # A few busy services and a long tail, as real traffic has.
    weights = [1.0 / (1 + i) ** 1.1 for i in range(len(pairs))]
    rng.shuffle(weights)
    t = 1_795_165_200.0
    with path.open("w", encoding="utf-8") as out:
        chosen = rng.choices(pairs, weights, k=lines)
        for i, (flow, src, dst) in enumerate(chosen):
            t += rng.random() / 50
            r = rng.random()
            if i % 5000 == 0:
                out.write(
                    '{"node_status":{"state_change":"NODE_CONNECTED","node_names":["default/node-b"]}}\n'
                )
            elif r < 0.02:
                dns = {
                    "flow": {
                        "verdict": "FORWARDED",
                        "IP": {"source": flow.src_ip, "destination": "10.244.1.2"},
                        "Type": "L7",
                        "l7": {"dns": {"query": "api.backend.svc.cluster.local."}},
                    }
                }
                out.write(json.dumps(dns, separators=(",", ":")) + "\n")
            else:
                allowed = verdicts[flow] != (rng.random() < 0.01)  # 1 % disagree
                verdict = "FORWARDED" if allowed else "DROPPED"
                out.write(hubble_line(rng, t, flow, src, dst, verdict, reply=r > 0.85) + "\n")


def parse_only(path: Path) -> int:
    """The standard-library floor: json.loads each line and read the flow fields."""
    n = 0
    with path.open("rb") as f:
        for line in f:
            obj = json.loads(line)
            flow = obj.get("flow")
            if flow is None:
                continue
            ip, l4 = flow.get("IP"), flow.get("l4")
            if ip is None or l4 is None:
                continue
            proto = next(iter(l4))
            (ip["source"], ip["destination"], proto, l4[proto].get("destination_port"))
            n += 1
    return n


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the log here (and keep it) instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = (args.keep or Path(tmp)) / "hubble-1m.jsonl"
        if not log.exists():
            print(f"writing {args.lines:,} lines to {log} ...", file=sys.stderr)
            write_log(log, args.lines)
        with log.open("rb") as f:
            lines = sum(1 for _ in f)
        assert lines == args.lines, f"the log has {lines} lines, not {args.lines}"
        assert len(ManifestSource(EXAMPLE).load().objects) > 40, "the example cluster is missing"

        base = timed(lambda: parse_only(log))
        rows = [("stdlib parse only", base)]
        audit = ["audit", str(log), "--source", str(EXAMPLE), "-o", os.devnull]
        for name, extra in (
            ("audit, 1 process", []),
            ("audit --jobs 2", ["--jobs", "2"]),
            ("audit --dask local --jobs 2", ["--dask", "local", "--jobs", "2"]),
        ):
            devnull = open(os.devnull, "w")  # noqa: SIM115 - the summary goes here, not to the screen
            stderr, sys.stderr = sys.stderr, devnull
            try:
                rows.append((name, timed(partial(cli_main, [*audit, *extra]))))
            finally:
                sys.stderr = stderr
                devnull.close()
    print(f"{lines:,} Hubble lines, {os.cpu_count()} CPUs")
    print(f"{'run':<30} {'seconds':>8} {'lines/s':>10} {'vs parse':>9}")
    for name, seconds in rows:
        print(f"{name:<30} {seconds:>8.2f} {lines / seconds:>10,.0f} {base / seconds:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
