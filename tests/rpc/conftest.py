"""Shared fixtures of the gRPC tests: a small world on disk, in-process servers, certificates.

Every server binds 127.0.0.1 port 0 and is closed by its fixture; every client
dials loopback only.
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from netpol_pdp.clients import DecisionClient, Retry
from netpol_pdp.examples import CLUSTER
from netpol_pdp.index.flows import Flow, make_flow
from netpol_pdp.server.serve import ServeOptions, Service

# --------------------------------------------------------------------------- metrics


def scrape_metrics(port: int) -> dict[str, float]:
    """A ``/metrics`` page on 127.0.0.1 as {'name{labels}': value}, labels as exposed."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


# --------------------------------------------------------------------------- the world

NAMESPACES = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {team: other}}
"""

PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {nodeName: node-a, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {nodeName: node-a}
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: intruder, namespace: other, labels: {app: client}}
spec: {nodeName: node-b}
status: {phase: Running, podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: other, labels: {app: db}}
spec: {nodeName: node-b}
status: {phase: Running, podIP: 10.0.1.2}
"""


def policy_text(
    port: int, name: str = "web-from-client", namespace: str = "shop", target: str = "web"
) -> str:
    """Ingress to ``app=target`` in ``namespace`` from ``app=client`` pods of that namespace, on ``port``."""
    return textwrap.dedent(f"""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: {name}, namespace: {namespace}}}
        spec:
          podSelector: {{matchLabels: {{app: {target}}}}}
          ingress:
          - from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]
            ports: [{{port: {port}}}]
        """)


CLIENT, WEB, INTRUDER, DB, OUTSIDE = "10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.1.2", "192.0.2.9"


def flow(src: str, dst: str, port: int = 8080, protocol: str = "TCP") -> Flow:
    return make_flow(src, dst, protocol, port)


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A manifest folder: namespaces shop/other, pods, and one policy guarding shop/web on 8080."""
    root = tmp_path / "cluster"
    root.mkdir()
    (root / "namespaces.yaml").write_text(NAMESPACES)
    (root / "pods.yaml").write_text(PODS)
    (root / "policy.yaml").write_text(policy_text(8080))
    return root


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (write aside, rename), as kubectl/ConfigMaps do."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# --------------------------------------------------------------------------- servers and clients


def wait_watching(service: Service, timeout: float = 10.0) -> None:
    """Wait until the feed thread is inside watchfiles' wait for changes (its inotify watch armed).

    ``ManifestFeed.watch`` arms its watch after the first load, so a file written
    in between is not seen until the next change (reported to the feed's
    author).  Tests that change files right after start-up wait for this first.
    """
    ident = service._feed_thread.ident

    def watching() -> bool:
        frame = sys._current_frames().get(ident or -1)
        while frame is not None:
            if frame.f_code.co_name == "watch" and "watchfiles" in frame.f_code.co_filename:
                return True
            frame = frame.f_back
        return False

    wait_for(watching, timeout, "the feed to watch its files")


@pytest.fixture
def start_service() -> Iterator[Callable[..., Service]]:
    """Start an in-process Service (port 0) with overrides of :class:`ServeOptions`; closed at the end."""
    started: list[Service] = []

    def start(sources: list[Path], **overrides: Any) -> Service:
        overrides.setdefault("listen", "127.0.0.1:0")
        overrides.setdefault("grace", 1.0)
        options = ServeOptions(sources=sources, **overrides)
        service = Service(options)
        started.append(service)
        return service

    yield start
    for service in started:
        service.close(grace=0.2)


@pytest.fixture(params=["aio", "sync"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def service(start_service: Callable[..., Service], world: Path, mode: str) -> Service:
    """A ready server on the world, in each server flavour."""
    svc = start_service([world], mode=mode)
    assert svc.state.wait_ready(10), "first load did not succeed"
    wait_watching(svc)
    return svc


@pytest.fixture
def example(start_service: Callable[..., Service]) -> Service:
    """A ready server on the bundled example cluster."""
    svc = start_service([CLUSTER])
    assert svc.state.wait_ready(10)
    return svc


@pytest.fixture
def connect() -> Iterator[Callable[..., DecisionClient]]:
    clients: list[DecisionClient] = []

    def make(target: str | Service, **kwargs: Any) -> DecisionClient:
        address = target.address if isinstance(target, Service) else target
        kwargs.setdefault("retry", Retry(attempts=3, initial=0.02))
        client = DecisionClient(address, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(service: Service, connect: Callable[..., DecisionClient]) -> DecisionClient:
    return connect(service)


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a stranger."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate from another CA
    stranger_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], name: str, *, server: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca = _ca("netpol-pdp test CA")
    other_ca = _ca("a stranger's CA")
    server = _leaf(ca, "localhost", server=True)
    client = _leaf(ca, "test-client", server=False)
    stranger = _leaf(other_ca, "stranger", server=False)
    return Pki(
        ca=_write_cert(root / "ca.pem", ca[0]),
        server_cert=_write_cert(root / "server.pem", server[0]),
        server_key=_write_key(root / "server-key.pem", server[1]),
        client_cert=_write_cert(root / "client.pem", client[0]),
        client_key=_write_key(root / "client-key.pem", client[1]),
        stranger_cert=_write_cert(root / "stranger.pem", stranger[0]),
        stranger_key=_write_key(root / "stranger-key.pem", stranger[1]),
    )
