"""No flow log ends in a traceback: each input issue 16 found by fuzzing is a located error.

The table holds the cases found (a corrupt gzip, an object where a string
belongs, Unicode digits, integers beyond ``int()``'s 4,300-digit limit, a VPC
``start`` no clock can show); the property tests mutate the bundled example
logs and require every read to end in records or a located
:class:`FlowLogError`.  Their budget is small in the suite; set
``NETPOL_PDP_FUZZ_EXAMPLES`` (e.g. 20000) for a longer run.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netpol_pdp.clients.flowlogs import FlowLogError, read_flowlog
from netpol_pdp.index.flows import ascii_int

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "flowlogs"
CLUSTER = Path(__file__).resolve().parents[1] / "examples" / "cluster"
FUZZ_EXAMPLES = int(os.environ.get("NETPOL_PDP_FUZZ_EXAMPLES", "60"))
HUGE = "9" * 5000

HUBBLE = (
    '{"flow": {"verdict": "DROPPED", "drop_reason_desc": %s, "traffic_direction": "INGRESS",'
    ' "IP": {"source": "10.0.0.1", "destination": "10.0.0.2"},'
    ' "l4": {"TCP": {"destination_port": 80}}}}'
)
GCP = (
    '{"jsonPayload": {"disposition": %s, "reporter": "SRC", "connection":'
    ' {"src_ip": "10.0.0.1", "dest_ip": "10.0.0.2", "protocol": 6, "dest_port": 80}}}'
)
VPC_HEADER = "version srcaddr dstaddr srcport dstport protocol start action log-status tcp-flags"


def vpc(port: str = "80", protocol: str = "6", start: str = "1795165200", flags: str = "2") -> str:
    return f"{VPC_HEADER}\n5 10.0.0.1 10.0.0.2 4000 {port} {protocol} {start} ACCEPT OK {flags}\n"


def jsonl(port: str) -> str:
    """A good line (for detection), then one with this port."""
    line = '{"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "protocol": "TCP", "dst_port": %s}\n'
    return line % "80" + line % port


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        pytest.param(HUBBLE % '{"a": 1}' + "\n", 0, "", "", id="hubble: drop_reason_desc an object"),
        pytest.param(HUBBLE % "[1]" + "\n", 0, "", "", id="hubble: drop_reason_desc a list"),
        pytest.param(
            GCP % '{"a": 1}' + "\n", 1, "jsonPayload.disposition", "ALLOWED or DENIED", id="gcp: an object"
        ),
        pytest.param(GCP % "[1]" + "\n", 1, "jsonPayload.disposition", "ALLOWED or DENIED", id="gcp: a list"),
        pytest.param(jsonl('"8²"'), 2, "dst_port", "integer port", id="jsonl: a superscript digit port"),
        pytest.param(jsonl('"٨٠"'), 2, "dst_port", "integer port", id="jsonl: Arabic-Indic digits"),
        pytest.param(jsonl(HUGE), 2, "", "not valid JSON", id="jsonl: a 5000-digit integer"),
        pytest.param(jsonl(f'"{HUGE}"'), 2, "dst_port", "integer port", id="jsonl: 5000 digits as text"),
        pytest.param(vpc(port="8²"), 2, "dstport", "integer port", id="vpc: a superscript digit port"),
        pytest.param(vpc(protocol="٦"), 2, "protocol", "IANA protocol number", id="vpc: a Unicode digit"),
        pytest.param(vpc(flags="²"), 2, "tcp-flags", "a number", id="vpc: Unicode digit tcp-flags"),
        pytest.param(vpc(start="²"), 2, "start", "seconds since the epoch", id="vpc: Unicode digit start"),
        pytest.param(vpc(port=HUGE), 2, "dstport", "integer port", id="vpc: a 5000-digit port"),
        pytest.param(vpc(start=HUGE), 2, "start", "seconds since the epoch", id="vpc: a 5000-digit start"),
        pytest.param(vpc(start="99999999999999999"), 2, "start", "represented", id="vpc: start past clocks"),
    ],
)
def test_a_value_no_reader_can_use_is_a_located_error(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    path = tmp_path / "flows.log"
    path.write_text(text, encoding="utf-8")
    if not line:  # not a policy drop: read, compared with nothing
        assert [r.observed for r in read_flowlog(str(path))] == [None]
        return
    with pytest.raises(FlowLogError) as caught:
        list(read_flowlog(str(path)))
    assert (caught.value.line, caught.value.field) == (line, field)
    assert words in caught.value.message
    assert len(str(caught.value)) < 300  # the bad value is quoted short


@pytest.mark.parametrize(
    ("text", "number"),
    [("80", 80), (" 6 ", 6), ("0", 0), ("²", None), ("٨", None), ("", None), ("-1", None), ("9" * 21, None)],
)
def test_only_ascii_digits_of_reasonable_length_are_a_number(text: str, number: int | None) -> None:
    assert ascii_int(text) == number


def gzipped_sample() -> bytes:
    return gzip.compress((SAMPLES / "flows.jsonl").read_bytes())


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:10] + b"\xff" * 8 + b[18:], id="deflate stream overwritten"),
        pytest.param(lambda b: b[: len(b) // 2], id="cut in the middle"),
        pytest.param(lambda b: b[:-4] + b"\0\0\0\0", id="wrong length in the trailer"),
        pytest.param(lambda b: b[:-8] + b"\0\0\0\0" + b[-4:], id="wrong CRC"),
        pytest.param(lambda b: b[:3] + b"\xff" + b[4:], id="reserved header flags"),
    ],
)
def test_a_corrupt_gzip_is_a_located_one_line_error_of_audit(tmp_path: Path, cli, damage) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "flows.jsonl.gz"
    path.write_bytes(damage(gzipped_sample()))
    status, _, err = cli("audit", str(path), "--source", str(CLUSTER))
    assert status == 2
    assert err.startswith(f"netpol-pdp: {path}:") or f"{path}:" in err.splitlines()[0]
    assert "Traceback" not in err and "zlib.error" not in err
    assert len(err.strip().splitlines()) == 1


def read_all_or_locate(data: bytes, suffix: str) -> None:
    """Read every record of ``data``; the only failure allowed is a located FlowLogError."""
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as f:
        f.write(data)
    try:
        with read_flowlog(f.name) as log:
            for _ in log:
                pass
        with read_flowlog(f.name, skip_invalid=True) as log:
            for _ in log:
                pass
    except FlowLogError as exc:
        assert str(exc).startswith(f"{f.name}: ")
        assert "\n" not in str(exc)
    finally:
        os.unlink(f.name)


SAMPLE_FILES = sorted(p for p in SAMPLES.rglob("*") if p.is_file())
#: Text a fuzzed line may get: values of the wrong shape, odd digits, huge numbers, JSON punctuation.
NASTY = st.sampled_from(
    ['{"a": 1}', "[1, 2]", "null", "true", "²", "٨٠", HUGE, "99999999999999999", "-", "", '"', "{", "}",
     ",", ":", "\\u0000", "\udcff", "1e999", "-0", "0x10", " ", "\t"]
)  # fmt: skip


@st.composite
def mutated_log(draw: st.DrawFn) -> tuple[bytes, str]:
    sample = draw(st.sampled_from(SAMPLE_FILES))
    lines = sample.read_text(encoding="utf-8").splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        text = lines[i]
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        piece = draw(st.one_of(NASTY, st.text(max_size=6)))
        lines[i] = text[:start] + piece + text[end:]
    data = "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n"
    return data, sample.suffix


@settings(max_examples=FUZZ_EXAMPLES)
@given(mutated_log())
def test_a_mutated_example_log_reads_or_fails_located(case: tuple[bytes, str]) -> None:
    read_all_or_locate(*case)


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.sampled_from(SAMPLE_FILES), st.data())
def test_a_damaged_gzipped_example_log_reads_or_fails_located(sample: Path, data: st.DataObject) -> None:
    packed = bytearray(gzip.compress(sample.read_bytes()))
    for _ in range(data.draw(st.integers(1, 3))):
        packed[data.draw(st.integers(0, len(packed) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(2, len(packed)))
    read_all_or_locate(bytes(packed[:cut]), ".gz")
