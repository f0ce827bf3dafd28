"""``bench/grpc_quick.py`` and ``bench/metrics_scrape.py`` still run end to end (tiny inputs).

Speed is not asserted here: only that every figure is produced and the script
measured what it says (the world's size, a ratio per kind).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_bench(module: str, *argv: str, json_out: Path) -> tuple[Any, str]:
    """``python -m netpol_pdp.bench.<module>``: its JSON figures and its stdout (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", f"netpol_pdp.bench.{module}", *argv, "--json", str(json_out)],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(json_out.read_text()), done.stdout


def test_the_quick_grpc_benchmark_runs_and_reports_ratios(tmp_path: Path) -> None:
    argv = ["--seconds", "0.3", "--rounds", "1", "--only", "sync", "--no-workers", "--no-reload"]
    argv += ["--namespaces", "2", "--pods", "5", "--kinds", "unary-latency,stream"]
    results, stdout = run_bench("grpc_quick", *argv, json_out=tmp_path / "results.json")
    assert results["world"] == {"Namespace": 2, "Pod": 10, "Node": 0, "NetworkPolicy": 6}
    for kind in ("unary-latency", "stream"):
        assert results[f"sync/real/{kind}"]["flows"] > 0 and results[f"sync/echo/{kind}"]["flows"] > 0
        assert results[f"sync/ratio/{kind}"] > 0
    assert results["sync/real/unary-latency"]["p99_ms"] >= results["sync/real/unary-latency"]["p50_ms"] > 0
    assert "sync  real/echo:" in stdout


def test_the_metrics_scrape_benchmark_runs_and_reports_a_ratio(tmp_path: Path) -> None:
    figures, stdout = run_bench(
        "metrics_scrape", "--scrapes", "3", "--rounds", "1", json_out=tmp_path / "s.json"
    )
    assert figures["workers"] == 2 and figures["scrapes"] == 3
    assert figures["supervisor_max_ms"] >= figures["supervisor_median_ms"] > 0
    assert figures["ratio_median"] > 0
    assert "scrape of serve --workers 2" in stdout
