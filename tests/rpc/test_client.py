"""The Python clients: decide_many's order over many pipelined batches, concurrency, retries, asyncio."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest

import netpol_pdp.clients
from netpol_pdp.clients import AsyncDecisionClient, ClientError, DecisionClient, Retry
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.server.serve import Service

from .conftest import CLIENT, DB, INTRUDER, OUTSIDE, WEB, flow


def mixed_flows(n: int) -> list[Flow]:
    """``n`` flows whose answers differ by position, so any reordering shows."""
    sources = [CLIENT, INTRUDER, OUTSIDE]
    out = []
    for i in range(n):
        port = 8080 if i % 7 == 0 else 9000 + i % 500
        out.append(flow(sources[i % 3], WEB if i % 5 else DB, port))
    return out


def expected(world: Path, flows: list[Flow]) -> list[tuple[str, str]]:
    index = Index.from_objects(ManifestSource(world).load().objects.values())
    return [(d.verdict.value, d.reason.value) for d in index.decide_many(flows)]


def summary(results: list[Decision | FlowError]) -> list[tuple[str, str]]:
    return [(r.verdict.value, r.reason.value) for r in results if isinstance(r, Decision)]


def test_the_public_surface_is_what_all_says() -> None:
    assert sorted(netpol_pdp.clients.__all__) == [
        "AsyncDecisionClient",
        "ClientError",
        "ClientTls",
        "DecisionClient",
        "Retry",
    ]
    for name in netpol_pdp.clients.__all__:
        assert getattr(netpol_pdp.clients, name).__module__.startswith("netpol_pdp.clients")


def test_decide_many_streams_thousands_of_flows_in_many_batches_in_order(
    client: DecisionClient, world: Path
) -> None:
    flows = mixed_flows(20_000)
    results = list(client.decide_many(flows, batch_size=500, window=4))
    assert len(results) == len(flows)
    assert summary(results) == expected(world, flows)


def test_decide_many_takes_a_lazy_iterable_and_a_batch_that_does_not_divide_it(
    client: DecisionClient, world: Path
) -> None:
    flows = mixed_flows(2_345)
    results = list(client.decide_many(iter(flows), batch_size=1000))
    assert summary(results) == expected(world, flows)


def test_decide_many_of_nothing_yields_nothing(client: DecisionClient) -> None:
    assert list(client.decide_many([])) == []


def test_an_error_in_the_callers_flows_surfaces_after_the_decided_ones(client: DecisionClient) -> None:
    def flows() -> Iterator[Flow]:
        yield from mixed_flows(30)
        raise RuntimeError("flow log truncated")

    got: list[Decision | FlowError] = []
    with pytest.raises(RuntimeError, match="flow log truncated"):
        got.extend(client.decide_many(flows(), batch_size=10))
    assert len(got) == 30


def test_concurrent_clients_each_get_their_own_answers_in_order(
    service: Service, connect: Callable[..., DecisionClient], world: Path
) -> None:
    errors: list[BaseException] = []
    shared = connect(service)

    def work(k: int) -> None:
        try:
            flows = mixed_flows(1_500 + 101 * k)[k:]
            want = expected(world, flows)
            own = connect(service) if k % 2 else shared  # some share one channel, some have their own
            assert summary(list(own.decide_many(flows, batch_size=200))) == want
            for f, w in zip(flows[:20], want[:20], strict=True):
                d = own.decide(f)
                assert (d.verdict.value, d.reason.value) == w
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


# --------------------------------------------------------------------------- retries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unary_calls_retry_unavailable_until_the_server_comes_up(
    start_service: Callable[..., Service], world: Path, connect: Callable[..., DecisionClient]
) -> None:
    port = free_port()
    client = connect(f"127.0.0.1:{port}", retry=Retry(attempts=8, initial=0.05, maximum=0.4))
    timer = threading.Timer(0.3, lambda: start_service([world], listen=f"127.0.0.1:{port}"))
    timer.start()
    try:
        decision = client.decide(flow(CLIENT, WEB, 8080))
    finally:
        timer.join()
    assert decision.allowed


def test_without_retries_left_unavailable_is_a_client_error(connect: Callable[..., DecisionClient]) -> None:
    client = connect(f"127.0.0.1:{free_port()}", retry=Retry(attempts=1, initial=0.01))
    with pytest.raises(ClientError) as err:
        client.status()
    assert err.value.code is grpc.StatusCode.UNAVAILABLE


def test_decide_many_resends_unanswered_batches_when_the_server_is_replaced_mid_stream(
    start_service: Callable[..., Service], world: Path, connect: Callable[..., DecisionClient], mode: str
) -> None:
    first = start_service([world], mode=mode)
    assert first.state.wait_ready(10)
    port = first.port
    flows = mixed_flows(3_000)
    replaced = threading.Event()

    def source() -> Iterator[Flow]:
        for i, f in enumerate(flows):
            if i == 1_000:  # the first server goes away mid-stream; a new one takes its port
                first.close(grace=0)
                second = start_service([world], mode=mode, listen=f"127.0.0.1:{port}")
                assert second.state.wait_ready(10)
                replaced.set()
            yield f

    client = connect(first.address, retry=Retry(attempts=8, initial=0.02, maximum=0.2))
    results = list(client.decide_many(source(), batch_size=100, window=4))
    assert replaced.is_set()
    assert summary(results) == expected(world, flows)


# --------------------------------------------------------------------------- asyncio


def test_the_asyncio_client_decides_streams_and_reports_status(service: Service, world: Path) -> None:
    flows = mixed_flows(5_000)

    async def lazy() -> AsyncIterator[Flow]:
        for f in flows:
            yield f

    async def main() -> tuple[Decision, list[Decision | FlowError], list[Decision | FlowError], dict, str]:
        async with AsyncDecisionClient(service.address, retry=Retry(attempts=2)) as client:
            one = await client.decide(flow(CLIENT, WEB, 8080), explain=True)
            many = [d async for d in client.decide_many(flows, batch_size=300, window=3)]
            streamed = [d async for d in client.decide_many(lazy(), batch_size=777)]
            return one, many, streamed, await client.status(), await client.health()

    one, many, streamed, status, health = asyncio.run(main())
    assert one.allowed and one.explained
    assert summary(many) == summary(streamed) == expected(world, flows)
    assert status["ready"] and health == "SERVING"


def test_the_asyncio_client_raises_flow_error_and_yields_error_slots(service: Service) -> None:
    async def main() -> tuple[FlowError, list[Decision | FlowError]]:
        async with AsyncDecisionClient(service.address) as client:
            try:
                await client.decide(flow(CLIENT, WEB)._replace(dst_ip="::1::"))
            except FlowError as exc:
                refused = exc
            else:
                raise AssertionError("a bad dst_ip was decided")
            batch = await client.decide_batch([flow(CLIENT, WEB), flow(CLIENT, WEB)._replace(dst_port=0)])
            return refused, batch

    refused, batch = asyncio.run(main())
    assert refused.field == "dst_ip"
    assert isinstance(batch[0], Decision) and isinstance(batch[1], FlowError) and batch[1].field == "dst_port"


def test_plaintext_beyond_loopback_needs_insecure() -> None:
    with pytest.raises(ValueError, match="--insecure"):
        DecisionClient("192.0.2.10:50051")
    DecisionClient("192.0.2.10:50051", insecure=True).close()  # no traffic: channels connect lazily


def test_wait_ready_times_out_against_nothing(connect: Callable[..., DecisionClient]) -> None:
    client = connect(f"127.0.0.1:{free_port()}", retry=Retry(attempts=0))
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        client.wait_ready(timeout=0.5)
    assert time.monotonic() - began < 5
