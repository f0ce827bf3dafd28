"""A flow to a Service address over gRPC: the Service trace travels, unary and batched, and
``service_partial`` is the server's choice (docs/services.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from test_services import DENY_ZONE_B, world

from netpol_pdp.clients.client import DecisionClient
from netpol_pdp.index.decision import Reason, Verdict
from netpol_pdp.index.flows import make_flow
from netpol_pdp.server.serve import Service


def test_a_service_decision_travels_with_its_endpoints(
    start_service: Callable[..., Service], connect: Callable[..., DecisionClient], tmp_path: Path
) -> None:
    (tmp_path / "world.yaml").write_text(yaml.safe_dump_all([*world(), DENY_ZONE_B]))
    flow = make_flow("10.0.0.1", "10.96.0.10", "TCP", 80)
    for partial in (Verdict.DENY, Verdict.ALLOW):
        service = start_service([tmp_path], service_partial=partial)
        assert service.state.wait_ready(10)
        client = connect(service)
        local = service.index.decide(flow, explain=True)
        got = client.decide(flow, explain=True)
        assert (got.verdict, got.reason) == (partial, Reason.SERVICE_PARTIALLY_ALLOWED)
        assert got.to_dict() == local.to_dict()
        [batched] = client.decide_many([flow])
        assert batched.service is not None
        assert [(e.ip, e.port, e.decision.verdict) for e in batched.service.endpoints] == [
            ("10.0.1.1", 8080, Verdict.ALLOW),
            ("10.0.1.2", 8080, Verdict.DENY),
        ]
