"""The wire cache in front of the index: repeated flows answered from their wire bytes, never wrongly.

Each rule of ``server/wirecache.py`` is checked against a core without the
cache (``wire_cache=False``, every flow validated and decided): the bytes sent
back must be the same, cold and warm, before and after a reload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.model import Upsert
from netpol_pdp.index.validation import parse_object
from netpol_pdp.server.encode import varint
from netpol_pdp.server.metrics import Metrics
from netpol_pdp.server.service import DecisionCore, RequestError
from netpol_pdp.server.status import ServerState
from netpol_pdp.server.wirecache import WireCache, entry_body, flow_chunks
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1.convert import decision_from_pb, fill_flow

from .conftest import CLIENT, DB, INTRUDER, OUTSIDE, WEB, flow, policy_text

GOOD = [
    flow(CLIENT, WEB, 8080),  # allowed by the policy
    flow(INTRUDER, WEB, 8080),  # denied on ingress
    flow(CLIENT, DB, 5432),  # not isolated
    flow(OUTSIDE, "198.51.100.1", 53, "UDP"),  # no pod involved
]


def wire(f: Flow) -> pb.Flow:
    out = pb.Flow()
    fill_flow(out, f)
    return out


def bad_port() -> pb.Flow:
    return pb.Flow(src_ip=CLIENT, dst_ip=WEB, protocol=pb.PROTOCOL_TCP, dst_port=0)


def bad_ip() -> pb.Flow:
    return pb.Flow(src_ip="10.0.0.300", dst_ip=WEB, protocol=pb.PROTOCOL_TCP, dst_port=8080)


def batch(flows: list[pb.Flow], request_id: int = 1, explain: bool = False) -> pb.DecideBatchRequest:
    request = pb.DecideBatchRequest(request_id=request_id, explain=explain)
    for f in flows:
        request.flows.add().CopyFrom(f)
    return request


def unary(f: pb.Flow, explain: bool = False) -> pb.DecideRequest:
    request = pb.DecideRequest(explain=explain)
    request.flow.CopyFrom(f)
    return request


class Cores:
    """One index served by two cores: with the wire cache, and without it (the reference answers)."""

    def __init__(self, world: Path) -> None:
        self.index = Index.from_objects(ManifestSource(world).load().objects.values())
        self.state = ServerState(self.index)
        self.state.mark_ready()
        self.metrics = Metrics(lambda: self.index.generation, lambda: True, lambda: (0, 0))
        self.cached = DecisionCore(self.state, self.metrics)
        self.plain = DecisionCore(self.state, wire_cache=False)

    def both(self, request: pb.DecideBatchRequest) -> tuple[bytes, bytes]:
        return self.cached.decide_batch(request), self.plain.decide_batch(request)

    def entries(self) -> dict[bytes, bytes]:
        assert self.cached.wire is not None
        return self.cached.wire.slot(self.index).entries

    def change_policy_port(self, port: int) -> int:
        obj = parse_object(yaml.safe_load(policy_text(port)))
        assert obj is not None
        return self.index.apply([Upsert(obj)])

    def decided(self) -> float:
        total = 0.0
        for metric in self.metrics.registry.collect():
            for sample in metric.samples:
                if sample.name == "netpol_pdp_decisions_total":
                    total += sample.value
        return total


@pytest.fixture
def cores(world: Path) -> Cores:
    return Cores(world)


def results(data: bytes) -> list[Any]:
    return list(pb.DecideBatchResponse.FromString(data).results)


def test_a_repeated_batch_is_answered_from_the_cache_with_the_same_bytes(cores: Cores) -> None:
    request = batch([wire(f) for f in GOOD] * 3)
    cold, reference = cores.both(request)
    assert cold == reference
    assert len(cores.entries()) == len(GOOD)
    warm, _ = cores.both(request)
    assert warm == reference


def test_a_new_generation_empties_the_cache_and_changes_the_answer(cores: Cores) -> None:
    request = batch([wire(GOOD[0])])
    before = pb.DecideBatchResponse.FromString(cores.cached.decide_batch(request))
    assert before.results[0].decision.verdict == pb.VERDICT_ALLOW
    generation = cores.change_policy_port(9090)  # 8080 is no longer allowed
    after = pb.DecideBatchResponse.FromString(cores.cached.decide_batch(request))
    assert after.generation == generation == before.generation + 1
    assert after.results[0].decision.verdict == pb.VERDICT_DENY
    assert after.results[0].decision.generation == generation
    assert cores.cached.decide_batch(request) == cores.plain.decide_batch(request)


def test_a_reload_between_the_cache_lookup_and_deciding_the_misses_never_mixes_generations(
    cores: Cores,
) -> None:
    """A batch of one cached flow and one new flow; the index moves on while the new one is decided."""
    cores.cached.decide_batch(batch([wire(GOOD[0])]))  # GOOD[0] cached at generation 1
    real = cores.index

    class ReloadsWhileDeciding:
        """The index, publishing a new generation just before its first ``decide_many``."""

        reloaded = False

        @property
        def generation(self) -> int:
            return real.generation

        def decide_many(self, flows: list[Flow], explain: bool = False) -> Any:
            if not self.reloaded:
                self.reloaded = True
                cores.change_policy_port(9090)
            return real.decide_many(flows, explain)

        def decide(self, f: Flow, explain: bool = False) -> Any:
            return real.decide(f, explain)

    proxy = ReloadsWhileDeciding()
    cores.state.index = proxy
    data = cores.cached.decide_batch(batch([wire(GOOD[0]), wire(GOOD[1])]))
    response = pb.DecideBatchResponse.FromString(data)
    assert response.generation == real.generation == 2
    assert {r.decision.generation for r in response.results} == {2}
    assert response.results[0].decision.verdict == pb.VERDICT_DENY  # the old answer was not reused
    cores.state.index = real
    assert data == cores.plain.decide_batch(batch([wire(GOOD[0]), wire(GOOD[1])]))


@pytest.mark.parametrize(
    "malformed",
    [
        pytest.param(bad_port, id="a TCP flow without a port"),
        pytest.param(bad_ip, id="an address out of range"),
    ],
)
def test_a_malformed_flow_is_never_cached_and_gets_its_error_every_time(cores: Cores, malformed: Any) -> None:
    request = batch([wire(GOOD[0]), malformed(), wire(GOOD[1]), malformed()])
    for _ in range(3):
        cached, reference = cores.both(request)
        assert cached == reference
        kinds = [r.WhichOneof("result") for r in results(cached)]
        assert kinds == ["decision", "error", "decision", "error"]
    assert malformed().SerializeToString() not in cores.entries()
    assert len(cores.entries()) == 2


def test_a_malformed_unary_flow_is_refused_every_time(cores: Cores) -> None:
    for _ in range(3):
        with pytest.raises(RequestError) as caught:
            cores.cached.decide(unary(bad_port()))
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.message.startswith("dst_port")
    assert cores.entries() == {}


def test_explained_batches_are_never_served_from_or_stored_in_the_cache(cores: Cores) -> None:
    flows = [wire(f) for f in GOOD]
    cores.cached.decide_batch(batch(flows))  # all cached, unexplained
    explained, reference = cores.both(batch(flows, explain=True))
    assert explained == reference
    assert all(r.decision.HasField("explanation") for r in results(explained))
    cores.entries().clear()
    cores.cached.decide_batch(batch(flows, explain=True))
    assert cores.entries() == {}


def test_explained_unary_calls_are_never_served_from_or_stored_in_the_cache(cores: Cores) -> None:
    cores.cached.decide(unary(wire(GOOD[0])))
    assert len(cores.entries()) == 1
    data = cores.cached.decide(unary(wire(GOOD[0]), explain=True))
    decision = pb.DecideResponse.FromString(data).decision
    assert decision.HasField("explanation")
    assert decision_from_pb(decision) == cores.index.decide(GOOD[0], explain=True)
    assert len(cores.entries()) == 1


def test_unary_answers_are_the_same_bytes_cold_and_warm_and_shared_with_batches(cores: Cores) -> None:
    for f in GOOD:
        cold = cores.cached.decide(unary(wire(f)))
        warm = cores.cached.decide(unary(wire(f)))
        reference = cores.plain.decide(unary(wire(f)))
        assert cold == warm == reference
        assert decision_from_pb(pb.DecideResponse.FromString(warm).decision) == cores.index.decide(f)
    # the batch finds every flow the unary calls stored
    before = len(cores.entries())
    cores.cached.decide_batch(batch([wire(f) for f in GOOD]))
    assert len(cores.entries()) == before == len(GOOD)


def test_cached_answers_are_counted_in_the_decision_metrics(cores: Cores) -> None:
    request = batch([wire(f) for f in GOOD] * 5 + [bad_ip()])
    cores.cached.decide_batch(request)
    cores.cached.decide_batch(request)
    cores.cached.decide(unary(wire(GOOD[0])))
    assert cores.decided() == 2 * 5 * len(GOOD) + 1


def test_a_full_cache_starts_over(cores: Cores) -> None:
    assert cores.cached.wire is not None
    cores.cached.wire = WireCache(limit=2)
    cores.cached.decide_batch(batch([wire(f) for f in GOOD]))
    slot = cores.cached.wire.slot(cores.index)
    assert slot.entries == {}
    assert cores.cached.decide_batch(batch([wire(f) for f in GOOD])) == cores.plain.decide_batch(
        batch([wire(f) for f in GOOD])
    )


def _long_flow() -> pb.Flow:
    return pb.Flow(src_ip="2001:db8::" + "1" * 150, dst_ip=WEB, protocol=pb.PROTOCOL_TCP, dst_port=80)


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(batch([wire(f) for f in GOOD], request_id=0), id="no request id"),
        pytest.param(batch([wire(f) for f in GOOD], request_id=2**63 + 1), id="a ten-byte request id"),
        pytest.param(batch([wire(f) for f in GOOD], explain=True), id="explain set"),
        pytest.param(batch([_long_flow(), wire(GOOD[0])]), id="a flow longer than 127 bytes"),
        pytest.param(batch([pb.Flow(), wire(GOOD[0]), pb.Flow()]), id="empty flows"),
        pytest.param(batch([]), id="no flows"),
    ],
)
def test_the_flows_cut_out_of_a_request_are_each_flows_own_serialization(
    request_: pb.DecideBatchRequest,
) -> None:
    assert flow_chunks(request_) == [f.SerializeToString() for f in request_.flows]


def test_a_request_with_a_field_this_version_does_not_know_is_cut_the_general_way() -> None:
    known = batch([wire(f) for f in GOOD])
    request = pb.DecideBatchRequest.FromString(known.SerializeToString() + b"\x25\x01\x00\x00\x00")
    assert flow_chunks(request) == [f.SerializeToString() for f in known.flows]


def test_a_malformed_long_flow_in_a_batch_gets_its_error(cores: Cores) -> None:
    cached, reference = cores.both(batch([_long_flow(), wire(GOOD[0])]))
    assert cached == reference
    assert results(cached)[0].error.field == "src_ip"


@pytest.mark.parametrize("size", [1, 127, 128, 300, 2**14 + 3])
def test_the_unary_response_is_the_body_of_the_batch_entry(size: int) -> None:
    body = bytes([0x0A]) + bytes(size)  # any bytes: only the framing is read
    assert entry_body(b"\x12" + varint(len(body)) + body) == body
