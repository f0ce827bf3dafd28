"""Benchmark results: JSON for machines, an aligned text table for people, and the machine.

Every result file records the machine it was measured on (CPU count, model,
load average at the start, Python): on a shared 2-core machine a figure without
its load is not comparable to anything.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def default_dir() -> Path:
    """Where ``netpol-pdp bench`` writes results unless told (``--output``): ``$NETPOL_PDP_BENCH_DIR``,
    else the user's cache, ``${XDG_CACHE_HOME:-~/.cache}/netpol-pdp/bench`` -- never a folder
    that happens to be under the current directory."""
    chosen = os.environ.get("NETPOL_PDP_BENCH_DIR")
    if chosen:
        return Path(chosen).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "netpol-pdp" / "bench"


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    try:
        with open("/proc/self/statm", encoding="utf-8") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` and its result."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_seconds(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def si(value: float, unit: str = "") -> str:
    """``1234567`` -> ``1.23 M``: rates and counts read at a glance."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3g} µs"
    return f"{seconds * 1e9:.3g} ns"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (aligned, so it also reads as plain text)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write(name: str, data: dict[str, Any], text: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``<name>.json`` (``data`` plus the machine) and ``<name>.md`` (``text``) to ``out_dir``
    (default: :func:`default_dir`)."""
    out_dir = default_dir() if out_dir is None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "machine": data.get("machine") or machine(), **data}
    json_path = out_dir / f"{name}.json"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    md_path = out_dir / f"{name}.md"
    md_path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return json_path, md_path


def profiled(fn: Callable[[], Any], top: int = 15) -> tuple[Any, str]:
    """Run ``fn`` under cProfile; its result and the ``top`` functions by own time, as text."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    out = prof.runcall(fn)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(top)
    lines = buf.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return out, "\n".join(line.rstrip() for line in lines[start:] if line.strip())
