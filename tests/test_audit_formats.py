"""`netpol-pdp audit` on every flow-log format: one decision per flow, in order; errors located."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from netpol_pdp.clients.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "examples" / "flowlogs"
CLUSTER = ROOT / "examples" / "cluster"


def audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, object]], str]:
    status = main(["audit", *args, "--source", str(CLUSTER)])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


# (sample, verdicts in input order)
VERDICTS = [
    ("hubble-observe.jsonl", ["ALLOW", "DENY", "ALLOW", "ALLOW", "DENY", "DENY", "ALLOW"]),
    ("hubble-legacy.jsonl", ["ALLOW", "DENY"]),
    ("aws-vpc-default.log", ["ALLOW", "DENY", "DENY", "DENY"]),
    ("aws-vpc-custom.log", ["ALLOW", "DENY", "ALLOW"]),
    ("gcp-vpc.jsonl", ["ALLOW", "DENY", "DENY"]),
    ("flows.csv", ["ALLOW", "DENY", "ALLOW", "DENY"]),
    ("flows.jsonl", ["ALLOW", "DENY", "ALLOW"]),
]


@pytest.mark.parametrize(
    ("sample", "verdicts"), VERDICTS, ids=[f"{s} is audited flow by flow" for s, _ in VERDICTS]
)
def test_every_format_is_audited_one_line_per_flow_in_order(
    capsys: pytest.CaptureFixture[str], sample: str, verdicts: list[str]
) -> None:
    status, lines, err = audit(capsys, str(SAMPLES / sample))
    assert status == 0
    assert [line["verdict"] for line in lines] == verdicts
    assert all({"reason", "generation", "src", "dst"} <= line.keys() for line in lines)
    assert f"audited {len(verdicts)} flows" in err


def test_our_json_lines_keep_the_input_text_and_gain_the_decision(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["audit", str(SAMPLES / "flows.jsonl"), "--source", str(CLUSTER)])
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    first_input = (SAMPLES / "flows.jsonl").read_text().splitlines()[0]
    assert out[0].startswith(first_input[:-1] + ", ")
    assert json.loads(out[0])["app"] == "checkout"


def test_format_forces_a_reader(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # a CSV with an unusual first line is not detected, but reads with --format csv
    path = tmp_path / "export.txt"
    path.write_text("dst_port,src_ip,dst_ip\n8080,10.244.1.12,10.244.1.20\n")
    status, lines, _ = audit(capsys, str(path), "--format", "csv")
    assert status == 0
    assert [line["verdict"] for line in lines] == ["ALLOW"]


def test_a_gzipped_log_is_audited_like_the_plain_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    packed = tmp_path / "hubble.jsonl.gz"
    packed.write_bytes(gzip.compress((SAMPLES / "hubble-observe.jsonl").read_bytes()))
    _, plain, _ = audit(capsys, str(SAMPLES / "hubble-observe.jsonl"))
    _, unpacked, _ = audit(capsys, str(packed))
    assert unpacked == plain


def test_a_malformed_line_stops_the_audit_naming_file_line_and_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = SAMPLES / "malformed" / "hubble.jsonl"
    status, lines, err = audit(capsys, str(path))
    assert status == 2
    assert "error: line 2: flow.IP.source: must be an IPv4 or IPv6 address" in err
    assert "Traceback" not in err
    assert [line["verdict"] for line in lines] == ["ALLOW"]  # what came before is written


def test_skip_invalid_warns_per_line_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines, err = audit(capsys, str(SAMPLES / "malformed" / "aws-vpc.log"), "--skip-invalid")
    assert status == 0
    assert len(lines) == 1
    assert err.count("warning: ") == 4
    assert "line 2: protocol: must be an IANA protocol number" in err
    assert "invalid lines skipped: 4" in err


def test_the_summary_counts_what_the_reader_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = audit(capsys, str(SAMPLES / "hubble-observe.jsonl"))
    assert "read 10 lines (hubble); skipped 1 non-l4, 1 not-a-flow, 1 reply" in err


def test_an_unrecognisable_log_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "syslog"
    path.write_text("Nov 20 09:00:01 host kernel: IN=eth0 SRC=10.0.0.1\n")
    status, _, err = audit(capsys, str(path))
    assert status == 2
    assert "cannot tell the format" in err
    assert "--format" in err
