"""The decision log's cost on the streaming path, and HTTP/JSON next to gRPC unary, as ratios of one run.

::

    python -m netpol_pdp.bench.decision_log --seconds 2 --rounds 3
    python -m netpol_pdp.bench.decision_log --seconds 1 --rounds 1 --namespaces 4 --pods 10   # smoke

On one generated world (bench/grpc_quick.py's: namespaces x pods, 3 policies a
namespace) and the same 5,000-flow mix, each in its own server process:

- **decision log**: ``DecideStream`` throughput (1,000 flows a message, 8 in
  flight, the bare stub) served without a log, with ``--decision-log-filter
  deny`` and with ``all`` (the log written to a file in a temporary folder);
  rounds interleaved (each configuration first in turn), the median rate of
  each, and its ratio to no log;
- **HTTP/JSON**: ``POST /v1/decide`` (an aiohttp client keeping 32 requests in
  flight) next to gRPC unary ``Decide`` (the project's asyncio client, 32 in
  flight), on one server serving both ports; the ratio HTTP / gRPC.

The server's own counters are read at the end (lines written and dropped), so
a figure with dropped lines says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from netpol_pdp.bench.envoy_proc import free_port
from netpol_pdp.bench.grpc_quick import Server, check_world, closed_loop, flows, measure, write_world

FILTERS = ("none", "deny", "all")


def server(world: Path, extra: list[str]) -> Server:
    argv = [sys.executable, "-m", "netpol_pdp.clients.cmd_serve", "--source", str(world)]
    argv += ["--listen", "127.0.0.1:0", "--log-level", "info", *extra]
    return Server(argv, "listening")


def log_status(target: str) -> dict[str, Any]:
    from netpol_pdp.clients import DecisionClient

    with DecisionClient(target) as client:
        return dict(client.status().get("decision_log", {}))


def decision_log_cost(
    world: Path, tmp: Path, seconds: float, rounds: int, ns: int, pods: int
) -> dict[str, Any]:
    rates: dict[str, list[float]] = {f: [] for f in FILTERS}
    counters: dict[str, dict[str, Any]] = {}
    for r in range(rounds):
        for name in FILTERS[r % 3 :] + FILTERS[: r % 3]:  # each configuration first in turn
            extra = [] if name == "none" else ["--decision-log", str(tmp / f"{name}-{r}.jsonl")]
            extra += [] if name == "none" else ["--decision-log-filter", name]
            srv = server(world, extra)
            try:
                rates[name].append(measure("stream", srv.target, seconds, ns, pods)["rate"])
                if name != "none":
                    time.sleep(0.5)  # let the writer catch up before reading its counters
                    counters[name] = log_status(srv.target)
            finally:
                srv.stop()
    base = statistics.median(rates["none"])
    return {
        name: {
            "flows_per_s": round(statistics.median(rates[name])),
            "rates": [round(x) for x in rates[name]],
            "ratio_to_no_log": round(statistics.median(rates[name]) / base, 3),
            **({"last_round_log": counters[name]} if name in counters else {}),
        }
        for name in FILTERS
    }


def _http_client(port: int, seconds: float, ns: int, pods: int) -> dict[str, Any]:
    import aiohttp

    bodies = [
        json.dumps({"flow": {"srcIp": f.src_ip, "dstIp": f.dst_ip, "dstPort": f.dst_port}}).encode()
        for f in flows(ns, pods)
    ]

    async def run() -> tuple[int, float]:
        url = f"http://127.0.0.1:{port}/v1/decide"
        connector = aiohttp.TCPConnector(limit=32)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.post(url, data=bodies[0]) as response:
                assert response.status == 200, await response.text()

            async def post(i: int) -> None:
                async with session.post(url, data=bodies[i % len(bodies)]) as response:
                    await response.read()
                    assert response.status == 200

            return await closed_loop(post, seconds)

    n, elapsed = asyncio.run(run())
    return {"flows": n, "seconds": elapsed}


def http_vs_grpc(world: Path, seconds: float, rounds: int, ns: int, pods: int) -> dict[str, Any]:
    http_port = free_port()
    srv = server(world, ["--http-listen", f"127.0.0.1:{http_port}"])
    grpc_rates: list[float] = []
    http_rates: list[float] = []
    try:
        for _ in range(rounds):
            grpc_rates.append(measure("unary", srv.target, seconds, ns, pods)["rate"])
            argv = [sys.executable, "-m", "netpol_pdp.bench.decision_log", "_http", "--port", str(http_port)]
            argv += ["--seconds", str(seconds), "--namespaces", str(ns), "--pods", str(pods)]
            out = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
            http_rates.append(out["flows"] / out["seconds"])
    finally:
        srv.stop()
    g, h = statistics.median(grpc_rates), statistics.median(http_rates)
    return {
        "grpc_unary_per_s": round(g),
        "http_decide_per_s": round(h),
        "grpc_rates": [round(x) for x in grpc_rates],
        "http_rates": [round(x) for x in http_rates],
        "ratio_http_to_grpc": round(h / g, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        world = tmp / "world"
        write_world(world, args.namespaces, args.pods)
        counts = check_world(world, args.namespaces, args.pods)
        out: dict[str, Any] = {"world": counts, "seconds": args.seconds, "rounds": args.rounds}
        out["decision_log_stream"] = decision_log_cost(
            world, tmp, args.seconds, args.rounds, args.namespaces, args.pods
        )
        if not args.no_http:
            out["http_vs_grpc_unary"] = http_vs_grpc(
                world, args.seconds, args.rounds, args.namespaces, args.pods
            )
    print(json.dumps(out, indent=2))
    return 0


def _entry() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_http":
        parser = argparse.ArgumentParser()
        parser.add_argument("--port", type=int)
        parser.add_argument("--seconds", type=float)
        parser.add_argument("--namespaces", type=int)
        parser.add_argument("--pods", type=int)
        a = parser.parse_args(sys.argv[2:])
        print(json.dumps(_http_client(a.port, a.seconds, a.namespaces, a.pods)))
        return 0
    return main()


if __name__ == "__main__":
    raise SystemExit(_entry())
