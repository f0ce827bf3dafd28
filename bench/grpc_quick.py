"""Quick gRPC measurement: the decision service next to the echo service, same run, same machine.

::

    python -m netpol_pdp.bench.grpc_quick --seconds 1    # everything, ~2 minutes
    python -m netpol_pdp.bench.grpc_quick --seconds 0.5 --rounds 1 --only aio --no-workers --no-reload

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
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
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


def check_world(root: Path, namespaces: int, pods: int) -> dict[str, int]:
    """The benchmark guards its own size: the world must load to exactly what was asked for."""
    from netpol_pdp.index.manifests import ManifestSource

    counts = ManifestSource(root).load().counts()
    expected = {"Namespace": namespaces, "Pod": namespaces * pods, "Node": 0, "NetworkPolicy": 3 * namespaces}
    if counts != expected:
        raise AssertionError(f"the world loaded as {counts}, not {expected}")
    return counts


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
        self.events: list[dict[str, Any]] = []
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
        for line in self.proc.stderr:
            with contextlib.suppress(json.JSONDecodeError):
                self.events.append(json.loads(line))

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
    """One client process: warm up (connect, fill caches), then run ``seconds`` and count.

    Every loop runs at least once, and the elapsed time is measured, not
    assumed, so a tiny ``seconds`` on a loaded machine still gives a rate.
    """
    from netpol_pdp.clients import AsyncDecisionClient, DecisionClient

    work = flows(ns, pods)
    if kind == "unary-latency":
        with DecisionClient(target) as client:
            for f in work[:200]:
                client.decide(f)
            lat: list[float] = []
            begin = time.perf_counter()
            end = begin + seconds
            i = 0
            while not lat or time.perf_counter() < end:
                t = time.perf_counter()
                client.decide(work[i % len(work)])
                lat.append(time.perf_counter() - t)
                i += 1
            elapsed = time.perf_counter() - begin
        return {
            "flows": len(lat),
            "seconds": elapsed,
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * _percentile(lat, 0.99),
        }
    if kind == "unary":

        async def run() -> tuple[int, float]:
            async with AsyncDecisionClient(target) as client:
                await client.decide(work[0])
                return await closed_loop(lambda i: client.decide(work[i % len(work)]), seconds)

        n, elapsed = asyncio.run(run())
        return {"flows": n, "seconds": elapsed}
    if kind in ("batch", "stream"):
        return _raw(kind, target, work, seconds)
    if kind == "decide_many":
        with DecisionClient(target) as client:
            client.decide(work[0])
            begin = time.perf_counter()
            end = begin + seconds

            def endless() -> Iterator[Any]:
                i = 0
                while True:
                    yield from work[i : i + 1000]
                    i = (i + 1000) % len(work)
                    if time.perf_counter() >= end:
                        return

            n = sum(1 for _ in client.decide_many(endless(), batch_size=1000, window=8))
            elapsed = time.perf_counter() - begin
        return {"flows": n, "seconds": elapsed}
    raise ValueError(kind)


def _raw(kind: str, target: str, work: list[Any], seconds: float) -> dict[str, Any]:
    """Batch/stream with the bare stub: the server's rate, without the client's decoding into Decisions."""
    import grpc

    from netpol_pdp.clients._channel import batch_request, channel_options
    from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

    requests = [batch_request(i, work[i * 1000 : (i + 1) * 1000], False) for i in range(len(work) // 1000)]
    n = 0
    with grpc.insecure_channel(target, options=channel_options(None)) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        stub.DecideBatch(requests[0])  # connect and warm up
        begin = time.perf_counter()
        end = begin + seconds
        if kind == "batch":
            i = 0
            while True:
                n += len(stub.DecideBatch(requests[i % len(requests)]).results)
                i += 1
                if time.perf_counter() >= end:
                    break
        else:
            window = threading.Semaphore(8)

            def send() -> Iterator[Any]:
                i = 0
                while True:
                    window.acquire()
                    yield requests[i % len(requests)]
                    i += 1
                    if time.perf_counter() >= end:
                        return

            for response in stub.DecideStream(send()):
                n += len(response.results)
                window.release()
        elapsed = time.perf_counter() - begin
    return {"flows": n, "seconds": elapsed}


KINDS = ("unary-latency", "unary", "batch", "stream", "decide_many")


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (its latencies with it), plus every round's rate."""
    ordered = sorted(runs, key=lambda r: r["rate"])
    out = dict(ordered[len(ordered) // 2])
    out["rates"] = [round(r["rate"]) for r in runs]
    return out


async def closed_loop(
    call: Callable[[int], Awaitable[object]], seconds: float, workers: int = 32
) -> tuple[int, float]:
    """``workers`` concurrent callers, caller ``k`` awaiting ``call(k)``, ``call(k + workers)``, ...
    until ``seconds`` have passed: (calls completed, seconds taken)."""
    done = 0
    begin = time.perf_counter()
    stop_at = begin + seconds

    async def worker(k: int) -> None:
        nonlocal done
        i = k
        while True:
            await call(i)
            done += 1
            i += workers
            if time.perf_counter() >= stop_at:
                return

    await asyncio.gather(*(worker(k) for k in range(workers)))
    return done, time.perf_counter() - begin


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
    out["seconds"] = max(r["seconds"] for r in results)
    out["rate"] = out["flows"] / out["seconds"]
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
    parser.add_argument("--no-main", action="store_true", help="skip the real-vs-echo figures")
    parser.add_argument("--no-reload", action="store_true", help="skip latency during reloads")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each figure (median kept)")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}"
    )
    args = parser.parse_args(argv)
    ns, pods, secs = args.namespaces, args.pods, args.seconds
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"--kinds: unknown {sorted(unknown)}")
    results: dict[str, Any] = {"cpus": os.cpu_count(), "namespaces": ns, "pods": ns * pods, "seconds": secs}
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp) / "world"
        write_world(world, ns, pods)
        results["world"] = check_world(world, ns, pods)
        print(
            f"world: {ns} namespaces, {ns * pods} pods, {3 * ns} policies; {secs:g} s per figure", flush=True
        )
        modes = [args.only] if args.only else ["sync", "aio"]
        if not args.no_main:
            results.update(real_vs_echo(world, ns, pods, secs, modes, kinds, args.rounds))
        if not args.no_workers:
            results.update(workers_throughput(world, ns, pods, secs, modes[0], args.rounds))
        if not args.no_reload:
            results.update(reload_latency(Path(tmp), ns, pods, secs, modes[0], args.rounds))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def real_vs_echo(
    world: Path, ns: int, pods: int, secs: float, modes: list[str], kinds: list[str], rounds: int
) -> dict[str, Any]:
    """Every kind of call against the real service and the echo service, in each server flavour."""
    results: dict[str, Any] = {}
    servers = {
        (mode, service): real_server(world, mode) if service == "real" else echo_server(mode)
        for mode in modes
        for service in ("real", "echo")
    }
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        # Rounds interleave every server, so that load from elsewhere on the
        # machine hits all of them alike; the median of the rounds is reported.
        for _ in range(rounds):
            for kind in kinds:
                for (mode, service), server in servers.items():
                    runs.setdefault(f"{mode}/{service}/{kind}", []).append(
                        measure(kind, server.target, secs, ns, pods)
                    )
    finally:
        for server in servers.values():
            server.stop()
    for key, rs in runs.items():
        r = results[key] = _median_run(rs)
        extra = f"  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms" if "p50_ms" in r else ""
        mode, service, kind = key.split("/")
        print(f"{mode:5} {service:5} {kind:14} {r['rate']:>10,.0f} flows/s{extra}", flush=True)
    for mode in modes:
        for kind in kinds:
            real, echo = results[f"{mode}/real/{kind}"], results[f"{mode}/echo/{kind}"]
            results[f"{mode}/ratio/{kind}"] = real["rate"] / echo["rate"]
        ratios = "  ".join(f"{k} {results[f'{mode}/ratio/{k}']:.2f}" for k in kinds)
        print(f"{mode:5} real/echo: {ratios}", flush=True)
    return results


def workers_throughput(
    world: Path, ns: int, pods: int, secs: float, mode: str, rounds: int
) -> dict[str, Any]:
    """``--workers 1`` against ``--workers 2``, each driven by two client processes, rounds interleaved."""
    out: dict[str, Any] = {}
    servers = {workers: real_server(world, mode, workers) for workers in (1, 2)}
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for _ in range(rounds):
            for kind in ("unary", "stream"):
                for workers, server in servers.items():
                    r = measure(kind, server.target, secs, ns, pods, clients=2)
                    runs.setdefault(f"workers{workers}/{kind}", []).append(r)
    finally:
        for server in servers.values():
            server.stop()
    for key, rs in runs.items():
        r = out[key] = _median_run(rs)
        print(f"{mode} {key:18} 2 clients {r['rate']:>10,.0f} flows/s  (rounds {r['rates']})", flush=True)
    return out


def reload_latency(tmp: Path, ns: int, pods: int, secs: float, mode: str, rounds: int) -> dict[str, Any]:
    """Unary p50/p99 with no reloads, then while one file changes every 0.25 s (each change
    re-reads and diffs the whole world), with a 5 ms and a 1 ms GIL switch interval."""
    out: dict[str, Any] = {}
    big = tmp / "reload-world"
    write_world(big, ns * 2, pods)
    check_world(big, ns * 2, pods)
    cases = [("quiet", 0.005, False), ("churn-5ms", 0.005, True), ("churn-1ms", 0.001, True)]
    runs: dict[str, list[dict[str, Any]]] = {}
    reload_seconds: list[float] = []
    for _ in range(rounds):
        for label, switch, churning in cases:
            server = real_server(big, mode, switch=switch)
            stop = threading.Event()

            def churn(stop: threading.Event = stop) -> None:
                target = big / "ns0.yaml"
                text = target.read_text()
                k = 0
                while not stop.wait(0.25):
                    k += 1
                    target.write_text(text.replace("tier: t0", f"tier: t0, churn: c{k}"))
                target.write_text(text)

            writer = threading.Thread(target=churn)
            if churning:
                writer.start()
            try:
                r = measure("unary-latency", server.target, secs, ns * 2, pods)
            finally:
                stop.set()
                if churning:
                    writer.join()
                server.stop()
            r["reloads"] = sum(1 for e in server.events if e.get("event") == "feed_reloaded")
            reload_seconds += [e["seconds"] for e in server.events if e.get("event") == "feed_reloaded"]
            runs.setdefault(label, []).append(r)
    for label, rs in runs.items():
        p99 = sorted(r["p99_ms"] for r in rs)[len(rs) // 2]
        p50 = sorted(r["p50_ms"] for r in rs)[len(rs) // 2]
        out[f"reload/{label}"] = {"p50_ms": p50, "p99_ms": p99, "p99s": [round(r["p99_ms"], 2) for r in rs]}
        rounds_p99 = out[f"reload/{label}"]["p99s"]
        print(f"{mode} {label:10} unary p50 {p50:.2f} ms  p99 {p99:.2f} ms  (p99 per round {rounds_p99})")
    if reload_seconds:
        median = statistics.median(reload_seconds)
        out["reload/seconds_median"] = median
        n = len(reload_seconds)
        print(f"a reload of the {ns * 2 * pods}-pod world: {median * 1000:.0f} ms (median of {n})")
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
