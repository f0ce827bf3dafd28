"""The audit pass against the JSON parsers it is built on, on one flow log, in one run.

    python -m netpol_pdp.bench.flowlog_parsers LOG [--source DIR] [--repeat 3]

Times, best of ``--repeat``, each over every line of ``LOG`` (a plain file):

- bare parse per line with the standard library (``json.loads``), msgspec
  (what the readers use) and orjson (when installed);
- orjson parse + dump per line (the floor of any JSON-in, JSON-out pass);
- the whole ``netpol-pdp audit LOG --source DIR -o /dev/null`` in this process
  (load of the source included), and the audit pass alone (records read,
  decided and written, after the load).

and prints each as seconds and lines per second, with the ratios the issue
states targets for: audit pass / orjson parse+dump, audit pass / orjson bare
parse.  Wall-clock figures; on a shared machine compare ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from netpol_pdp.clients.auditing.audit import run_audit
from netpol_pdp.clients.cli import main as cli_main
from netpol_pdp.clients.flowlogs import read_flowlog
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import ManifestSource

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
        with open(os.devnull, "w") as sink:
            run_audit(read_flowlog(str(path)), index.decide_many, write=sink.write)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--source", type=Path, default=EXAMPLE)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lines = sum(1 for line in args.log.open("rb") if line.strip())
    decode = msgspec.json.Decoder().decode
    rows: list[tuple[str, float]] = [
        ("json.loads bare parse", best(each_line(args.log, json.loads), args.repeat)),
        ("msgspec bare parse", best(each_line(args.log, decode), args.repeat)),
    ]
    try:
        import orjson  # optional: the yardstick, not a dependency
    except ImportError:
        pass
    else:
        dumps, loads = orjson.dumps, orjson.loads
        rows.append(("orjson bare parse", best(each_line(args.log, loads), args.repeat)))
        rows.append(("orjson parse+dump", best(each_line(args.log, lambda b: dumps(loads(b))), args.repeat)))
    index = Index.from_objects(ManifestSource(args.source).load().objects.values())
    rows.append(("audit pass (after load)", best(audit_pass(args.log, index), args.repeat)))
    command = ["audit", str(args.log), "--source", str(args.source), "-o", os.devnull]
    rows.append(("netpol-pdp audit (whole)", best(lambda: cli_main(command), args.repeat)))
    print(f"{args.log}: {lines} lines")
    for name, seconds in rows:
        print(f"  {name:28} {seconds:8.3f} s  {lines / seconds:12,.0f} lines/s")
    times = dict(rows)
    if "orjson parse+dump" in times:
        ratio_dump = times["orjson parse+dump"] / times["audit pass (after load)"]
        ratio_bare = times["orjson bare parse"] / times["audit pass (after load)"]
        print(f"  audit pass speed / orjson parse+dump speed: {ratio_dump:.2f}x")
        print(f"  audit pass speed / orjson bare parse speed: {ratio_bare:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
