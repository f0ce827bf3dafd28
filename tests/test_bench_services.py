"""bench/services.py on the tiny world: a Service and slice per deployment, and every figure measured."""

from __future__ import annotations

from netpol_pdp.bench.services import run, with_services
from netpol_pdp.bench.worlds import generate_world
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import Kind


def test_every_deployment_gets_a_service_whose_cluster_ip_is_decided_through_it() -> None:
    world = generate_world("tiny")
    objects, placed = with_services(world)
    index = Index.from_objects(objects)
    counts = index.counts()
    assert counts[Kind.SERVICE.value] == counts[Kind.ENDPOINT_SLICE.value] == len(placed) > 0
    dep, vip = placed[0]
    decision = index.decide(Flow(dep.pod_ips[0], vip, "TCP", 80))
    assert decision.service is not None
    assert sorted(e.ip for e in decision.service.endpoints) == sorted(dep.pod_ips)
    index.check()


def test_the_benchmark_reports_both_ratios() -> None:
    out = run("tiny", rounds=5, flows=50)
    assert out["services"] > 0
    assert out["slice_vs_pod_event"] > 0 and out["cluster_ip_vs_pod_ip_decision"] > 0
    assert out["headless_by_name_vs_cluster_ip_decision"] > 0
