"""Audit benchmark: a generated flow log decided in-process over a folder of manifests.

What it answers (issue 2's "1,000,000 flows over the example"): how long the
in-process decisions of a large flow log take, and how fast the index is on a
cache hit and on a miss, measured separately:

1. **log**: every flow of the log decided one by one with ``Index.decide``, in
   order, on a fresh generation: the real mix of hits and misses (counted);
2. **hits**: the same log again: every decision is a cache hit;
3. **misses**: the log's distinct flows on a fresh generation: every decision
   is a miss;
4. **reference**: the reference evaluator on (a sample of) the same distinct
   flows, and the index's miss path on exactly those flows: the ratio is what
   the index buys over scanning every object, on the same decisions.  The
   verdicts and reasons of both are compared; disagreements are counted.

The log is the realistic mix (:mod:`netpol_pdp.bench.flowmix`), its service
pairs screened by a separate index so that most flows are allowed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from netpol_pdp.bench import results
from netpol_pdp.bench.flowmix import endpoints, make_flows, write_flows
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.model import Object
from netpol_pdp.index.reference import ReferenceEvaluator

#: The bundled example cluster: ``examples/cluster`` in a checkout, which is also
#: ``netpol_pdp/examples/cluster`` beside ``netpol_pdp/bench`` in an installed package.
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cluster"


def _decide_each(index: Index, flows: list[Flow]) -> float:
    decide = index.decide

    def run() -> None:
        for f in flows:
            decide(f)

    return results.timed(run)[0]


def run_audit(
    objects: list[Object],
    n: int = 1_000_000,
    *,
    mix: str = "realistic",
    seed: int = 0,
    reference_sample: int = 2_000,
    repeat: int = 3,
    write_log: Path | None = None,
) -> dict[str, Any]:
    """Run the four measurements of the module docstring; returns the figures.

    Measurements 1-3 run ``repeat`` times; the figures are the best run, and
    every run's seconds are kept (``runs_s``) so the noise can be seen.
    """
    build_s, index = results.timed(lambda: Index.from_objects(objects))
    oracle = Index.from_objects(objects)
    gen_s, flows = results.timed(
        lambda: make_flows(endpoints(objects, seed), mix, n, seed, allowed=lambda f: oracle.decide(f).allowed)
    )
    assert len(flows) == n, f"the log holds {len(flows)} flows, expected {n}"
    if write_log is not None:  # the same log for `netpol-pdp audit`, to time the whole command on it
        write_flows(flows, write_log)
    distinct = list(dict.fromkeys(flows))

    log_runs: list[float] = []
    hit_runs: list[float] = []
    miss_runs: list[float] = []
    for _ in range(repeat):  # a shared machine is noisy: the best of a few runs is the figure
        index.apply([])
        h0, m0 = index.cache_stats()
        log_runs.append(_decide_each(index, flows))
        h1, m1 = index.cache_stats()
        hit_runs.append(_decide_each(index, flows))
        h2, m2 = index.cache_stats()
        assert (h2 - h1, m2 - m1) == (n, 0), "the second pass over the log must be all cache hits"
        index.apply([])
        miss_runs.append(_decide_each(index, distinct))
        h3, m3 = index.cache_stats()
        assert (h3 - h2, m3 - m2) == (0, len(distinct)), "distinct flows on a fresh generation must all miss"
    log_s, hits_s, misses_s = min(log_runs), min(hit_runs), min(miss_runs)
    verdicts = Counter(index.decide(f).verdict.value for f in flows)

    sample = distinct[:reference_sample]
    reference = ReferenceEvaluator(objects)
    ref_s, ref_decisions = results.timed(lambda: [reference.decide(f) for f in sample])
    index.apply([])
    idx_s, idx_decisions = results.timed(lambda: [index.decide(f) for f in sample])
    disagreements = sum(
        (a.verdict, a.reason) != (b.verdict, b.reason)
        for a, b in zip(ref_decisions, idx_decisions, strict=True)
    )
    ref_rate = len(sample) / ref_s if ref_s else float("inf")
    return {
        "objects": Counter(o.kind.value for o in objects),
        "flows": n,
        "mix": mix,
        "repeat": repeat,
        "distinct_flows": len(distinct),
        "verdicts": dict(verdicts),
        "build_s": build_s,
        "generate_s": gen_s,
        "log": {
            "seconds": log_s,
            "decisions_per_s": n / log_s,
            "hits": h1 - h0,
            "misses": m1 - m0,
            "runs_s": log_runs,
        },
        "hits": {"seconds": hits_s, "decisions_per_s": n / hits_s, "count": n, "runs_s": hit_runs},
        "misses": {
            "seconds": misses_s,
            "decisions_per_s": len(distinct) / misses_s,
            "count": len(distinct),
            "runs_s": miss_runs,
        },
        "reference": {
            "sample": len(sample),
            "reference_decisions_per_s": ref_rate,
            "index_miss_decisions_per_s": len(sample) / idx_s,
            "index_over_reference_misses": (len(sample) / idx_s) / ref_rate,
            "index_log_over_reference": (n / log_s) / ref_rate,
            "reference_log_estimate_s": n / ref_rate,
            "disagreements": disagreements,
        },
        "peak_rss_mib": results.peak_rss_mib(),
    }


def report(figures: dict[str, Any], source: str) -> str:
    """The human summary (Markdown) of :func:`run_audit`'s figures."""
    log, ref, hits, misses = figures["log"], figures["reference"], figures["hits"], figures["misses"]
    rate, took = results.si, results.duration
    rows = [
        ("whole log, in order (hits + misses)", f"{log['hits']:,} + {log['misses']:,}",
         took(log["seconds"]), rate(log["decisions_per_s"], "/s")),
        ("cache hits only (log again)", f"{hits['count']:,}",
         took(hits["seconds"]), rate(hits["decisions_per_s"], "/s")),
        ("cache misses only (distinct flows)", f"{misses['count']:,}",
         took(misses["seconds"]), rate(misses["decisions_per_s"], "/s")),
        ("index misses on the reference sample", f"{ref['sample']:,}", "-",
         rate(ref["index_miss_decisions_per_s"], "/s")),
        ("reference evaluator, same sample", f"{ref['sample']:,}", "-",
         rate(ref["reference_decisions_per_s"], "/s")),
    ]  # fmt: skip
    counts = ", ".join(f"{v} {k}" for k, v in sorted(figures["objects"].items()))
    return "\n".join(
        [
            f"# Audit benchmark: {figures['flows']:,} {figures['mix']} flows over {source}",
            "",
            f"World: {counts}; index built in {results.duration(figures['build_s'])}.",
            f"Log: {figures['distinct_flows']:,} distinct flows; verdicts {figures['verdicts']}.",
            f"Times are the best of {figures['repeat']} runs (every run is in audit.json).",
            "",
            results.table(("measurement", "decisions", "time", "rate"), rows),
            "",
            f"Index / reference on the same decisions (misses vs reference): "
            f"{ref['index_over_reference_misses']:.0f}x; whole log vs reference: "
            f"{ref['index_log_over_reference']:.0f}x (the reference would take "
            f"{results.duration(ref['reference_log_estimate_s'])} for the log). "
            f"Disagreements on the sample: {ref['disagreements']}.",
            f"Peak RSS: {figures['peak_rss_mib']:.0f} MiB.",
        ]
    )


def main(
    source: Path,
    n: int,
    *,
    mix: str,
    seed: int,
    reference_sample: int,
    out_dir: Path,
    repeat: int = 3,
    write_log: Path | None = None,
) -> str:
    machine = results.machine()  # the load average before the run, not after it
    objects = list(ManifestSource(source).load().objects.values())
    figures = run_audit(
        objects, n, mix=mix, seed=seed, reference_sample=reference_sample, repeat=repeat, write_log=write_log
    )
    figures["source"] = str(source)
    figures["machine"] = machine
    text = report(figures, str(source))
    results.write("audit", figures, text, out_dir)
    return text
