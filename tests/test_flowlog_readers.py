"""Flow-log readers: each format's sample lines, its malformed lines, detection, gzip, stdin."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import pytest

from netpol_pdp.clients.flowlogs import Direction, FlowLogError, FlowRecord, read_flowlog
from netpol_pdp.index.decision import Verdict
from netpol_pdp.index.flows import Flow

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "flowlogs"
ALLOW, DENY = Verdict.ALLOW, Verdict.DENY
IN, OUT = Direction.INGRESS, Direction.EGRESS


def first_record(sample: str) -> FlowRecord:
    with read_flowlog(str(SAMPLES / sample)) as log:
        return next(iter(log))


def tcp(src: str, dst: str, port: int) -> Flow:
    return Flow(src, dst, "TCP", port)


@pytest.mark.parametrize(
    ("sample", "fmt"),
    [
        pytest.param(
            "hubble-observe.jsonl", "hubble", id="hubble observe -o json (GetFlowsResponse) is hubble"
        ),
        pytest.param("hubble-legacy.jsonl", "hubble", id="a bare Hubble Flow per line is hubble"),
        pytest.param("aws-vpc-default.log", "aws-vpc", id="a headerless 14-field v2 record is aws-vpc"),
        pytest.param("aws-vpc-custom.log", "aws-vpc", id="a VPC field-name header line is aws-vpc"),
        pytest.param("gcp-vpc.jsonl", "gcp-vpc", id="a LogEntry with jsonPayload.connection is gcp-vpc"),
        pytest.param("flows.csv", "csv", id="a CSV header naming src_ip and dst_ip is csv"),
        pytest.param("flows.jsonl", "jsonl", id="objects with src_ip and dst_ip are our jsonl"),
        pytest.param("malformed/hubble.jsonl", "hubble", id="malformed hubble log is still detected"),
        pytest.param("malformed/aws-vpc.log", "aws-vpc", id="malformed vpc log is still detected"),
        pytest.param("malformed/gcp-vpc.jsonl", "gcp-vpc", id="malformed gcp log is still detected"),
        pytest.param("malformed/flows.csv", "csv", id="malformed csv is still detected"),
        pytest.param("malformed/flows.jsonl", "jsonl", id="malformed jsonl is still detected"),
    ],
)
def test_the_format_is_detected_from_the_first_lines(sample: str, fmt: str) -> None:
    with read_flowlog(str(SAMPLES / sample), skip_invalid=True) as log:
        assert log.stats.format == fmt


# (line, flow, observed verdict, observation point)
EXPECTED = {
    "hubble-observe.jsonl": [
        (1, tcp("10.244.1.12", "10.244.1.20", 8080), ALLOW, IN),
        (3, tcp("10.244.1.40", "10.244.2.30", 5432), DENY, IN),
        (4, Flow("10.244.1.12", "10.244.1.2", "UDP", 53), ALLOW, OUT),
        (7, tcp("10.244.1.20", "10.244.2.30", 5432), ALLOW, OUT),
        (8, tcp("10.244.1.12", "10.244.2.30", 5432), None, OUT),
        (9, tcp("10.244.1.99", "10.244.1.31", 6379), ALLOW, IN),
        (10, tcp("10.244.2.12", "10.244.1.20", 8080), DENY, IN),
    ],
    "hubble-legacy.jsonl": [
        (1, tcp("10.244.1.12", "10.244.1.20", 8080), ALLOW, IN),
        (2, tcp("203.0.113.7", "10.244.2.30", 5432), DENY, IN),
    ],
    "aws-vpc-default.log": [
        (1, tcp("10.244.1.12", "10.244.1.20", 8080), ALLOW, None),
        (2, tcp("10.244.1.20", "10.244.1.12", 51234), ALLOW, None),
        (3, tcp("10.244.1.40", "10.244.2.30", 5432), DENY, None),
        (7, tcp("203.0.113.7", "10.244.2.30", 5432), DENY, None),
    ],
    "aws-vpc-custom.log": [
        (2, tcp("10.244.1.12", "10.244.1.20", 8080), ALLOW, OUT),
        (3, tcp("10.244.1.40", "10.244.2.30", 5432), DENY, IN),
        (4, tcp("10.244.1.20", "10.244.2.30", 5432), ALLOW, IN),
    ],
    "gcp-vpc.jsonl": [
        (1, tcp("10.244.1.12", "10.244.1.20", 8080), None, IN),
        (2, tcp("10.244.1.40", "10.244.2.30", 5432), None, OUT),
        (4, tcp("203.0.113.7", "10.244.2.30", 5432), DENY, IN),
    ],
    "flows.csv": [
        (2, tcp("10.244.1.12", "10.244.1.20", 8080), ALLOW, None),
        (3, tcp("10.244.1.40", "10.244.2.30", 5432), DENY, None),
        (4, Flow("10.244.1.12", "10.244.1.2", "UDP", 53), None, None),
        (5, tcp("2001:db8::1", "10.244.1.20", 443), None, None),
    ],
    "flows.jsonl": [
        (1, tcp("10.244.1.12", "10.244.1.20", 8080), None, None),
        (2, tcp("10.244.1.40", "10.244.2.30", 5432), DENY, IN),
        (3, Flow("10.244.1.12", "10.244.1.2", "UDP", 53), None, None),
    ],
}

SKIPPED = {
    "hubble-observe.jsonl": {"reply": 1, "non-l4": 1, "not-a-flow": 1},
    "hubble-legacy.jsonl": {"reply": 1},
    "aws-vpc-default.log": {"non-l4": 1, "nodata": 1, "skipdata": 1},
    "aws-vpc-custom.log": {"header": 1, "reply": 1, "nodata": 1},
    "gcp-vpc.jsonl": {"non-l4": 1},
    "flows.csv": {"header": 1},
    "flows.jsonl": {},
}


@pytest.mark.parametrize("sample", sorted(EXPECTED), ids=lambda s: f"{s} reads to the expected flows")
def test_each_sample_reads_to_its_flows_verdicts_and_directions(sample: str) -> None:
    log = read_flowlog(str(SAMPLES / sample))
    got = [(r.line, r.flow, r.observed, r.direction) for r in log]
    assert got == EXPECTED[sample]
    assert dict(log.stats.skipped) == SKIPPED[sample]
    assert log.stats.invalid == 0
    assert log.stats.lines == len(got) + sum(SKIPPED[sample].values())


def test_hubble_keeps_who_talked_to_whom_and_why_it_dropped() -> None:
    records = list(read_flowlog(str(SAMPLES / "hubble-observe.jsonl")))
    dropped = records[1]
    assert dropped.fields == {
        "time": "2026-11-20T09:00:02.500Z",
        "node_name": "default/node-b",
        "observed_verdict": "DROPPED",
        "drop_reason_desc": "POLICY_DENIED",
        "traffic_direction": "INGRESS",
        "source_pod": "monitoring/prometheus-0",
        "destination_pod": "data/postgres-0",
    }
    assert dropped.time == "2026-11-20T09:00:02.500Z"


def test_a_drop_for_another_reason_than_policy_is_not_an_observed_policy_verdict() -> None:
    ct_drop = list(read_flowlog(str(SAMPLES / "hubble-observe.jsonl")))[4]
    assert ct_drop.fields["drop_reason_desc"] == "CT_MAP_INSERTION_FAILED"
    assert ct_drop.observed is None


def test_vpc_prefers_the_packet_addresses_over_the_interface_view() -> None:
    records = list(read_flowlog(str(SAMPLES / "aws-vpc-custom.log")))
    assert records[1].fields["srcaddr"] == "10.0.1.5"
    assert records[1].flow.src_ip == "10.244.1.40"


def test_vpc_start_seconds_become_an_iso_time() -> None:
    first = first_record("aws-vpc-default.log")
    assert first.time == "2026-11-20T09:00:00Z"


def test_csv_and_jsonl_keep_every_original_column() -> None:
    csv_first = first_record("flows.csv")
    assert csv_first.fields["app"] == "checkout"
    third = list(read_flowlog(str(SAMPLES / "flows.csv")))[2]
    assert third.fields["app"] == "dns, cluster"  # a quoted comma stays in its column
    jsonl_first = first_record("flows.jsonl")
    assert jsonl_first.fields["app"] == "checkout"


def test_gcp_keeps_the_gke_pods_and_the_reporter() -> None:
    first = first_record("gcp-vpc.jsonl")
    assert first.fields["src_pod"] == "frontend/web-6d4cf-x2lqp"
    assert first.fields["dest_pod"] == "backend/api-5b7f9-4hq2c"
    assert first.fields["reporter"] == "DEST"


# (line, field) of every malformed line, in order; the first is what a strict read stops on.
MALFORMED = {
    "hubble.jsonl": [(2, "flow.IP.source"), (3, "flow.l4.TCP.destination_port"), (4, "")],
    "aws-vpc.log": [(2, "protocol"), (3, "line"), (4, "dstaddr"), (5, "action")],
    "gcp-vpc.jsonl": [
        (2, "jsonPayload.connection"),
        (3, "jsonPayload.connection.src_ip"),
        (4, "jsonPayload.connection.dest_port"),
    ],
    "flows.csv": [(3, "line"), (4, "protocol"), (5, "src_ip"), (6, "dst_port")],
    "flows.jsonl": [(2, "dst_port"), (3, "flow"), (4, "dst_ip"), (5, "observed")],
}


@pytest.mark.parametrize(
    "sample", sorted(MALFORMED), ids=lambda s: f"{s}: a bad line stops with line and field"
)
def test_a_malformed_line_stops_the_read_naming_line_and_field(sample: str) -> None:
    path = str(SAMPLES / "malformed" / sample)
    with pytest.raises(FlowLogError) as caught:
        list(read_flowlog(path))
    line, field = MALFORMED[sample][0]
    assert (caught.value.line, caught.value.field) == (line, field)
    assert str(caught.value).startswith(f"{path}: line {line}: {field}: ")


@pytest.mark.parametrize(
    "sample", sorted(MALFORMED), ids=lambda s: f"{s}: skip-invalid counts every bad line"
)
def test_skip_invalid_counts_and_locates_every_malformed_line(sample: str) -> None:
    log = read_flowlog(str(SAMPLES / "malformed" / sample), skip_invalid=True)
    records = list(log)
    assert [r.line for r in records] == ([2] if sample == "flows.csv" else [1])
    assert log.stats.invalid == len(MALFORMED[sample])
    assert [(e.line, e.field) for e in log.stats.invalid_examples] == MALFORMED[sample]


def test_a_gzipped_log_reads_the_same_as_the_plain_one(tmp_path: Path) -> None:
    plain = SAMPLES / "hubble-observe.jsonl"
    packed = tmp_path / "flows.log"  # no .gz suffix: the magic bytes decide
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert [r.flow for r in read_flowlog(str(packed))] == [r.flow for r in read_flowlog(str(plain))]


def test_dash_reads_stdin_gzipped_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (SAMPLES / "aws-vpc-default.log").read_bytes()
    for payload in (data, gzip.compress(data)):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(payload)))
        log = read_flowlog("-")
        assert len(list(log)) == 4
        assert log.stats.format == "aws-vpc"


def test_format_overrides_detection_and_then_reads_strictly() -> None:
    with pytest.raises(FlowLogError) as caught:
        list(read_flowlog(str(SAMPLES / "flows.csv"), fmt="jsonl"))
    assert (caught.value.line, caught.value.field) == (1, "")


def test_an_unknown_format_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(FlowLogError, match=r"unknown format 'netflow': one of .*hubble"):
        read_flowlog(str(SAMPLES / "flows.csv"), fmt="netflow")


def test_an_unrecognisable_log_asks_for_format(tmp_path: Path) -> None:
    path = tmp_path / "mystery.txt"
    path.write_text("Nov 20 09:00:01 host kernel: IN=eth0 SRC=10.0.0.1 DST=10.0.0.2\n")
    with pytest.raises(FlowLogError, match=r"cannot tell the format .* give --format"):
        read_flowlog(str(path))


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FlowLogError, match="No such file"):
        read_flowlog(str(tmp_path / "absent.jsonl"))


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    path.write_bytes(b'{"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 80}\n\xff\xfe\n')
    with pytest.raises(FlowLogError) as caught:
        list(read_flowlog(str(path)))
    assert caught.value.line == 2
    assert caught.value.message == "not UTF-8 text (byte 0)"


def test_records_stream_before_a_late_bad_line_is_reached(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    good = '{"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 80}\n'
    path.write_text(good * 1000 + "not json\n")
    with read_flowlog(str(path)) as log:
        records = iter(log)
        first = [next(records) for _ in range(1000)]  # yielded before the bad line is read
        assert first[-1].line == 1000
        with pytest.raises(FlowLogError, match=": line 1001: not valid JSON"):
            next(records)


def test_a_vpc_header_that_lacks_the_flow_fields_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vpc.log"
    path.write_text("version srcaddr dstaddr action log-status\n2 10.0.0.1 10.0.0.2 ACCEPT OK\n")
    with pytest.raises(FlowLogError) as caught:
        list(read_flowlog(str(path)))
    assert (caught.value.line, caught.value.field) == (1, "header")
    assert "dstport, protocol" in caught.value.message


def test_a_value_of_the_wrong_shape_is_reported_not_crashed_on(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    path.write_text('{"src_ip": ["10.0.0.1"], "dst_ip": "10.0.0.2", "dst_port": 80}\n')
    with pytest.raises(FlowLogError) as caught:
        list(read_flowlog(str(path)))
    assert (caught.value.line, caught.value.field) == (1, "src_ip")


def test_repeated_raw_fields_parse_to_the_same_flow_whatever_their_type(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    path.write_text(
        '{"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "protocol": 6, "dst_port": 80}\n'
        '{"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "protocol": "tcp", "dst_port": "80"}\n'
        '{"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "protocol": true, "dst_port": 80}\n'
    )
    log = read_flowlog(str(path), skip_invalid=True)
    assert [r.flow for r in log] == [Flow("10.0.0.1", "10.0.0.2", "TCP", 80)] * 2
    assert [e.field for e in log.stats.invalid_examples] == ["protocol"]  # True is not protocol 1
