"""How close loading a world of manifests comes to the YAML parser's own speed (issue 15).

Measured in one run, on a generated world written as YAML (bench/worlds.py,
the same files ``netpol-pdp bench`` and ``manifest_reload`` use), each step
the best of ``--repeat`` runs:

- ``yaml_rs_parse``: yaml-rs's bare parse of every file (``yaml_rs.loads`` of
  the text read; no screen, no validation): the fastest parser, the yardstick;
- ``pyyaml_parse``: PyYAML's libyaml loader (``CSafeLoader``) alone, for scale;
- ``strict_parse``: the strict loader of ``index/documents.py`` (what every file
  cost before issue 15);
- ``fast_parse``: ``index/fastparse.py`` on every file (screen, split, yaml-rs;
  None for the files it leaves to the strict loader, which are not read here);
- ``validate``: ``ManifestSource.load()``: read, parse, validate, merge (what
  ``netpol-pdp validate`` does in process); ``validate_strict`` the same with every
  file read by the strict loader, as before issue 15 (``speedup_vs_strict``);
  ``yaml_rs_documents`` of ``documents`` are read by yaml-rs (``fastparse.yaml_rs_count``);
- ``world_load``: ``validate`` plus ``Index.from_objects`` (parse + validate +
  build: what ``serve``, ``audit`` and ``decide`` do before answering);
- ``validate_process``: ``netpol-pdp validate --source DIR``, the whole process
  (interpreter start and imports included), once.

Ratios: ``validate`` and ``world_load`` over ``yaml_rs_parse``; ``fast_files``
says how many files the fast path read itself.  Run::

    python -m netpol_pdp.bench.world_load --size medium     # 10,000 pods; large: 100,000
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
import yaml_rs

from netpol_pdp.bench.worlds import SIZES, generate_world, write_world
from netpol_pdp.index import documents, fastparse
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import ManifestSource


def best(step: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The shortest of ``repeat`` runs of ``step`` (collector paused, as a load pauses it) and its result."""
    times = []
    result = None
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        began = time.perf_counter()
        try:
            result = step()
        finally:
            times.append(time.perf_counter() - began)
            gc.enable()
    return min(times), result


def measure(root: Path, files: list[Path], repeat: int) -> dict[str, Any]:
    def read_all(parse: Callable[[str], Any]) -> list[Any]:
        return [parse(p.read_text(encoding="utf-8")) for p in files]

    out: dict[str, Any] = {
        "files": len(files),
        "megabytes": round(sum(p.stat().st_size for p in files) / 1e6, 2),
    }
    out["yaml_rs_parse"], _ = best(lambda: read_all(lambda t: yaml_rs.loads(t, parse_datetime=False)), repeat)
    out["pyyaml_parse"], _ = best(
        lambda: read_all(lambda t: list(yaml.load_all(t, Loader=yaml.CSafeLoader))), 1
    )
    out["strict_parse"], _ = best(lambda: read_all(documents.yaml_documents), 1)
    out["fast_parse"], fast = best(lambda: read_all(fastparse.yaml_documents), repeat)
    out["fast_files"] = sum(docs is not None for docs in fast)
    pieces = [piece for p in files for piece in fastparse._documents(p.read_text(encoding="utf-8"))]
    out["documents"] = len(pieces)
    out["yaml_rs_documents"] = sum(fastparse.yaml_rs_count(p.read_text(encoding="utf-8")) for p in files)
    out["validate"], result = best(lambda: ManifestSource(root).load(), repeat)
    with mock.patch.object(fastparse, "yaml_documents", return_value=None):  # as before issue 15
        out["validate_strict"], _ = best(lambda: ManifestSource(root).load(), 1)
    out["objects"] = len(result.objects)

    def load_and_build() -> Index:
        return Index.from_objects(ManifestSource(root).load().objects.values())

    out["world_load"], _ = best(load_and_build, repeat)
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "netpol_pdp.clients.cli", "validate", "--source", str(root)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    out["validate_process"] = time.perf_counter() - began
    base = out["yaml_rs_parse"]
    out["validate_ratio"] = out["validate"] / base
    out["speedup_vs_strict"] = out["validate_strict"] / out["validate"]
    out["world_load_ratio"] = out["world_load"] / base
    out["parsers"] = {
        "yaml_rs_parse": f"yaml-rs {yaml_rs.__version__}",
        "pyyaml_parse": f"PyYAML {yaml.__version__} CSafeLoader",
        "strict_parse": "PyYAML CSafeLoader + Python constructor (index/documents.py)",
        "validate": f"yaml-rs for {out['yaml_rs_documents']} of {out['documents']} documents, PyYAML else",
        "validate_strict": "the strict loader for every file (the load before issue 15)",
    }
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="medium")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step; the best is kept")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    world = generate_world(args.size, validate=False)
    with tempfile.TemporaryDirectory(prefix="netpol-pdp-world-load-") as tmp:
        root = Path(tmp)
        files = write_world(world, root)
        figures = {"size": args.size, **measure(root, files, args.repeat)}
    assert figures["objects"] == len(world.manifests), "every generated manifest is loaded"
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>18}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
