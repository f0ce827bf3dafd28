"""Health and Decide latency beside idle ``DecideStream`` calls, per server flavour (issue 16).

::

    python -m netpol_pdp.bench.idle_streams --streams 0 16 500 --calls 200

For each flavour (sync, aio) and each number of idle streams (opened over
connections of 4 streams each, and left open sending nothing), it times
``calls`` health checks and ``calls`` unary Decides one after another and prints
p50/p99 in ms, and how many streams the server refused (``UNAVAILABLE``, the
limits of server/limits.py).  The server runs in its own process; the client
here.  Ratios within one run are what to compare (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from netpol_pdp.examples import CLUSTER
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

FLOW = pb.Flow(src_ip="10.244.1.12", dst_ip="10.244.2.20", dst_port=8080, protocol=pb.PROTOCOL_TCP)


def _start(mode: str) -> tuple[subprocess.Popen[str], int]:
    argv = ["--listen", "127.0.0.1:0", "--source", str(CLUSTER), "--server-mode", mode, "--grace", "0.5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "netpol_pdp.clients.cmd_serve", *argv],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    port = 0
    for line in proc.stderr:
        record = json.loads(line)
        if record.get("event") == "listening":
            port = int(record["port"])
        if record.get("event") == "feed_loaded":
            break
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc, port


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def measure(mode: str, streams: int, calls: int) -> dict[str, object]:
    proc, port = _start(mode)
    address = f"127.0.0.1:{port}"
    done = threading.Event()

    def idle() -> Iterator[pb.DecideBatchRequest]:
        done.wait(600)
        return
        yield

    own = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.insecure_channel(address, own) for _ in range((streams + 3) // 4)]
    open_calls = [pb_grpc.DecisionServiceStub(channels[i // 4]).DecideStream(idle()) for i in range(streams)]
    time.sleep(1.0)
    refused = sum(1 for c in open_calls if c.done())
    health_t: list[float] = []
    decide_t: list[float] = []
    errors = 0
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        decide = pb_grpc.DecisionServiceStub(channel)
        for _ in range(calls):
            for kind, into in (("health", health_t), ("decide", decide_t)):
                start = time.perf_counter()
                try:
                    if kind == "health":
                        health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    else:
                        decide.Decide(pb.DecideRequest(flow=FLOW), timeout=2)
                    into.append(time.perf_counter() - start)
                except grpc.RpcError:
                    errors += 1
    done.set()
    for c in open_calls:
        c.cancel()
    for ch in channels:
        ch.close()
    proc.terminate()
    proc.wait(10)
    row: dict[str, object] = {"mode": mode, "streams": streams, "refused": refused, "failed_calls": errors}
    for name, samples in (("health", health_t), ("decide", decide_t)):
        if samples:
            p50, p99 = _percentiles(samples)
            row[f"{name}_p50_ms"], row[f"{name}_p99_ms"] = round(p50, 3), round(p99, 3)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[0, 16, 500])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--modes", nargs="+", default=["sync", "aio"])
    args = parser.parse_args(argv)
    for mode in args.modes:
        for n in args.streams:
            print(json.dumps(measure(mode, n, args.calls)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
