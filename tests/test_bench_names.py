"""bench/names.py on the tiny world: every figure is there and sane (no speed is asserted:
the machine is shared); the stubbed index really keeps no objects."""

from __future__ import annotations

from netpol_pdp.bench.names import _NoSnapshot, run, text
from netpol_pdp.bench.worlds import generate_world
from netpol_pdp.index.engine import Index


def test_a_tiny_run_reports_every_figure() -> None:
    data = run("tiny", rounds=3, n=100)
    assert set(data["events"]) == {"pod add", "pod relabel", "pod delete"}
    assert all(e["with"] > 0 and e["without"] > 0 for e in data["events"].values())
    assert data["resolve_s"] > 0 and data["decide_miss_s"] > 0 and data["explain_s"] > 0
    assert data["near_misses"] > 0
    out = text(data)
    assert "with objects snapshot" in out and "explain with why-not" in out


def test_the_stub_keeps_no_objects_and_the_index_still_decides() -> None:
    objects = generate_world("tiny").objects
    index = Index.from_objects(objects)
    index._objects = _NoSnapshot()  # type: ignore[assignment]
    index.apply([])
    assert index.snapshot().all_objects() == []
