"""bench/reach.py on the tiny world: every figure is there and sane (no speed is asserted: the
machine is shared)."""

from __future__ import annotations

from netpol_pdp.bench.reach import run, text


def test_a_tiny_run_reports_every_figure() -> None:
    data = run("tiny", n_pods=3, n_flows=100)
    assert data["decide_miss_s"] > 0 and data["catalogue_s"] > 0
    assert set(data["reach"]) == {"ingress", "egress"}
    assert all(r["median_s"] > 0 and r["groups"] > 0 for r in data["reach"].values())
    assert data["matrix"]["cells"] == data["matrix"]["pods"] ** 2 > 0
    out = text(data)
    assert "reach ingress" in out and "matrix" in out and "(enumerating)" in out
