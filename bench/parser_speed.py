"""Audit and world load against the fastest parsers, in one run (issue 15, item 4).

    python -m netpol_pdp.bench.parser_speed --size medium            # world + 500,000-flow log generated
    python -m netpol_pdp.bench.parser_speed --world /tmp/m500        # a `netpol-pdp bench world` folder
    python -m netpol_pdp.bench.parser_speed --size medium --large    # and the large world's first load

On the world (generated as ``netpol-pdp bench world --size SIZE --flows N``
writes it, seed 0, or the ``--world`` folder, which holds ``flows.jsonl``), each
figure the best of ``--repeat`` runs, the processes once each:

- the log: orjson's parse + dump of every line (the floor of any JSON-in,
  JSON-out pass); the audit pass after the load (records read, decided,
  written, the summary folded; a fresh generation each time); the whole
  ``netpol-pdp audit LOG --source DIR -o /dev/null`` process;
- the world: yaml-rs's bare parse of every file (the fastest parser, the
  yardstick); the world load in process (parse, validate, build:
  ``Index.from_objects(ManifestSource(DIR).load()...)``); the whole
  ``netpol-pdp validate --source DIR`` process;
- with ``--large``: the large world (112,500 objects) written apart, no log,
  and its first load measured the same three ways, once each.

Each row says which parser its number used; the ratios issue 15 sets targets
for are printed after (audit pass speed over orjson's; world load over the bare
parse).  Wall-clock figures: on a shared machine compare the ratios of one run.
The steps are ``bench/flowlog_parsers.py``'s and ``bench/world_load.py``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml_rs

from netpol_pdp.bench import flowlog_parsers, world_load
from netpol_pdp.bench.worlds import SIZES, generate_world, write_world
from netpol_pdp.index import fastparse
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import ManifestSource

FLOWS = 500_000


@dataclass(frozen=True, slots=True)
class Row:
    """One figure: what was timed, in seconds, over how many lines (0: not a line rate), by which parser."""

    name: str
    seconds: float
    lines: int
    parser: str


def write_log_world(size: str, flows: int, out: Path) -> None:
    """The world and log ``netpol-pdp bench world --size SIZE --flows N -o OUT`` writes (seed 0)."""
    from netpol_pdp.clients.cli import main as cli

    argv = ["bench", "world", "--size", size, "-o", str(out)] + (["--flows", str(flows)] if flows else [])
    with open(os.devnull, "w") as sink:
        saved, sys.stdout = sys.stdout, sink
        try:
            status = cli(argv)
        finally:
            sys.stdout = saved
    if status != 0:
        raise SystemExit(f"netpol-pdp {' '.join(argv)}: exit status {status}")


def process_seconds(*argv: str) -> float:
    """``netpol-pdp ARGV`` in its own process (interpreter start and imports included), wall seconds."""
    command = [sys.executable, "-m", "netpol_pdp.clients.cli", *argv]
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))


def world_rows(root: Path, repeat: int, label: str) -> list[Row]:
    """yaml-rs's bare parse of every file, ``netpol-pdp validate`` as a process, the load in process."""
    files = yaml_files(root)
    texts = [p.read_text(encoding="utf-8") for p in files]
    fast = sum(fastparse.yaml_documents(text) is not None for text in texts)
    loader = f"yaml-rs for what index/fastparse.py screens (in {fast} of {len(files)} files), PyYAML else"
    validate = process_seconds("validate", "--source", str(root))  # first: this process is small
    bare, _ = world_load.best(
        lambda: [yaml_rs.loads(p.read_text(encoding="utf-8"), parse_datetime=False) for p in files], repeat
    )
    load, index = world_load.best(
        lambda: Index.from_objects(ManifestSource(root).load().objects.values()), repeat
    )
    assert index.objects(), f"{root}: the world loaded no object"
    return [
        Row(f"{label}: yaml-rs bare parse", bare, 0, f"yaml-rs {yaml_rs.__version__} (yaml_rs.loads)"),
        Row(f"{label}: world load, in process", load, 0, f"{loader}; validate + Index.from_objects"),
        Row(f"{label}: netpol-pdp validate (process)", validate, 0, loader),
    ]


def log_rows(root: Path, log: Path, repeat: int) -> list[Row]:
    """orjson's parse + dump of the log, the audit pass after the load, the whole audit process."""
    import orjson  # the yardstick (bench and test extras), not a dependency of netpol-pdp

    with log.open("rb") as f:
        lines = sum(1 for line in f if line.strip())
    whole = min(flowlog_parsers.whole_audit(log, root)[0] for _ in range(repeat))
    dumps, loads = orjson.dumps, orjson.loads
    dump = flowlog_parsers.best(flowlog_parsers.each_line(log, lambda b: dumps(loads(b))), repeat)
    index = Index.from_objects(ManifestSource(root).load().objects.values())
    audit = flowlog_parsers.best(flowlog_parsers.audit_pass(log, index), repeat)
    return [
        Row("log: orjson parse+dump", dump, lines, f"orjson {orjson.__version__}"),
        Row("log: audit pass (after load)", audit, lines, f"msgspec {msgspec.__version__} (new lines only)"),
        Row("log: netpol-pdp audit (process)", whole, lines, "msgspec; the world as validate loads it"),
    ]


def ratios(rows: list[Row]) -> dict[str, float]:
    """The ratios issue 15 sets targets for, from one run's rows."""
    seconds = {row.name: row.seconds for row in rows}
    out = {}
    if "log: audit pass (after load)" in seconds:
        out["audit pass speed / orjson parse+dump speed (target >= 0.5)"] = (
            seconds["log: orjson parse+dump"] / seconds["log: audit pass (after load)"]
        )
    for name, bare in seconds.items():
        label, _, step = name.partition(": ")
        if step == "yaml-rs bare parse":
            load = seconds[f"{label}: world load, in process"]
            out[f"{label}: world load / yaml-rs bare parse (target <= 2)"] = load / bare
            out[f"{label}: validate process / yaml-rs bare parse"] = (
                seconds[f"{label}: netpol-pdp validate (process)"] / bare
            )
    return out


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    root: Path = args.world if args.world is not None else tmp / args.size
    label = args.size if args.world is None else root.name
    if args.world is None:
        write_log_world(args.size, args.flows, root)
    log = root / "flows.jsonl"
    if not log.is_file():
        raise SystemExit(f"{log}: no flow log (write one with netpol-pdp bench world --flows N)")
    rows = log_rows(root, log, args.repeat) + world_rows(root, args.repeat, label)
    if args.large:
        large = tmp / "large"
        write_world(generate_world("large", validate=False), large)
        rows += world_rows(large, 1, "large")  # a first load: once
    return {
        "world": str(root),
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "rows": [asdict(row) for row in rows],
        "ratios": ratios(rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="medium", help="the world generated")
    parser.add_argument("--flows", type=int, default=FLOWS, help="lines of the generated log")
    parser.add_argument("--world", type=Path, help="a `netpol-pdp bench world --flows N` folder instead")
    parser.add_argument("--large", action="store_true", help="also the large world's first load")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step; the best is kept")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.flows < 1 or args.repeat < 1:
        parser.error("--flows and --repeat must be 1 or more")
    with tempfile.TemporaryDirectory(prefix="netpol-pdp-parser-speed-") as tmp:
        figures = run(args, Path(tmp))
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"{figures['world']}: load average {figures['load_average']:.1f}, {figures['cpus']} CPUs")
    for row in figures["rows"]:
        rate = f"{row['lines'] / row['seconds']:>11,.0f} lines/s" if row["lines"] else " " * 18
        print(f"  {row['name']:38} {row['seconds']:8.3f} s {rate}  {row['parser']}")
    for name, value in figures["ratios"].items():
        print(f"  {name}: {value:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
