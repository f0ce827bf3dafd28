"""Decisions by name over gRPC (Flow.src_name / dst_name / dst_port_name) and why-not on the wire.

Both server flavours.  A flow by name must get the decision the same flow by
address gets; an unknown name is INVALID_ARGUMENT in unary Decide and a
per-flow FlowError in batches, naming the field; names never enter the wire
cache, so a pod that moves is seen at once; an explained denial carries its
near misses through the wire unchanged.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from conftest import Cli

from netpol_pdp.clients import DecisionClient
from netpol_pdp.clients.aio import AsyncDecisionClient
from netpol_pdp.examples import CLUSTER
from netpol_pdp.index.decision import Decision, Verdict
from netpol_pdp.index.ends import FlowByName, flow_by_name
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.server.serve import Service
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

from .conftest import CLIENT, INTRUDER, PODS, WEB, flow, replace_file, wait_for


def _plain(d: Decision | FlowError) -> dict[str, object]:
    assert isinstance(d, Decision), d
    out = d.to_dict()
    out.pop("generation")
    return out


@pytest.mark.parametrize(
    ("asked", "same"),
    [
        pytest.param(
            flow_by_name("shop/client", "shop/web", "TCP", 8080), flow(CLIENT, WEB, 8080), id="two pods"
        ),
        pytest.param(
            flow_by_name("other/intruder", WEB, "TCP", 8080), flow(INTRUDER, WEB, 8080), id="name and IP"
        ),
        pytest.param(
            flow_by_name("shop/client", "shop/web", "TCP", dst_port_name="http"),
            flow(CLIENT, WEB, 8080),
            id="a named port",
        ),
    ],
)
def test_a_flow_by_name_is_decided_as_the_same_flow_by_address(
    client: DecisionClient, asked: FlowByName, same: object
) -> None:
    by_address = client.decide(same)  # type: ignore[arg-type]
    assert _plain(client.decide(asked)) == _plain(by_address)
    assert [_plain(d) for d in client.decide_batch([asked, asked])] == [_plain(by_address)] * 2
    assert [_plain(d) for d in client.decide_many([asked, same])] == [_plain(by_address)] * 2  # type: ignore[list-item]


NAMED_ERRORS = [
    pytest.param(pb.Flow(src_name="shop/nope", dst_ip=WEB, dst_port=8080), "src_name", id="unknown pod"),
    pytest.param(pb.Flow(src_ip=CLIENT, dst_name="node/n9", dst_port=8080), "dst_name", id="unknown node"),
    pytest.param(
        pb.Flow(src_ip=CLIENT, dst_name="svc/shop/web", dst_port=80), "dst_name", id="svc not known"
    ),
    pytest.param(
        pb.Flow(src_ip=CLIENT, src_name="shop/client", dst_ip=WEB, dst_port=8080),
        "src_name",
        id="both ip and name",
    ),
    pytest.param(pb.Flow(dst_name="shop/web", dst_port=8080), "src_ip", id="no source at all"),
    pytest.param(
        pb.Flow(src_ip=CLIENT, dst_name=WEB, dst_port=8080), "dst_name", id="an address sent as a name"
    ),
    pytest.param(
        pb.Flow(src_name="shop/client", dst_name="shop/web", dst_port_name="grpc"),
        "dst_port_name",
        id="no such port",
    ),
    pytest.param(
        pb.Flow(src_name="shop/client", dst_name="shop/web", dst_port=80, dst_port_name="http"),
        "dst_port_name",
        id="port number and name",
    ),
]


@pytest.mark.parametrize(("bad", "field"), NAMED_ERRORS)
def test_a_bad_name_is_invalid_argument_in_decide_and_an_error_slot_in_a_batch(
    service: Service, bad: pb.Flow, field: str
) -> None:
    good = pb.Flow(src_name="shop/client", dst_name="shop/web", protocol=pb.PROTOCOL_TCP, dst_port=8080)
    with grpc.insecure_channel(service.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Decide(pb.DecideRequest(flow=bad), timeout=5)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith(f"{field}: ")
        for explain in (False, True):
            response = stub.DecideBatch(
                pb.DecideBatchRequest(flows=[good, bad, good], explain=explain), timeout=5
            )
            assert [r.WhichOneof("result") for r in response.results] == ["decision", "error", "decision"]
            assert response.results[1].error.field == field
            assert response.results[0].decision.verdict == pb.VERDICT_ALLOW


def test_a_name_follows_its_pod_at_once_the_wire_cache_keeps_no_names(
    service: Service, client: DecisionClient, world: Path
) -> None:
    asked = flow_by_name("shop/client", "shop/web", "TCP", 8080)
    first = client.decide_batch([asked])[0]
    assert isinstance(first, Decision) and first.verdict is Verdict.ALLOW
    # the web pod moves to another address; the old one is now nobody's
    replace_file(world / "pods.yaml", PODS.replace("podIP: 10.0.0.2", "podIP: 10.0.0.9"))
    wait_for(lambda: service.state.index.generation > first.generation, what="the reload")
    again = client.decide_batch([asked])[0]
    assert isinstance(again, Decision) and again.dst.name == "shop/web"
    plain = client.decide_batch([flow(CLIENT, WEB, 8080)])[0]
    assert isinstance(plain, Decision) and plain.dst.kind.value == "external"


def test_an_explained_denial_carries_its_near_misses_over_the_wire(
    client: DecisionClient, world: Path
) -> None:
    asked = flow_by_name("other/intruder", "shop/web", "TCP", 8080)
    remote = client.decide(asked, explain=True)
    index = Index.from_objects(ManifestSource(world).load().objects.values())
    local = index.explain(flow(INTRUDER, WEB, 8080))
    assert remote.ingress is not None and remote.ingress.near_misses
    assert remote.ingress.near_misses == local.ingress.near_misses  # type: ignore[union-attr]
    batch = client.decide_batch([asked], explain=True)[0]
    assert isinstance(batch, Decision) and batch.ingress is not None
    assert batch.ingress.near_misses == remote.ingress.near_misses


def test_the_asyncio_client_decides_by_name(service: Service) -> None:
    async def run() -> tuple[Decision, list[Decision | FlowError]]:
        async with AsyncDecisionClient(service.address) as aio:
            one = await aio.decide(flow_by_name("shop/client", "shop/web", "TCP", 8080))
            many = [r async for r in aio.decide_many([flow_by_name("shop/nope", "shop/web", "TCP", 8080)])]
            return one, many

    one, many = asyncio.run(run())
    assert one.verdict is Verdict.ALLOW
    assert isinstance(many[0], FlowError) and many[0].field == "src_name"


def test_decide_by_name_with_server_answers_as_the_local_decide(example: Service, cli: Cli) -> None:
    argv = [
        "--from",
        "staging/web-staging-6f8d9-r5t2w",
        "--to",
        "backend/api-5b7f9-4hq2c",
        "--port",
        "http",
        "-e",
    ]
    local = json.loads(cli("decide", "--json", *argv)[1])
    code, out, _ = cli("decide", "--json", *argv, "--server", example.address)
    remote = json.loads(out)
    assert code == 1
    assert "flow" not in remote  # the server resolved the names: the addresses are its own
    local.pop("flow")
    assert remote == local
    code, text, _ = cli("decide", *argv, "--server", example.address)
    assert text.startswith("DENY  TCP staging/web-staging-6f8d9-r5t2w -> backend/api-5b7f9-4hq2c:http\n")
    assert "why not: 2 rules that did not match" in text
    code, _, err = cli(
        "decide",
        "--from",
        "staging/nope",
        "--to",
        "backend/api-5b7f9-4hq2c",
        "--port",
        "80",
        "--server",
        example.address,
    )
    assert (
        code == 2 and err == f"error: --server {example.address}: src_name: pod staging/nope is not known\n"
    )


def test_a_headless_service_by_name_with_server_answers_as_the_local_decide(
    example: Service, cli: Cli
) -> None:
    argv = ["--from", "frontend/web-6d4cf-x2lqp", "--to", "svc/data/postgres-headless", "--port", "postgres"]
    local = json.loads(cli("decide", "--json", *argv)[1])
    code, out, _ = cli("decide", "--json", *argv, "--server", example.address)
    remote = json.loads(out)
    assert code == 1
    assert local.pop("flow")["dst_ip"] == "svc/data/postgres-headless"
    assert remote == local
    assert (remote["reason"], remote["service"]["address_kind"]) == ("denied-on-ingress", "headless")
    assert [e["verdict"] for e in remote["service"]["endpoints"]] == ["DENY", "DENY"]


def test_policy_tests_by_name_with_server_check_what_the_local_run_checks(
    example: Service, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "expect.yaml"
    path.write_text(
        "- {name: by name, from: staging/web-staging-6f8d9-r5t2w, to: backend/api-5b7f9-4hq2c, port: http, "
        "expect: allow}\n"
        "- {name: unknown, from: staging/nope, to: backend/api-5b7f9-4hq2c, port: 80, expect: deny}\n"
        "- {name: labels, from: {namespace: frontend, labels: {app: web}}, to: 10.244.1.20, port: 80, "
        "expect: deny}\n"
    )
    code, out, _ = cli("test", str(path), "--server", example.address)
    assert code == 1
    assert out.splitlines()[:3] == [
        "FAIL   by name  (1 flow)",
        "ERROR  unknown  (0 flows)",
        "ERROR  labels  (0 flows)",
    ]
    assert "`src_name`: pod staging/nope is not known" in out
    assert "selects pods by labels, which needs the manifests" in out
    assert "why not" not in out or "label environment differs" in out
    local = cli("test", str(path), "--source", str(CLUSTER))[1]
    assert local.splitlines()[0] == "FAIL   by name  (1 flow)"
