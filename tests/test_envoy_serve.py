"""``netpol-pdp serve`` answers Envoy's Check and its own Decide on one port, from one index.

The serving process is started as the command starts it (``server.serve.serve``)
on 127.0.0.1 port 0, over a manifest folder in ``tmp_path``; the port is read
from its ``listening`` log event.  Until the feed's first load succeeds, Check
answers UNAVAILABLE (so Envoy applies its failure mode); after, Check and Decide
agree on every flow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import yaml
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc
from google.protobuf import descriptor_pb2, json_format
from google.rpc import code_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from netpol_pdp.server import envoy as ext_authz
from netpol_pdp.server.logging import LOGGER_NAME
from netpol_pdp.server.serve import ServeOptions, serve
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc
from netpol_pdp.v1.convert import REASON_FROM_PB

MANIFESTS = [
    {"kind": "Namespace", "metadata": {"name": "shop"}},
    {
        "kind": "Pod",
        "metadata": {"namespace": "shop", "name": "web", "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1"},
        "status": {"phase": "Running", "podIP": "10.0.1.10"},
    },
    {
        "kind": "Pod",
        "metadata": {"namespace": "shop", "name": "db", "labels": {"app": "db"}},
        "spec": {"nodeName": "node-1"},
        "status": {"phase": "Running", "podIP": "10.0.1.20"},
    },
    {
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "shop", "name": "db"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 5432}]}
            ],
        },
    },
]


class _PortCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.port: int | None = None
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "listening":
            self.port = record.__dict__["fields"]["port"]
            self.seen.set()


@pytest.fixture(scope="module", params=["aio", "sync"], ids=["aio server", "thread-pool server"])
def channel(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[grpc.Channel]:
    tmp_path = tmp_path_factory.mktemp("manifests")
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump_all(MANIFESTS))
    catcher = _PortCatcher()
    logger = logging.getLogger(f"{LOGGER_NAME}.serve")
    logger.addHandler(catcher)
    saved_level = logger.level
    logger.setLevel(logging.INFO)  # the "listening" event is INFO; unconfigured loggers drop it
    stop = threading.Event()
    options = ServeOptions(sources=[tmp_path], listen="127.0.0.1:0", mode=request.param, grace=0.5)
    thread = threading.Thread(target=serve, args=(options, stop), name="serve-under-test")
    thread.start()
    try:
        assert catcher.seen.wait(10), "the server never logged that it listens"
        with grpc.insecure_channel(f"127.0.0.1:{catcher.port}") as ch:
            yield ch
    finally:
        stop.set()
        thread.join(15)
        logger.removeHandler(catcher)
        logger.setLevel(saved_level)
    assert not thread.is_alive()


def _check(src: str, dst: str, port: int) -> Any:
    attrs = attribute_context_pb2.AttributeContext()
    attrs.source.address.socket_address.address = src
    attrs.source.address.socket_address.port_value = 40000
    attrs.destination.address.socket_address.address = dst
    attrs.destination.address.socket_address.port_value = port
    return external_auth_pb2.CheckRequest(attributes=attrs)


def _check_when_ready(stub: Any, request: Any) -> Any:
    """Check, retrying while the server says UNAVAILABLE (the feed's first load is still running)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return stub.Check(request, timeout=5)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            assert "not ready" in error.details()
            time.sleep(0.05)


@pytest.mark.parametrize(
    ("src", "dst", "port", "allowed"),
    [
        pytest.param("10.0.1.10", "10.0.1.20", 5432, True, id="web may reach db on 5432"),
        pytest.param("10.0.1.10", "10.0.1.20", 22, False, id="web may not reach db on 22"),
        pytest.param("203.0.113.9", "10.0.1.20", 5432, False, id="an outsider may not reach db"),
    ],
)
def test_check_and_decide_agree_on_the_served_index(
    channel: grpc.Channel, src: str, dst: str, port: int, allowed: bool
) -> None:
    check = _check_when_ready(external_auth_pb2_grpc.AuthorizationStub(channel), _check(src, dst, port))
    flow = pb.Flow(src_ip=src, dst_ip=dst, protocol=pb.PROTOCOL_TCP, dst_port=port)
    decided = pb_grpc.DecisionServiceStub(channel).Decide(pb.DecideRequest(flow=flow), timeout=5).decision
    assert check.status.code == (code_pb2.OK if allowed else code_pb2.PERMISSION_DENIED)
    assert decided.verdict == (pb.VERDICT_ALLOW if allowed else pb.VERDICT_DENY)
    meta = json_format.MessageToDict(check.dynamic_metadata)
    assert meta["generation"] == decided.generation
    assert meta["reason"] == REASON_FROM_PB[decided.reason].value


def test_reflection_lists_the_authorization_service(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    (response,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for s in response.list_services_response.service}
    assert {ext_authz.SERVICE_NAME, "netpol.pdp.v1.DecisionService"} <= names


def test_reflection_serves_the_authorization_descriptors(channel: grpc.Channel) -> None:
    """What grpcurl needs to call Check without the .proto files: the file defining the service."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=ext_authz.SERVICE_NAME)
    (response,) = stub.ServerReflectionInfo(iter([request]))
    assert not response.HasField("error_response"), response.error_response.error_message
    names = set()
    for raw in response.file_descriptor_response.file_descriptor_proto:
        names.add(descriptor_pb2.FileDescriptorProto.FromString(raw).name)
    assert "envoy/service/auth/v3/external_auth.proto" in names
