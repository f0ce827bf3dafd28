"""How long loading one large manifest file keeps every other thread of the process waiting.

A server's decisions run on other threads than its feed; whatever the feed's load
does without letting go of the interpreter delays them all.  This writes one file
(``--shape multi``: many small Pod documents; ``single``: one Namespace with one
huge annotation), loads it with :class:`ManifestSource` while a ticker thread
sleeps 1 ms in a loop, and reports the ticker's longest gap: the worst delay a
decision would have seen.  ``sys.setswitchinterval`` is 1 ms, as ``serve`` sets it.

It also loads the file the way the loader did before it streamed text to libyaml
(the whole string at once, ``--whole`` style), so that the ratio of the two gaps
comes from one run on one machine.

Run::

    python -m netpol_pdp.bench.reload_stall --shape single --mb 20
    python -m netpol_pdp.bench.reload_stall --shape multi --mb 18
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from netpol_pdp.index.documents import StrictLoader
from netpol_pdp.index.manifests import ManifestSource

POD = (
    "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  namespace: ns{ns}\n"
    "  labels: {{app: a{i}, tier: t}}\n  annotations: {{note: '{note}'}}\n"
    "spec: {{nodeName: n1, containers: [{{name: c, ports: [{{containerPort: 80, name: http}}]}}]}}\n"
    "status: {{podIP: 10.{a}.{b}.{c}}}\n"
)


def write_file(path: Path, shape: str, mb: float) -> int:
    """Write the test file; returns the number of objects it holds."""
    size = int(mb * 1_000_000)
    if shape == "single":
        path.write_text(
            f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n"
            f"  annotations:\n    big: '{'x' * size}'\n"
        )
        return 1
    note = "x" * 200
    with path.open("w") as f:
        i = 0
        while f.tell() < size:
            f.write(POD.format(i=i, ns=i % 50, note=note, a=(i >> 16) & 255, b=(i >> 8) & 255, c=i & 255))
            i += 1
    return i


def worst_gap(step: Callable[[], object]) -> tuple[float, float]:
    """Run ``step`` while a thread ticks every 1 ms: (seconds taken, longest gap between ticks)."""
    gaps: list[float] = []
    done = threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    began = time.perf_counter()
    step()
    took = time.perf_counter() - began
    done.set()
    ticker.join()
    return took, max(gaps, default=0.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netpol_pdp.bench.reload_stall", description=__doc__)
    parser.add_argument("--shape", choices=("single", "multi"), default="single")
    parser.add_argument("--mb", type=float, default=20.0, help="file size in MB (default 20)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    sys.setswitchinterval(0.001)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.yaml"
        objects = write_file(path, args.shape, args.mb)
        text = path.read_text()
        source = ManifestSource(path, max_file_bytes=path.stat().st_size)
        loaded, loaded_gap = worst_gap(source.load)
        assert len(source.load().objects) == objects, "the file did not load whole"
        whole, whole_gap = worst_gap(lambda: list(yaml.load_all(text, Loader=StrictLoader)))
    figures = {
        "shape": args.shape,
        "mb": args.mb,
        "objects": objects,
        "load_seconds": round(loaded, 3),
        "load_worst_gap_ms": round(loaded_gap * 1000, 1),
        "whole_string_parse_seconds": round(whole, 3),
        "whole_string_worst_gap_ms": round(whole_gap * 1000, 1),
        "gap_ratio_whole_to_load": round(whole_gap / loaded_gap, 2) if loaded_gap else None,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
