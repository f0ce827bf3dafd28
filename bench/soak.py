"""A mixed soak of ``netpol-pdp serve``: every kind of call, reloads (one broken), streams coming and going.

::

    python -m netpol_pdp.bench.soak --minutes 30

The server runs in its own process on a small world written to a temporary
folder.  For ``--minutes`` this process keeps it busy with, at once:

- unary ``Decide``, ``DecideBatch`` (the same two flows each call) and Envoy ``Check``;
- ``DecideStream`` calls opened, sent a few batches and closed again;
- reloads: the policy file is replaced (write and rename) every ``--reload-every``
  seconds, alternating between allowing port 8080 and port 9090, and every
  fourth rewrite is broken YAML, which must never take effect.

Checked throughout (a failure stops the soak with exit status 1): a batch
holds a flow to 8080 and one to 9090, so its two verdicts tell which policy
decided it; they must be one policy's (ALLOW/DENY or DENY/ALLOW), never both
ALLOW or both DENY: no batch mixes generations, and the broken rewrite never
serves a state without the policy.  The server's RSS is sampled every
``--sample-every`` seconds from ``/proc/<pid>/status`` and printed as JSON
lines, then a summary (first, last, min, max RSS; calls; reloads).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from envoy.config.core.v3 import address_pb2
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc

from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

WORLD = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {nodeName: node-a}
status: {phase: Running, podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {nodeName: node-a}
status: {phase: Running, podIP: 10.0.0.1}
"""
POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: web, namespace: shop}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  ingress:
  - from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]
    ports: [{{port: {port}}}]
"""
BROKEN = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web\n"
FLOWS = [
    pb.Flow(src_ip="10.0.0.1", dst_ip="10.0.0.2", dst_port=p, protocol=pb.PROTOCOL_TCP) for p in (8080, 9090)
]
ALLOW = pb.VERDICT_ALLOW
_PEER = attribute_context_pb2.AttributeContext.Peer
CHECK = external_auth_pb2.CheckRequest(
    attributes=attribute_context_pb2.AttributeContext(
        source=_PEER(
            address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address="10.0.0.1"))
        ),
        destination=_PEER(
            address=address_pb2.Address(
                socket_address=address_pb2.SocketAddress(address="10.0.0.2", port_value=8080)
            )
        ),
    )
)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Soak:
    def __init__(self, address: str, policy: Path) -> None:
        self.address = address
        self.policy = policy
        self.stop = threading.Event()
        self.failure: str | None = None
        self.calls = 0
        self.reloads = 0
        self.broken = 0

    def fail(self, why: str) -> None:
        self.failure = self.failure or why
        self.stop.set()

    def check_batch(self, response: pb.DecideBatchResponse) -> None:
        verdicts = [r.decision.verdict == ALLOW for r in response.results]
        if verdicts not in ([True, False], [False, True]):
            self.fail(f"generation {response.generation}: verdicts {verdicts} are no single policy's")
        self.calls += 1

    def unary(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            check = external_auth_pb2_grpc.AuthorizationStub(channel)
            batch = pb.DecideBatchRequest(flows=FLOWS)
            while not self.stop.is_set():
                try:
                    stub.Decide(pb.DecideRequest(flow=FLOWS[0]), timeout=5)
                    check.Check(CHECK, timeout=5)
                    self.check_batch(stub.DecideBatch(batch, timeout=5))
                    stub.GetStatus(pb.GetStatusRequest(), timeout=5)
                except grpc.RpcError as exc:
                    self.fail(f"unary call failed: {exc.code().name}: {exc.details()}")

    def streams(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            while not self.stop.is_set():

                def requests() -> Iterator[pb.DecideBatchRequest]:
                    for i in range(5):
                        yield pb.DecideBatchRequest(request_id=i + 1, flows=FLOWS)
                        time.sleep(0.01)

                try:
                    for response in stub.DecideStream(requests(), timeout=10):
                        self.check_batch(response)
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE:  # over the stream limit: retried
                        self.fail(f"stream failed: {exc.code().name}: {exc.details()}")

    def reload(self, every: float) -> None:
        n = 0
        while not self.stop.wait(every):
            n += 1
            text = BROKEN if n % 4 == 0 else POLICY.format(port=8080 if n % 2 else 9090)
            tmp = self.policy.with_name(".policy.tmp")
            tmp.write_text(text)
            os.replace(tmp, self.policy)
            self.reloads += 1
            self.broken += text is BROKEN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--reload-every", type=float, default=2.0)
    parser.add_argument("--sample-every", type=float, default=10.0)
    parser.add_argument("--mode", choices=["sync", "aio"], default="sync")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netpol-pdp-soak-") as tmp:
        world = Path(tmp)
        (world / "world.yaml").write_text(WORLD)
        policy = world / "policy.yaml"
        policy.write_text(POLICY.format(port=8080))
        serve = ["--listen", "127.0.0.1:0", "--source", str(world), "--server-mode", args.mode]
        proc = subprocess.Popen(
            [sys.executable, "-m", "netpol_pdp.clients.cmd_serve", *serve],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        port = 0
        for line in proc.stderr:
            record = json.loads(line)
            if record.get("event") == "listening":
                port = int(record["port"])
                break
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        soak = Soak(f"127.0.0.1:{port}", policy)
        time.sleep(1.0)
        workers = [threading.Thread(target=soak.unary, daemon=True) for _ in range(2)]
        workers += [threading.Thread(target=soak.streams, daemon=True) for _ in range(2)]
        workers.append(threading.Thread(target=soak.reload, args=(args.reload_every,), daemon=True))
        for w in workers:
            w.start()
        samples: list[int] = []
        end = time.monotonic() + args.minutes * 60
        start = time.monotonic()
        while time.monotonic() < end and not soak.stop.is_set():
            samples.append(rss_kib(proc.pid))
            row = {"t": round(time.monotonic() - start), "rss_mib": round(samples[-1] / 1024, 1)}
            print(json.dumps({**row, "calls": soak.calls, "reloads": soak.reloads}), flush=True)
            soak.stop.wait(min(args.sample_every, max(0.0, end - time.monotonic())))
        soak.stop.set()
        for w in workers:
            w.join(15)
        proc.terminate()
        proc.wait(20)
    summary = {
        "minutes": args.minutes,
        "rss_first_mib": round(samples[0] / 1024, 1),
        "rss_last_mib": round(samples[-1] / 1024, 1),
        "rss_min_mib": round(min(samples) / 1024, 1),
        "rss_max_mib": round(max(samples) / 1024, 1),
        "calls": soak.calls,
        "reloads": soak.reloads,
        "broken_rewrites": soak.broken,
        "failure": soak.failure,
    }
    print(json.dumps(summary), flush=True)
    return 1 if soak.failure else 0


if __name__ == "__main__":
    raise SystemExit(main())
