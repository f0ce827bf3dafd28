"""End-to-end benchmark: the gRPC service on loopback, against its two yardsticks.

Three servers are measured in the **same run**, each in its own process
(``python -m netpol_pdp.bench.serve --server KIND ...``), all started first and
then driven in turn, shape by shape, by this process as the load generator (so
the runs a ratio compares are minutes apart at most):

- ``decision``: the real DecisionService over the index;
- ``echo``: the echo service (``netpol_pdp.server.echo``): the same message
  shapes, a constant answer, no deciding: the ceiling of the transport in Python;
- ``reference``: the real DecisionService over the reference evaluator instead
  of the index: the naive approach, same transport.

Against each, three load shapes, each for ``duration`` seconds after a short
warm-up:

- ``unary``: one flow per ``Decide`` call, one call in flight (a sidecar asking
  per connection): calls/s and per-call latency;
- ``batch``: ``DecideBatch`` calls of ``batch`` flows, one in flight;
- ``stream``: one ``DecideStream`` with up to ``window`` batches in flight:
  flows/s and per-batch latency (send to answer).

Requests are built before timing and answers are counted, not converted back to
Python objects, so the client's own cost is the same for every server and the
ratios compare the servers.  Both processes share the machine's cores: on a
2-core machine the load generator takes one of them.

Ratios reported: decision/echo (the targets: unary >= 80%, stream >= 60%) and
decision/reference, per load shape.  ``--profile`` adds the service's own
per-flow cost measured in-process (no transport) and its cProfile summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from netpol_pdp.bench import results
from netpol_pdp.bench.flowmix import endpoints, realistic_flows
from netpol_pdp.bench.worlds import generate_world
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.model import Kind, Object
from netpol_pdp.index.reference import ReferenceEvaluator

SERVERS = ("decision", "echo", "reference")
SHAPES = ("unary", "batch", "stream")
WARMUP_S = 0.5
#: Targets of issue 5: decision throughput as a share of echo's, per shape.
TARGETS = {"unary": 0.8, "stream": 0.6}


class ReferenceIndex:
    """The reference evaluator behind the interface the service reads from an Index."""

    generation = 0

    def __init__(self, objects: Sequence[Object]) -> None:
        self.reference = ReferenceEvaluator(objects)
        self._counts = {k.value: sum(o.kind is k for o in objects) for k in Kind}

    def decide(self, flow: Flow, explain: bool = False) -> Decision:
        return self.reference.decide(flow, explain)

    def decide_many(self, flows: Sequence[Flow], explain: bool = False) -> list[Decision]:
        return [self.reference.decide(f, explain) for f in flows]

    def counts(self) -> dict[str, int]:
        return dict(self._counts)


def load_objects(source: Path | None, size: str | None, seed: int) -> list[Object]:
    """The world both sides use: a manifest folder, or a generated size (deterministic)."""
    if size is not None:
        return generate_world(size, seed).objects
    assert source is not None
    return list(ManifestSource(source).load().objects.values())


# --- the server process ----------------------------------------------------------------------


def _serve(kind: str, objects: list[Object], mode: str) -> None:
    """Serve on a free loopback port; print it; stop when stdin closes."""
    from netpol_pdp.server.app import start_server
    from netpol_pdp.server.echo import AioEchoService, EchoService
    from netpol_pdp.server.service import AioDecisionService, DecisionCore, DecisionService
    from netpol_pdp.server.status import ServerState

    servicer: Any
    if kind == "echo":
        servicer = AioEchoService() if mode == "aio" else EchoService()
    else:
        index = Index.from_objects(objects) if kind == "decision" else ReferenceIndex(objects)
        state = ServerState(index)
        state.mark_ready()
        # the reference must decide every flow: no wire cache in front of it
        core = DecisionCore(state, wire_cache=kind == "decision")
        servicer = AioDecisionService(core) if mode == "aio" else DecisionService(core)
    handle = start_server(servicer, "127.0.0.1:0", mode=mode)  # type: ignore[arg-type]
    print(json.dumps({"port": handle.port}), flush=True)
    sys.stdin.read()
    handle.stop(grace=1.0)


class ServerProcess:
    """One benchmark server in a subprocess; its port once it listens."""

    def __init__(self, kind: str, world_args: list[str], mode: str) -> None:
        cmd = [sys.executable, "-m", "netpol_pdp.bench.serve", "--server", kind, "--mode", mode, *world_args]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.proc.wait()
            raise RuntimeError(f"the {kind} server did not start:\n{err.strip()}")
        self.port = int(json.loads(line)["port"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


# --- the load generator ------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def _summary(latencies: list[float], calls: int, flows: int, seconds: float) -> dict[str, Any]:
    latencies.sort()
    return {
        "calls": calls,
        "flows": flows,
        "seconds": seconds,
        "calls_per_s": calls / seconds,
        "flows_per_s": flows / seconds,
        "p50_s": percentile(latencies, 50),
        "p99_s": percentile(latencies, 99),
        "p999_s": percentile(latencies, 99.9),
    }


class Load:
    """Pre-built requests over one channel, and the three load shapes."""

    def __init__(self, port: int, flows: list[Flow], batch: int, window: int) -> None:
        import grpc

        from netpol_pdp.v1 import decision_pb2 as pb
        from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc
        from netpol_pdp.v1.convert import fill_flow

        size = 64 * 1024 * 1024
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{port}",
            options=[("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", size)],
        )
        grpc.channel_ready_future(self.channel).result(timeout=60)
        self.stub = pb_grpc.DecisionServiceStub(self.channel)
        self.batch, self.window = batch, window
        self.unary: list[Any] = []
        for f in flows[:10_000]:
            req = pb.DecideRequest()
            fill_flow(req.flow, f)
            self.unary.append(req)
        self.batches: list[Any] = []
        for start in range(0, max(len(flows) - batch + 1, 1), batch):
            batch_req = pb.DecideBatchRequest(request_id=len(self.batches) + 1)
            for f in flows[start : start + batch]:
                fill_flow(batch_req.flows.add(), f)
            self.batches.append(batch_req)
            if len(self.batches) >= 50:
                break

    def close(self) -> None:
        self.channel.close()

    def run(self, shape: str, duration: float) -> dict[str, Any]:
        getattr(self, f"_{shape}")(WARMUP_S)
        return getattr(self, f"_{shape}")(duration)  # type: ignore[no-any-return]

    def _unary(self, duration: float) -> dict[str, Any]:
        call, reqs = self.stub.Decide, self.unary
        lat: list[float] = []
        clock = time.perf_counter
        start = clock()
        deadline = start + duration
        i = 0
        while True:
            t0 = clock()
            call(reqs[i % len(reqs)])
            t1 = clock()
            lat.append(t1 - t0)
            i += 1
            if t1 >= deadline:
                break
        return _summary(lat, i, i, clock() - start)

    def _batch(self, duration: float) -> dict[str, Any]:
        call, reqs = self.stub.DecideBatch, self.batches
        lat: list[float] = []
        clock = time.perf_counter
        start = clock()
        deadline = start + duration
        i = flows = 0
        while True:
            t0 = clock()
            resp = call(reqs[i % len(reqs)])
            t1 = clock()
            lat.append(t1 - t0)
            flows += len(resp.results)
            i += 1
            if t1 >= deadline:
                break
        return _summary(lat, i, flows, clock() - start)

    def _stream(self, duration: float) -> dict[str, Any]:
        reqs = self.batches
        slots = threading.Semaphore(self.window)
        stop = threading.Event()
        sent: deque[float] = deque()
        clock = time.perf_counter

        def requests() -> Iterator[Any]:
            i = 0
            while True:
                slots.acquire()
                if stop.is_set():
                    return
                sent.append(clock())
                yield reqs[i % len(reqs)]
                i += 1

        lat: list[float] = []
        calls = flows = 0
        start = clock()
        deadline = start + duration
        for resp in self.stub.DecideStream(requests()):
            now = clock()
            lat.append(now - sent.popleft())
            calls += 1
            flows += len(resp.results)
            if now >= deadline:
                stop.set()
            slots.release()
        return _summary(lat, calls, flows, clock() - start)


# --- in-process: the service's own cost, without the transport -------------------------------


def core_profile(objects: list[Object], flows: list[Flow], batch: int, rounds: int = 20) -> dict[str, Any]:
    """``DecisionCore.decide_batch`` and the echo core on one pre-built batch, in this process.

    This separates what the service costs per flow (wire flow -> Flow
    validation, deciding, Decision -> wire) from what gRPC costs, and profiles it.
    """
    from netpol_pdp.server.echo import EchoCore
    from netpol_pdp.server.service import DecisionCore
    from netpol_pdp.server.status import ServerState
    from netpol_pdp.v1 import decision_pb2 as pb
    from netpol_pdp.v1.convert import fill_flow

    request = pb.DecideBatchRequest(request_id=1)
    for f in flows[:batch]:
        fill_flow(request.flows.add(), f)
    n = len(request.flows)
    state = ServerState(Index.from_objects(objects))
    state.mark_ready()
    core, echo = DecisionCore(state), EchoCore()
    core.decide_batch(request)  # warm the decision cache: the steady state of a repeating log
    out: dict[str, Any] = {"batch": n}
    for name, fn in (("decision", core.decide_batch), ("echo", echo.decide_batch)):
        seconds, _ = results.timed(lambda fn=fn: [fn(request) for _ in range(rounds)])  # type: ignore[misc]
        out[f"{name}_flows_per_s"] = rounds * n / seconds
    _, out["profile"] = results.profiled(lambda: [core.decide_batch(request) for _ in range(rounds)])
    return out


# --- the run -----------------------------------------------------------------------------------


def run_serve(
    world_args: list[str],
    objects: list[Object],
    *,
    duration: float = 3.0,
    batch: int = 1_000,
    window: int = 4,
    mode: str = "aio",
    servers: Sequence[str] = SERVERS,
    seed: int = 0,
    n_flows: int = 50_000,
    profile: bool = False,
) -> dict[str, Any]:
    """Start each server in turn, drive the three load shapes against it, return the figures."""
    machine = results.machine()  # the load average before the run, not after it
    oracle = Index.from_objects(objects)
    flows = realistic_flows(
        endpoints(objects, seed), n_flows, seed, allowed=lambda f: oracle.decide(f).allowed
    )
    figures: dict[str, Any] = {
        "duration_s": duration,
        "batch": batch,
        "window": window,
        "server_mode": mode,
        "objects": {k.value: sum(o.kind is k for o in objects) for k in Kind},
        "runs": {},
    }
    # All servers run at once (an idle one costs nothing) and each shape is measured on the
    # three back to back: on a shared machine the neighbours' load drifts over minutes, and
    # a ratio is only fair between runs made close together.
    procs: dict[str, ServerProcess] = {}
    loads: dict[str, Load] = {}
    try:
        for kind in servers:
            procs[kind] = ServerProcess(kind, world_args, mode)
            loads[kind] = Load(procs[kind].port, flows, batch, window)
        for shape in SHAPES:
            for kind in servers:
                print(f"measuring {shape} on the {kind} server ...", file=sys.stderr, flush=True)
                figures["runs"].setdefault(kind, {})[shape] = loads[kind].run(shape, duration)
    finally:
        for load in loads.values():
            load.close()
        for proc in procs.values():
            proc.close()
    figures["ratios"] = ratios(figures["runs"])
    if profile:
        figures["core"] = core_profile(objects, flows, batch)
    figures["machine"] = machine
    return figures


def ratios(runs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    decision = runs.get("decision")
    for other in ("echo", "reference"):
        if decision is None or other not in runs:
            continue
        out[f"decision/{other}"] = {
            shape: decision[shape]["flows_per_s"] / runs[other][shape]["flows_per_s"] for shape in SHAPES
        }
    return out


def report(figures: dict[str, Any], world: str) -> str:
    took, rate = results.duration, results.si
    rows = []
    for kind, shapes in figures["runs"].items():
        for shape, f in shapes.items():
            rows.append(
                (kind, shape, rate(f["calls_per_s"], "/s"), rate(f["flows_per_s"], "/s"),
                 took(f["p50_s"]), took(f["p99_s"]), took(f["p999_s"]), f"{f['calls']:,}")
            )  # fmt: skip
    lines = [
        f"# Serve benchmark: gRPC on loopback ({figures['server_mode']} server), {world}",
        "",
        f"Each shape ran {figures['duration_s']:g} s after a {WARMUP_S:g} s warm-up; batch = "
        f"{figures['batch']} flows, stream window = {figures['window']} batches in flight. "
        "Latency is per call (unary, batch) or per batch from send to answer (stream).",
        "",
        results.table(("server", "shape", "calls/s", "flows/s", "p50", "p99", "p99.9", "calls"), rows),
    ]
    if figures["ratios"]:
        lines += ["", "## Ratios (flows/s)", ""]
        ratio_rows = [
            (name, *(f"{r[shape]:.3g}" for shape in SHAPES)) for name, r in figures["ratios"].items()
        ]
        lines.append(results.table(("ratio", *SHAPES), ratio_rows))
        echo = figures["ratios"].get("decision/echo")
        if echo:
            lines += ["", "## Targets", ""]
            target_rows = [
                (f"{shape}: decision >= {limit:.0%} of echo", f"{echo[shape]:.1%}",
                 "met" if echo[shape] >= limit else f"MISSED by {(limit - echo[shape]) * 100:.1f} points")
                for shape, limit in TARGETS.items()
            ]  # fmt: skip
            lines.append(results.table(("target", "measured", "verdict"), target_rows))
    core = figures.get("core")
    if core:
        lines += [
            "",
            "## The service's own cost, in-process (no transport)",
            "",
            f"`DecisionCore.decide_batch` on one {core['batch']}-flow batch (decision cache warm): "
            f"{rate(core['decision_flows_per_s'], ' flows/s')}; the echo core: "
            f"{rate(core['echo_flows_per_s'], ' flows/s')}. Profile of the decision core, by own time:",
            "",
            "```",
            core["profile"],
            "```",
        ]
    return "\n".join(lines)


def main(
    source: Path | None,
    size: str | None,
    seed: int,
    out_dir: Path,
    *,
    duration: float,
    batch: int,
    window: int,
    mode: str,
    profile: bool = False,
) -> str:
    world_args = ["--seed", str(seed)] + (["--size", size] if size else ["--source", str(source)])
    objects = load_objects(source, size, seed)
    figures = run_serve(
        world_args,
        objects,
        duration=duration,
        batch=batch,
        window=window,
        mode=mode,
        seed=seed,
        profile=profile,
    )
    world = f"world {size} (seed {seed})" if size else f"source {source}"
    figures["world"] = world
    text = report(figures, world)
    results.write("serve", figures, text, out_dir)
    return text


def _server_entry() -> None:
    parser = argparse.ArgumentParser(
        description="one benchmark server (internal to `netpol-pdp bench serve`)"
    )
    parser.add_argument("--server", required=True, choices=SERVERS)
    parser.add_argument("--mode", default="aio", choices=("aio", "sync"))
    parser.add_argument("--source", type=Path)
    parser.add_argument("--size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _serve(args.server, load_objects(args.source, args.size, args.seed), args.mode)


if __name__ == "__main__":
    _server_entry()
