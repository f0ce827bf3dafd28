"""``bench/grpc_quick.py`` still runs end to end (tiny world, fractions of a second per figure).

Speed is not asserted here: only that every figure is produced and the script
measured what it says (the world's size, a ratio per kind).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_the_quick_grpc_benchmark_runs_and_reports_ratios(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    argv = ["--seconds", "0.3", "--rounds", "1", "--only", "sync", "--no-workers", "--no-reload"]
    argv += ["--namespaces", "2", "--pods", "5", "--kinds", "unary-latency,stream", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "netpol_pdp.bench.grpc_quick", *argv],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["world"] == {"Namespace": 2, "Pod": 10, "Node": 0, "NetworkPolicy": 6}
    for kind in ("unary-latency", "stream"):
        assert results[f"sync/real/{kind}"]["flows"] > 0 and results[f"sync/echo/{kind}"]["flows"] > 0
        assert results[f"sync/ratio/{kind}"] > 0
    assert results["sync/real/unary-latency"]["p99_ms"] >= results["sync/real/unary-latency"]["p50_ms"] > 0
    assert "sync  real/echo:" in done.stdout
