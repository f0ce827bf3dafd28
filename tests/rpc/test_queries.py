"""Reach and Matrix over gRPC: the same answers as the local index, both server flavours, both clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest

from netpol_pdp.clients import AsyncDecisionClient, ClientError, DecisionClient
from netpol_pdp.examples import CLUSTER
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.matrix import matrix
from netpol_pdp.index.reach import query
from netpol_pdp.server.serve import Service

from .conftest import scrape_metrics


@pytest.fixture
def local() -> Index:
    return Index.from_objects(ManifestSource([CLUSTER]).load().objects.values())


@pytest.fixture(params=["aio", "sync"])
def served(request: pytest.FixtureRequest, start_service: Callable[..., Service]) -> Service:
    svc = start_service([CLUSTER], mode=request.param, metrics_listen="127.0.0.1:0")
    assert svc.state.wait_ready(10)
    return svc


def test_reach_over_grpc_is_the_local_answer(
    served: Service, connect: Callable[..., DecisionClient], local: Index
) -> None:
    client = connect(served)
    remote = client.reach("backend/api-5b7f9-4hq2c")
    here = query(local.snapshot(), "", "backend/api-5b7f9-4hq2c")
    assert [a.direction for a in remote] == ["ingress", "egress"]
    assert [a.targets for a in remote] == [a.targets for a in here]
    filtered = client.reach(
        namespace="data", selector="app=redis", direction="ingress", protocol="TCP", port=6379
    )
    assert filtered[0].port == 6379 and filtered[0].targets[0].pod_peers[0].ports.text() == "TCP 6379"


def test_matrix_over_grpc_is_the_local_matrix(
    served: Service, connect: Callable[..., DecisionClient], local: Index
) -> None:
    remote = connect(served).matrix(["TCP/8080", "UDP/53"], namespace="backend")
    here = matrix(local, [("TCP", 8080), ("UDP", 53)], "backend")
    assert (remote.pods, remote.ports, remote.cells) == (here.pods, here.ports, here.cells)
    assert served.metrics_port is not None
    samples = scrape_metrics(served.metrics_port)
    assert samples['netpol_pdp_rpc_duration_seconds_count{method="Matrix"}'] == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda c: c.reach("data/nope"), "pod data/nope: no such live pod", id="unknown pod"),
        pytest.param(lambda c: c.reach(namespace="data", selector="a=b=c"), "selector: ", id="bad selector"),
        pytest.param(lambda c: c.reach("data/redis-0", direction="up"), "direction: ", id="bad direction"),
        pytest.param(lambda c: c.matrix(["TCP"]), "ports[0]: 'TCP': TCP needs a port number", id="bad port"),
        pytest.param(
            lambda c: c.matrix(["TCP/80"] * 1000),
            "matrix: 18 pods x 18 x 1000 ports is 324,000 cells",
            id="too many cells",
        ),
    ],
)
def test_a_bad_query_is_invalid_argument_naming_the_field(
    served: Service,
    connect: Callable[..., DecisionClient],
    call: Callable[[DecisionClient], object],
    message: str,
) -> None:
    with pytest.raises(ClientError) as caught:
        call(connect(served))
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details.startswith(message)


def test_the_asyncio_client_asks_the_same(served: Service, local: Index) -> None:
    async def ask() -> tuple[object, object]:
        async with AsyncDecisionClient(served.address) as client:
            return await client.reach("data/redis-0", direction="ingress"), await client.matrix(
                [("TCP", 5432)], namespace="data"
            )

    answers, table = asyncio.run(ask())
    assert answers == query(local.snapshot(), "ingress", "data/redis-0")
    assert table == matrix(local, [("TCP", 5432)], "data")
