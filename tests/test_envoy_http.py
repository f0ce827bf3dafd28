"""server/envoy_http.py: the HTTP authorization answers of ``serve --envoy-http-listen``.

Requests are real HTTP/1.1 over loopback to an :class:`HttpAuthorizer`, shaped as
Envoy's ``http_service`` sends them (the two address headers its
``headers_to_add`` writes), answered from the index and from the reference
evaluator alike.  tests/rpc/test_envoy_real.py runs it behind a real Envoy.
"""

from __future__ import annotations

import argparse
import http.client
from collections.abc import Iterator
from typing import Any

import pytest
from test_envoy import CHECKER4, DB4, DB6, MANIFESTS, NODE4, OUTSIDE4, WEB4, WEB6

from netpol_pdp.clients import cmd_serve
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import parse_object
from netpol_pdp.index.reference import ReferenceEvaluator
from netpol_pdp.server.config import ConfigError
from netpol_pdp.server.envoy_http import HttpAuthorizer

OBJECTS = [o for o in (parse_object(m) for m in MANIFESTS) if o is not None]
DECIDERS = {"index": lambda: Index.from_objects(OBJECTS), "reference": lambda: ReferenceEvaluator(OBJECTS)}


@pytest.fixture(params=DECIDERS.values(), ids=DECIDERS.keys())
def authorizer(request: pytest.FixtureRequest) -> Iterator[tuple[Any, int]]:
    decider = request.param()
    server = HttpAuthorizer(lambda: decider)
    port = server.start("127.0.0.1", 0)
    yield decider, port
    server.stop()


def ask(port: int, headers: dict[str, str]) -> tuple[int, str | None, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/any/path", headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("x-netpol-pdp-reason"), response.read().decode()
    finally:
        conn.close()


def envoy_headers(src: str, dst: str) -> dict[str, str]:
    return {"x-netpol-pdp-source": src, "x-netpol-pdp-destination": dst}


FLOWS = [
    pytest.param((WEB4, DB4, 5432), id="web may reach db on pg"),
    pytest.param((CHECKER4, DB4, 5432), id="another namespace may not reach db"),
    pytest.param((OUTSIDE4, WEB4, 8080), id="an external client may reach web on 8080"),
    pytest.param((NODE4, DB4, 5432), id="the node may reach its pods"),
    pytest.param((WEB6, DB6, 5432), id="IPv6: web may reach db on pg"),
]


@pytest.mark.parametrize("flow", FLOWS)
def test_an_authorization_request_is_answered_as_the_decider_decides(
    authorizer: tuple[Any, int], flow: tuple[str, str, int]
) -> None:
    decider, port = authorizer
    src, dst, dst_port = flow
    decision = decider.decide(Flow(src, dst, "TCP", dst_port))
    bracket = (lambda ip: f"[{ip}]") if ":" in dst else (lambda ip: ip)
    status, reason, body = ask(port, envoy_headers(f"{bracket(src)}:40312", f"{bracket(dst)}:{dst_port}"))
    assert reason == decision.reason.value
    if decision.allowed:
        assert (status, body) == (200, "")
    else:
        assert status == 403
        flow_text = f"{src} -> {dst} TCP/{dst_port}"
        assert body == f"netpol-pdp: {reason}: {flow_text} (generation {decision.generation})\n"


SRC, DST = f"{WEB4}:1", f"{DB4}:5432"
BAD = [
    pytest.param({}, "x-netpol-pdp-source: is missing", id="no headers: Envoy's headers_to_add missing"),
    pytest.param({"x-netpol-pdp-source": SRC}, "x-netpol-pdp-destination: is missing", id="no destination"),
    pytest.param(envoy_headers(WEB4, DST), "x-netpol-pdp-source: must be ip:port", id="no source port"),
    pytest.param(envoy_headers("web:1", DST), "must be an IPv4 or [IPv6] address", id="a host name"),
    pytest.param(envoy_headers(SRC, f"{DB4}:0"), "port must be between 1 and 65535", id="port 0"),
]


@pytest.mark.parametrize(("headers", "message"), BAD)
def test_a_request_that_is_not_a_flow_is_refused_naming_the_header(
    authorizer: tuple[Any, int], headers: dict[str, str], message: str
) -> None:
    status, reason, body = ask(authorizer[1], headers)
    assert (status, reason) == (403, "invalid-request")
    assert body.startswith("netpol-pdp: invalid-request: ") and message in body
    assert body.count("\n") == 1


def test_no_index_yet_is_a_503_not_a_denial() -> None:
    server = HttpAuthorizer(lambda: None)
    port = server.start("127.0.0.1", 0)
    try:
        status, reason, _ = ask(port, envoy_headers(f"{WEB4}:1", f"{DB4}:5432"))
        assert (status, reason) == (503, None)
    finally:
        server.stop()


def test_keep_alive_answers_every_request_on_one_connection(authorizer: tuple[Any, int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", authorizer[1], timeout=5)
    try:
        for src, expected in [(WEB4, 200), (CHECKER4, 403)] * 3:
            conn.request("POST", "/", body=b"ignored", headers=envoy_headers(f"{src}:9", f"{DB4}:5432"))
            response = conn.getresponse()
            response.read()
            assert response.status == expected
    finally:
        conn.close()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.errors: list[str] = []

    def observe(self, method: str, seconds: float, decisions: Any, flows: int | None) -> None:
        (decision,) = decisions
        self.calls.append((method, decision.reason.value))

    def flow_error(self, field: str) -> None:
        self.errors.append(field)


def test_every_request_is_counted_cached_or_not() -> None:
    recorder, index = Recorder(), Index.from_objects(OBJECTS)
    server = HttpAuthorizer(lambda: index, recorder)
    port = server.start("127.0.0.1", 0)
    try:
        for src_port in (1, 2, 3):  # the same flow from three connections: answered from the cache
            assert ask(port, envoy_headers(f"{WEB4}:{src_port}", f"{DB4}:5432"))[0] == 200
        assert ask(port, envoy_headers(f"{WEB4}:1", f"{DB4}:0"))[0] == 403
    finally:
        server.stop()
    assert recorder.calls == [("Check", "allowed-by-policy")] * 3
    assert recorder.errors == ["x-netpol-pdp-destination"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--envoy-http-listen", "50052"], "--envoy-http-listen", id="no host"),
        pytest.param(
            ["--envoy-http-listen", "0.0.0.0:50052"],
            "plain HTTP beyond loopback needs --insecure",
            id="beyond loopback without --insecure",
        ),
        pytest.param(
            ["--envoy-http-listen", "127.0.0.1:0", "--workers", "2"],
            "give a fixed one",
            id="port 0 with workers",
        ),
    ],
)
def test_serve_names_a_bad_envoy_http_listen(argv: list[str], message: str) -> None:
    parser = argparse.ArgumentParser()
    cmd_serve.add_arguments(parser)
    with pytest.raises(ConfigError, match=message):
        cmd_serve.options_from_args(parser.parse_args(argv))
