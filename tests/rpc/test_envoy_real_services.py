"""An outbound sidecar listener: a real Envoy on a Service's ClusterIP, asking netpol-pdp.

The Envoy of the shipped ``tcp-ext-authz.yaml`` listens on the ClusterIP of the
Service ``shop/db`` (a loopback address here, so clients can dial it), as a
sidecar's outbound listener sees the address the application dialled.  Its
Check carries that ClusterIP and Service port; netpol-pdp decides it through
the Service's ready endpoint (the db pod on its target port): web may connect,
intruder (another namespace) may not, and once the slice's endpoint is unready
nobody may (``service-no-ready-endpoints``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import envoyproc
import pytest
import yaml
from envoyproc import Envoy, Upstream, bootstrap, free_port, talk

from .conftest import replace_file, wait_for
from .test_envoy_real import DB, INTRUDER, WEB
from .test_envoy_real import world as pods_and_policy
from .test_serve_process import ServerProcess

BINARY = envoyproc.envoy_binary()
pytestmark = pytest.mark.skipif(BINARY is None or not BINARY.exists(), reason=envoyproc.missing_reason())

VIP = "127.0.0.20"  # the ClusterIP of shop/db: where the outbound listener is
HELLO = b"HELLO netpol-pdp\r\n"


def world(vip_port: int, ready: bool = True) -> str:
    """test_envoy_real's world (db takes web of its namespace on 5432) and the Service shop/db on ``VIP``."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": "shop", "name": "db"},
        "spec": {"clusterIP": VIP, "ports": [{"name": "pg", "port": vip_port, "targetPort": 5432}]},
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"namespace": "shop", "name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [DB], "conditions": {"ready": ready}}],
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
    }
    return pods_and_policy((5432,)) + "---\n" + yaml.safe_dump_all([service, endpoints])


class Outbound:
    def __init__(self, root: Path, vip_port: int, envoy: Envoy, service: Upstream) -> None:
        self.root, self.vip_port, self.envoy, self.service = root, vip_port, envoy, service


@pytest.fixture(scope="module")
def outbound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outbound]:
    assert BINARY is not None
    root = tmp_path_factory.mktemp("outbound")
    (root / "cluster").mkdir()
    vip_port, pdp_port = free_port(VIP), free_port()
    (root / "cluster" / "world.yaml").write_text(world(vip_port))
    pdp = ServerProcess("--source", str(root / "cluster"), "--listen", f"127.0.0.1:{pdp_port}")
    pdp.wait_event("feed_loaded")
    service = Upstream()
    envoy = None
    try:
        envoy = Envoy(
            BINARY, bootstrap("tcp-ext-authz.yaml", (VIP, vip_port), service.port, pdp_port), root / "tcp"
        )
        yield Outbound(root, vip_port, envoy, service)
    finally:
        if envoy is not None:
            envoy.stop()
        pdp.stop()
        service.close()


def test_web_reaches_the_service_and_intruder_does_not(outbound: Outbound) -> None:
    before = outbound.service.connections
    reply = talk(WEB, (VIP, outbound.vip_port), HELLO)
    assert reply is not None and HELLO in reply
    assert talk(INTRUDER, (VIP, outbound.vip_port), HELLO) == b""
    assert outbound.service.connections == before + 1


def test_a_service_without_ready_endpoints_refuses_everyone(outbound: Outbound) -> None:
    replace_file(outbound.root / "cluster" / "world.yaml", world(outbound.vip_port, ready=False))
    try:
        wait_for(lambda: talk(WEB, (VIP, outbound.vip_port), HELLO) == b"", what="the unready endpoint")
        assert outbound.envoy.stat("ext_authz.netpol_pdp.denied") >= 2
    finally:
        replace_file(outbound.root / "cluster" / "world.yaml", world(outbound.vip_port))
    wait_for(lambda: HELLO in (talk(WEB, (VIP, outbound.vip_port), HELLO) or b""), what="ready again")
