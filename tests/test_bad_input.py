"""Bad input never gives a traceback: every command names the file, line or option, and exits non-zero.

One table per kind of input (manifests, expectations, flow logs, options); each
row is a file's content (or a command line) and the words the error must say.
The cases are those a quality pass found to crash or to pass silently, plus
cheap neighbours that already worked and should stay so.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Cli

from netpol_pdp.examples import FLOWS
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import parse_flow

DEEP_JSON = "[" * 100_000 + "]" * 100_000
POLICY_HEAD = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: ns}\n"


# --- manifests ------------------------------------------------------------------------------

MANIFESTS = [
    pytest.param(
        "m.yaml",
        POLICY_HEAD + "spec: {}\nspec: {podSelector: {matchLabels: {app: web}}}\n",
        "m.yaml: line 5, column 1: invalid YAML: while constructing a mapping: duplicate key 'spec'"
        " (first given on line 4)",
        id="a key given twice in a YAML mapping is an error naming both lines, not the last one winning",
    ),
    pytest.param(
        "m.yaml",
        POLICY_HEAD + "spec: {podSelector: {matchLabels: {app: web, app: api}}}\n",
        "m.yaml: line 4, column 46: invalid YAML: while constructing a mapping: duplicate key 'app'",
        id="a label given twice in one selector is an error",
    ),
    pytest.param(
        "m.json",
        '{"apiVersion": "v1", "kind": "Namespace",\n "metadata": {"name": "a",\n  "name": "b"}}\n',
        "m.json: line 3: invalid JSON: duplicate key 'name'",
        id="a key given twice in a JSON object is an error naming the second line",
    ),
    pytest.param(
        "m.json",
        DEEP_JSON,
        "m.json: invalid JSON: nested too deeply",
        id="JSON nested beyond the parser's depth is an error, not a RecursionError",
    ),
    pytest.param(
        "m.yaml",
        DEEP_JSON,
        "m.yaml: line 1, column 1001: invalid YAML: while increasing flow level:"
        " exceeded maximum nesting depth",
        id="YAML nested beyond libyaml's depth is an error",
    ),
    pytest.param(
        "m.yaml",
        "base: &base {app: web}\nmetadata: {<<: *base, app: api}\n",
        "m.yaml: document 1: object: kind: is required",
        id="a merge key overridden in place is not a duplicate",
    ),
    pytest.param(
        "m.yaml",
        POLICY_HEAD + "spec: {podSelector: {}, ingress: [{ports: '80'}]}\n",
        "NetworkPolicy ns/p: spec.ingress[0].ports: must be a list (got '80')",
        id="ports as a string names the field",
    ),
    pytest.param(
        "m.yaml",
        POLICY_HEAD + "spec: []\n",
        "NetworkPolicy ns/p: spec: must be an object (got [])",
        id="spec as a list names the object",
    ),
    pytest.param(
        "m.yaml",
        POLICY_HEAD + "spec: {podSelector: {matchLabels: {app: 5}}}\n",
        "spec.podSelector.matchLabels[app]: label value must be a string (got 5)",
        id="an integer label value names the label",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), MANIFESTS)
def test_a_malformed_manifest_is_reported_with_its_place(
    cli: Cli, tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    status, out, _err = cli("validate", "--source", str(path))
    assert status == 1
    assert message in out and str(path) in out


def test_a_duplicate_key_makes_decide_refuse_the_source(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY_HEAD + "spec: {}\nspec: {}\n")
    status, _out, err = cli(
        "decide", "--source", str(path), "--src", "10.0.0.1", "--dst", "10.0.0.2", "--port", "80"
    )
    assert status == 2
    assert "duplicate key 'spec'" in err


# --- expectations of `netpol-pdp test` ------------------------------------------------------

EXPECTATIONS = [
    pytest.param(
        b"\xff\xfe\x00binary", "not UTF-8 text (byte offset 0)", id="a binary file is not UTF-8 text"
    ),
    pytest.param(DEEP_JSON.encode(), "invalid YAML: nested too deeply", id="deep flow nesting"),
    pytest.param(("- " * 3000 + "x\n").encode(), "invalid YAML: nested too deeply", id="deep block nesting"),
    pytest.param(
        b"- name: a\n  name: b\n",
        "line 2, column 3: invalid YAML: while constructing a mapping: duplicate key 'name' "
        "(first given on line 1)",
        id="a key given twice",
    ),
    pytest.param(
        b"- {from: {ip: 10.0.0.1}, to: {ip: 10.0.0.2}, expect: deny}\n",
        "expectations[0].port: is required for TCP",
        id="a TCP expectation without a port is refused when read, not failed when checked",
    ),
    pytest.param(
        b"- {from: {ip: 10.0.0.1}, to: {ip: 10.0.0.2}, port: 0, protocol: udp, expect: deny}\n",
        "expectations[0].port: must be between 1 and 65535 (got 0)",
        id="port zero is refused when read",
    ),
    pytest.param(
        b"- {name: 2024-13-45}\n",
        "line 1, column 10: invalid YAML: cannot read timestamp value: month must be in 1..12",
        id="a date that is no date",
    ),
    pytest.param(
        b"- {name: !!int }\n",
        "line 1, column 10: invalid YAML: cannot read int value",
        id="an empty tagged integer",
    ),
    pytest.param(
        b"- a\n---\n- b\n", "line 2, column 1: invalid YAML: expected a single document", id="two documents"
    ),
]


@pytest.mark.parametrize(("content", "message"), EXPECTATIONS)
def test_bad_expectations_are_an_error_naming_the_file_and_the_place(
    cli: Cli, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "expect.yaml"
    path.write_bytes(content)
    status, _out, err = cli("test", str(path))
    assert status == 2
    assert f"{path}: {message}" in err


# --- flow logs ------------------------------------------------------------------------------

DEEP_LINES = [
    pytest.param('{"src_ip": ' + DEEP_JSON + "}\n", "jsonl", id="our JSON Lines"),
    pytest.param('{"flow": ' + DEEP_JSON + "}\n", "hubble", id="Hubble"),
    pytest.param('{"jsonPayload": ' + DEEP_JSON + "}\n", "gcp-vpc", id="GCP VPC"),
]


@pytest.mark.parametrize(("line", "fmt"), DEEP_LINES)
def test_a_line_nested_too_deeply_is_a_bad_line_not_a_crash(
    cli: Cli, tmp_path: Path, line: str, fmt: str
) -> None:
    log = tmp_path / "deep.jsonl"
    log.write_text(line)
    status, _out, err = cli("audit", str(log), "--format", fmt)
    assert (status, err.strip()) == (2, "error: line 1: not valid JSON: nested too deeply")
    status, _out, err = cli("audit", str(log), "--format", fmt, "--skip-invalid")
    assert status == 0 and "1 invalid" in err


def test_a_deeply_nested_first_line_is_not_mistaken_for_a_format(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "deep.jsonl"
    log.write_text('{"src_ip": ' + DEEP_JSON + "}\n")
    status, _out, err = cli("audit", str(log))
    assert status == 2 and "cannot tell the format from the first line" in err


CSV = "src_ip,dst_ip,protocol,dst_port\n10.244.1.12,10.244.1.20,TCP,8080\n"


@pytest.mark.parametrize(
    "opener",
    [
        pytest.param(lambda p, b: p.write_bytes(b), id="plain"),
        pytest.param(lambda p, b: p.write_bytes(gzip.compress(b)), id="gzipped"),
    ],
)
def test_a_csv_saved_with_a_byte_order_mark_is_read_like_any_csv(
    cli: Cli, tmp_path: Path, opener: object
) -> None:
    log = tmp_path / "excel.csv"
    opener(log, b"\xef\xbb\xbf" + CSV.encode())  # type: ignore[operator]
    status, out, err = cli("audit", str(log))
    assert status == 0, err
    assert '"verdict": "ALLOW"' in out and "(csv)" in err


# --- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["status", "--server", "127.0.0.1:99999"],
            "--server 127.0.0.1:99999: port must be between 1 and 65535 (got 99999)",
            id="a server port above 65535 is refused, not dialled modulo 65536",
        ),
        pytest.param(
            ["decide", "--server", "[::1]:0", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--port", "80"],
            "--server [::1]:0: port must be between 1 and 65535 (got 0)",
            id="a server port zero is refused",
        ),
        pytest.param(
            ["decide", "--src", "10.0.0.300", "--dst", "10.0.0.2", "--port", "80"],
            "--src: must be an IPv4 or IPv6 address (got '10.0.0.300')",
            id="a bad address names its option",
        ),
        pytest.param(
            ["status", "--server", "127.0.0.1:1", "--timeout", "inf"],
            "--timeout: must be a positive number of seconds (got inf)",
            id="an infinite timeout is refused (grpc takes it as already expired)",
        ),
        pytest.param(
            [
                "decide",
                "--server",
                "127.0.0.1:1",
                "--src",
                "10.0.0.1",
                "--dst",
                "10.0.0.2",
                "--port",
                "80",
                "--timeout",
                "0",
            ],
            "--timeout: must be a positive number of seconds (got 0.0)",
            id="a zero timeout is refused",
        ),
        pytest.param(
            ["audit", str(FLOWS), "--dask", "notaurl"],
            "cannot use the Dask scheduler 'notaurl': missing port number in address 'notaurl'",
            id="a malformed Dask address is named, not a traceback",
        ),
        pytest.param(
            ["audit", "-", "--report", "out.txt"],
            "--report out.txt: must end in .json or .html",
            id="a report of unknown kind is refused before the audit",
        ),
    ],
)
def test_a_bad_option_is_an_error_naming_it(cli: Cli, argv: list[str], message: str) -> None:
    status, _out, err = cli(*argv)
    assert status == 2
    assert err.strip() == f"error: {message}"


def test_a_client_ca_that_is_not_pem_is_named(cli: Cli, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"\x00\x01 not a certificate")
    status, _out, err = cli("status", "--server", "127.0.0.1:1", "--tls-ca", str(ca))
    assert status == 2
    assert err.strip() == f"error: --tls-ca {ca}: not a PEM file holding a certificate"


def serve(*argv: str) -> subprocess.CompletedProcess[str]:
    """``netpol-pdp serve`` in a child (a regression would serve forever: the timeout ends it)."""
    return subprocess.run(
        [sys.executable, "-m", "netpol_pdp.clients.cli", "serve", "--listen", "127.0.0.1:0", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param(
            {"cert": b"", "key": b""},
            "--tls-cert {cert}: not a PEM file holding a certificate",
            id="an empty certificate is named, not reported as 'cannot bind'",
        ),
        pytest.param(
            {"cert": b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "key": b"\x00\xff"},
            "--tls-key {key}: not a PEM file holding a private key",
            id="a binary key is named",
        ),
    ],
)
def test_serve_names_a_tls_file_that_is_not_pem(
    tmp_path: Path, files: dict[str, bytes], message: str
) -> None:
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(content)
    done = serve("--tls-cert", str(paths["cert"]), "--tls-key", str(paths["key"]))
    assert done.returncode == 2
    assert f"error: {message.format(**paths)}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--grace", "-1"], "--grace: must be zero or more (seconds)", id="a negative grace"),
        pytest.param(
            ["--switch-interval", "nan"],
            "--switch-interval: must be a finite number of seconds (got nan)",
            id="a switch interval of nan (it aborted the interpreter)",
        ),
        pytest.param(
            ["--grace", "nan"],
            "--grace: must be a finite number of seconds (got nan)",
            id="a grace of nan (it passed every comparison)",
        ),
    ],
)
def test_serve_refuses_a_bad_duration(argv: list[str], message: str) -> None:
    done = serve(*argv)
    assert done.returncode == 2
    assert f"error: {message}" in done.stderr


# --- flows ----------------------------------------------------------------------------------


def test_a_flow_error_quoting_a_huge_value_stays_short() -> None:
    with pytest.raises(FlowError) as err:
        parse_flow({"src_ip": "1" * 100_000, "dst_ip": "10.0.0.1", "dst_port": 80})
    assert err.value.field == "src_ip"
    assert len(str(err.value)) < 400
    assert str(err.value).endswith("... (100040 characters)")


# --- outputs that would overwrite inputs -------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["audit", "{log}", "-o", "{log}"],
            "-o {log}: is the flow log being read; write elsewhere",
            id="audit output onto its own log is refused (opening it would empty the log)",
        ),
        pytest.param(
            ["audit", "{log}", "-o", "/dev/null", "--report", "{link}"],
            "--report {link}: is the flow log being read; write elsewhere",
            id="a report onto the log through a link is refused",
        ),
        pytest.param(
            ["test", "{expect}", "--junit", "{expect}"],
            "--junit {expect}: is the expectations file; write the report elsewhere",
            id="a JUnit report onto the expectations is refused",
        ),
    ],
)
def test_an_output_that_is_the_input_is_refused_and_the_input_kept(
    cli: Cli, tmp_path: Path, argv: list[str], message: str
) -> None:
    names = {"log": tmp_path / "flows.jsonl", "link": tmp_path / "report.json", "expect": tmp_path / "e.yaml"}
    names["log"].write_bytes(FLOWS.read_bytes())
    names["link"].symlink_to(names["log"])
    names["expect"].write_text("- {from: {ip: 10.0.0.1}, to: {ip: 10.0.0.2}, port: 80, expect: allow}\n")
    before = {name: path.read_bytes() for name, path in names.items()}
    status, _out, err = cli(*(a.format(**names) for a in argv))
    assert (status, err.strip()) == (2, f"error: {message.format(**names)}")
    assert {name: path.read_bytes() for name, path in names.items()} == before
