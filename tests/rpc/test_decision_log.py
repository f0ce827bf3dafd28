"""The decision log (``serve --decision-log``): its lines, its filters, a stalled sink, mTLS, shutdown."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netpol_pdp.clients import ClientTls, DecisionClient
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.server.app import TlsConfig
from netpol_pdp.server.config import ConfigError
from netpol_pdp.server.decisionlog import DecisionLog, LogFilter
from netpol_pdp.server.serve import Service
from netpol_pdp.server.service import DecisionCore
from netpol_pdp.server.status import ServerState
from netpol_pdp.v1 import decision_pb2 as pb

from .conftest import CLIENT, DB, INTRUDER, OUTSIDE, WEB, Pki, flow, scrape_metrics, wait_for


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def logged_service(start: Callable[..., Service], world: Path, tmp_path: Path, **options: Any) -> Service:
    svc = start([world], decision_log=str(tmp_path / "decisions.jsonl"), **options)
    assert svc.state.wait_ready(10)
    return svc


def test_a_denial_names_the_policy_that_isolated_the_pod(
    start_service: Callable[..., Service], world: Path, tmp_path: Path, connect: Callable[..., DecisionClient]
) -> None:
    svc = logged_service(start_service, world, tmp_path)
    client = connect(svc)
    assert not client.decide(flow(INTRUDER, WEB, 8080)).allowed
    svc.close(0.2)
    (line,) = lines_of(tmp_path / "decisions.jsonl")
    assert (line["count"], line["calls"]) == (1, 1)
    assert line["verdict"] == "DENY"
    assert line["reason"] == "denied-on-ingress"
    assert line["policies"] == ["shop/web-from-client"]
    assert line["ingress"]["isolating_policies"] == ["shop/web-from-client"]
    assert line["src"] == {"ip": INTRUDER, "kind": "pod", "name": "other/intruder", "namespace": "other"}
    assert line["dst"]["name"] == "shop/web"
    assert (line["protocol"], line["dst_port"]) == ("TCP", 8080)
    assert line["method"] == "Decide"
    assert line["generation"] == svc.index.generation
    assert line["caller"]["peer"].startswith("ipv4:127.0.0.1:")
    assert line["latency_us"] > 0


def test_an_allowed_flow_names_the_rule_that_allowed_it(
    start_service: Callable[..., Service], world: Path, tmp_path: Path, connect: Callable[..., DecisionClient]
) -> None:
    svc = logged_service(start_service, world, tmp_path)
    assert connect(svc).decide(flow(CLIENT, WEB, 8080)).allowed
    svc.close(0.2)
    (line,) = lines_of(tmp_path / "decisions.jsonl")
    assert (line["verdict"], line["reason"]) == ("ALLOW", "allowed-by-policy")
    assert line["rules"] == [{"direction": "ingress", "policy": "shop/web-from-client", "rule": 0}]


def test_cached_answers_are_logged_once_per_decision(
    start_service: Callable[..., Service], world: Path, tmp_path: Path, connect: Callable[..., DecisionClient]
) -> None:
    """The wire cache answers the repeats: each is counted, in one line per flow and method."""
    svc = logged_service(start_service, world, tmp_path)
    client = connect(svc)
    flows = [flow(INTRUDER, WEB, 8080), flow(CLIENT, WEB, 8080)] * 50
    for _ in range(3):
        decided = client.decide_many(flows, batch_size=25)  # DecideStream
        assert [d.allowed for d in decided] == [False, True] * 50  # type: ignore[union-attr]
    assert len(client.decide_batch(flows)) == len(flows)
    svc.close(0.2)
    lines = lines_of(tmp_path / "decisions.jsonl")
    counts = {(line["method"], line["verdict"]): line["count"] for line in lines}
    assert counts == {
        ("DecideStream", "DENY"): 150,
        ("DecideStream", "ALLOW"): 150,
        ("DecideBatch", "DENY"): 50,
        ("DecideBatch", "ALLOW"): 50,
    }
    assert {line["calls"] for line in lines if line["method"] == "DecideStream"} == {12}  # 3 x 4 messages
    denials = [line for line in lines if line["verdict"] == "DENY"]
    assert all(line["policies"] == ["shop/web-from-client"] for line in denials)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("all", 200, id="all logs every decision"),
        pytest.param("deny", 100, id="deny logs the denials only"),
        pytest.param("sample:10", 20, id="sample:10 logs one decision in ten"),
    ],
)
def test_the_filter_chooses_the_lines(text: str, expected: int, tmp_path: Path) -> None:
    core, log, path = _core(tmp_path, LogFilter.parse(text))
    batch = _batch([(INTRUDER, WEB), (CLIENT, WEB)] * 50)
    core.decide_batch(batch)
    core.decide_batch(batch)  # the second is answered from the wire cache
    assert log.close()
    lines = lines_of(path)
    assert sum(line["count"] for line in lines) == expected
    if text == "deny":
        assert all(line["verdict"] == "DENY" for line in lines)
    assert log.status_pb().written == expected


@pytest.mark.parametrize(
    "text",
    ["some", "sample:", "sample:0", "sample:x", "deny:2"],
)
def test_a_bad_filter_is_a_one_line_error_naming_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^--decision-log-filter: must be all, deny or sample:N"):
        LogFilter.parse(text)


class StalledStream:
    """A sink whose ``write`` blocks until released: a pipe nobody reads, a hung disk."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.text: list[str] = []

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait()
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_stalled_sink_drops_and_counts_lines_and_no_decision_waits(tmp_path: Path) -> None:
    stream = StalledStream()
    core, log, _ = _core(tmp_path, LogFilter("all"), stream=stream, queue_lines=500, flush_seconds=0.01)
    batch = _batch([(INTRUDER, WEB), (CLIENT, WEB), (OUTSIDE, DB)] * 100)  # 300 flows
    core.decide_batch(batch)
    assert stream.entered.wait(10), "the writer never wrote"  # and is stuck in write() from now on
    answers: list[pb.DecideBatchResponse] = []

    def serve() -> None:
        for _ in range(20):
            answers.append(pb.DecideBatchResponse.FromString(core.decide_batch(batch)))

    worker = threading.Thread(target=serve)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "a decision waited for the stalled sink"
    assert len(answers) == 20
    for answer in answers:  # every decision made and answered, none lost
        verdicts = [r.decision.verdict for r in answer.results]
        assert verdicts == [pb.VERDICT_DENY, pb.VERDICT_ALLOW, pb.VERDICT_ALLOW] * 100
    status = log.status_pb()
    assert status.dropped > 0
    # the first batch is being written, the next waits in the queue; the rest were refused
    assert status.written == 0
    assert status.queued + status.dropped == 21 * 300
    assert status.queue_limit == 500
    assert status.queued <= 500 + 300  # the queue, and the batch the stuck write holds
    stream.release.set()
    assert log.close()
    final = log.status_pb()
    assert final.written + final.dropped == 21 * 300
    logged = [json.loads(line) for text in stream.text for line in text.splitlines()]
    assert sum(line["count"] for line in logged) == final.written


def test_a_pipe_nobody_reads_is_counted_in_status_and_metrics(
    start_service: Callable[..., Service], world: Path, tmp_path: Path, connect: Callable[..., DecisionClient]
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read: the pipe fills up
    try:
        svc = start_service([world], decision_log=str(fifo), metrics_listen="127.0.0.1:0")
        assert svc.state.wait_ready(10)
        client = connect(svc)
        # distinct flows: a line each (about 600 bytes), so a window is more than the pipe holds
        flows = [flow(INTRUDER, WEB, port) for port in range(1000, 1500)] * 2
        total = 0
        while client.status()["decision_log"].get("dropped", 0) == 0:
            assert len(list(client.decide_many(flows, batch_size=1000))) == len(flows)
            total += len(flows)
            assert total < 2_000_000, "the log never dropped a line"
        status = client.status()["decision_log"]
        assert status["path"] == str(fifo) and status["filter"] == "all"
        metrics = scrape_metrics(svc.metrics_port or 0)
        assert metrics['netpol_pdp_decision_log_lines_total{outcome="dropped"}'] == pytest.approx(
            status["dropped"], rel=0.5
        )
    finally:
        os.close(reader)


def test_the_caller_is_the_client_certificate_subject_under_mutual_tls(
    start_service: Callable[..., Service],
    world: Path,
    tmp_path: Path,
    pki: Pki,
    mode: str,
    connect: Callable[..., DecisionClient],
) -> None:
    tls = TlsConfig(pki.server_cert, pki.server_key, client_ca=pki.ca)
    svc = logged_service(start_service, world, tmp_path, tls=tls, mode=mode)
    client = connect(svc, tls=ClientTls(ca=pki.ca, cert=pki.client_cert, key=pki.client_key))
    client.decide(flow(INTRUDER, WEB, 8080))
    list(client.decide_many([flow(CLIENT, WEB, 8080)] * 3))
    svc.close(0.2)
    lines = lines_of(tmp_path / "decisions.jsonl")
    assert sum(line["count"] for line in lines) == 4
    assert {line["caller"]["subject"] for line in lines} == {"CN=test-client"}


def test_shutdown_writes_every_queued_line(
    start_service: Callable[..., Service], world: Path, tmp_path: Path, connect: Callable[..., DecisionClient]
) -> None:
    svc = logged_service(start_service, world, tmp_path)
    client = connect(svc)
    flows = [flow(INTRUDER, WEB, 8080), flow(CLIENT, WEB, 8080)] * 2500
    assert len(list(client.decide_many(flows, batch_size=1000))) == 5000
    svc.close(0.2)
    lines = lines_of(tmp_path / "decisions.jsonl")
    assert sum(line["count"] for line in lines) == 5000


def test_a_log_file_that_cannot_be_opened_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--decision-log .*missing/log: cannot open"):
        DecisionLog(str(tmp_path / "missing" / "log"))


def test_reopen_starts_a_new_file_after_the_old_one_was_moved(tmp_path: Path) -> None:
    core, log, path = _core(tmp_path, LogFilter("all"))
    core.decide_batch(_batch([(INTRUDER, WEB)]))
    wait_for(lambda: log.status_pb().written == 1, what="the first line")  # flushed within a second
    path.rename(tmp_path / "decisions.jsonl.1")
    log.reopen()
    core.decide_batch(_batch([(CLIENT, WEB)]))
    assert log.close()
    assert [line["verdict"] for line in lines_of(tmp_path / "decisions.jsonl.1")] == ["DENY"]
    assert [line["verdict"] for line in lines_of(path)] == ["ALLOW"]


# --------------------------------------------------------------------------- helpers


def _core(
    tmp_path: Path, log_filter: LogFilter, **log_options: Any
) -> tuple[DecisionCore, DecisionLog, Path]:
    from .conftest import NAMESPACES, PODS, policy_text

    world = tmp_path / "world"
    world.mkdir()
    (world / "all.yaml").write_text(NAMESPACES + "---\n" + PODS + "---\n" + policy_text(8080))
    index = Index.from_objects(ManifestSource(world).load().objects.values())
    state = ServerState(index)
    state.mark_ready()
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), log_filter, **log_options)
    return DecisionCore(state, decision_log=log), log, path


def _batch(pairs: list[tuple[str, str]]) -> pb.DecideBatchRequest:
    return pb.DecideBatchRequest(flows=[pb.Flow(src_ip=src, dst_ip=dst, dst_port=8080) for src, dst in pairs])


def test_a_denial_by_a_cluster_policy_names_it_and_its_rule(tmp_path: Path) -> None:
    """The example cluster's Admin tier denies all but DNS and metrics into kube-system."""
    from netpol_pdp.examples import CLUSTER

    index = Index.from_objects(ManifestSource(CLUSTER).load().objects.values())
    state = ServerState(index)
    state.mark_ready()
    log = DecisionLog(str(tmp_path / "decisions.jsonl"), LogFilter("deny"))
    core = DecisionCore(state, decision_log=log)
    core.decide(pb.DecideRequest(flow=pb.Flow(src_ip="10.244.1.11", dst_ip="10.244.1.2", dst_port=8080)))
    assert log.close()
    (line,) = lines_of(tmp_path / "decisions.jsonl")
    assert line["reason"] == "denied-by-admin-policy"
    assert line["policies"] == ["ClusterNetworkPolicy protect-kube-system"]
    (rule,) = line["rules"]
    assert (rule["direction"], rule["tier"], rule["action"]) == ("ingress", "Admin", "Deny")


def test_envoy_checks_are_logged_as_check(
    start_service: Callable[..., Service], world: Path, tmp_path: Path, mode: str
) -> None:
    import grpc
    from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc

    svc = logged_service(start_service, world, tmp_path, mode=mode)
    attrs = attribute_context_pb2.AttributeContext()
    attrs.source.address.socket_address.address = INTRUDER
    attrs.destination.address.socket_address.address = WEB
    attrs.destination.address.socket_address.port_value = 8080
    with grpc.insecure_channel(svc.address) as channel:
        stub = external_auth_pb2_grpc.AuthorizationStub(channel)
        for _ in range(2):
            stub.Check(external_auth_pb2.CheckRequest(attributes=attrs), timeout=5)
    svc.close(0.2)
    (line,) = lines_of(tmp_path / "decisions.jsonl")
    assert (line["method"], line["count"], line["verdict"]) == ("Check", 2, "DENY")
    assert line["policies"] == ["shop/web-from-client"]
    assert line["caller"]["peer"].startswith("ipv4:127.0.0.1:")


def test_envoy_plain_http_checks_are_logged_as_check(
    start_service: Callable[..., Service], world: Path, tmp_path: Path
) -> None:
    import http.client

    svc = logged_service(start_service, world, tmp_path, envoy_http_listen="127.0.0.1:0")
    assert svc.envoy_http_port is not None
    conn = http.client.HTTPConnection("127.0.0.1", svc.envoy_http_port, timeout=5)
    statuses = []
    for src, dst in [(INTRUDER, WEB), (INTRUDER, WEB), (CLIENT, WEB), ("10.9.9.9", "no-address")]:
        # the third is allowed; the last is no flow (403 invalid-request), so no decision to log
        conn.request(
            "GET",
            "/",
            headers={"x-netpol-pdp-source": f"{src}:40000", "x-netpol-pdp-destination": f"{dst}:8080"},
        )
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
    port = conn.sock.getsockname()[1]
    conn.close()
    svc.close(0.2)
    assert statuses == [403, 403, 200, 403]
    denied, allowed = sorted(
        lines_of(tmp_path / "decisions.jsonl"), key=lambda line: line["verdict"] != "DENY"
    )
    assert (denied["method"], denied["count"], denied["reason"]) == ("Check", 2, "denied-on-ingress")
    assert denied["calls"] == allowed["calls"] == 3  # the calls of the line's (method, caller, generation)
    assert denied["policies"] == ["shop/web-from-client"]
    assert (denied["src"]["ip"], denied["dst"]["ip"], denied["dst_port"]) == (INTRUDER, WEB, 8080)
    assert (allowed["method"], allowed["count"], allowed["verdict"]) == ("Check", 1, "ALLOW")
    assert denied["caller"]["peer"] == allowed["caller"]["peer"] == f"ipv4:127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--decision-log-filter", "deny"],
            "--decision-log-filter needs --decision-log",
            id="a filter without a log",
        ),
        pytest.param(
            ["--decision-log", "-", "--decision-log-filter", "sample:0"],
            "--decision-log-filter: must be all, deny or sample:N",
            id="a sample of zero",
        ),
        pytest.param(
            ["--decision-log", "-", "--workers", "2"],
            "--decision-log: not available with --workers",
            id="a log with workers",
        ),
    ],
)
def test_decision_log_options_are_checked(argv: list[str], message: str) -> None:
    import argparse

    from netpol_pdp.clients.cmd_serve import add_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        options_from_args(parser.parse_args(argv))


def test_the_options_reach_the_service() -> None:
    import argparse

    from netpol_pdp.clients.cmd_serve import add_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = options_from_args(
        parser.parse_args(
            ["--decision-log", "-", "--decision-log-filter", "sample:10", "--http-listen", "127.0.0.1:0"]
        )
    )
    assert (options.decision_log, str(options.decision_log_filter)) == ("-", "sample:10")
    assert options.http_listen == "127.0.0.1:0"
