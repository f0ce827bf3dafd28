"""Abusive callers (issue 16): what they send must not grow memory, lock out others or stall shutdown.

Each test is one of the issue's reproductions, run against an in-process
server in both flavours where the flavour matters.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import address_pb2
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netpol_pdp.clients import DecisionClient
from netpol_pdp.clients._channel import ClientError
from netpol_pdp.index import flows
from netpol_pdp.index.decision import Reason, Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.server import envoy as ext_authz
from netpol_pdp.server.app import STOP_MARGIN, start_server
from netpol_pdp.server.limits import STREAMS_PER_CONNECTION
from netpol_pdp.server.serve import ServeOptions, Service
from netpol_pdp.server.service import DecisionCore, DecisionService
from netpol_pdp.server.status import ServerState
from netpol_pdp.server.wirecache import MAX_CHUNK_BYTES, Slot, WireCache
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

from .conftest import CLIENT, WEB, wait_for

MIB = 1 << 20


def _check(src: str, dst: str) -> external_auth_pb2.CheckRequest:
    peer = attribute_context_pb2.AttributeContext.Peer

    def at(ip: str, port: int) -> attribute_context_pb2.AttributeContext.Peer:
        return peer(
            address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address=ip, port_value=port))
        )

    return external_auth_pb2.CheckRequest(
        attributes=attribute_context_pb2.AttributeContext(source=at(src, 40000), destination=at(dst, 8080))
    )


# --------------------------------------------------------------------------- memory


def test_invalid_megabyte_addresses_in_batches_are_refused_unparsed_and_uncached(service: Service) -> None:
    """The issue's DecideBatch calls of distinct invalid 1 MiB ``src_ip``s (25 x 40 took 69 MiB -> 2.2 GB).

    Fewer here (the suite must stay fast): what is proved is that none is kept."""
    before = flows._parse_ip.cache_info().currsize
    with grpc.insecure_channel(service.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        for call in range(3):
            batch = pb.DecideBatchRequest(
                flows=[
                    pb.Flow(
                        src_ip=f"{call}-{i}-".ljust(MIB, "x"),
                        dst_ip=WEB,
                        dst_port=8080,
                        protocol=pb.PROTOCOL_TCP,
                    )
                    for i in range(10)
                ]
            )
            response = stub.DecideBatch(batch, timeout=30)
            assert [r.error.field for r in response.results] == ["src_ip"] * 10
            assert all(len(r.error.message) < 400 for r in response.results)
    assert flows._parse_ip.cache_info().currsize == before
    assert service.core.wire is not None
    slot = service.core.wire.slot(service.index)
    assert slot.size < MIB and not any(len(k) > MAX_CHUNK_BYTES for k in slot.entries)


def test_an_address_longer_than_45_characters_is_invalid_argument(service: Service) -> None:
    with grpc.insecure_channel(service.address) as channel, pytest.raises(grpc.RpcError) as err:
        pb_grpc.DecisionServiceStub(channel).Decide(
            pb.DecideRequest(flow=pb.Flow(src_ip=CLIENT, dst_ip=" " * 40 + WEB, dst_port=8080)), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == f"dst_ip: must be an IPv4 or IPv6 address (got {' ' * 40 + WEB!r})"


def test_distinct_megabyte_check_addresses_are_refused_uncached(service: Service) -> None:
    """The issue's 800 Check calls with distinct 1 MiB addresses (+810 MiB): here 20, none kept."""
    before = ext_authz._parse_ip.cache_info().currsize
    with grpc.insecure_channel(service.address) as channel:
        stub = external_auth_pb2_grpc.AuthorizationStub(channel)
        for i in range(20):
            response = stub.Check(_check(f"{i}.".ljust(MIB, "1"), WEB), timeout=10)
            assert response.status.code != 0  # denied: the request is invalid
            assert len(response.SerializeToString()) < 2000  # the answer does not echo the megabyte
    assert ext_authz._parse_ip.cache_info().currsize == before


def test_a_flow_carrying_a_large_unknown_field_is_decided_but_never_cached() -> None:
    slot = Slot(None, 1)
    slot.put(b"\x0a\x08" + b"x" * (MAX_CHUNK_BYTES + 1), b"entry", *_kind())
    assert slot.entries == {} and slot.size == 0


def test_the_wire_cache_is_renewed_when_its_bytes_reach_the_bound() -> None:
    class Gen:
        generation = 3

    cache = WireCache(limit_bytes=1000)
    index = Gen()
    slot = cache.slot(index)
    for i in range(20):
        slot.put(b"k%03d" % i + b"." * 46, b"v" * 50, *_kind())
    assert slot.size >= 1000
    assert cache.slot(index) is not slot
    assert cache.slot(index).size == 0


def _kind() -> tuple[Verdict, Reason]:
    return Verdict.ALLOW, Reason.NOT_ISOLATED


# --------------------------------------------------------------------------- idle streams


class _IdleStream:
    """A DecideStream whose caller sends nothing until :meth:`close`."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._done = threading.Event()
        self.call = pb_grpc.DecisionServiceStub(channel).DecideStream(self._requests())

    def _requests(self) -> Iterator[pb.DecideBatchRequest]:
        self._done.wait(30)
        return
        yield  # a generator that yields nothing

    def refusal(self) -> grpc.StatusCode | None:
        """The stream's status if the server has ended it, else None (still open)."""
        return self.call.code() if self.call.done() else None

    def close(self) -> None:
        self._done.set()
        self.call.cancel()


def test_idle_streams_never_lock_out_health_decide_or_check(service: Service) -> None:
    """The issue's 16 idle streams took every thread of the sync server; now the 9th+ are refused."""
    # one TCP connection each (channels to one target share a connection by default)
    own_connection = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.insecure_channel(service.address, own_connection) for _ in range(4)]
    streams = [_IdleStream(channels[i % 4]) for i in range(16)]
    try:
        expected = 16 - service.core.streams.total if service.options.mode == "sync" else 0
        wait_for(lambda: service.core.streams.open == 16 - expected, 5, "the streams to open")
        time.sleep(0.2)  # the refused ones' status reaching the client
        refused = [s.refusal() for s in streams]
        assert refused.count(grpc.StatusCode.UNAVAILABLE) == expected
        assert refused.count(None) == 16 - expected
        with grpc.insecure_channel(service.address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            decided = pb_grpc.DecisionServiceStub(channel).Decide(
                pb.DecideRequest(flow=pb.Flow(src_ip=CLIENT, dst_ip=WEB, dst_port=8080)), timeout=2
            )
            assert decided.decision.verdict == pb.VERDICT_ALLOW
            check = external_auth_pb2_grpc.AuthorizationStub(channel).Check(_check(CLIENT, WEB), timeout=2)
            assert check.status.code == 0
    finally:
        for s in streams:
            s.close()
        for c in channels:
            c.close()
    wait_for(lambda: service.core.streams.open == 0, 5, "the streams to be released")


def test_one_connection_holds_at_most_four_streams_on_the_sync_server(service: Service) -> None:
    if service.options.mode == "aio":
        pytest.skip("the aio server allows 100 streams a connection: nothing holds a thread")
    with grpc.insecure_channel(service.address) as channel:
        streams = [_IdleStream(channel) for _ in range(STREAMS_PER_CONNECTION + 1)]
        try:
            wait_for(lambda: sum(s.call.done() for s in streams) == 1, 5, "one stream to be refused")
            refused = [s.refusal() for s in streams]
            assert refused.count(grpc.StatusCode.UNAVAILABLE) == 1
            (fifth,) = (s for s in streams if s.call.done())
            assert "on one connection: at most 4" in fifth.call.details()
        finally:
            for s in streams:
                s.close()


# --------------------------------------------------------------------------- stopping


@pytest.mark.parametrize("mode", ["sync", "aio"])
def test_stop_returns_within_grace_and_margin_while_a_call_never_ends(mode: str) -> None:
    """The issue's shutdown stuck in SyncServerHandle.stop: a handler that does not return."""
    release, entered = threading.Event(), threading.Event()

    def hang(request: bytes, context: object) -> bytes:
        entered.set()
        release.wait(30)  # blocks its thread, as a long decision would
        return b""

    async def hang_loop(request: bytes, context: object) -> bytes:
        return hang(request, context)  # blocks the whole event loop

    def register(server: Any) -> None:
        handlers = {"Hang": grpc.unary_unary_rpc_method_handler(hang_loop if mode == "aio" else hang)}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Stuck", handlers),))

    servicer = DecisionService(DecisionCore(ServerState(Index())))
    handle = start_server(servicer, mode=mode, extra_services=[("test.Stuck", register)])
    channel = grpc.insecure_channel(f"127.0.0.1:{handle.port}")
    call = channel.unary_unary("/test.Stuck/Hang").future(b"", timeout=60)  # kept: dropping it cancels
    try:
        assert entered.wait(10), "the call did not start"
        start = time.monotonic()
        assert handle.stop(grace=0.5) is False
        assert time.monotonic() - start < 0.5 + STOP_MARGIN + 0.5
    finally:
        release.set()
        call.cancel()
        channel.close()


# --------------------------------------------------------------------------- request bytes


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _raw(service: Service, method: str, data: bytes) -> grpc.RpcError | bytes:
    with grpc.insecure_channel(service.address) as channel:
        try:
            return bytes(channel.unary_unary(method)(data, timeout=5))
        except grpc.RpcError as exc:
            return exc


WIDE_PORT_FLOW = b"\x0a\x08" + CLIENT.encode() + b"\x12\x08" + WEB.encode() + b"\x20" + _varint(2**32 + 8080)
DECIDE = "/netpol.pdp.v1.DecisionService/Decide"
BATCH = "/netpol.pdp.v1.DecisionService/DecideBatch"
CHECK = "/envoy.service.auth.v3.Authorization/Check"


@pytest.mark.parametrize(
    ("method", "data", "details"),
    [
        (DECIDE, b"\xff\xff\xff", "request: not a valid netpol.pdp.v1.DecideRequest message"),
        (BATCH, b"\x12\x05\x0a", "request: not a valid netpol.pdp.v1.DecideBatchRequest message"),
        (CHECK, b"\x0a\x07\x0a", "request: not a valid envoy.service.auth.v3.CheckRequest message"),
        (
            DECIDE,
            b"\x0a" + bytes([len(WIDE_PORT_FLOW)]) + WIDE_PORT_FLOW,
            "flow.dst_port: 4294975376 does not fit in 32 bits",
        ),
        (
            BATCH,
            b"\x12" + bytes([len(WIDE_PORT_FLOW)]) + WIDE_PORT_FLOW,
            "flows[0].dst_port: 4294975376 does not fit in 32 bits",
        ),
    ],
    ids=[
        "undecodable Decide",
        "undecodable DecideBatch",
        "undecodable Check",
        "2**32+8080 port",
        "in a batch",
    ],
)
def test_requests_protobuf_cannot_read_right_are_invalid_argument(
    service: Service, method: str, data: bytes, details: str
) -> None:
    """Not INTERNAL "Exception deserializing request!", and a port of 2**32+8080 is not decided as 8080."""
    err = _raw(service, method, data)
    assert isinstance(err, grpc.RpcError)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details in str(err.details())


def test_a_connection_that_never_sends_the_http2_preface_is_closed(
    start_service: Any, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from netpol_pdp.server import app

    monkeypatch.setattr(app, "HANDSHAKE_TIMEOUT_MS", 300)
    svc = start_service([world])
    with socket.create_connection(("127.0.0.1", svc.port), timeout=5) as sock:
        received = b""
        start = time.monotonic()
        while chunk := sock.recv(4096):  # the server's settings, then GOAWAY, then EOF
            received += chunk
        assert time.monotonic() - start < 4


# --------------------------------------------------------------------------- fuzzing

FUZZ_EXAMPLES = int(os.environ.get("NETPOL_PDP_FUZZ_EXAMPLES", "60"))
_SEEDS = [
    pb.DecideRequest(flow=pb.Flow(src_ip=CLIENT, dst_ip=WEB, dst_port=8080)).SerializeToString(),
    pb.DecideBatchRequest(
        request_id=7, flows=[pb.Flow(src_ip=CLIENT, dst_ip=WEB, dst_port=8080, protocol=pb.PROTOCOL_UDP)] * 2
    ).SerializeToString(),
    _check(CLIENT, WEB).SerializeToString(),
]


@st.composite
def _request_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, or a valid request with bytes flipped, cut, inserted or a wide varint spliced in."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "cut", "insert", "wide"]))
        if action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[at:at] = _varint(draw(st.integers(2**32, 2**64 - 1)))
    return bytes(data)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from([DECIDE, BATCH, CHECK]), data=_request_bytes())
def test_fuzzed_request_bytes_never_answer_internal_and_the_server_stays_up(
    fuzz_service: Service, method: str, data: bytes
) -> None:
    answer = _raw(fuzz_service, method, data)
    if isinstance(answer, grpc.RpcError):
        assert answer.code() == grpc.StatusCode.INVALID_ARGUMENT, (answer.code(), answer.details())
    health = _raw(fuzz_service, "/grpc.health.v1.Health/Check", b"")
    assert (
        health
        == health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING).SerializeToString()
    )


@pytest.fixture(scope="module")
def fuzz_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    from .conftest import NAMESPACES, PODS, policy_text

    world = tmp_path_factory.mktemp("fuzz")
    (world / "namespaces.yaml").write_text(NAMESPACES)
    (world / "pods.yaml").write_text(PODS)
    (world / "policy.yaml").write_text(policy_text(8080))
    svc = Service(ServeOptions(sources=[world], listen="127.0.0.1:0"))
    assert svc.state.wait_ready(10)
    yield svc
    svc.close(grace=0.2)


# --------------------------------------------------------------------------- addresses and hints


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("127.0.0.1", "--server 127.0.0.1: must be HOST:PORT, the port is required (e.g. 127.0.0.1:50051)"),
        ("::1", "--server ::1: an IPv6 address goes in brackets with a port ([::1]:50051)"),
        ("localhost:http", "--server localhost:http: must be HOST:PORT, the port is required"),
    ],
)
def test_a_server_address_must_name_its_port(target: str, message: str) -> None:
    """``--server 127.0.0.1`` used to dial port 443 silently."""
    with pytest.raises(ValueError, match=re.escape(message)):
        DecisionClient(target)


def test_a_plaintext_client_to_a_tls_server_is_told_about_tls() -> None:
    error = ClientError(grpc.StatusCode.UNAVAILABLE, "Socket closed")
    assert str(error) == "UNAVAILABLE: Socket closed (if the server serves TLS, connect with --tls-ca)"


def test_a_port_in_use_is_one_line_of_ours() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "netpol_pdp.clients.cmd_serve", "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: --listen 127.0.0.1:{port}: cannot bind (address in use)"], lines
