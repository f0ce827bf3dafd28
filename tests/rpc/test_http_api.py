"""The HTTP/JSON API (``serve --http-listen``) through a real HTTP client (urllib), plain and over TLS."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netpol_pdp.clients.cmd_serve import check_http_listen
from netpol_pdp.server.app import TlsConfig
from netpol_pdp.server.config import ConfigError
from netpol_pdp.server.http_api import HttpApi, route_path
from netpol_pdp.server.serve import Service

from .conftest import CLIENT, INTRUDER, WEB, Pki, scrape_metrics


def call(
    svc: Service | int,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    method: str | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of one request to the service's HTTP port on 127.0.0.1."""
    port = svc if isinstance(svc, int) else svc.http_port
    scheme = "https" if context is not None else "http"
    host = "localhost" if context is not None else "127.0.0.1"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        f"{scheme}://{host}:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def http(start_service: Callable[..., Service], world: Path, tmp_path: Path) -> Service:
    svc = start_service(
        [world],
        http_listen="127.0.0.1:0",
        metrics_listen="127.0.0.1:0",
        max_batch=100,
        decision_log=str(tmp_path / "decisions.jsonl"),
    )
    assert svc.state.wait_ready(10)
    return svc


def test_routes_are_named_for_the_rpcs() -> None:
    assert [route_path(name) for name in ("Decide", "DecideBatch", "GetStatus")] == [
        "/v1/decide",
        "/v1/decide-batch",
        "/v1/get-status",
    ]


def test_decide_takes_and_gives_the_proto_json_mapping(http: Service) -> None:
    status, body = call(http, "/v1/decide", {"flow": {"srcIp": INTRUDER, "dstIp": WEB, "dstPort": 8080}})
    assert status == 200
    decision = body["decision"]
    assert (decision["verdict"], decision["reason"]) == ("VERDICT_DENY", "REASON_DENIED_ON_INGRESS")
    assert decision["dst"] == {"kind": "ENDPOINT_KIND_POD", "name": "shop/web", "namespace": "shop"}
    assert decision["generation"] == str(http.index.generation)  # uint64: a string in proto JSON


def test_the_proto_field_names_are_accepted_too(http: Service) -> None:
    status, body = call(
        http, "/v1/decide", {"flow": {"src_ip": CLIENT, "dst_ip": WEB, "dst_port": 8080}, "explain": True}
    )
    assert status == 200
    assert body["decision"]["verdict"] == "VERDICT_ALLOW"
    ingress = body["decision"]["explanation"]["ingress"]
    assert ingress["allowedBy"] == [{"policy": "shop/web-from-client"}]  # rule 0: a default, omitted


def test_ends_by_name(http: Service) -> None:
    status, body = call(
        http, "/v1/decide", {"flow": {"srcName": "shop/client", "dstName": "shop/web", "dstPort": 8080}}
    )
    assert status == 200, body
    assert body["decision"]["verdict"] == "VERDICT_ALLOW"


def test_decide_batch_answers_each_flow_and_a_malformed_one_in_its_slot(http: Service) -> None:
    flows = [
        {"srcIp": INTRUDER, "dstIp": WEB, "dstPort": 8080},
        {"srcIp": CLIENT, "dstIp": WEB, "dstPort": 0},
        {"srcIp": CLIENT, "dstIp": WEB, "dstPort": 8080},
    ]
    status, body = call(http, "/v1/decide-batch", {"requestId": "7", "flows": flows})
    assert status == 200
    assert body["requestId"] == "7"
    first, bad, last = body["results"]
    assert first["decision"]["verdict"] == "VERDICT_DENY"
    assert bad["error"]["field"] == "dst_port"
    assert last["decision"]["verdict"] == "VERDICT_ALLOW"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param(
            {"flow": {"srcIp": CLIENT, "dstIp": WEB, "dstPort": 0}},
            "flow.dst_port",
            "dst_port: must be between 1 and 65535",
            id="a port out of range names flow.dst_port",
        ),
        pytest.param(
            {"flow": {"srcIp": "10.0.0.300", "dstIp": WEB, "dstPort": 80}},
            "flow.src_ip",
            "src_ip: must be an IPv4 or IPv6 address",
            id="a bad address names flow.src_ip",
        ),
        pytest.param(
            {"flow": {"srcIp": CLIENT, "dstIp": WEB, "dstPort": "eighty"}},
            "body",
            "body: not a DecideRequest in JSON",
            id="a value of the wrong type is a body error",
        ),
        pytest.param(
            {"flow": {"srcIp": CLIENT, "dstIp": WEB, "port": 80}},
            "body",
            "body: not a DecideRequest in JSON",
            id="an unknown field is a body error",
        ),
    ],
)
def test_an_invalid_flow_is_a_400_naming_the_field(
    http: Service, body: dict[str, Any], field: str, message: str
) -> None:
    status, answer = call(http, "/v1/decide", body)
    assert status == 400
    error = answer["error"]
    assert (error["code"], error["status"], error["grpc_code"], error["field"]) == (
        400,
        "INVALID_ARGUMENT",
        3,
        field,
    )
    assert error["message"].startswith(message)


def test_a_body_that_is_no_json_is_a_400(http: Service) -> None:
    status, answer = call(http, "/v1/decide", raw=b"{not json")
    assert (status, answer["error"]["field"]) == (400, "body")


def test_a_batch_over_the_limit_is_a_413(http: Service) -> None:
    flows = [{"srcIp": CLIENT, "dstIp": WEB, "dstPort": 8080}] * 101
    status, answer = call(http, "/v1/decide-batch", {"flows": flows})
    assert status == 413
    assert answer["error"]["status"] == "INVALID_ARGUMENT"
    assert answer["error"]["message"].startswith("flows: a batch holds at most 100 flows (got 101)")


def test_a_body_over_the_size_limit_is_a_413(http: Service) -> None:
    api = HttpApi(http.core, max_body=1000)
    port = api.start("127.0.0.1", 0)
    try:
        flows = [{"srcIp": CLIENT, "dstIp": WEB, "dstPort": 8080}] * 50
        status, answer = call(port, "/v1/decide-batch", {"flows": flows})
    finally:
        api.stop()
    assert status == 413
    assert answer["error"]["message"] == "body: larger than 1000 bytes"


def test_before_the_first_load_every_decision_is_a_503(
    start_service: Callable[..., Service], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: Not A Name}\n")
    svc = start_service([broken], http_listen="127.0.0.1:0", wait_for_source=True)
    status, answer = call(svc, "/v1/decide", {"flow": {"srcIp": CLIENT, "dstIp": WEB, "dstPort": 80}})
    assert status == 503
    assert answer["error"]["status"] == "UNAVAILABLE"
    assert answer["error"]["message"].startswith("not ready")
    status, body = call(svc, "/v1/status")
    assert status == 200 and not body.get("ready", False)


def test_status_is_a_get(http: Service) -> None:
    status, body = call(http, "/v1/status")
    assert status == 200
    assert body["ready"] is True
    assert body["maxBatchFlows"] == 100
    assert body["decisionLog"]["filter"] == "all"


@pytest.mark.parametrize(
    ("path", "method", "code"),
    [
        pytest.param("/v1/nothing", "POST", 404, id="an unknown route is a 404 listing the routes"),
        pytest.param("/v1/decide", "GET", 405, id="a GET of a POST route is a 405"),
    ],
)
def test_unknown_routes_and_methods_are_json_errors(http: Service, path: str, method: str, code: int) -> None:
    status, answer = call(http, path, method=method)
    assert status == code
    assert answer["error"]["code"] == code


def test_http_calls_count_in_the_metrics_and_the_decision_log(http: Service, tmp_path: Path) -> None:
    call(http, "/v1/decide", {"flow": {"srcIp": INTRUDER, "dstIp": WEB, "dstPort": 8080}})
    call(http, "/v1/decide-batch", {"flows": [{"srcIp": CLIENT, "dstIp": WEB, "dstPort": 8080}] * 3})
    metrics = scrape_metrics(http.metrics_port or 0)
    assert metrics['netpol_pdp_rpc_duration_seconds_count{method="HTTP/Decide"}'] == 1
    assert metrics['netpol_pdp_batch_flows_count{method="HTTP/DecideBatch"}'] == 1
    http.close(0.2)
    lines = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert [(line["method"], line["count"]) for line in lines] == [
        ("HTTP/Decide", 1),
        ("HTTP/DecideBatch", 3),
    ]
    assert lines[0]["policies"] == ["shop/web-from-client"]
    assert lines[0]["caller"]["peer"].startswith("ipv4:127.0.0.1:")


def test_mutual_tls_over_http_admits_the_client_certificate_and_logs_its_subject(
    start_service: Callable[..., Service], world: Path, tmp_path: Path, pki: Pki
) -> None:
    tls = TlsConfig(pki.server_cert, pki.server_key, client_ca=pki.ca)
    svc = start_service(
        [world], tls=tls, http_listen="127.0.0.1:0", decision_log=str(tmp_path / "decisions.jsonl")
    )
    assert svc.state.wait_ready(10)
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    status, body = call(
        svc, "/v1/decide", {"flow": {"srcIp": CLIENT, "dstIp": WEB, "dstPort": 8080}}, context=context
    )
    assert status == 200 and body["decision"]["verdict"] == "VERDICT_ALLOW"
    without_cert = ssl.create_default_context(cafile=str(pki.ca))
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
        call(svc, "/v1/status", context=without_cert)
    svc.close(0.2)
    (line,) = [json.loads(x) for x in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert line["caller"]["subject"] == "CN=test-client"


def test_plaintext_http_beyond_loopback_needs_insecure() -> None:
    with pytest.raises(ConfigError, match=r"^--http-listen 0.0.0.0:8080: serving plaintext beyond loopback"):
        check_http_listen("0.0.0.0:8080", tls=False, insecure=False)
    check_http_listen("0.0.0.0:8080", tls=True, insecure=False)
    check_http_listen("0.0.0.0:8080", tls=False, insecure=True)
    with pytest.raises(ConfigError, match=r"^--http-listen: must be HOST:PORT"):
        check_http_listen("8080", tls=False, insecure=False)


def test_reach_and_matrix_are_routes_too(http: Service) -> None:
    status, body = call(http, "/v1/reach", {"pod": "shop/web", "direction": "ingress"})
    assert status == 200, body
    assert "shop/web-from-client" in json.dumps(body)
    status, body = call(http, "/v1/matrix", {"namespace": "shop", "ports": ["8080"]})
    assert status == 200, body
    assert body["pods"] == ["shop/client", "shop/web"]
    (table,) = body["tables"]
    web_column = [row[1] for row in table["rows"]]
    assert web_column == [".", "."]  # client -> web allowed on 8080; web -> web is loopback
    metrics = scrape_metrics(http.metrics_port or 0)
    assert metrics['netpol_pdp_rpc_duration_seconds_count{method="HTTP/Reach"}'] == 1
    assert metrics['netpol_pdp_rpc_duration_seconds_count{method="HTTP/Matrix"}'] == 1


def test_a_bad_reach_request_is_a_400(http: Service) -> None:
    status, body = call(http, "/v1/reach", {"pod": "shop/nobody"})
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
