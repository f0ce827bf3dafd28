"""The audit pass against the JSON parsers it is built on, on one flow log, in one run.

    netpol-pdp bench world --size medium --flows 500000 -o /tmp/medium
    python -m netpol_pdp.bench.flowlog_parsers /tmp/medium/flows.jsonl --source /tmp/medium --hubble

Times, best of ``--repeat``, each over every line of ``LOG`` (a plain JSON Lines file):

- bare parse per line with the standard library (``json.loads``), msgspec
  (what the readers use) and orjson (when installed);
- orjson parse + dump per line (the floor of any JSON-in, JSON-out pass);
- the world's load (manifests parsed, validated, the index built), in this process;
- the audit pass alone (records read, decided and written, the summary's
  counters folded, after the load; a fresh generation each time, so no decision
  is cached from the run before);
- the whole ``netpol-pdp audit LOG --source DIR -o /dev/null`` as a separate
  process (interpreter start and world load included), with its peak RSS, on
  the log and on its first half (memory against the log's length);

and, with ``--hubble``, the same flows written as Hubble observer responses
(one request line per flow; see :func:`write_hubble`): orjson bare parse of
that log and the Hubble audit pass.  It prints each as seconds and lines per
second, with the ratios issue 15 sets targets for.  Wall-clock figures; on a
shared machine compare ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from netpol_pdp.bench.flowlog_throughput import hubble_line
from netpol_pdp.clients.auditing.audit import run_audit
from netpol_pdp.clients.flowlogs import base as flow_base
from netpol_pdp.clients.flowlogs import read_flowlog
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.model import Kind, Pod

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cluster"


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def each_line(path: Path, per_line: Callable[[bytes], object]) -> Callable[[], None]:
    def run() -> None:
        with path.open("rb") as f:
            for line in f:
                if line.strip():
                    per_line(line)

    return run


def audit_pass(path: Path, index: Index) -> Callable[[], None]:
    def run() -> None:
        index.apply([])  # a fresh generation: every distinct flow is a cache miss again
        flow_base._PARSED.clear()  # and every flow's addresses parsed again, as in a new process
        with open(os.devnull, "w") as sink:
            run = run_audit(read_flowlog(str(path)), index.decide_many, write=sink.write)
            run.summary.fold()  # the counters' share of the pass (done when the summary is read)

    return run


def whole_audit(log: Path, source: Path) -> tuple[float, float]:
    """``netpol-pdp audit LOG`` in its own process: (seconds, peak RSS in MiB)."""
    command = [sys.executable, "-m", "netpol_pdp.clients.cli", "audit", str(log), "--source", str(source)]
    began = time.perf_counter()
    with open(os.devnull, "w") as sink:
        child = subprocess.Popen([*command, "-o", os.devnull], stdout=sink, stderr=sink)
        _, status, usage = os.wait4(child.pid, 0)  # reaped here, with its resource usage
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - began
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit status {child.returncode}")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def write_hubble(log: Path, index: Index, out: Path, seed: int = 0) -> int:
    """The flows of a JSON Lines log as Hubble observer responses, one request line each.

    Pod names from the world; the verdict is the policy's (FORWARDED or a policy
    drop); times 0-20 ms apart; a random source port per line (as in
    ``bench/flowlog_throughput.py``), so no two lines are alike.
    """
    names = {
        ip: obj.name
        for key, obj in index.objects().items()
        if key[0] is Kind.POD and isinstance(obj, Pod)
        for ip in obj.ips
    }
    rng = random.Random(seed)
    t = 1_795_165_200.0
    n = 0
    with log.open("rb") as f, out.open("w", encoding="utf-8") as sink:
        for line in f:
            row = json.loads(line)
            flow = Flow(row["src_ip"], row["dst_ip"], row["protocol"], row["dst_port"])
            t += rng.random() / 50
            verdict = "FORWARDED" if index.decide(flow).allowed else "DROPPED"
            src, dst = names.get(flow.src_ip, ""), names.get(flow.dst_ip, "")
            sink.write(hubble_line(rng, t, flow, src, dst, verdict, reply=False) + "\n")
            n += 1
    return n


def first_half(log: Path, lines: int, out: Path) -> int:
    """The first ``lines // 2`` lines of ``log`` into ``out`` (streamed: this process stays small)."""
    half = lines // 2
    with log.open("rb") as f, out.open("wb") as sink:
        for _, line in zip(range(half), f, strict=False):
            sink.write(line)
    return half


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--source", type=Path, default=EXAMPLE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hubble", action="store_true", help="also the same flows as a Hubble log")
    args = parser.parse_args()
    with args.log.open("rb") as f:
        lines = sum(1 for line in f if line.strip())
    rows: list[tuple[str, float, int]] = []
    memory: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # First, while this process is small: a child's peak RSS starts from its parent's at fork.
        half = Path(tmp) / "half.jsonl"
        half_lines = first_half(args.log, lines, half)
        half_s, half_rss = whole_audit(half, args.source)
        memory.append((half_lines, half_rss))
        whole = [whole_audit(args.log, args.source) for _ in range(args.repeat)]
        memory.append((lines, max(r for _, r in whole)))
        decode = msgspec.json.Decoder().decode
        rows += [
            ("json.loads bare parse", best(each_line(args.log, json.loads), args.repeat), lines),
            ("msgspec bare parse", best(each_line(args.log, decode), args.repeat), lines),
        ]
        try:
            import orjson  # the yardstick (bench and test extras), not a dependency of netpol-pdp
        except ImportError:
            have_orjson = False
        else:
            have_orjson = True
        if have_orjson:
            dumps, loads = orjson.dumps, orjson.loads
            rows.append(("orjson bare parse", best(each_line(args.log, loads), args.repeat), lines))
            dump = best(each_line(args.log, lambda b: dumps(loads(b))), args.repeat)
            rows.append(("orjson parse+dump", dump, lines))
        load_s = best(lambda: Index.from_objects(ManifestSource(args.source).load().objects.values()), 1)
        rows.append(("world load (in process)", load_s, 0))
        index = Index.from_objects(ManifestSource(args.source).load().objects.values())
        rows.append(("audit pass (after load)", best(audit_pass(args.log, index), args.repeat), lines))
        rows.append(("netpol-pdp audit (process)", min(s for s, _ in whole), lines))
        rows.append(("  same, first half of log", half_s, half_lines))
        if args.hubble:
            hubble = Path(tmp) / "hubble.jsonl"
            hubble_lines = write_hubble(args.log, index, hubble)
            if have_orjson:
                bare = best(each_line(hubble, orjson.loads), args.repeat)
                rows.append(("hubble: orjson bare parse", bare, hubble_lines))
            rows.append(("hubble: audit pass", best(audit_pass(hubble, index), args.repeat), hubble_lines))
    print(f"{args.log}: {lines} lines; load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    for name, seconds, n in rows:
        rate = f"{n / seconds:12,.0f} lines/s" if n else ""
        print(f"  {name:30} {seconds:8.3f} s  {rate}")
    times = {name: seconds for name, seconds, _ in rows}
    audit = times["audit pass (after load)"]
    if "orjson parse+dump" in times:
        print(f"  audit pass speed / orjson parse+dump speed: {times['orjson parse+dump'] / audit:.2f}x")
        print(f"  audit pass speed / orjson bare parse speed: {times['orjson bare parse'] / audit:.2f}x")
    if "hubble: orjson bare parse" in times:
        ratio = times["hubble: orjson bare parse"] / times["hubble: audit pass"]
        print(f"  hubble audit pass speed / orjson bare parse speed: {ratio:.2f}x")
    for n, rss in memory:
        print(f"  peak RSS of netpol-pdp audit over {n:,} lines: {rss:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
