"""Quick gRPC measurement: the decision service next to the echo service, same run, same machine.

::

    python -m netpol_pdp.bench.grpc_quick                 # everything, ~1 minute
    python -m netpol_pdp.bench.grpc_quick --seconds 1 --only aio --no-workers --no-reload

Every server and every client runs in its own process (a client in the
server's process would share its GIL and measure neither).  For each server
flavour (``aio``, ``sync``) and each service (the real one on a synthetic world,
and :mod:`netpol_pdp.server.echo`, which answers the same message shapes
without deciding) it measures:

- unary ``Decide`` latency (one call at a time: p50/p99) and throughput (an
  asyncio client keeping 32 calls in flight);
- ``DecideBatch`` throughput, 1,000 flows per call, one call at a time;
- ``DecideStream`` throughput, 1,000 flows per message, 8 messages in flight;
  these two use the bare stub, so they measure the server, not the client's
  decoding of results;
- the same stream through the client's ``decide_many``, which also turns every
  result into a :class:`Decision` (what a Python caller gets end to end).

Then, optionally, ``--workers 2`` against 1 with two client processes, and
unary latency during continuous reloads with the default and the server's
``--switch-interval``.  Results print as a table and, with ``--json``, as JSON.

This is deliberately light (seconds per figure): the machine it was written on
has 2 cores shared with other work, so absolute figures are noisy; the ratio
to echo, measured back to back, is the figure that matters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WORLD_SEED = 7
FLOW_SEED = 11

# --------------------------------------------------------------------------- the world


def pod_ip(ns: int, pod: int) -> str:
    return f"10.{ns // 200}.{ns % 200}.{pod + 10}"


def write_world(root: Path, namespaces: int, pods: int) -> None:
    """``namespaces`` x ``pods`` pods in 5 apps; each namespace isolates its apps with 3 policies."""
    rng = random.Random(WORLD_SEED)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(namespaces):
        docs = [
            f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{n}, labels: {{tier: t{n % 3}}}}}\n",
        ]
        for p in range(pods):
            app = f"app{p % 5}"
            docs.append(
                "apiVersion: v1\nkind: Pod\n"
                f"metadata: {{name: p{p}, namespace: ns{n}, "
                f"labels: {{app: {app}, v: v{rng.randrange(3)}}}}}\n"
                f"spec: {{nodeName: node{p % 4}, "
                "containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}\n"
                f"status: {{phase: Running, podIP: {pod_ip(n, p)}}}\n"
            )
        for k in range(3):
            docs.append(
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                f"metadata: {{name: pol{k}, namespace: ns{n}}}\n"
                "spec:\n"
                f"  podSelector: {{matchLabels: {{app: app{k}}}}}\n"
                "  policyTypes: [Ingress, Egress]\n"
                "  ingress:\n"
                f"  - from: [{{podSelector: {{matchLabels: {{app: app{(k + 1) % 5}}}}}}}, "
                f"{{namespaceSelector: {{matchLabels: {{tier: t{k}}}}}}}]\n"
                "    ports: [{port: http}, {port: 9000, endPort: 9100}]\n"
                "  egress:\n"
                "  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.3.0/24]}}]\n"
            )
        (root / f"ns{n}.yaml").write_text("---\n".join(docs))


def flows(namespaces: int, pods: int, count: int = 5000) -> list[Any]:
    from netpol_pdp.index.flows import make_flow

    rng = random.Random(FLOW_SEED)
    out = []
    for _ in range(count):
        src = pod_ip(rng.randrange(namespaces), rng.randrange(pods))
        dst = pod_ip(rng.randrange(namespaces), rng.randrange(pods))
        out.append(make_flow(src, dst, "TCP", rng.choice((8080, 9050, 443, 5432))))
    return out


# --------------------------------------------------------------------------- servers


class Server:
    """A server subprocess; its port comes from its first JSON line on stderr (or stdout for echo)."""

    def __init__(self, argv: list[str], port_event: str) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.port = 0
        self.ready_lines = 0
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError(f"server exited: {argv}")
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") == port_event:
                self.port = int(record["port"])
            if record.get("event") in ("feed_loaded", "echo_listening"):
                self.ready_lines += 1
            if self.port and self.ready_lines >= self.expected_ready(argv):
                break
        threading.Thread(target=self._drain, daemon=True).start()

    @staticmethod
    def expected_ready(argv: list[str]) -> int:
        return int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for _ in self.proc.stderr:
            pass

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdin:
            self.proc.stdin.close()
        if self.proc.stderr:
            self.proc.stderr.close()


def real_server(world: Path, mode: str, workers: int = 1, switch: float | None = None) -> Server:
    argv = [sys.executable, "-m", "netpol_pdp.clients.cmd_serve", "--source", str(world)]
    argv += [
        "--listen",
        "127.0.0.1:0",
        "--server-mode",
        mode,
        "--workers",
        str(workers),
        "--log-level",
        "info",
    ]
    if switch is not None:
        argv += ["--switch-interval", str(switch)]
    return Server(argv, "workers_started" if workers > 1 else "listening")


def echo_server(mode: str) -> Server:
    return Server(
        [sys.executable, "-m", "netpol_pdp.bench.grpc_quick", "_echo", "--mode", mode], "echo_listening"
    )


def _run_echo(mode: str) -> None:
    import signal

    from netpol_pdp.server.app import start_server
    from netpol_pdp.server.echo import AioEchoService, EchoService

    servicer = AioEchoService() if mode == "aio" else EchoService()
    handle = start_server(servicer, "127.0.0.1:0", mode=mode)  # type: ignore[arg-type]
    handle.set_serving(True)
    print(json.dumps({"event": "echo_listening", "port": handle.port}), file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    handle.stop(0)


# --------------------------------------------------------------------------- clients (own processes)


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _client(kind: str, target: str, seconds: float, ns: int, pods: int) -> dict[str, Any]:
    from netpol_pdp.clients import AsyncDecisionClient, DecisionClient

    work = flows(ns, pods)
    end = time.perf_counter() + seconds
    if kind == "unary-latency":
        with DecisionClient(target) as client:
            for f in work[:200]:  # warm up: connection, caches
                client.decide(f)
            lat: list[float] = []
            i = 0
            while time.perf_counter() < end:
                t = time.perf_counter()
                client.decide(work[i % len(work)])
                lat.append(time.perf_counter() - t)
                i += 1
        return {
            "flows": len(lat),
            "seconds": seconds,
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * _percentile(lat, 0.99),
        }
    if kind == "unary":

        async def run() -> int:
            async with AsyncDecisionClient(target) as client:
                done = 0
                stop_at = time.perf_counter() + seconds

                async def worker(k: int) -> None:
                    nonlocal done
                    i = k
                    while time.perf_counter() < stop_at:
                        await client.decide(work[i % len(work)])
                        done += 1
                        i += 32

                await asyncio.gather(*(worker(k) for k in range(32)))
                return done

        n = asyncio.run(run())
        return {"flows": n, "seconds": seconds}
    if kind in ("batch", "stream"):
        return _raw(kind, target, work, end, seconds)
    if kind == "decide_many":
        with DecisionClient(target) as client:

            def endless() -> Iterator[Any]:
                i = 0
                while time.perf_counter() < end:
                    yield from work[i : i + 1000]
                    i = (i + 1000) % len(work)

            n = sum(1 for _ in client.decide_many(endless(), batch_size=1000, window=8))
        return {"flows": n, "seconds": seconds}
    raise ValueError(kind)


def _raw(kind: str, target: str, work: list[Any], end: float, seconds: float) -> dict[str, Any]:
    """Batch/stream with the bare stub: the server's rate, without the client's decoding into Decisions."""
    import grpc

    from netpol_pdp.clients._channel import batch_request, channel_options
    from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

    requests = [batch_request(i, work[i * 1000 : (i + 1) * 1000], False) for i in range(len(work) // 1000)]
    n = 0
    with grpc.insecure_channel(target, options=channel_options(None)) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        if kind == "batch":
            i = 0
            while time.perf_counter() < end:
                n += len(stub.DecideBatch(requests[i % len(requests)]).results)
                i += 1
        else:
            window = threading.Semaphore(8)

            def send() -> Iterator[Any]:
                i = 0
                while time.perf_counter() < end:
                    window.acquire()
                    yield requests[i % len(requests)]
                    i += 1

            for response in stub.DecideStream(send()):
                n += len(response.results)
                window.release()
    return {"flows": n, "seconds": seconds}


def measure(kind: str, target: str, seconds: float, ns: int, pods: int, clients: int = 1) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "netpol_pdp.bench.grpc_quick",
        "_client",
        "--kind",
        kind,
        "--target",
        target,
    ]
    argv += ["--seconds", str(seconds), "--namespaces", str(ns), "--pods", str(pods)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(clients)]
    results = [json.loads(p.communicate()[0]) for p in procs]
    out = dict(results[0])
    out["flows"] = sum(r["flows"] for r in results)
    out["rate"] = out["flows"] / seconds
    return out


# --------------------------------------------------------------------------- the run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="per figure (default 2)")
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--pods", type=int, default=50, help="per namespace")
    parser.add_argument("--only", choices=("aio", "sync"), help="one server flavour")
    parser.add_argument("--no-workers", action="store_true", help="skip --workers 2 vs 1")
    parser.add_argument("--no-reload", action="store_true", help="skip latency during reloads")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    ns, pods, secs = args.namespaces, args.pods, args.seconds
    results: dict[str, Any] = {"cpus": os.cpu_count(), "namespaces": ns, "pods": ns * pods, "seconds": secs}
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp) / "world"
        write_world(world, ns, pods)
        print(
            f"world: {ns} namespaces, {ns * pods} pods, {3 * ns} policies; {secs:g} s per figure", flush=True
        )
        for mode in [args.only] if args.only else ["aio", "sync"]:
            for service in ("real", "echo"):
                server = real_server(world, mode) if service == "real" else echo_server(mode)
                try:
                    for kind in ("unary-latency", "unary", "batch", "stream", "decide_many"):
                        r = measure(kind, server.target, secs, ns, pods)
                        results[f"{mode}/{service}/{kind}"] = r
                        extra = (
                            f"  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms" if "p50_ms" in r else ""
                        )
                        print(
                            f"{mode:5} {service:5} {kind:14} {r['rate']:>10,.0f} flows/s{extra}", flush=True
                        )
                finally:
                    server.stop()
        if not args.no_workers:
            for workers in (1, 2):
                server = real_server(world, "aio", workers)
                try:
                    for kind in ("unary", "stream"):
                        r = measure(kind, server.target, secs, ns, pods, clients=2)
                        results[f"workers{workers}/{kind}"] = r
                        print(f"workers {workers} {kind:8} 2 clients {r['rate']:>10,.0f} flows/s", flush=True)
                finally:
                    server.stop()
        if not args.no_reload:
            results.update(reload_latency(Path(tmp), ns, pods, secs))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def reload_latency(tmp: Path, ns: int, pods: int, secs: float) -> dict[str, Any]:
    """Unary p50/p99 while one file changes every 0.25 s (each change reloads the world)."""
    out: dict[str, Any] = {}
    big = tmp / "reload-world"
    write_world(big, ns * 2, pods)
    for switch in (0.005, 0.001):
        server = real_server(big, "aio", switch=switch)
        stop = threading.Event()

        def churn(stop: threading.Event = stop) -> None:
            target = big / "ns0.yaml"
            text = target.read_text()
            k = 0
            while not stop.wait(0.25):
                k += 1
                target.write_text(text.replace("tier: t0", f"tier: t0, churn: c{k}"))

        writer = threading.Thread(target=churn)
        writer.start()
        try:
            quiet = measure("unary-latency", server.target, secs, ns * 2, pods)
        finally:
            stop.set()
            writer.join()
            server.stop()
        out[f"reload/switch{switch}"] = quiet
        print(
            f"reloading every 0.25 s, switch interval {switch * 1000:g} ms: "
            f"unary p50 {quiet['p50_ms']:.2f} ms p99 {quiet['p99_ms']:.2f} ms",
            flush=True,
        )
    return out


def _entry() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_echo":
        _run_echo(sys.argv[sys.argv.index("--mode") + 1])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        p = argparse.ArgumentParser()
        p.add_argument("_client")
        p.add_argument("--kind")
        p.add_argument("--target")
        p.add_argument("--seconds", type=float)
        p.add_argument("--namespaces", type=int)
        p.add_argument("--pods", type=int)
        a = p.parse_args()
        print(json.dumps(_client(a.kind, a.target, a.seconds, a.namespaces, a.pods)))
        return 0
    return main()


if __name__ == "__main__":
    raise SystemExit(_entry())
