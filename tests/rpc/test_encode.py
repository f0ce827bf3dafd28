"""The hand-encoded batch responses are what the generated classes would serialize, and the
client's decoder reads them back."""

from __future__ import annotations

import pytest

from netpol_pdp.clients._channel import ResultDecoder
from netpol_pdp.index.decision import Decision, Endpoint, EndpointKind, Reason, Verdict
from netpol_pdp.index.errors import FlowError
from netpol_pdp.server.encode import BatchEncoder, varint
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1.convert import decision_from_pb, fill_decision

from .test_convert import EXPLAINED

PLAIN = Decision(
    Verdict.ALLOW,
    Reason.NOT_ISOLATED,
    300,
    Endpoint(EndpointKind.POD, "a/b", "a"),
    Endpoint(EndpointKind.EXTERNAL),
)


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16384, 2**32 + 5, 2**63])
def test_varint_is_protobufs(n: int) -> None:
    msg = pb.DecideBatchResponse(request_id=n)
    assert msg.SerializeToString() == (b"\x08" + varint(n) if n else b"")


@pytest.mark.parametrize(
    ("request_id", "generation"),
    [
        pytest.param(0, 0, id="zero ids are omitted, as protobuf omits defaults"),
        pytest.param(2**40, 7, id="big ids"),
    ],
)
def test_an_encoded_batch_parses_to_the_same_message_as_the_generated_one(
    request_id: int, generation: int
) -> None:
    encoder = BatchEncoder()
    decisions = [PLAIN, EXPLAINED, PLAIN]
    encoded = encoder.response(
        request_id,
        generation,
        [encoder.result(decisions[0]), encoder.error("dst_port", "bad"), *map(encoder.result, decisions[1:])],
    )
    expected = pb.DecideBatchResponse(request_id=request_id, generation=generation)
    fill_decision(expected.results.add().decision, decisions[0])
    expected.results.add().error.CopyFrom(pb.FlowError(field="dst_port", message="bad"))
    for d in decisions[1:]:
        fill_decision(expected.results.add().decision, d)
    assert encoded == expected.SerializeToString()
    parsed = pb.DecideBatchResponse.FromString(encoded)
    assert [decision_from_pb(r.decision) for r in parsed.results if r.HasField("decision")] == decisions


def test_a_cached_entry_is_reused_only_for_the_same_object() -> None:
    encoder = BatchEncoder()
    first = encoder.result(PLAIN)
    assert encoder.result(PLAIN) is first
    twin = Decision(PLAIN.verdict, Reason.DENIED_BOTH, PLAIN.generation, PLAIN.src, PLAIN.dst)
    assert encoder.result(twin) != first


def test_the_client_decoder_reads_what_the_server_encoder_writes() -> None:
    encoder = BatchEncoder()
    data = encoder.response(
        2**33, 9, [encoder.result(PLAIN), encoder.error("src_ip", "bad"), encoder.result(EXPLAINED)]
    )
    decoder = ResultDecoder()
    request_id, generation, results = decoder.decode(data)
    assert (request_id, generation) == (2**33, 9)
    assert results[0] == PLAIN and results[2] == EXPLAINED
    assert isinstance(results[1], FlowError) and (results[1].field, results[1].message) == ("src_ip", "bad")
    again = decoder.decode(data)[2]
    assert again[0] is results[0]  # equal bytes share one immutable decision


def test_a_response_with_a_field_the_decoder_does_not_know_is_read_the_general_way() -> None:
    encoder = BatchEncoder()
    data = encoder.response(5, 3, [encoder.result(PLAIN)]) + b"\x25\x01\x00\x00\x00"  # field 4, fixed32
    assert ResultDecoder().decode(data) == (5, 3, [PLAIN])
