"""``netpol-pdp decide --from/--to`` on the example cluster: names answer as addresses do.

Errors are one line naming the option.
"""

from __future__ import annotations

import json

import pytest
from conftest import Cli

WEB_POD, API_POD, STAGING_WEB = (
    "frontend/web-6d4cf-x2lqp",
    "backend/api-5b7f9-4hq2c",
    "staging/web-staging-6f8d9-r5t2w",
)
WEB, API, STAGING = "10.244.1.12", "10.244.1.20", "10.244.2.50"


def test_decide_by_name_answers_as_decide_by_address(cli: Cli) -> None:
    by_name = cli("decide", "--from", WEB_POD, "--to", API_POD, "--port", "8080", "--explain")
    by_ip = cli("decide", "--src", WEB, "--dst", API, "--port", "8080", "--explain")
    assert by_name == by_ip
    assert by_name[0] == 0


def test_a_named_port_is_the_destination_pods_container_port(cli: Cli) -> None:
    assert cli("decide", "--from", WEB_POD, "--to", API_POD, "--port", "http") == cli(
        "decide", "--src", WEB, "--dst", API, "--port", "8080"
    )


def test_json_by_name_shows_the_resolved_flow_and_what_was_asked(cli: Cli) -> None:
    status, out, _ = cli("decide", "--from", STAGING_WEB, "--to", API, "--port", "http", "--json")
    doc = json.loads(out)
    assert status == 1
    assert doc["flow"] == {"src_ip": STAGING, "dst_ip": API, "protocol": "TCP", "dst_port": 8080}
    assert doc["asked"] == {
        "src": STAGING_WEB,
        "dst": API,
        "protocol": "TCP",
        "dst_port": 0,
        "dst_port_name": "http",
    }


def test_an_explained_denial_by_name_says_why_not(cli: Cli) -> None:
    status, out, _ = cli("decide", "--from", STAGING_WEB, "--to", API_POD, "--port", "8080", "--explain")
    assert status == 1
    assert "why not: 2 rules that did not match (fewest failed conditions first)" in out
    assert (
        "spec.ingress[0].from[0].namespaceSelector.matchLabels.environment: label environment differs "
        "(want production, got staging)" in out
    )
    assert "why not: the isolating policies have no egress rule to come near" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--from", "frontend/nope", "--to", API_POD],
            "error: --from: pod frontend/nope is not known",
            id="unknown pod",
        ),
        pytest.param(
            ["--from", WEB_POD, "--to", "node/nope"], "error: --to: node nope is not known", id="unknown node"
        ),
        pytest.param(
            ["--from", WEB_POD, "--to", "svc/data/postgres-headless", "--port", "pg"],
            "error: --port: Service data/postgres-headless has no port 'pg' for TCP (ports: postgres",
            id="headless svc, no such port name",
        ),
        pytest.param(
            ["--from", WEB_POD, "--to", "8.8.8.8", "--port", "http"],
            "error: --port: 'http': a named port needs a pod",
            id="named port, no pod",
        ),
        pytest.param(
            ["--from", WEB_POD, "--to", API_POD, "--port", "grpc"],
            "error: --port: pod backend/api-5b7f9-4hq2c has no container port named 'grpc'",
            id="no such port",
        ),
        pytest.param(
            ["--from", WEB_POD, "--to", API_POD], "error: --port: is required for TCP", id="no port"
        ),
    ],
)
def test_bad_names_are_one_line_errors_naming_the_option(cli: Cli, argv: list[str], message: str) -> None:
    if "--port" not in argv and "no port" not in message and "required" not in message:
        argv = [*argv, "--port", "80"]
    status, out, err = cli("decide", *argv)
    assert (status, out) == (2, "")
    assert err.startswith(message), err
    assert err.count("\n") == 1


def test_a_headless_service_by_name_is_decided_on_each_ready_endpoint(cli: Cli) -> None:
    """docs/services.md "Headless Services by name": the API reaches both postgres pods; web neither."""
    status, out, _ = cli(
        "decide", "--from", API_POD, "--to", "svc/data/postgres-headless", "--port", "postgres"
    )
    assert status == 0
    assert out.splitlines()[0] == "ALLOW  TCP 10.244.1.20 -> svc/data/postgres-headless:5432"
    assert "Service data/postgres-headless headless svc/data/postgres-headless:5432/TCP (postgres)" in out
    assert "ALLOW  10.244.1.30:5432 pod data/postgres-1 on node node-a: allowed-by-policy" in out
    assert "ALLOW  10.244.2.30:5432 pod data/postgres-0 on node node-b: allowed-by-policy" in out
    status, out, _ = cli(
        "decide", "--from", WEB_POD, "--to", "svc/data/postgres-headless", "--port", "5432", "--json"
    )
    doc = json.loads(out)
    assert status == 1
    assert doc["flow"]["dst_ip"] == "svc/data/postgres-headless"
    assert (doc["reason"], doc["service"]["address_kind"]) == ("denied-on-ingress", "headless")
    assert [e["ip"] for e in doc["service"]["endpoints"]] == ["10.244.1.30", "10.244.2.30"]


def test_src_and_from_exclude_each_other(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli("decide", "--src", WEB, "--from", WEB_POD, "--to", API_POD, "--port", "80")
    assert exit_.value.code == 2
