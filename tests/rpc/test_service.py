"""The DecisionService over loopback: every RPC, both server flavours, errors named by field.

Decisions that travel over gRPC must equal, in ``to_dict()`` form, what the
local index says for the same manifests: the wire adds nothing and loses nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from netpol_pdp.clients import ClientError, DecisionClient
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.server.serve import Service
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

from .conftest import CLIENT, DB, INTRUDER, OUTSIDE, WEB, flow, scrape_metrics, wait_for

FLOWS = [
    flow(CLIENT, WEB, 8080),  # allowed by the policy
    flow(INTRUDER, WEB, 8080),  # other namespace: denied on ingress
    flow(CLIENT, WEB, 9090),  # wrong port: denied
    flow(CLIENT, DB, 5432),  # db is not isolated
    flow(OUTSIDE, CLIENT, 443),  # external to a pod
    flow(OUTSIDE, "198.51.100.1", 53, "UDP"),  # no pod involved
    flow(CLIENT, WEB, 0, "ICMP"),  # a port-less protocol
]


def local_decisions(world: Path, explain: bool) -> list[dict[str, object]]:
    index = Index.from_objects(ManifestSource(world).load().objects.values())
    return [_without_generation(index.explain(f) if explain else index.decide(f)) for f in FLOWS]


def _without_generation(d: Decision) -> dict[str, object]:
    out = d.to_dict()
    out.pop("generation")
    return out


@pytest.mark.parametrize("explain", [False, True], ids=["verdicts", "explained"])
def test_decide_over_the_wire_equals_the_local_index(
    client: DecisionClient, world: Path, service: Service, explain: bool
) -> None:
    remote = [client.decide(f, explain=explain) for f in FLOWS]
    assert [_without_generation(d) for d in remote] == local_decisions(world, explain)
    assert {d.generation for d in remote} == {service.index.generation}


def test_the_example_flows_get_the_verdicts_the_policy_implies(client: DecisionClient) -> None:
    verdicts = [(d.verdict.value, d.reason.value) for d in (client.decide(f) for f in FLOWS)]
    assert verdicts[:3] == [
        ("ALLOW", "allowed-by-policy"),
        ("DENY", "denied-on-ingress"),
        ("DENY", "denied-on-ingress"),
    ]


def test_an_explained_decision_names_the_isolating_policy_and_the_allowing_rule(
    client: DecisionClient,
) -> None:
    d = client.decide(FLOWS[0], explain=True)
    assert d.explained and d.ingress is not None
    assert d.ingress.isolating == ("shop/web-from-client",)
    assert [(r.policy, r.rule) for r in d.ingress.allowed_by] == [("shop/web-from-client", 0)]


def test_decide_batch_answers_in_order_at_one_generation(client: DecisionClient, world: Path) -> None:
    results = client.decide_batch(FLOWS * 3, explain=True)
    assert [_without_generation(d) for d in results if isinstance(d, Decision)] == local_decisions(
        world, True
    ) * 3


def test_decide_stream_echoes_request_ids_in_order(service: Service) -> None:
    with grpc.insecure_channel(service.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        requests = [
            pb.DecideBatchRequest(
                request_id=rid, flows=[pb.Flow(src_ip=CLIENT, dst_ip=WEB, dst_port=8080)] * (rid % 5 + 1)
            )
            for rid in (7, 3, 11, 2, 99)
        ]
        responses = list(stub.DecideStream(iter(requests)))
    assert [(r.request_id, len(r.results)) for r in responses] == [
        (q.request_id, len(q.flows)) for q in requests
    ]
    assert all(res.decision.verdict == pb.VERDICT_ALLOW for r in responses for res in r.results)


def test_get_status_reports_generation_counts_and_feed(
    client: DecisionClient, service: Service, world: Path
) -> None:
    status = client.status()
    assert status["ready"] and status["synced"]
    assert status["generation"] == service.index.generation >= 1
    assert status["object_counts"] == {"Namespace": 2, "NetworkPolicy": 1, "Node": 0, "Pod": 4}
    assert status["feed"]["kind"] == "manifests"
    assert status["feed"]["sources"] == [str(world)]
    assert (
        status["feed"]["loads"] == 1 and status["feed"]["errors"] == 0 and status["feed"]["last_error"] == ""
    )
    assert status["max_batch_flows"] == 10_000
    assert status["uptime_seconds"] >= 0


# --------------------------------------------------------------------------- malformed flows

MALFORMED = [
    pytest.param(pb.Flow(src_ip="10.0.0.300", dst_ip=WEB, dst_port=80), "src_ip", id="a bad source address"),
    pytest.param(
        pb.Flow(src_ip=CLIENT, dst_ip="", dst_port=80), "dst_ip", id="a missing destination address"
    ),
    pytest.param(pb.Flow(src_ip=CLIENT, dst_ip=WEB), "dst_port", id="a TCP flow without a port"),
    pytest.param(pb.Flow(src_ip=CLIENT, dst_ip=WEB, dst_port=70000), "dst_port", id="a port above 65535"),
    pytest.param(
        pb.Flow(src_ip=CLIENT, dst_ip=WEB, protocol=99, dst_port=80), "protocol", id="an unknown enum"
    ),
    pytest.param(
        pb.Flow(src_ip=CLIENT, dst_ip=WEB, ip_protocol=300), "protocol", id="an IANA number above 255"
    ),
    pytest.param(
        pb.Flow(src_ip=CLIENT, dst_ip=WEB, dst_port=80, src_port=65536),
        "src_port",
        id="a source port above 65535",
    ),
    pytest.param(
        pb.Flow(src_ip="1" * 100_000, dst_ip=WEB, dst_port=80),
        "src_ip",
        id="an address of 100,000 characters is named, not echoed past the metadata limit",
    ),
]


@pytest.mark.parametrize(("bad", "field"), MALFORMED)
def test_a_malformed_unary_flow_is_invalid_argument_naming_the_field(
    service: Service, bad: pb.Flow, field: str
) -> None:
    with grpc.insecure_channel(service.address) as channel, pytest.raises(grpc.RpcError) as err:
        pb_grpc.DecisionServiceStub(channel).Decide(pb.DecideRequest(flow=bad), timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"{field}: ")


@pytest.mark.parametrize(("bad", "field"), MALFORMED)
def test_a_malformed_flow_in_a_batch_gets_an_error_slot_and_the_rest_is_decided(
    service: Service, bad: pb.Flow, field: str
) -> None:
    good = pb.Flow(src_ip=CLIENT, dst_ip=WEB, protocol=pb.PROTOCOL_TCP, dst_port=8080)
    with grpc.insecure_channel(service.address) as channel:
        response = pb_grpc.DecisionServiceStub(channel).DecideBatch(
            pb.DecideBatchRequest(request_id=5, flows=[good, bad, good]), timeout=5
        )
    kinds = [r.WhichOneof("result") for r in response.results]
    assert kinds == ["decision", "error", "decision"]
    assert response.results[1].error.field == field
    assert response.results[0].decision.verdict == pb.VERDICT_ALLOW
    assert response.request_id == 5


def test_the_client_raises_flow_error_for_a_refused_unary_flow(client: DecisionClient) -> None:
    with pytest.raises(FlowError) as err:
        client.decide(flow(CLIENT, WEB)._replace(dst_port=0))
    assert err.value.field == "dst_port"


def test_the_client_yields_flow_error_values_in_batch_slots(client: DecisionClient) -> None:
    bad = flow(CLIENT, WEB)._replace(src_ip="nonsense")
    results = list(client.decide_many([FLOWS[0], bad, FLOWS[1]], batch_size=2))
    assert [type(r).__name__ for r in results] == ["Decision", "FlowError", "Decision"]
    assert isinstance(results[1], FlowError) and results[1].field == "src_ip"


# --------------------------------------------------------------------------- batch limits


@pytest.fixture
def small_batches(start_service: Callable[..., Service], world: Path, mode: str) -> Service:
    svc = start_service([world], mode=mode, max_batch=100)
    assert svc.state.wait_ready(10)
    return svc


def test_a_batch_over_the_limit_is_refused_whole(
    small_batches: Service, connect: Callable[..., DecisionClient]
) -> None:
    client = connect(small_batches)
    assert len(client.decide_batch([FLOWS[0]] * 100)) == 100
    with pytest.raises(ClientError) as err:
        client.decide_batch([FLOWS[0]] * 101)
    assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 100 flows (got 101)" in err.value.details


def test_an_oversized_stream_message_ends_the_stream_after_the_earlier_answers(
    small_batches: Service,
) -> None:
    flows = [pb.Flow(src_ip=CLIENT, dst_ip=WEB, dst_port=8080)]
    requests = [
        pb.DecideBatchRequest(request_id=1, flows=flows * 10),
        pb.DecideBatchRequest(request_id=2, flows=flows * 101),
        pb.DecideBatchRequest(request_id=3, flows=flows * 10),
    ]
    seen: list[int] = []
    with grpc.insecure_channel(small_batches.address) as channel, pytest.raises(grpc.RpcError) as err:
        for response in pb_grpc.DecisionServiceStub(channel).DecideStream(iter(requests)):
            seen.append(response.request_id)
    assert seen == [1]
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 100 flows" in err.value.details()


def test_decide_many_cuts_its_batches_under_the_limit(
    small_batches: Service, connect: Callable[..., DecisionClient]
) -> None:
    client = connect(small_batches, batch_size=100)
    assert len(list(client.decide_many([FLOWS[0]] * 1234))) == 1234


# --------------------------------------------------------------------------- health, reflection, metrics


def test_health_is_serving_for_the_server_and_the_decision_service(service: Service) -> None:
    with grpc.insecure_channel(service.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", "netpol.pdp.v1.DecisionService"):
            response = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_decision_service_and_describes_its_messages(service: Service) -> None:
    with grpc.insecure_channel(service.address) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        services = set(db.get_services())
        assert {"netpol.pdp.v1.DecisionService", "grpc.health.v1.Health"} <= services
        described = db.FindFileContainingSymbol("netpol.pdp.v1.DecideBatchRequest")
    assert described.package == "netpol.pdp.v1"


def test_metrics_count_decisions_by_verdict_and_reason(
    start_service: Callable[..., Service], world: Path, connect: Callable[..., DecisionClient]
) -> None:
    svc = start_service([world], metrics_listen="127.0.0.1:0")
    assert svc.state.wait_ready(10)
    client = connect(svc)
    client.decide(FLOWS[0])
    list(client.decide_many(FLOWS[:2] * 50))
    client.decide_batch([FLOWS[0], FLOWS[0]._replace(src_ip="bad")])
    assert svc.metrics_port is not None
    samples = scrape_metrics(svc.metrics_port)
    assert samples['netpol_pdp_decisions_total{reason="allowed-by-policy",verdict="ALLOW"}'] == 1 + 50 + 1
    assert samples['netpol_pdp_decisions_total{reason="denied-on-ingress",verdict="DENY"}'] == 50
    assert samples['netpol_pdp_flow_errors_total{field="src_ip"}'] == 1
    assert samples['netpol_pdp_rpc_duration_seconds_count{method="Decide"}'] == 1
    assert samples['netpol_pdp_batch_flows_count{method="DecideStream"}'] >= 1
    assert samples["netpol_pdp_index_generation"] == svc.index.generation
    assert samples["netpol_pdp_ready"] == 1
    assert samples["netpol_pdp_feed_loads_total"] == 1
    assert samples["netpol_pdp_feed_errors_total"] == 0


def test_more_open_streams_than_server_threads_are_all_served(
    start_service: Callable[..., Service], world: Path, mode: str
) -> None:
    svc = start_service([world], mode=mode, threads=2)
    assert svc.state.wait_ready(10)
    request = pb.DecideBatchRequest(flows=[pb.Flow(src_ip=CLIENT, dst_ip=WEB, dst_port=8080)])
    release = threading.Event()
    answered: list[int] = []
    lock = threading.Lock()

    def stream(stub: pb_grpc.DecisionServiceStub) -> None:
        def requests() -> Iterator[pb.DecideBatchRequest]:
            yield request
            time.sleep(0.2)  # the stream stays open between messages, as a sidecar's does
            yield request
            release.wait(10)

        while True:
            call = stub.DecideStream(requests(), timeout=10)
            try:
                for n, _ in enumerate(call, start=1):
                    if n == 2:
                        with lock:
                            answered.append(1)
                        call.cancel()
                        return
            except grpc.RpcError as exc:
                # the sync server refuses streams beyond threads // 2 (server/limits.py), so
                # they cannot hold every thread; the caller retries, as the clients do
                if mode != "sync" or exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                time.sleep(0.05)

    with grpc.insecure_channel(svc.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        threads = [threading.Thread(target=stream, args=(stub,)) for _ in range(6)]
        for t in threads:
            t.start()
        wait_for(lambda: len(answered) == 6, timeout=8, what="six streams answered twice by two threads")
        release.set()
        for t in threads:
            t.join(10)
