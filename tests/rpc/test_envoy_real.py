"""The shipped Envoy examples, run by a real Envoy against a real ``netpol-pdp serve``.

Each Envoy serves a shipped bootstrap with only its addresses and ports
replaced (tests/envoyproc.py).  The test world's pods have loopback addresses,
so real clients connect from bound source addresses: ``web`` (127.0.0.11) may
reach ``db`` (127.0.0.10, where both Envoy listeners are) and ``intruder``
(127.0.0.12, another namespace) may not.  What the services behind Envoy saw
is counted by the services themselves.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import envoyproc
import pytest
import yaml
from envoyproc import BOOTSTRAPS, EXAMPLES, Envoy, Upstream, bootstrap, free_port, talk

from .conftest import replace_file, wait_for
from .test_serve_process import ServerProcess

BINARY = envoyproc.envoy_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None or not BINARY.exists(),
    reason=envoyproc.missing_reason(),
)

DB, WEB, INTRUDER = "127.0.0.10", "127.0.0.11", "127.0.0.12"
BANNER = b"220 db.shop ready\r\n"
HELLO = b"HELLO netpol-pdp\r\n"


def world(ports: tuple[int, ...], from_any_namespace: bool = False) -> str:
    """db guarded by one policy: ingress from app=web pods (of its namespace, or any) on ``ports``."""
    peer: dict[str, object] = {"podSelector": {"matchLabels": {"app": "web"}}}
    if from_any_namespace:
        peer["namespaceSelector"] = {}

    def pod(namespace: str, name: str, app: str, ip: str) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"namespace": namespace, "name": name, "labels": {"app": app}},
            "spec": {"nodeName": "node-1"},
            "status": {"phase": "Running", "podIP": ip},
        }

    return yaml.safe_dump_all(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
            pod("shop", "db", "db", DB),
            pod("shop", "web", "web", WEB),
            pod("other", "intruder", "web", INTRUDER),
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"namespace": "shop", "name": "db"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "db"}},
                    "ingress": [{"from": [peer], "ports": [{"port": port} for port in ports]}],
                },
            },
        ]
    )


@dataclass
class Stack:
    """netpol-pdp, the two services and the two Envoys in front of them."""

    root: Path
    pdp_port: int
    pdp: ServerProcess
    tcp_port: int
    http_port: int
    http_service_port: int  # the Envoy of http-ext-authz-http.yaml
    authz_port: int  # serve --envoy-http-listen
    service: Upstream
    web: subprocess.Popen[bytes]
    web_port: int
    tcp: Envoy
    http: Envoy
    http_service: Envoy

    def start_pdp(self) -> None:
        self.pdp = start_pdp(self.root, self.pdp_port, self.authz_port)

    def policy(self, from_any_namespace: bool = False) -> None:
        text = world((self.tcp_port, self.http_port, self.http_service_port), from_any_namespace)
        replace_file(self.root / "cluster" / "world.yaml", text)


# The HTTP service: answers every request with the reason header it received.
WEB_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("reason=%s" % self.headers.get("x-netpol-pdp-reason")).encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        sys.stderr.write("request\\n"); sys.stderr.flush()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def start_pdp(root: Path, port: int, authz_port: int) -> ServerProcess:
    pdp = ServerProcess(
        "--source",
        str(root / "cluster"),
        "--listen",
        f"127.0.0.1:{port}",
        "--envoy-http-listen",
        f"127.0.0.1:{authz_port}",
    )
    pdp.wait_event("feed_loaded")
    return pdp


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert BINARY is not None
    root = tmp_path_factory.mktemp("envoy")
    (root / "cluster").mkdir()
    tcp_port, http_port, http_service_port = free_port(DB), free_port(DB), free_port(DB)
    pdp_port, authz_port, web_port = free_port(), free_port(), free_port()
    (root / "cluster" / "world.yaml").write_text(world((tcp_port, http_port, http_service_port)))
    pdp = start_pdp(root, pdp_port, authz_port)
    service = Upstream(banner=BANNER)
    with (root / "web.log").open("wb") as web_log:
        web = subprocess.Popen([sys.executable, "-c", WEB_SERVER, str(web_port)], stderr=web_log)
    envoys: list[Envoy] = []
    try:
        tcp_config = bootstrap("tcp-ext-authz.yaml", (DB, tcp_port), service.port, pdp_port)
        envoys.append(Envoy(BINARY, tcp_config, root / "tcp"))
        http_config = bootstrap("http-ext-authz.yaml", (DB, http_port), web_port, pdp_port)
        envoys.append(Envoy(BINARY, http_config, root / "http"))
        http_service_config = bootstrap(
            "http-ext-authz-http.yaml", (DB, http_service_port), web_port, authz_port
        )
        envoys.append(Envoy(BINARY, http_service_config, root / "http-service"))
        stack = Stack(
            root,
            pdp_port,
            pdp,
            tcp_port,
            http_port,
            http_service_port,
            authz_port,
            service,
            web,
            web_port,
            *envoys,
        )
        yield stack
        pdp = stack.pdp  # restarted by the failure tests
    finally:
        for envoy in envoys:
            envoy.stop()
        if pdp.proc.poll() is None:
            pdp.proc.send_signal(signal.SIGCONT)
        pdp.stop()
        web.kill()
        web.wait(10)
        service.close()


@pytest.fixture
def running(stack: Stack) -> Iterator[Stack]:
    """The stack with netpol-pdp serving the original policy, restored after each test."""
    if stack.pdp.proc.poll() is not None:
        stack.start_pdp()
    yield stack
    if stack.pdp.proc.poll() is None:
        stack.pdp.proc.send_signal(signal.SIGCONT)  # after a "hung" test, whatever it asserted


FORGED = {
    "x-netpol-pdp-reason": "forged-by-client",
    # what the http_service example's Envoy writes itself: a client's copy must change nothing
    "x-netpol-pdp-source": f"{WEB}:1234",
    "x-netpol-pdp-destination": "127.0.0.99:1",
    "x-forwarded-for": WEB,
}


def get(stack: Stack, src: str, path: str, port: int | None = None) -> tuple[int, str, str | None]:
    """GET ``path`` through an HTTP Envoy from ``src``, with forged headers: status, body, reason header."""
    conn = http.client.HTTPConnection(DB, port or stack.http_port, timeout=5, source_address=(src, 0))
    try:
        conn.request("GET", path, headers=FORGED)
        response = conn.getresponse()
        return response.status, response.read().decode(), response.getheader("x-netpol-pdp-reason")
    finally:
        conn.close()


def web_requests(stack: Stack) -> int:
    return (stack.root / "web.log").read_text().count("request")


# --------------------------------------------------------------------------- every shipped bootstrap


@pytest.mark.parametrize("example", BOOTSTRAPS)
def test_envoy_validate_accepts_the_shipped_bootstrap(example: str) -> None:
    assert BINARY is not None
    result = subprocess.run(
        [str(BINARY), "--mode", "validate", "-c", str(EXAMPLES / example), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"configuration '{EXAMPLES / example}' OK" in result.stdout + result.stderr


# --------------------------------------------------------------------------- the network filter


def test_tcp_allowed_client_reaches_the_speak_first_service(running: Stack) -> None:
    before = running.service.connections
    reply = talk(WEB, (DB, running.tcp_port), HELLO)
    assert reply is not None and reply.startswith(BANNER) and HELLO in reply
    assert running.service.connections == before + 1


def test_tcp_denied_clients_open_no_upstream_connection_and_send_no_byte(running: Stack) -> None:
    before = (running.service.connections, running.service.received)
    replies = [talk(INTRUDER, (DB, running.tcp_port), HELLO) for _ in range(20)]
    assert replies == [b""] * 20  # closed without the banner
    assert (running.service.connections, running.service.received) == before
    assert running.tcp.stat("cluster.postgres.upstream_cx_total") == running.service.connections
    assert running.tcp.stat("ext_authz.netpol_pdp.denied") >= 20


def test_tcp_silent_client_is_never_connected_upstream(running: Stack) -> None:
    before = running.service.connections
    assert talk(INTRUDER, (DB, running.tcp_port), None, timeout=1.0) is None  # held open, nothing sent
    assert talk(WEB, (DB, running.tcp_port), None, timeout=1.0) is None  # the banner waits for the client
    assert running.service.connections == before


# --------------------------------------------------------------------------- the HTTP filter


@pytest.mark.parametrize("path", ["/", "/api/orders", "/debug/x", "/healthz"])
def test_http_every_route_is_decided_and_the_reason_header_unforgeable(running: Stack, path: str) -> None:
    status, body, _ = get(running, WEB, path)
    assert (status, body) == (200, "reason=allowed-by-policy")
    before = web_requests(running)
    status, body, header = get(running, INTRUDER, path)
    assert status == 403 and header == "denied-on-ingress"
    assert body.startswith("netpol-pdp: denied-on-ingress: 127.0.0.12 -> 127.0.0.10 TCP/")
    assert web_requests(running) == before


# --------------------------------------------------------------------------- when netpol-pdp changes or fails


def test_hot_reload_changes_the_decision_of_both_filters(running: Stack) -> None:
    assert talk(INTRUDER, (DB, running.tcp_port), HELLO) == b""
    running.policy(from_any_namespace=True)
    try:
        running.pdp.wait_event("feed_reloaded")
        assert get(running, INTRUDER, "/")[:2] == (200, "reason=allowed-by-policy")
        reply = talk(INTRUDER, (DB, running.tcp_port), HELLO)
        assert reply is not None and reply.startswith(BANNER)
    finally:
        running.policy()
        running.pdp.wait_event("feed_reloaded")
    assert get(running, INTRUDER, "/")[0] == 403


@pytest.mark.parametrize("failure", ["down", "hung"])
def test_failure_mode_closed_then_recovery(running: Stack, failure: str) -> None:
    before = running.service.connections
    if failure == "down":
        running.pdp.stop()
    else:
        running.pdp.proc.send_signal(signal.SIGSTOP)  # accepts connections, never answers
    try:
        assert get(running, WEB, "/")[0] == 503  # status_on_error: not a policy denial
        assert talk(WEB, (DB, running.tcp_port), HELLO) == b""
        assert running.service.connections == before
    finally:
        if failure == "down":
            running.start_pdp()
        else:
            running.pdp.proc.send_signal(signal.SIGCONT)
    assert wait_for(lambda: get(running, WEB, "/")[0] == 200, 10, "Envoy to reach netpol-pdp again")
    reply = talk(WEB, (DB, running.tcp_port), HELLO)
    assert reply is not None and reply.startswith(BANNER)


# --------------------------------------------------------------------------- HTTP mode (http_service)


@pytest.mark.parametrize("path", ["/", "/debug/x", "/healthz"])
def test_http_service_mode_decides_and_nothing_the_client_sends_changes_it(running: Stack, path: str) -> None:
    port = running.http_service_port
    assert get(running, WEB, path, port)[:2] == (200, "reason=allowed-by-policy")
    before = web_requests(running)
    status, body, header = get(running, INTRUDER, path, port)
    assert status == 403 and header == "denied-on-ingress"
    assert body.startswith(f"netpol-pdp: denied-on-ingress: 127.0.0.12 -> 127.0.0.10 TCP/{port} ")
    assert web_requests(running) == before


def test_http_service_mode_fails_closed_and_recovers(running: Stack) -> None:
    running.pdp.stop()
    try:
        assert get(running, WEB, "/", running.http_service_port)[0] == 503
    finally:
        running.start_pdp()
    port = running.http_service_port
    assert wait_for(lambda: get(running, WEB, "/", port)[0] == 200, 10, "Envoy to reach netpol-pdp again")
    assert get(running, WEB, "/", port)[:2] == (200, "reason=allowed-by-policy")
