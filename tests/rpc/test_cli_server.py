"""The command line against a server: ``status``, and ``decide``/``audit`` with ``--server``.

``audit --server`` must print exactly what ``audit`` prints from the same
manifests locally: the server's first load is generation 1, as a local load is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Cli

from netpol_pdp.clients.cli import COMMANDS
from netpol_pdp.examples import CLUSTER, FLOWS
from netpol_pdp.server.serve import Service

from .conftest import wait_for

WEB, API = "10.244.1.12", "10.244.1.20"


def test_serve_and_status_are_registered_commands() -> None:
    assert {"serve", "status"} <= set(COMMANDS)


def test_status_prints_json_and_exits_zero_when_ready(example: Service, cli: Cli) -> None:
    code, out, _ = cli("status", "--server", example.address)
    status = json.loads(out)
    assert code == 0
    assert status["ready"] and status["synced"] and status["generation"] == 1
    assert status["feed"]["sources"] == [str(CLUSTER)]


def test_status_exits_one_and_says_why_when_the_server_is_not_ready(
    start_service: Callable[..., Service], tmp_path: Path, cli: Cli
) -> None:
    (tmp_path / "bad.yaml").write_text("kind: Pod\nmetadata: {name: p}\nspec: {hostNetwork: maybe}\n")
    svc = start_service([tmp_path], wait_for_source=True)
    wait_for(lambda: svc.feed.status.errors >= 1, what="the failed first load")
    code, out, _ = cli("status", "--server", svc.address)
    status = json.loads(out)
    assert code == 1 and not status["ready"] and not status["synced"]
    assert "bad.yaml" in status["feed"]["last_error"] and "hostNetwork" in status["feed"]["last_error"]


def test_serve_with_a_source_that_fails_its_first_load_is_a_startup_error(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "bad.yaml").write_text("kind: Pod\nmetadata: {name: p}\nspec: {hostNetwork: maybe}\n")
    code, out, err = cli("serve", "--source", str(tmp_path), "--listen", "127.0.0.1:0", "--grace", "0")
    assert (code, out) == (2, "")
    assert "error: cannot load the manifest source (1 problem):" in err
    assert "bad.yaml: document 1: Pod default/p: spec.hostNetwork: must be a boolean" in err


def test_status_of_nothing_is_a_clear_error(cli: Cli) -> None:
    code, out, err = cli("status", "--server", "127.0.0.1:1", "--timeout", "1")
    assert (code, out) == (2, "")
    assert err.startswith("error: --server 127.0.0.1:1: UNAVAILABLE")


def test_audit_with_server_prints_what_the_local_audit_prints(example: Service, cli: Cli) -> None:
    local = cli("audit", str(FLOWS), "--explain")
    remote = cli("audit", str(FLOWS), "--explain", "--server", example.address)
    assert remote[:2] == local[:2]  # exit status and every output line
    assert untimed(remote[2]) == untimed(local[2])  # the summary, but for its speed
    assert remote[0] == 0 and len(remote[1].splitlines()) == 54


def untimed(summary: str) -> str:
    return re.sub(r" in [\d.]+ s \([\d,]+ flows/s\)", "", summary)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--src", WEB, "--dst", API, "--port", "8080"], id="an allowed flow"),
        pytest.param(["--src", API, "--dst", WEB, "--port", "80", "--explain"], id="an explained flow"),
    ],
)
def test_decide_with_server_answers_as_the_local_decide(example: Service, cli: Cli, argv: list[str]) -> None:
    local = cli("decide", "--json", *argv)
    remote = cli("decide", "--json", *argv, "--server", example.address)
    assert remote == local
    text = cli("decide", *argv, "--server", example.address)
    assert text[0] == local[0] and "generation:  1" in text[1]


def test_server_and_source_exclude_each_other(cli: Cli) -> None:
    code, _, err = cli("decide", "--src", WEB, "--dst", API, "--port", "80", "-s", ".", "--server", "x:1")
    assert code == 2 and "--server and --source exclude each other" in err


def test_decide_against_a_server_that_is_not_there_names_it(cli: Cli) -> None:
    argv = ["--src", WEB, "--dst", API, "--port", "80", "--server", "127.0.0.1:1", "--timeout", "1"]
    code, _, err = cli("decide", *argv)
    assert code == 2 and err.startswith("error: --server 127.0.0.1:1: UNAVAILABLE")
