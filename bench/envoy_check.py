"""Envoy ``Authorization/Check`` calls per second and latency, next to unary Decide and echo baselines.

What it models: a fleet of Envoy sidecars asking netpol-pdp once per connection
(network filter) or request (HTTP filter).  Each Check is one unary call, so the
figure that matters is calls/s and the tail latency a connection waits.

Run (about half a minute on a 2-core machine)::

    python -m netpol_pdp.bench.envoy_check --calls 3000 --concurrency 4

The server runs in a child process (so client and server do not share a GIL),
on 127.0.0.1 only, as ``netpol-pdp serve --server-mode aio`` runs it (``grpc.aio``;
``serve``'s default is the thread-pool ``sync`` server, which bench/envoy_latency.py
measures through a real Envoy), with two grpc servers side by side:

- the real one, over an index of a synthetic cluster, serving both
  ``check`` (Envoy's Authorization/Check) and ``decide`` (DecisionService/Decide,
  one flow per call);
- the echo one, serving ``echo-check`` (a constant OK, the request unread) and
  ``echo-decide`` (``server/echo.py``): what gRPC and protobuf alone cost for the
  same message shapes.

For each, ``--calls`` Checks are sent one after another (latency of a lone
caller), then the same number from ``--concurrency`` threads (throughput);
``--rounds`` interleaved rounds, medians reported (the machine is shared).  The
requests cycle through flows of the world, half network-filter-shaped, half
HTTP-filter-shaped, allowed and denied alike.

Besides client-side calls/s and latency, the server reports the mean and p99
time spent inside the Check and Decide handlers: the service's own cost, which
the shared machine's noise blurs far less than the end-to-end figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc
from google.rpc import code_pb2

from netpol_pdp.index.engine import Index
from netpol_pdp.index.model import Object
from netpol_pdp.index.validation import parse_object
from netpol_pdp.server import envoy as ext_authz
from netpol_pdp.server.echo import AioEchoService
from netpol_pdp.server.service import AioDecisionService, DecisionCore, add_to_server
from netpol_pdp.server.status import ServerState
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

AttributeContext = attribute_context_pb2.AttributeContext


# ---------------------------------------------------------------- the world


def build_world(namespaces: int, pods_per_namespace: int) -> tuple[list[Object], list[tuple[str, str, int]]]:
    """``namespaces`` namespaces of ``pods_per_namespace`` pods in four apps; a default-deny
    ingress and an allow-same-app-on-8080 policy per namespace.  Returns the objects and
    a cycle of flows (same app, other app, other namespace; on 8080 and 5432)."""
    manifests: list[dict[str, Any]] = []
    ips: dict[tuple[int, int], str] = {}
    for n in range(namespaces):
        ns = f"ns-{n}"
        manifests.append({"kind": "Namespace", "metadata": {"name": ns, "labels": {"tier": f"t{n % 3}"}}})
        manifests.append(
            {
                "kind": "NetworkPolicy",
                "metadata": {"namespace": ns, "name": "default-deny"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
            }
        )
        for app in range(4):
            manifests.append(
                {
                    "kind": "NetworkPolicy",
                    "metadata": {"namespace": ns, "name": f"app-{app}"},
                    "spec": {
                        "podSelector": {"matchLabels": {"app": f"app-{app}"}},
                        "ingress": [
                            {
                                "from": [{"podSelector": {"matchLabels": {"app": f"app-{app}"}}}],
                                "ports": [{"port": 8080}],
                            }
                        ],
                    },
                }
            )
        for p in range(pods_per_namespace):
            ip = f"10.{n // 200}.{n % 200}.{p + 1}"
            ips[n, p] = ip
            manifests.append(
                {
                    "kind": "Pod",
                    "metadata": {"namespace": ns, "name": f"pod-{p}", "labels": {"app": f"app-{p % 4}"}},
                    "spec": {"nodeName": f"node-{n % 8}"},
                    "status": {"phase": "Running", "podIP": ip},
                }
            )
    objects = [o for o in (parse_object(m) for m in manifests) if o is not None]
    flows: list[tuple[str, str, int]] = []
    for n in range(namespaces):
        for p in range(pods_per_namespace):
            src = ips[n, p]
            flows.append((src, ips[n, (p + 4) % pods_per_namespace], 8080))  # same app: allowed
            flows.append((src, ips[n, (p + 1) % pods_per_namespace], 8080))  # other app: denied
            flows.append((src, ips[(n + 1) % namespaces, p], 8080))  # other namespace: denied
            flows.append((src, ips[n, (p + 4) % pods_per_namespace], 5432))  # wrong port: denied
    return objects, flows


def check_request(src: str, dst: str, port: int, http: bool) -> Any:
    """A CheckRequest as Envoy's network filter (``http=False``) or HTTP filter builds it."""
    attrs = AttributeContext()
    attrs.source.address.socket_address.address = src
    attrs.source.address.socket_address.port_value = 43210
    attrs.destination.address.socket_address.address = dst
    attrs.destination.address.socket_address.port_value = port
    if http:
        http_request = attrs.request.http
        http_request.id = "1"
        http_request.method = "GET"
        http_request.path = "/api/v1/items"
        http_request.host = f"{dst}:{port}"
        http_request.scheme = "http"
        http_request.protocol = "HTTP/1.1"
        http_request.headers.update(
            {":authority": f"{dst}:{port}", ":method": "GET", ":path": "/api/v1/items", "user-agent": "bench"}
        )
    return external_auth_pb2.CheckRequest(attributes=attrs)


# ---------------------------------------------------------------- the server (child process)

_ECHO_RESPONSE = external_auth_pb2.CheckResponse()
_ECHO_RESPONSE.status.code = code_pb2.OK


class _EchoAuthorization(external_auth_pb2_grpc.AuthorizationServicer):  # type: ignore[misc]
    async def Check(self, request: Any, context: Any) -> Any:
        return _ECHO_RESPONSE


#: Server-side handler seconds per method: the part of a call the service itself costs,
#: measured inside the server, so it is not blurred by the client or the transport.
_HANDLER_SECONDS: dict[str, list[float]] = {"check": [], "decide": []}


class _TimedCheck(ext_authz.AioAuthorizationServicer):
    async def Check(self, request: Any, context: Any) -> Any:
        start = time.perf_counter()
        response = await super().Check(request, context)
        _HANDLER_SECONDS["check"].append(time.perf_counter() - start)
        return response


class _TimedDecide(AioDecisionService):
    async def Decide(self, request: Any, context: Any) -> Any:
        start = time.perf_counter()
        response = await super().Decide(request, context)
        _HANDLER_SECONDS["decide"].append(time.perf_counter() - start)
        return response


async def _serve(namespaces: int, pods: int) -> None:
    objects, _ = build_world(namespaces, pods)
    index = Index.from_objects(objects)
    state = ServerState(index)
    state.mark_ready()
    real = grpc.aio.server()
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
        _TimedCheck(lambda flow, explain: index.decide(flow, explain=explain)), real
    )
    add_to_server(_TimedDecide(DecisionCore(state)), real)  # Decide answers pre-encoded bytes
    real_port = real.add_insecure_port("127.0.0.1:0")
    echo = grpc.aio.server()
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(_EchoAuthorization(), echo)
    add_to_server(AioEchoService(), echo)
    echo_port = echo.add_insecure_port("127.0.0.1:0")
    await real.start()
    await echo.start()
    print(json.dumps({"real": real_port, "echo": echo_port, "counts": index.counts()}), flush=True)
    # Serve until the parent closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await real.stop(None)
    await echo.stop(None)
    handler_us = {
        name: {"mean": statistics.fmean(xs) * 1e6, "p99": _percentile(xs, 0.99) * 1e6}
        for name, xs in _HANDLER_SECONDS.items()
        if xs
    }
    print(json.dumps(handler_us), flush=True)


# ---------------------------------------------------------------- the client


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _run_calls(call: Callable[[Any], Any], requests: Sequence[Any], latencies: list[float]) -> None:
    for request in requests:
        start = time.perf_counter()
        call(request)
        latencies.append(time.perf_counter() - start)


def measure(
    call: Callable[[Any], Any], requests: Sequence[Any], calls: int, concurrency: int
) -> dict[str, float]:
    """Sequential then concurrent runs of ``calls`` unary ``call``s cycling through ``requests``."""
    batch = [requests[i % len(requests)] for i in range(calls)]
    warm: list[float] = []
    _run_calls(call, batch[: min(300, calls)], warm)

    sequential: list[float] = []
    start = time.perf_counter()
    _run_calls(call, batch, sequential)
    sequential_s = time.perf_counter() - start

    per_thread = [batch[i::concurrency] for i in range(concurrency)]
    parallel: list[list[float]] = [[] for _ in range(concurrency)]
    threads = [
        threading.Thread(target=_run_calls, args=(call, chunk, out))
        for chunk, out in zip(per_thread, parallel, strict=True)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    parallel_s = time.perf_counter() - start
    flat = [x for out in parallel for x in out]
    return {
        "sequential_calls_per_s": calls / sequential_s,
        "sequential_p50_ms": statistics.median(sequential) * 1e3,
        "sequential_p99_ms": _percentile(sequential, 0.99) * 1e3,
        "concurrent_calls_per_s": calls / parallel_s,
        "concurrent_p99_ms": _percentile(flat, 0.99) * 1e3,
    }


def _median(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _table(rows: dict[str, dict[str, float]], concurrency: int) -> str:
    head = f"{'service':<12} {'1 caller: calls/s':>18} {'p50 ms':>8} {'p99 ms':>8}"
    head += f" {f'{concurrency} callers: calls/s':>20} {'p99 ms':>8}"
    lines = [head]
    for name, r in rows.items():
        lines.append(
            f"{name:<12} {r['sequential_calls_per_s']:>18.0f} {r['sequential_p50_ms']:>8.2f} "
            f"{r['sequential_p99_ms']:>8.2f} {r['concurrent_calls_per_s']:>20.0f} "
            f"{r['concurrent_p99_ms']:>8.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m netpol_pdp.bench.envoy_check", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--calls", type=int, default=3000, help="Checks per run (default 3000)")
    parser.add_argument("--concurrency", type=int, default=4, help="caller threads in the concurrent run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--pods", type=int, default=50, help="pods per namespace")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.namespaces, args.pods))
        return 0
    if min(args.calls, args.concurrency, args.rounds) < 1:
        parser.error("--calls, --concurrency and --rounds must be at least 1")

    child = subprocess.Popen(
        [sys.executable, "-m", "netpol_pdp.bench.envoy_check", "--serve",
         "--namespaces", str(args.namespaces), "--pods", str(args.pods)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdin is not None
        started = json.loads(child.stdout.readline())
        counts = started["counts"]
        objects, flows = build_world(args.namespaces, args.pods)
        assert counts["Pod"] == args.namespaces * args.pods, counts  # the world is the size asked
        checks = [check_request(s, d, p, http=i % 2 == 1) for i, (s, d, p) in enumerate(flows)]
        decides = [
            pb.DecideRequest(flow=pb.Flow(src_ip=s, dst_ip=d, protocol=pb.PROTOCOL_TCP, dst_port=p))
            for s, d, p in flows
        ]
        index = Index.from_objects(objects)
        allowed = sum(index.decide(ext_authz.flow_from_check(r)).allowed for r in checks)
        real = grpc.insecure_channel(f"127.0.0.1:{started['real']}")
        echo = grpc.insecure_channel(f"127.0.0.1:{started['echo']}")
        targets = {
            "check": (external_auth_pb2_grpc.AuthorizationStub(real).Check, checks),
            "decide": (pb_grpc.DecisionServiceStub(real).Decide, decides),
            "echo-check": (external_auth_pb2_grpc.AuthorizationStub(echo).Check, checks),
            "echo-decide": (pb_grpc.DecisionServiceStub(echo).Decide, decides),
        }
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for _ in range(args.rounds):  # interleaved, so machine noise hits every service alike
            for name, (call, requests) in targets.items():
                rounds[name].append(measure(call, requests, args.calls, args.concurrency))
        rows = {name: _median(runs) for name, runs in rounds.items()}
        real.close()
        echo.close()
        child.stdin.close()
        handler_us = json.loads(child.stdout.readline())
    finally:
        if child.stdin is not None and not child.stdin.closed:
            child.stdin.close()
        child.wait(timeout=30)
    if args.json:
        figures = {"world": counts, "flows": len(flows), "allowed": allowed, "results": rows}
        print(json.dumps({**figures, "handler_us": handler_us}, indent=2))
    else:
        print(
            f"world: {counts}; {len(flows)} distinct flows, {allowed} allowed; "
            f"{args.calls} calls per run, median of {args.rounds} rounds"
        )
        print(_table(rows, args.concurrency))
        for name, h in handler_us.items():
            print(f"{name}: server-side handler {h['mean']:.0f} us mean, {h['p99']:.0f} us p99")
        for a, b in (("check", "decide"), ("check", "echo-check"), ("decide", "echo-decide")):
            ratio = rows[a]["sequential_calls_per_s"] / rows[b]["sequential_calls_per_s"]
            print(f"{a} / {b} calls/s (1 caller): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
