"""``netpol-pdp bench micro``: run the pytest-benchmark micro-benchmarks, write their table.

The benchmarks themselves live in ``test_micro.py`` beside this module (so that
``pytest bench/ --benchmark-enable`` runs them from a checkout); this runs the
same file in a subprocess with ``--benchmark-json`` and turns the JSON into the
Markdown table the other benchmarks write, with per-decision rates.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netpol_pdp.bench import results

TESTS = Path(__file__).resolve().parent / "test_micro.py"


def run(sizes: Sequence[str], out_dir: Path, max_time: float = 1.0) -> dict[str, Any]:
    """Run the benchmarks; ``max_time`` is pytest-benchmark's time budget per benchmark (seconds)."""
    if importlib.util.find_spec("pytest_benchmark") is None:  # a plain `pip install netpol-pdp`
        raise RuntimeError("needs pytest-benchmark: pip install 'netpol-pdp[test]'")
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "micro.json"
    env = {**os.environ, "NETPOL_BENCH_SIZES": ",".join(sizes)}
    cmd = [
        sys.executable, "-m", "pytest", str(TESTS), "-q", "-p", "no:cacheprovider",
        "--benchmark-enable", f"--benchmark-json={json_path}", "--benchmark-sort=name",
        f"--benchmark-max-time={max_time}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the micro-benchmarks failed:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(json_path.read_text(encoding="utf-8"))
    return data


def report(data: dict[str, Any]) -> str:
    rows = []
    for bench in sorted(data["benchmarks"], key=lambda b: b["name"]):
        stats, extra = bench["stats"], bench.get("extra_info", {})
        per_s = extra.get("decisions_per_s") or extra.get("matches_per_s")
        per_item = ""
        items = extra.get("decisions_per_batch") or extra.get("label_sets")
        if items:
            per_item = results.duration(stats["median"] / items)
        rows.append(
            (bench["name"].removeprefix("test_"), results.duration(stats["median"]),
             results.duration(stats["iqr"]), stats["rounds"], per_item,
             results.si(per_s, "/s") if per_s else "")
        )  # fmt: skip
    return "\n".join(
        [
            "# Micro-benchmarks (pytest-benchmark)",
            "",
            "Decision benchmarks time a batch of 1,000 `Index.decide` calls per round (200 with",
            "explain); `per item` divides the median by the batch (decisions, or label sets for",
            "selector matching).  Update events include publishing the generation.",
            "",
            results.table(("benchmark", "median", "IQR", "rounds", "per item", "rate"), rows),
        ]
    )


def main(sizes: Sequence[str], out_dir: Path, max_time: float = 1.0) -> str:
    data = run(sizes, out_dir, max_time)
    text = report(data)
    (out_dir / "micro.md").write_text(text + "\n", encoding="utf-8")
    return text
