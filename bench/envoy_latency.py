"""What ext_authz adds to a request through a real Envoy: netpol-pdp against the transport's floor.

Run (a real Envoy, see bench/envoy_proc.py; ``wrk`` for the throughput part)::

    python -m netpol_pdp.bench.envoy_latency --requests 2000 --rounds 3 --duration 3

Every row is one Envoy (``--concurrency 1``) built from the shipped
``clients/envoy/http-ext-authz.yaml``, whose routes answer with a
``direct_response`` so no upstream service is timed:

- ``no ext_authz``:  the example without its ext_authz filter (the request's own cost);
- ``grpc nothing``:  ext_authz to a do-nothing Check servicer on the same server type
  and thread pool as ``serve`` (grpcio's thread-pool server, 16 threads): a constant
  OK, the request unread.  This is the Python gRPC floor;
- ``serve``:         ext_authz to ``netpol-pdp serve`` (1 worker), and ``serve x2``
  (``--workers 2``) for throughput;
- ``http nothing``:  the shipped ``http-ext-authz-http.yaml`` (ext_authz over plain
  HTTP, ``http_service``) to a do-nothing asyncio HTTP/1.1 server answering 200:
  the floor of the HTTP-mode integration;
- ``serve http``:    the same Envoy to ``serve --envoy-http-listen``.

Latency: ``--requests`` sequential GETs on one keep-alive connection (one in
flight) per row and round, rows interleaved within each round; p50/p99 pooled over
rounds; "added" is a row's p50 minus ``no ext_authz``'s.  Throughput: ``wrk`` at 8
and 64 connections for ``--duration`` seconds per row, interleaved the same way,
median over rounds.  Ratios are taken within the run (the machine is shared).
``NETPOL_PDP_BENCH_SERVE_ARGS`` adds options to every ``serve`` (to compare settings).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from netpol_pdp.bench.envoy_proc import Envoy, bootstrap, envoy_binary, free_port, missing_reason

CLIENT, DB = "127.0.0.1", "127.0.0.10"
ROWS = ("no ext_authz", "grpc nothing", "serve", "serve x2", "http nothing", "serve http")
LATENCY_ROWS = ("no ext_authz", "grpc nothing", "serve", "http nothing", "serve http")
#: Rows built from the http_service example (the others from the gRPC one).
HTTP_SERVICE_ROWS = ("http nothing", "serve http")


def _world(ports: list[int]) -> str:
    def pod(name: str, ip: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"namespace": "shop", "name": name, "labels": {"app": name}},
                "spec": {"nodeName": "node-1"}, "status": {"phase": "Running", "podIP": ip}}

    return yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        pod("web", CLIENT), pod("db", DB),
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"namespace": "shop", "name": "db"},
         "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                               "ports": [{"port": port} for port in ports]}]}},
    ])


def _config(row: str, listen: int, pdp: int) -> dict[str, Any]:
    """The shipped HTTP example for one row: direct_response routes, the row's ext_authz."""
    example = "http-ext-authz-http.yaml" if row in HTTP_SERVICE_ROWS else "http-ext-authz.yaml"
    doc = bootstrap(example, (DB, listen), free_port(), pdp)
    (chain,) = doc["static_resources"]["listeners"][0]["filter_chains"]
    hcm = chain["filters"][0]["typed_config"]
    hcm.pop("access_log", None)
    for vhost in hcm["route_config"]["virtual_hosts"]:
        for route in vhost["routes"]:
            route.pop("route")
            route["direct_response"] = {"status": 200, "body": {"inline_string": "ok"}}
    filters = hcm["http_filters"]
    if row == "no ext_authz":
        filters[:] = [f for f in filters if f["name"] != "envoy.filters.http.ext_authz"]
        for vhost in hcm["route_config"]["virtual_hosts"]:
            for route in vhost["routes"]:
                route.pop("typed_per_filter_config", None)
    return doc


# --------------------------------------------------------------------------- the servers


def _serve_nothing_grpc() -> None:
    """Child process: the do-nothing Check servicer on serve's server type; prints its port."""
    import grpc
    from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
    from google.rpc import code_pb2, status_pb2

    from netpol_pdp.server.app import server_options

    ok = external_auth_pb2.CheckResponse(status=status_pb2.Status(code=code_pb2.OK))

    class Nothing(external_auth_pb2_grpc.AuthorizationServicer):  # type: ignore[misc]
        def Check(self, request: Any, context: Any) -> Any:
            return ok

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=server_options(False))
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(Nothing(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(None)


def _serve_nothing_http() -> None:
    """Child process: a do-nothing asyncio HTTP/1.1 server (200, empty body); prints its port."""
    reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport, self.buffer = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:  # ext_authz sends no body
                _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
                self.transport.write(reply)

    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(run())


@contextmanager
def _child(*argv: str, port_line: bool = True) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        yield proc, int(proc.stdout.readline()) if port_line else 0
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.terminate()
        proc.wait(20)


@contextmanager
def _serve(source: Path, workers: int, envoy_http: int | None = None) -> Iterator[int]:
    """``netpol-pdp serve`` until it is SERVING; yields its gRPC port."""
    port = free_port()
    extra = ["--envoy-http-listen", f"127.0.0.1:{envoy_http}"] if envoy_http else []
    extra += os.environ.get("NETPOL_PDP_BENCH_SERVE_ARGS", "").split()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netpol_pdp.clients.cmd_serve", "--source", str(source),
         "--listen", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
                        break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(20)


# --------------------------------------------------------------------------- the measurements


def _latencies(port: int, requests: int) -> list[float]:
    conn = http.client.HTTPConnection(DB, port, timeout=5, source_address=(CLIENT, 0))
    out = []
    try:
        for _ in range(requests):
            start = time.perf_counter()
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            out.append(time.perf_counter() - start)
            if response.status != 200:
                raise RuntimeError(f"GET / answered {response.status}: the row is misconfigured")
    finally:
        conn.close()
    return out


def _wrk(port: int, connections: int, duration: float) -> float:
    wrk = shutil.which("wrk")
    assert wrk is not None
    result = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{round(duration)}s", f"http://{DB}:{port}/"],
        capture_output=True, text=True, timeout=duration + 60, check=True,
    )
    if "Non-2xx" in result.stdout:
        raise RuntimeError(f"wrk saw non-2xx answers: {result.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    assert match is not None, result.stdout
    return float(match.group(1))


def _percentile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(requests: int, rounds: int, duration: float, connections: tuple[int, ...]) -> dict[str, Any]:
    binary = envoy_binary()
    if binary is None:
        raise SystemExit(missing_reason())
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        ports = {row: free_port(DB) for row in ROWS}
        (tmp / "cluster").mkdir()
        (tmp / "cluster" / "world.yaml").write_text(_world(list(ports.values())))
        me = "netpol_pdp.bench.envoy_latency"
        _, grpc_nothing = stack.enter_context(_child("-m", me, "--nothing-grpc"))
        _, http_nothing = stack.enter_context(_child("-m", me, "--nothing-http"))
        upstream = {"no ext_authz": free_port(), "grpc nothing": grpc_nothing, "http nothing": http_nothing,
                    "serve": stack.enter_context(_serve(tmp / "cluster", 1)),
                    "serve x2": stack.enter_context(_serve(tmp / "cluster", 2)),
                    "serve http": free_port()}
        stack.enter_context(_serve(tmp / "cluster", 1, envoy_http=upstream["serve http"]))
        envoys = {row: Envoy(binary, _config(row, ports[row], upstream[row]), tmp / row.replace(" ", "-"))
                  for row in ROWS}
        for envoy in envoys.values():
            stack.callback(envoy.stop)
        for row in ROWS:
            _latencies(ports[row], 50)  # warm: connections to the authorizer, caches
        samples: dict[str, list[float]] = {row: [] for row in LATENCY_ROWS}
        rates: dict[tuple[str, int], list[float]] = {(row, c): [] for row in ROWS for c in connections}
        for _ in range(rounds):
            for row in LATENCY_ROWS:
                samples[row] += _latencies(ports[row], requests)
            if shutil.which("wrk"):
                for c in connections:
                    for row in ROWS:
                        rates[row, c].append(_wrk(ports[row], c, duration))
    base = _percentile(samples["no ext_authz"], 0.5)
    latency = {
        row: {"p50_ms": _percentile(xs, 0.5) * 1e3, "p99_ms": _percentile(xs, 0.99) * 1e3,
              "added_p50_ms": (_percentile(xs, 0.5) - base) * 1e3}
        for row, xs in samples.items()
    }
    floor = latency["grpc nothing"]["added_p50_ms"]
    throughput = {f"{row} @{c}": statistics.median(xs) for (row, c), xs in rates.items() if xs}
    ratios = {
        "serve added p50 / grpc nothing added p50": latency["serve"]["added_p50_ms"] / floor,
        "http nothing added p50 / grpc nothing added p50": latency["http nothing"]["added_p50_ms"] / floor,
        "serve http added p50 / grpc nothing added p50": latency["serve http"]["added_p50_ms"] / floor,
        "serve http added p50 / serve added p50": latency["serve http"]["added_p50_ms"]
        / latency["serve"]["added_p50_ms"],
    }
    for c in connections:
        if f"serve @{c}" in throughput:
            serve = throughput[f"serve @{c}"]
            ratios[f"serve / grpc nothing throughput @{c}"] = serve / throughput[f"grpc nothing @{c}"]
            ratios[f"serve x2 / serve throughput @{c}"] = throughput[f"serve x2 @{c}"] / serve
            ratios[f"serve http / serve throughput @{c}"] = throughput[f"serve http @{c}"] / serve
    return {"requests": requests, "rounds": rounds, "duration_s": duration, "latency": latency,
            "throughput_rps": throughput, "ratios": ratios}


def _table(result: dict[str, Any]) -> str:
    lines = ["| row | p50 ms | p99 ms | added p50 ms |", "|---|---|---|---|"]
    for row, v in result["latency"].items():
        lines.append(f"| {row} | {v['p50_ms']:.3f} | {v['p99_ms']:.3f} | {v['added_p50_ms']:.3f} |")
    if result["throughput_rps"]:
        lines += ["", "| row @connections | requests/s |", "|---|---|"]
        lines += [f"| {k} | {v:.0f} |" for k, v in result["throughput_rps"].items()]
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in result["ratios"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per row and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of wrk per row, round, load")
    parser.add_argument("--connections", default="8,64", help="wrk connection counts")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--nothing-grpc", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--nothing-http", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.nothing_grpc:
        _serve_nothing_grpc()
        return 0
    if args.nothing_http:
        _serve_nothing_http()
        return 0
    connections = tuple(int(c) for c in args.connections.split(","))
    result = run(args.requests, args.rounds, args.duration, connections)
    print(_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
