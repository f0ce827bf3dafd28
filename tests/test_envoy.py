"""The Envoy ext_authz Authorization service, called the way Envoy calls it.

A real grpc server on 127.0.0.1 (port 0) serves :mod:`netpol_pdp.server.envoy`
over an index of a small cluster; a client built from the ``xds-protos`` stubs
sends CheckRequests shaped exactly as Envoy's filters build them
(``CheckRequestUtils::createTcpCheck`` / ``createHttpCheck``: the downstream
connection's remote address as source, its local address as destination, and
for HTTP the request attributes and per-route ``context_extensions``).  Every
answer is compared with ``Index.decide`` for the same flow.

Rules checked, one group of tests each:

1. an allowed flow is answered OK, a denied one PERMISSION_DENIED, with the
   index's reason and generation in ``dynamic_metadata``;
2. HTTP checks carry a 403 ``denied_response`` (short body, reason header) or
   an ``ok_response`` setting the reason header; network checks carry neither;
3. IPv4, IPv6 and IPv4-mapped IPv6 addresses decide the same flows; the source
   port is irrelevant; the destination port is required;
4. a request that cannot become a flow is denied with reason
   ``invalid-request`` and a message naming the CheckRequest field;
5. ``context_extensions`` options: ``explain`` adds the explanation;
6. no index loaded -> gRPC UNAVAILABLE (Envoy's failure mode decides).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc
from google.protobuf import json_format, timestamp_pb2
from google.rpc import code_pb2

from netpol_pdp.examples import CLUSTER
from netpol_pdp.examples import FLOWS as FLOW_LOG
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow, parse_flow
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.model import Upsert
from netpol_pdp.index.validation import parse_object
from netpol_pdp.server import envoy as ext_authz

AttributeContext = attribute_context_pb2.AttributeContext

# ---------------------------------------------------------------- the world


def _pod(ns: str, name: str, labels: dict[str, str], ips: list[str], ports: list[Any] | None = None) -> Any:
    return {
        "kind": "Pod",
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "ports": ports or []}]},
        "status": {"phase": "Running", "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips]},
    }


MANIFESTS: list[dict[str, Any]] = [
    {"kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "shop"}}},
    {"kind": "Namespace", "metadata": {"name": "probe"}},
    {
        "kind": "Node",
        "metadata": {"name": "node-1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.1"}]},
    },
    _pod("shop", "web", {"app": "web"}, ["10.0.1.10", "fd00::10"], [{"name": "http", "containerPort": 8080}]),
    _pod("shop", "db", {"app": "db"}, ["10.0.1.20", "fd00::20"], [{"name": "pg", "containerPort": 5432}]),
    _pod("probe", "checker", {"app": "checker"}, ["10.0.2.30", "fd00::30"]),
    # db accepts only web on the named port pg (5432/TCP).
    {
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "shop", "name": "db-from-web"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": "pg"}]}
            ],
        },
    },
    # web accepts HTTP on 8080 from anywhere, and may only talk to db and DNS.
    {
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "shop", "name": "web"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"port": 8080}]}],
            "egress": [
                {"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]},
                {"ports": [{"port": 53, "protocol": "UDP"}]},
            ],
        },
    },
]

WEB4, DB4, CHECKER4, NODE4, OUTSIDE4 = "10.0.1.10", "10.0.1.20", "10.0.2.30", "192.168.0.1", "203.0.113.7"
WEB6, DB6, CHECKER6 = "fd00::10", "fd00::20", "fd00::30"


@pytest.fixture(scope="module")
def index() -> Index:
    objects = [parse_object(m) for m in MANIFESTS]
    idx = Index.from_objects(o for o in objects if o is not None)
    assert idx.counts() == {"Namespace": 2, "Pod": 3, "Node": 1, "NetworkPolicy": 2}
    return idx


class _Holder:
    """What the server's index getter reads; a test may empty it to simulate "not loaded yet"."""

    def __init__(self, index: Index | None) -> None:
        self.index = index

    def get(self) -> Index | None:
        return self.index


@pytest.fixture(scope="module")
def holder(index: Index) -> _Holder:
    return _Holder(index)


class _AioServer:
    """A ``grpc.aio`` server on its own event loop thread, as ``netpol-pdp serve`` runs it by default."""

    def __init__(self, getter: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aio-test-server", daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(getter), self.loop).result(10)

    async def _start(self, getter: Any) -> int:
        self.server = grpc.aio.server()
        servicer = ext_authz.add_to_server(self.server, getter)
        assert isinstance(servicer, ext_authz.AioAuthorizationServicer)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return port

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class _ThreadPoolServer:
    def __init__(self, getter: Any) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        servicer = ext_authz.add_to_server(self.server, getter)
        assert type(servicer) is ext_authz.AuthorizationServicer
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self) -> None:
        self.server.stop(None)


@pytest.fixture(
    scope="module", params=[_ThreadPoolServer, _AioServer], ids=["thread-pool server", "aio server"]
)
def stub(request: pytest.FixtureRequest, holder: _Holder) -> Iterator[Any]:
    server = request.param(holder.get)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield external_auth_pb2_grpc.AuthorizationStub(channel)
    finally:
        channel.close()
        server.stop()


# ---------------------------------------------------------------- requests shaped as Envoy's


def _peer(ip: str | None, port: int | None, **extra: Any) -> Any:
    peer = AttributeContext.Peer(**extra)
    if ip is not None:
        peer.address.socket_address.address = ip
        if port is not None:
            peer.address.socket_address.port_value = port
    return peer


def network_check(src: str, dst: str, dst_port: int | None, src_port: int | None = 40312) -> Any:
    """What ``envoy.filters.network.ext_authz`` sends once per connection: two peers, nothing else."""
    return external_auth_pb2.CheckRequest(
        attributes=AttributeContext(source=_peer(src, src_port), destination=_peer(dst, dst_port))
    )


def http_check(
    src: str,
    dst: str,
    dst_port: int | None,
    src_port: int | None = 40312,
    extensions: dict[str, str] | None = None,
) -> Any:
    """What ``envoy.filters.http.ext_authz`` sends per request: the peers, the request, route options."""
    host = f"[{dst}]:{dst_port}" if ":" in dst else f"{dst}:{dst_port}"
    headers = {
        ":authority": host,
        ":method": "GET",
        ":path": "/orders?id=7",
        ":scheme": "http",
        "user-agent": "curl/8.5.0",
        "x-forwarded-proto": "http",
        "x-request-id": "b7e3c1f0",
    }
    return external_auth_pb2.CheckRequest(
        attributes=AttributeContext(
            source=_peer(src, src_port, service="shop-web"),
            destination=_peer(dst, dst_port),
            request=AttributeContext.Request(
                time=timestamp_pb2.Timestamp(seconds=1_764_112_000),
                http=AttributeContext.HttpRequest(
                    id="1402",
                    method="GET",
                    headers=headers,
                    path="/orders?id=7",
                    host=host,
                    scheme="http",
                    protocol="HTTP/1.1",
                    size=0,
                ),
            ),
            context_extensions=extensions or {},
        )
    )


FILTERS = {"network filter": network_check, "HTTP filter": http_check}


def _metadata(response: Any) -> dict[str, Any]:
    return json_format.MessageToDict(response.dynamic_metadata)


def _assert_matches_decision(response: Any, decision: Decision, http: bool) -> None:
    """The response is what Envoy needs to enforce ``decision``, and says why."""
    expected_code = code_pb2.OK if decision.allowed else code_pb2.PERMISSION_DENIED
    assert response.status.code == expected_code
    meta = _metadata(response)
    assert meta["verdict"] == decision.verdict.value
    assert meta["reason"] == decision.reason.value
    assert meta["generation"] == decision.generation
    assert meta["src"] == str(decision.src)
    assert meta["dst"] == str(decision.dst)
    reason_header = base_pb2.HeaderValue(key=ext_authz.REASON_HEADER, value=decision.reason.value)
    if not http:
        assert not response.HasField("ok_response")
        assert not response.HasField("denied_response")
    elif decision.allowed:
        assert [h.header for h in response.ok_response.headers] == [reason_header]
        assert not response.HasField("denied_response")
    else:
        denied = response.denied_response
        assert denied.status.code == 403
        assert [h.header for h in denied.headers] == [reason_header]
        assert decision.reason.value in denied.body
        assert len(denied.body) < 200
        assert not response.HasField("ok_response")


# ---------------------------------------------------------------- 1-3: answers follow the index

FLOWS = [
    pytest.param((WEB4, DB4, 5432), id="web may reach db on its named port pg"),
    pytest.param((WEB4, DB4, 80), id="web may not reach db on another port"),
    pytest.param((CHECKER4, DB4, 5432), id="a pod of another namespace may not reach db"),
    pytest.param((CHECKER4, WEB4, 8080), id="anyone may reach web on 8080"),
    pytest.param((CHECKER4, WEB4, 9090), id="nobody may reach web on 9090"),
    pytest.param((WEB4, CHECKER4, 443), id="web may not leave for an unlisted pod"),
    pytest.param((OUTSIDE4, WEB4, 8080), id="an external client may reach web on 8080"),
    pytest.param((NODE4, DB4, 5432), id="the node may reach its pods"),
    pytest.param((OUTSIDE4, NODE4, 22), id="no pod involved"),
    pytest.param((WEB6, DB6, 5432), id="IPv6: web may reach db on pg"),
    pytest.param((CHECKER6, DB6, 5432), id="IPv6: another namespace may not reach db"),
    pytest.param((WEB6, DB6, 22), id="IPv6: web may not reach db on 22"),
]


@pytest.mark.parametrize("make", FILTERS.values(), ids=FILTERS.keys())
@pytest.mark.parametrize("flow", FLOWS)
def test_a_check_is_answered_as_the_index_decides(
    stub: Any, index: Index, make: Any, flow: tuple[str, str, int]
) -> None:
    src, dst, port = flow
    response = stub.Check(make(src, dst, port))
    _assert_matches_decision(response, index.decide(Flow(src, dst, "TCP", port)), make is http_check)


def test_every_flow_between_the_worlds_addresses_is_answered_as_the_index_decides(
    stub: Any, index: Index
) -> None:
    addresses = [WEB4, DB4, CHECKER4, NODE4, OUTSIDE4]
    verdicts = set()
    for src, dst, port in itertools.product(addresses, addresses, [53, 5432, 8080]):
        decision = index.decide(Flow(src, dst, "TCP", port))
        verdicts.add(decision.verdict)
        _assert_matches_decision(stub.Check(network_check(src, dst, port)), decision, http=False)
    assert len(verdicts) == 2, "the world must produce both verdicts for this test to mean anything"


def test_the_bundled_clusters_flow_log_is_answered_as_the_index_decides() -> None:
    """Every TCP and UDP flow of ``examples/flows.jsonl``, through both filters' request shapes,
    against a second server over the bundled example cluster."""
    cluster = Index.from_objects(ManifestSource(CLUSTER).load().objects.values())
    flows = [parse_flow(json.loads(line)) for line in FLOW_LOG.read_text().splitlines() if line.strip()]
    flows = [f for f in flows if f.protocol in ("TCP", "UDP")]  # ext_authz cannot carry ICMP
    assert len(flows) >= 30
    server = _ThreadPoolServer(lambda: cluster)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            cluster_stub = external_auth_pb2_grpc.AuthorizationStub(channel)
            reasons = set()
            for flow in flows:
                decision = cluster.decide(flow)
                reasons.add(decision.reason)
                for make in FILTERS.values():
                    request = make(flow.src_ip, flow.dst_ip, flow.dst_port)
                    if flow.protocol == "UDP":
                        request.attributes.destination.address.socket_address.protocol = (
                            address_pb2.SocketAddress.UDP
                        )
                    _assert_matches_decision(cluster_stub.Check(request), decision, make is http_check)
    finally:
        server.stop()
    assert len(reasons) >= 6, f"the flow log should exercise most reasons, got {sorted(reasons)}"


@pytest.mark.parametrize(
    ("src", "dst", "same_as"),
    [
        pytest.param(
            "::ffff:10.0.1.10", "::ffff:10.0.1.20", (WEB4, DB4), id="IPv4-mapped IPv6 is the IPv4 flow"
        ),
        pytest.param("fd00:0:0:0:0:0:0:10", "fd00::20", (WEB6, DB6), id="uncompressed IPv6 is canonicalised"),
        pytest.param("fe80::1%eth0", DB6, ("fe80::1", DB6), id="an IPv6 zone is dropped"),
        pytest.param("[fd00::10]", "[fd00::20]", (WEB6, DB6), id="IPv6 in brackets is read without them"),
    ],
)
def test_addresses_are_read_as_the_index_knows_them(
    stub: Any, index: Index, src: str, dst: str, same_as: tuple[str, str]
) -> None:
    response = stub.Check(network_check(src, dst, 5432))
    _assert_matches_decision(response, index.decide(Flow(*same_as, "TCP", 5432)), http=False)
    assert _metadata(response)["flow"] == f"{same_as[0]} -> {same_as[1]} TCP/5432"


@pytest.mark.parametrize("make", FILTERS.values(), ids=FILTERS.keys())
def test_the_source_port_is_not_needed(stub: Any, index: Index, make: Any) -> None:
    response = stub.Check(make(WEB4, DB4, 5432, src_port=None))
    _assert_matches_decision(response, index.decide(Flow(WEB4, DB4, "TCP", 5432)), make is http_check)


def test_a_udp_socket_address_is_decided_as_udp(stub: Any, index: Index) -> None:
    request = network_check(WEB4, CHECKER4, 53)
    request.attributes.destination.address.socket_address.protocol = address_pb2.SocketAddress.UDP
    response = stub.Check(request)
    decision = index.decide(Flow(WEB4, CHECKER4, "UDP", 53))
    assert decision.allowed, "web's egress allows UDP 53 anywhere"
    assert not index.decide(Flow(WEB4, CHECKER4, "TCP", 53)).allowed
    _assert_matches_decision(response, decision, http=False)


def test_allowed_http_requests_overwrite_a_reason_header_sent_by_the_client(stub: Any) -> None:
    response = stub.Check(http_check(WEB4, DB4, 5432))
    (header,) = response.ok_response.headers
    assert header.append_action == base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def test_the_denial_body_names_the_flow_and_generation(stub: Any, index: Index) -> None:
    response = stub.Check(http_check(CHECKER4, DB4, 5432))
    assert response.denied_response.body == (
        f"netpol-pdp: denied-on-ingress: 10.0.2.30 -> 10.0.1.20 TCP/5432 (generation {index.generation})\n"
    )
    assert response.status.message in response.denied_response.body


# ---------------------------------------------------------------- 4: requests that are not flows


def _without_attributes(request: Any) -> Any:
    request.ClearField("attributes")
    return request


def _without(path: str) -> Any:
    def tweak(request: Any) -> Any:
        *parents, last = path.split(".")
        message = request.attributes
        for name in parents:
            message = getattr(message, name)
        message.ClearField(last)
        return request

    return tweak


def _set(path: str, value: Any) -> Any:
    def tweak(request: Any) -> Any:
        *parents, last = path.split(".")
        message = request.attributes
        for name in parents:
            message = getattr(message, name)
        if isinstance(value, dict) and last == "context_extensions":
            getattr(message, last).update(value)
        elif isinstance(value, dict):
            json_format.ParseDict(value, getattr(message, last))
        else:
            setattr(message, last, value)
        return request

    return tweak


INVALID = [
    pytest.param(_without_attributes, "attributes", id="no attributes at all"),
    pytest.param(_without("source"), "attributes.source.address", id="no source peer"),
    pytest.param(_without("source.address"), "attributes.source.address", id="no source address"),
    pytest.param(_without("destination"), "attributes.destination.address", id="no destination peer"),
    pytest.param(
        _without("destination.address.socket_address.port_value"),
        "attributes.destination.address.socket_address.port_value",
        id="no destination port",
    ),
    pytest.param(
        _set("destination.address.socket_address.port_value", 0),
        "attributes.destination.address.socket_address.port_value",
        id="destination port zero",
    ),
    pytest.param(
        _set("destination.address.socket_address.named_port", "http"),
        "attributes.destination.address.socket_address.named_port",
        id="a named destination port",
    ),
    pytest.param(
        _set("source.address.socket_address.address", "not-an-ip"),
        "attributes.source.address.socket_address.address",
        id="an unparsable source IP",
    ),
    pytest.param(
        _set("destination.address.socket_address.address", "10.0.1.300"),
        "attributes.destination.address.socket_address.address",
        id="an out-of-range destination IP",
    ),
    pytest.param(
        _set("source.address.socket_address.address", ""),
        "attributes.source.address.socket_address.address",
        id="an empty source IP",
    ),
    pytest.param(
        _set("destination.address", {"pipe": {"path": "/run/app.sock"}}),
        "attributes.destination.address.pipe",
        id="a unix socket destination",
    ),
    pytest.param(
        _set("source.address", {"envoyInternalAddress": {"serverListenerName": "inner"}}),
        "attributes.source.address.envoy_internal_address",
        id="an Envoy internal source",
    ),
    pytest.param(
        _set("destination.address.socket_address.resolver_name", "dns"),
        "attributes.destination.address.socket_address.resolver_name",
        id="a destination to be resolved by name",
    ),
    pytest.param(
        _set("destination.address.socket_address.port_value", 70000),
        "attributes.destination.address.socket_address.port_value",
        id="a destination port above 65535 (the field is a uint32)",
    ),
    pytest.param(
        _set("source.address.socket_address.address", "1" * 100_000),
        "attributes.source.address.socket_address.address",
        id="an address of 100,000 characters",
    ),
    pytest.param(
        _set("context_extensions", {"explain": "maybe"}),
        "attributes.context_extensions[explain]",
        id="an explain option that is not a boolean",
    ),
]


@pytest.mark.parametrize("make", FILTERS.values(), ids=FILTERS.keys())
@pytest.mark.parametrize(("tweak", "field"), INVALID)
def test_a_request_that_is_not_a_flow_is_denied_naming_the_field(
    stub: Any, make: Any, tweak: Any, field: str
) -> None:
    response = stub.Check(tweak(make(WEB4, DB4, 5432)))
    assert response.status.code == code_pb2.PERMISSION_DENIED
    assert response.status.message.startswith(f"invalid-request: {field}: ")
    meta = _metadata(response)
    assert meta["reason"] == ext_authz.INVALID_REQUEST
    assert meta["error"].startswith(f"{field}: ")
    if make is http_check and field != "attributes":
        denied = response.denied_response
        assert denied.status.code == 403
        assert [h.header.value for h in denied.headers] == [ext_authz.INVALID_REQUEST]
        assert field in denied.body
    else:
        assert not response.HasField("denied_response")


# ---------------------------------------------------------------- 5: options


@pytest.mark.parametrize("value", ["true", "True", "1"])
def test_explain_puts_the_explanation_in_the_dynamic_metadata(stub: Any, index: Index, value: str) -> None:
    response = stub.Check(http_check(CHECKER4, DB4, 5432, extensions={"explain": value}))
    decision = index.decide(Flow(CHECKER4, DB4, "TCP", 5432), explain=True)
    _assert_matches_decision(response, decision, http=True)
    assert _metadata(response)["explanation"] == decision.to_dict()["explanation"]


@pytest.mark.parametrize(
    "extensions",
    [
        pytest.param({}, id="no options"),
        pytest.param({"explain": "false"}, id="explain false"),
        pytest.param({"virtual_host": "shop"}, id="only options meant for others"),
    ],
)
def test_without_explain_there_is_no_explanation(stub: Any, extensions: dict[str, str]) -> None:
    response = stub.Check(http_check(CHECKER4, DB4, 5432, extensions=extensions))
    assert response.status.code == code_pb2.PERMISSION_DENIED
    assert "explanation" not in _metadata(response)


# ---------------------------------------------------------------- 6: not ready


def test_no_index_loaded_is_unavailable_not_a_denial(stub: Any, holder: _Holder) -> None:
    saved, holder.index = holder.index, None
    try:
        with pytest.raises(grpc.RpcError) as raised:
            stub.Check(network_check(WEB4, DB4, 5432))
    finally:
        holder.index = saved
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "not ready" in raised.value.details()
    assert stub.Check(network_check(WEB4, DB4, 5432)).status.code == code_pb2.OK


# ---------------------------------------------------------------- metrics


def test_checks_are_counted_in_the_servers_metrics(index: Index) -> None:
    from netpol_pdp.server.metrics import Metrics

    metrics = Metrics(lambda: index.generation, lambda: True, lambda: (0, 0))
    servicer = ext_authz.AuthorizationServicer(
        lambda flow, explain: index.decide(flow, explain=explain), metrics
    )
    servicer.check(network_check(WEB4, DB4, 5432))
    servicer.check(http_check(CHECKER4, DB4, 5432))
    servicer.check(network_check(WEB4, DB4, None))
    sample = metrics.registry.get_sample_value
    assert sample("netpol_pdp_rpc_duration_seconds_count", {"method": "Check"}) == 2
    assert sample("netpol_pdp_decisions_total", {"verdict": "ALLOW", "reason": "allowed-by-policy"}) == 1
    assert sample("netpol_pdp_decisions_total", {"verdict": "DENY", "reason": "denied-on-ingress"}) == 1
    field = "attributes.destination.address.socket_address.port_value"
    assert sample("netpol_pdp_flow_errors_total", {"field": field}) == 1


# ---------------------------------------------------------------- built responses are reused, never stale


def test_a_new_generation_is_answered_anew() -> None:
    objects = [parse_object(m) for m in MANIFESTS]
    index = Index.from_objects(o for o in objects if o is not None)
    servicer = ext_authz.AuthorizationServicer(lambda flow, explain: index.decide(flow, explain=explain))
    request = network_check(CHECKER4, DB4, 5432)
    first = servicer.check(request)
    assert first.status.code == code_pb2.PERMISSION_DENIED
    assert servicer.check(request) is first, "the same flow at the same generation reuses the response"
    allow_probe = parse_object(
        {
            "kind": "NetworkPolicy",
            "metadata": {"namespace": "shop", "name": "db-from-probe"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "probe"}}}
                        ]
                    }
                ],
            },
        }
    )
    assert allow_probe is not None
    generation = index.apply([Upsert(allow_probe)])
    after = servicer.check(request)
    assert after.status.code == code_pb2.OK
    assert _metadata(after)["generation"] == generation


def test_kept_responses_are_bounded(monkeypatch: pytest.MonkeyPatch, index: Index) -> None:
    monkeypatch.setattr(ext_authz, "RESPONSE_CACHE_SIZE", 5)
    servicer = ext_authz.AuthorizationServicer(lambda flow, explain: index.decide(flow, explain=explain))
    for port in range(1000, 1040):
        response = servicer.check(network_check(CHECKER4, DB4, port))
        assert _metadata(response)["flow"] == f"{CHECKER4} -> {DB4} TCP/{port}"
        assert len(servicer._responses) <= 5


def test_explained_answers_are_built_each_time(index: Index) -> None:
    servicer = ext_authz.AuthorizationServicer(lambda flow, explain: index.decide(flow, explain=explain))
    request = http_check(CHECKER4, DB4, 5432, extensions={"explain": "true"})
    assert servicer.check(request) is not servicer.check(request)
    assert "explanation" not in _metadata(servicer.check(http_check(CHECKER4, DB4, 5432)))
