"""bench/tiers.py on the tiny world: the cluster policies it generates are valid, decide
flows, and the report carries every figure (no speed is asserted: the machine is shared)."""

from __future__ import annotations

from netpol_pdp.bench.tiers import cluster_policies, report, run
from netpol_pdp.bench.worlds import generate_world
from netpol_pdp.index.model import ClusterPolicy, Tier
from netpol_pdp.index.validation import parse_object


def test_the_generated_cluster_policies_are_valid_and_in_both_tiers() -> None:
    world = generate_world("tiny", seed=1)
    objs = [parse_object(m) for m in cluster_policies(world, 10, 4, seed=1)]
    assert all(isinstance(o, ClusterPolicy) for o in objs)
    tiers = [o.tier for o in objs if isinstance(o, ClusterPolicy)]
    assert (tiers.count(Tier.ADMIN), tiers.count(Tier.BASELINE)) == (10, 4)


def test_a_tiny_run_reports_both_worlds() -> None:
    data = run("tiny", 10, 4, flows=300, events=3, repeat=1, seed=1)
    for label in ("without", "with"):
        assert data[label]["build_s"] > 0 and data[label]["misses_per_s"] > 0
    assert data["with"]["cnp_event_s"] > 0
    assert not any("admin" in r or "baseline" in r for r in data["without"]["reasons"])
    text = report(data)
    assert "cache-miss decisions/s" in text and "ClusterNetworkPolicy event" in text
