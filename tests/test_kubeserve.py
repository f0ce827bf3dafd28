"""``netpol-pdp serve --kube``: the gRPC service fed by the Kubernetes feed, end to end.

The fake API server (tests/kubeapi.py) and the service both run on 127.0.0.1
port 0; the service reaches the API server through a kubeconfig, exactly as a
user runs it, and is asked through the real client (DecisionClient).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netpol_pdp.clients import DecisionClient, Retry
from netpol_pdp.clients.cmd_serve import add_arguments, options_from_args
from netpol_pdp.index.decision import Verdict
from netpol_pdp.index.flows import make_flow
from netpol_pdp.server.config import ConfigError
from netpol_pdp.server.serve import ServeOptions, Service

sys.path.insert(0, str(Path(__file__).parent))
from kubeapi import FakeKubeAPI
from kubeworld import BASE, CLIENT, DENY_WEB, WEB, endpoint_slice, eventually, write_kubeconfig
from kubeworld import service as k8s_service


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI(bookmark_interval=0.2) as server:
        server.add_many([*BASE, DENY_WEB])
        yield server


@pytest.fixture
def service(api: FakeKubeAPI, tmp_path: Path) -> Iterator[Service]:
    options = ServeOptions(
        sources=[],
        listen="127.0.0.1:0",
        grace=0.2,
        kube=True,
        kubeconfig=str(write_kubeconfig(tmp_path, api.url)),
        stale_after=0.5,
        fail_closed_after=1.0,
    )
    svc = Service(options)
    yield svc
    svc.close(grace=0.2)


@pytest.fixture
def client(service: Service) -> Iterator[DecisionClient]:
    with DecisionClient(service.address, retry=Retry(attempts=0)) as c:
        yield c


def verdict(client: DecisionClient, src: str, dst: str) -> Verdict:
    return client.decide(make_flow(src, dst, "TCP", 80)).verdict


def test_get_status_shows_every_collection_synced_and_decisions_follow_the_cluster(
    api: FakeKubeAPI, client: DecisionClient
) -> None:
    client.wait_ready(10)
    status = client.status()
    feed = status["feed"]
    assert feed["kind"] == "kubernetes"
    assert feed["sources"] == [f"kubernetes {api.url}"]
    assert not feed["stale"]
    assert {r["kind"]: r["synced"] for r in feed["resources"]} == {
        "Namespace": True,
        "Pod": True,
        "Node": True,
        "Service": True,
        "NetworkPolicy": True,
        "EndpointSlice": True,
        "ClusterNetworkPolicy": True,
        "AdminNetworkPolicy": True,
        "BaselineAdminNetworkPolicy": True,
    }
    assert {r["kind"]: r["objects"] for r in feed["resources"]}["Pod"] == 3
    assert all(r["resource_version"] for r in feed["resources"])
    assert verdict(client, CLIENT, WEB) is Verdict.DENY
    api.delete("NetworkPolicy", "shop", "web")
    eventually(lambda: verdict(client, CLIENT, WEB) is Verdict.ALLOW, what="the deletion to reach Decide")


def test_api_server_down_is_stale_then_fails_closed_then_recovers(
    api: FakeKubeAPI, client: DecisionClient
) -> None:
    client.wait_ready(10)
    api.go_down()
    eventually(lambda: client.status()["feed"]["stale"], what="stale in GetStatus")
    eventually(lambda: client.health() == "NOT_SERVING", what="health NOT_SERVING")
    assert client.health("liveness") == "SERVING", "a liveness probe would restart the pod and lose its state"
    with pytest.raises(Exception, match="fail-closed-after"):
        verdict(client, CLIENT, WEB)
    pods = next(r for r in client.status()["feed"]["resources"] if r["kind"] == "Pod")
    assert pods["stale"]
    assert pods["reconnects"] >= 1
    api.come_back()
    eventually(lambda: client.health() == "SERVING", what="health SERVING again")
    assert not client.status()["feed"]["stale"]
    assert verdict(client, CLIENT, WEB) is Verdict.DENY


def test_a_cluster_ip_is_decided_through_the_watched_service_over_grpc(
    api: FakeKubeAPI, client: DecisionClient
) -> None:
    client.wait_ready(10)
    vip = "10.96.0.10"
    flow = make_flow(CLIENT, vip, "TCP", 8080)
    assert client.decide(flow).reason == "not-isolated", "no Service yet: an outside address"
    api.add(k8s_service("shop", "web", {"port": 8080, "targetPort": 80}, clusterIP=vip))
    api.add(endpoint_slice("shop", "web-1", "web", [(WEB, True)], {"port": 80}))
    eventually(lambda: client.decide(flow).reason == "denied-on-ingress", what="the Service and its slice")
    decision = client.decide(flow)
    assert decision.service is not None and decision.service.service == "shop/web"
    assert [e.ip for e in decision.service.endpoints] == [WEB]
    api.modify(endpoint_slice("shop", "web-1", "web", [(WEB, False)], {"port": 80}))
    eventually(
        lambda: client.decide(flow).reason == "service-no-ready-endpoints", what="the unready endpoint"
    )
    counts = {r["kind"]: r["objects"] for r in client.status()["feed"]["resources"]}
    assert (counts["Service"], counts["EndpointSlice"]) == (1, 1)


def _options(*argv: str) -> ServeOptions:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return options_from_args(parser.parse_args(list(argv)))


def test_the_command_line_builds_kube_options() -> None:
    options = _options("--kube", "--kubeconfig", "/k", "--context", "c", "--fail-closed-after", "30")
    expect: dict[str, Any] = {"kube": True, "kubeconfig": "/k", "kube_context": "c"}
    expect["fail_closed_after"] = 30.0
    assert {k: getattr(options, k) for k in expect} == expect
    assert list(options.sources) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--kube", "--source", "x"], "two different feeds", id="--source and --kube exclude"),
        pytest.param(["--kubeconfig", "/k"], "--kubeconfig needs --kube", id="--kubeconfig needs --kube"),
        pytest.param(["--context", "c"], "--context needs --kube", id="--context needs --kube"),
        pytest.param(
            ["--kube", "--fail-closed-after", "0"],
            "must be positive",
            id="a zero --fail-closed-after is refused",
        ),
    ],
)
def test_inconsistent_kube_options_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _options(*argv)


def test_an_unreadable_kubeconfig_is_a_configuration_error(tmp_path: Path) -> None:
    options = ServeOptions(sources=[], listen="127.0.0.1:0", kube=True, kubeconfig=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="nope"):
        Service(options)


def test_workers_inherit_the_kube_options() -> None:
    from netpol_pdp.server.serve import _worker_argv

    parent = _options(
        "--kube", "--kubeconfig", "/k", "--context", "c", "--stale-after", "7", "--fail-closed-after", "9"
    )
    child = _options(*_worker_argv(parent, "127.0.0.1:5000", None))
    fields = ("kube", "kubeconfig", "kube_context", "stale_after", "fail_closed_after")
    assert [getattr(child, f) for f in fields] == [getattr(parent, f) for f in fields]
