"""TLS and mutual TLS with certificates made by the test; plaintext only on loopback or when asked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from netpol_pdp.clients import ClientError, ClientTls, DecisionClient, Retry
from netpol_pdp.server.app import ConfigError, TlsConfig
from netpol_pdp.server.serve import ServeOptions, Service

from .conftest import CLIENT, WEB, Pki, flow

NO_RETRY = Retry(attempts=0)


@pytest.fixture
def tls_service(start_service: Callable[..., Service], world: Path, pki: Pki, mode: str) -> Service:
    svc = start_service([world], mode=mode, tls=TlsConfig(pki.server_cert, pki.server_key))
    assert svc.state.wait_ready(10)
    return svc


@pytest.fixture
def mtls_service(start_service: Callable[..., Service], world: Path, pki: Pki, mode: str) -> Service:
    svc = start_service([world], mode=mode, tls=TlsConfig(pki.server_cert, pki.server_key, client_ca=pki.ca))
    assert svc.state.wait_ready(10)
    return svc


def test_a_client_trusting_the_ca_decides_over_tls(
    tls_service: Service, pki: Pki, connect: Callable[..., DecisionClient]
) -> None:
    client = connect(tls_service, tls=ClientTls(ca=pki.ca))
    assert client.decide(flow(CLIENT, WEB, 8080)).allowed
    assert client.status()["ready"]


def test_a_plaintext_client_gets_nothing_from_a_tls_server(
    tls_service: Service, connect: Callable[..., DecisionClient]
) -> None:
    client = connect(tls_service, retry=NO_RETRY, timeout=3)
    with pytest.raises(ClientError) as err:
        client.decide(flow(CLIENT, WEB, 8080))
    assert err.value.code is grpc.StatusCode.UNAVAILABLE


def test_a_client_that_does_not_trust_the_server_certificate_refuses_it(
    tls_service: Service, pki: Pki, connect: Callable[..., DecisionClient]
) -> None:
    client = connect(tls_service, tls=ClientTls(ca=pki.stranger_cert), retry=NO_RETRY, timeout=3)
    with pytest.raises(ClientError) as err:
        client.status()
    assert err.value.code is grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_admits_a_client_certificate_signed_by_the_client_ca(
    mtls_service: Service, pki: Pki, connect: Callable[..., DecisionClient]
) -> None:
    client = connect(mtls_service, tls=ClientTls(ca=pki.ca, cert=pki.client_cert, key=pki.client_key))
    assert client.decide(flow(CLIENT, WEB, 8080)).allowed
    assert len(list(client.decide_many([flow(CLIENT, WEB, 8080)] * 2500, batch_size=1000))) == 2500


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param("none", id="a client without a certificate"),
        pytest.param("stranger", id="a client with a certificate from another CA"),
    ],
)
def test_mutual_tls_refuses_a_client_without_a_valid_certificate(
    mtls_service: Service, pki: Pki, connect: Callable[..., DecisionClient], credentials: str
) -> None:
    tls = (
        ClientTls(ca=pki.ca)
        if credentials == "none"
        else ClientTls(ca=pki.ca, cert=pki.stranger_cert, key=pki.stranger_key)
    )
    client = connect(mtls_service, tls=tls, retry=NO_RETRY, timeout=3)
    with pytest.raises(ClientError) as err:
        client.decide(flow(CLIENT, WEB, 8080))
    assert err.value.code is grpc.StatusCode.UNAVAILABLE


def test_the_server_name_can_be_overridden_for_a_certificate_issued_to_a_dns_name(
    tls_service: Service, pki: Pki, connect: Callable[..., DecisionClient]
) -> None:
    client = connect(tls_service, tls=ClientTls(ca=pki.ca, server_name="localhost"))
    assert client.health() == "SERVING"


def test_plaintext_beyond_loopback_is_refused_at_start(world: Path) -> None:
    with pytest.raises(ConfigError, match="--insecure"):
        Service(ServeOptions(sources=[world], listen="0.0.0.0:0"))


def test_an_unreadable_certificate_is_named(world: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=r"nope\.pem"):
        Service(ServeOptions(sources=[world], listen="127.0.0.1:0", tls=TlsConfig(missing, missing)))
