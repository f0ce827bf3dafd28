"""The ``netpol-pdp`` command line: audit, decide and validate, run in-process (and once as installed)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli

from netpol_pdp.clients.auditing.audit import run_audit
from netpol_pdp.clients.cli import COMMANDS
from netpol_pdp.clients.flowlogs.jsonl import JsonLinesReader
from netpol_pdp.clients.flowlogs.reading import parse_lines
from netpol_pdp.clients.flowlogs.record import ReadStats
from netpol_pdp.examples import CLUSTER, FLOWS, HERE
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import ManifestSource

EXPECTED = [json.loads(line) for line in (HERE / "expected.jsonl").read_text().splitlines()]
WEB, API, POSTGRES, NETSHOOT = "10.244.1.12", "10.244.1.20", "10.244.2.30", "10.244.1.99"


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def flow_line(src: str, dst: str, port: object = 8080, **extra: object) -> str:
    return json.dumps({"src_ip": src, "dst_ip": dst, "protocol": "TCP", "dst_port": port, **extra})


def test_every_command_module_is_registered() -> None:
    assert {"audit", "decide", "validate"} <= set(COMMANDS)


# --- audit --------------------------------------------------------------------------------


def test_audit_of_the_bundled_example_matches_the_documented_verdicts_in_input_order(
    cli: Cli,
) -> None:
    status, out, err = cli("audit", str(FLOWS))
    assert status == 0
    rows = jsonl(out)
    inputs = jsonl(FLOWS.read_text())
    assert [(r["verdict"], r["reason"]) for r in rows] == [(e["verdict"], e["reason"]) for e in EXPECTED]
    assert [{k: r[k] for k in inp} for r, inp in zip(rows, inputs, strict=True)] == inputs  # fields kept
    assert all(r["generation"] == 1 and "src" in r and "dst" in r for r in rows)
    assert "audited 54 flows (52 distinct) at generation 1" in err
    assert "by reason:" in err and "top denied (source -> destination):" in err
    assert "pod default/netshoot -> pod data/postgres-0" in err


def test_audit_reads_stdin_and_writes_the_output_file(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = f"{flow_line(WEB, API, id=1)}\n\n{flow_line(NETSHOOT, POSTGRES, 5432, id=2)}\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    out_file = tmp_path / "out.jsonl"
    status, out, _err = cli("audit", "-", "-o", str(out_file), "--source", str(CLUSTER))
    assert status == 0 and out == ""
    rows = jsonl(out_file.read_text())
    assert [(r["id"], r["verdict"], r["reason"]) for r in rows] == [
        (1, "ALLOW", "allowed-by-policy"),
        (2, "DENY", "denied-on-ingress"),
    ]


def test_audit_explain_adds_the_per_direction_trace(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "f.jsonl"
    log.write_text(flow_line(WEB, API) + "\n")
    _status, out, _err = cli("audit", str(log), "--explain")
    (row,) = jsonl(out)
    assert row["explanation"]["ingress"]["allowed_by"] == [{"policy": "backend/api-from-web", "rule": 0}]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        pytest.param(
            flow_line(WEB, API, 70000),
            "error: line 2: dst_port: must be between 1 and 65535 for TCP (got 70000)",
            id="a port out of range names the line and the field",
        ),
        pytest.param(
            '{"src_ip": "10.0.0.1", "dst_ip": ',
            "error: line 2: not valid JSON: Expecting value (column 33)",
            id="a line that is not JSON names the line",
        ),
        pytest.param(
            '{"dst_ip": "10.0.0.1", "dst_port": 80}',
            "error: line 2: src_ip: is required",
            id="a missing address names the field",
        ),
        pytest.param(
            '["10.0.0.1"]', "error: line 2: flow: must be an object", id="a line that is not an object"
        ),
    ],
)
def test_a_malformed_line_stops_the_audit_with_its_line_number(
    cli: Cli, tmp_path: Path, bad_line: str, message: str
) -> None:
    log = tmp_path / "f.jsonl"
    log.write_text("\n".join([flow_line(WEB, API), bad_line, flow_line(WEB, API)]) + "\n")
    status, out, err = cli("audit", str(log))
    assert status == 2
    assert err.startswith(message) and "Traceback" not in err
    assert len(jsonl(out)) == 1  # every line before the bad one was answered


def test_skip_invalid_reports_and_counts_bad_lines_and_goes_on(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "f.jsonl"
    log.write_bytes(
        "\n".join(
            [flow_line(WEB, API, n=1), "not json", flow_line(WEB, "10.0.0.300"), flow_line(WEB, API, n=4)]
        ).encode()
        + b"\n\xff\xfe\n"
    )
    status, out, err = cli("audit", str(log), "--skip-invalid")
    assert status == 0
    assert [r["n"] for r in jsonl(out)] == [1, 4]
    assert "warning: line 2: not valid JSON" in err
    assert "warning: line 3: dst_ip: must be an IPv4 or IPv6 address" in err
    assert "warning: line 5: not UTF-8 text" in err
    assert "invalid lines skipped: 3" in err


def test_a_record_with_a_field_named_like_a_decision_field_gets_the_decision_value(
    cli: Cli, tmp_path: Path
) -> None:
    log = tmp_path / "f.jsonl"
    log.write_text(flow_line(WEB, API, verdict="unknown") + "\n")
    _status, out, err = cli("audit", str(log))
    assert jsonl(out)[0]["verdict"] == "ALLOW"
    assert "decision-named fields were replaced: 1" in err


def test_audit_of_a_missing_log_or_an_invalid_source_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    status, _out, err = cli("audit", str(tmp_path / "nope.jsonl"))
    assert status == 2 and err.startswith(f"error: {tmp_path / 'nope.jsonl'}: No such file")
    (tmp_path / "bad.yaml").write_text("kind: Pod\nmetadata: {name: x}\nstatus: {podIP: nope}\n")
    status, _out, err = cli("audit", str(FLOWS), "--source", str(tmp_path / "bad.yaml"))
    assert status == 2
    assert err.splitlines() == [
        "error: cannot load the manifest source (1 problem):",
        f"  {tmp_path / 'bad.yaml'}: document 1: Pod default/x: status.podIP: must be a valid IP address "
        "(got 'nope')",
    ]


class CountingIndex:
    """A real index that also records which flows it was asked to decide."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.asked: list[Flow] = []

    def decide_many(self, flows: list[Flow], explain: bool = False) -> list[Decision]:
        self.asked.extend(flows)
        return self.index.decide_many(flows, explain=explain)


def test_each_distinct_flow_is_decided_once_across_chunks(tmp_path: Path) -> None:
    index = CountingIndex(Index.from_objects(ManifestSource(CLUSTER).load().objects.values()))
    lines = [flow_line(WEB, API), flow_line(NETSHOOT, POSTGRES, 5432)] * 50
    records = parse_lines(JsonLinesReader(), enumerate(lines, start=1), ReadStats(), "log.jsonl")
    written: list[str] = []
    audit = run_audit(records, index.decide_many, write=written.append, chunk=7)
    summary = audit.summary
    summary.fold()  # pending records into the counters, as the command does before printing
    assert sorted(index.asked) == sorted({Flow(WEB, API, "TCP", 8080), Flow(NETSHOOT, POSTGRES, "TCP", 5432)})
    assert (summary.total, summary.dedup.decided, summary.allowed, summary.denied) == (100, 2, 50, 50)
    assert "".join(written).count("\n") == 100
    assert summary.top_denied() == [(("pod default/netshoot", "pod data/postgres-0", "TCP/5432"), 50)]


# --- decide -------------------------------------------------------------------------------


def test_decide_prints_a_readable_answer_and_exits_0_when_allowed(cli: Cli) -> None:
    status, out, _err = cli("decide", "--src", WEB, "--dst", API, "--port", "8080", "--explain")
    assert status == 0
    assert out.splitlines()[:3] == [
        f"ALLOW  TCP {WEB} -> {API}:8080",
        "  reason:      allowed-by-policy",
        f"  source:      pod frontend/web-6d4cf-x2lqp ({WEB})",
    ]
    assert "ingress of pod backend/api-5b7f9-4hq2c: isolated by" in out
    assert "allowed by backend/api-from-web rule 0" in out


def test_decide_exits_1_when_denied_and_explains_both_directions(cli: Cli) -> None:
    status, out, _err = cli("decide", "--src", "10.244.2.50", "--dst", API, "--port", "8080", "-e")
    assert status == 1
    assert out.startswith("DENY ") and "reason:      denied-on-both" in out
    assert "egress of pod staging/web-staging-6f8d9-r5t2w: isolated by staging/default-deny-egress" in out
    assert out.count("no rule of these policies matches: denied") == 2


def test_decide_json_prints_the_decision_dict(cli: Cli) -> None:
    status, out, _err = cli("decide", "--src", NETSHOOT, "--dst", POSTGRES, "--protocol", "icmp", "--json")
    doc = json.loads(out)
    assert status == 1
    assert doc["flow"] == {"src_ip": NETSHOOT, "dst_ip": POSTGRES, "protocol": "ICMP", "dst_port": 0}
    assert (doc["verdict"], doc["reason"], doc["dst"]["name"]) == (
        "DENY",
        "denied-on-ingress",
        "data/postgres-0",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--src", "10.1.1", "--dst", API, "--port", "80"], "error: --src: must be an IPv4", id="bad src"
        ),
        pytest.param(
            ["--src", WEB, "--dst", API], "error: --port: is required for TCP", id="no port for TCP"
        ),
        pytest.param(
            ["--src", WEB, "--dst", API, "--port", "0"], "error: --port: must be between 1", id="port 0"
        ),
        pytest.param(
            ["--src", WEB, "--dst", API, "-p", "XTP", "--port", "1"], "error: --protocol:", id="protocol"
        ),
    ],
)
def test_decide_names_the_bad_option(cli: Cli, argv: list[str], message: str) -> None:
    status, _out, err = cli("decide", *argv)
    assert status == 2 and err.startswith(message)


# --- validate -----------------------------------------------------------------------------


def test_validate_summarises_a_good_source(cli: Cli) -> None:
    status, out, _err = cli("validate")
    assert status == 0
    assert out.startswith(
        "ok: 62 objects in 15 files (7 Namespace, 21 Pod, 2 Node, 18 NetworkPolicy, 2 ClusterNetworkPolicy, "
        "6 Service, 6 EndpointSlice) from"
    )


def test_validate_lists_every_problem_one_per_line_and_exits_1(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        textwrap.dedent("""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: web, namespace: shop}
        spec:
          podSelector: {}
          ingress:
          - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]
            ports: [{port: 80, endPort: 79}]
        """)
    )
    (tmp_path / "broken.yaml").write_text("kind: [\n")
    status, out, err = cli("validate", "--source", str(tmp_path))
    assert status == 1
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{tmp_path / 'broken.yaml'}: line 2, column 1: invalid YAML")
    where = f"{tmp_path / 'p.yaml'}: document 1: NetworkPolicy shop/web:"
    assert lines[1].startswith(f"{where} spec.ingress[0].from[0].ipBlock.except[0]:")
    assert lines[2].startswith(f"{where} spec.ingress[0].ports[0].endPort:")
    assert err == "3 problems found\n"


# --- the installed command ------------------------------------------------------------------


def test_the_installed_console_script_audits_the_bundled_example(tmp_path: Path) -> None:
    beside = Path(sys.executable).with_name("netpol-pdp")
    script = str(beside) if beside.exists() else shutil.which("netpol-pdp")
    assert script, "install the package (pip install -e .) to get the netpol-pdp command"
    done = subprocess.run(
        [script, "audit", "-"], input=FLOWS.read_bytes(), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    rows = jsonl(done.stdout.decode())
    assert [(r["verdict"], r["reason"]) for r in rows] == [(e["verdict"], e["reason"]) for e in EXPECTED]
    assert b"audited 54 flows" in done.stderr


def test_remembered_parses_never_let_a_malformed_spelling_through(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "f.jsonl"
    log.write_text("\n".join([flow_line(WEB, API, 1), flow_line(WEB, API, True)]) + "\n")
    status, out, err = cli("audit", str(log))
    assert status == 2 and len(jsonl(out)) == 1
    assert err.startswith("error: line 2: dst_port: must be an integer port (got True)")
