"""The line pass (repeated raw lines answered from a cache) answers exactly what deciding each record would.

Logs are drawn from a small pool of lines, so lines repeat (within a chunk and
across chunks), with blank lines, bad lines, non-UTF-8 bytes, repeated CSV
headers, extra fields, observed verdicts and fields the decision overrides.
Each is audited twice: from the :class:`FlowLog` (the line pass) and from its
records (``iter(log)``, decided batch by batch); the output text, the report,
the read counts, the what-if diff and the error must be the same.  The caches
are made tiny, so that flushing, emptying and switching the line cache off all
happen within a few lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netpol_pdp.clients.auditing import lines as line_pass
from netpol_pdp.clients.auditing.audit import run_audit
from netpol_pdp.clients.auditing.report import report_data
from netpol_pdp.clients.auditing.whatif import WhatIf, WorldChange
from netpol_pdp.clients.flowlogs import read_flowlog
from netpol_pdp.clients.flowlogs.detect import SNIFF_LINES
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import NetpolPdpError
from netpol_pdp.index.manifests import ManifestSource

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "examples" / "cluster"
SAMPLES = ROOT / "examples" / "flowlogs"
WEB, API, POSTGRES, NETSHOOT = "10.244.1.12", "10.244.1.20", "10.244.2.30", "10.244.1.40"

INDEX = Index.from_objects(ManifestSource(CLUSTER).load().objects.values())
CHANGE = WorldChange.load([str(ROOT / "examples" / "whatif" / "api-from-web-tls-only.yaml")], [])


def jsonl(src: str, dst: str, port: int, **extra: object) -> str:
    return json.dumps({"src_ip": src, "dst_ip": dst, "protocol": "TCP", "dst_port": port, **extra})


JSONL_POOL = [
    jsonl(WEB, API, 8080),
    jsonl(NETSHOOT, POSTGRES, 5432),
    jsonl(WEB, API, 8080, time="2026-11-20T09:00:01Z"),
    jsonl(WEB, API, 8080, observed="deny", direction="ingress"),
    jsonl(NETSHOOT, POSTGRES, 5432, observed="allow"),
    jsonl(WEB, API, 8080, verdict="mine"),  # a field the decision overrides
    '{"src_ip": "10.244.1.12", "dst_ip": "10.244.1.20", "protocol": "TCP", "dst_port": 8080}  ',
    '{"src_ip": "10.244.1.12", "dst_ip": "not an ip", "dst_port": 80}',  # a bad line
    '{"src_ip": "10.244.1.12"',  # not JSON
    "",
    "   ",
    # the same flow with fields of its own (answered by the flow's key, the text kept)
    jsonl(WEB, API, 8080, time="2026-11-20T09:00:02Z", app="checkout"),
    jsonl(WEB, API, 8080, time="2026-11-20T09:00:03Z", direction="egress"),
    jsonl(WEB, API, 8080, direction="sideways"),  # a bad direction, whatever else the line has
    jsonl(WEB, API, 8080, direction="sideways", time="x"),
    '{"src_ip": "10.244.1.12", "dst_ip": ["10.244.1.20"], "dst_port": 8080, "t": 1}',  # unhashable
    '{"src_ip": "10.244.1.12", "dst_ip": "10.244.1.20", "protocol": "TCP", "dst_port": true, "t": 2}',
    '{"src_ip": "10.244.1.12", "dst_ip": "10.244.1.20", "protocol": "TCP", "dst_port": 1, "t": 3}',
    '{"src_ip": "10.244.1.12", "dst_ip": "10.244.1.20", "dst_port": 8080, "t": "\u00e9", "u": "\u00e9"}',
    '  {"src_ip": "10.244.1.12", "dst_ip": "10.244.1.20", "dst_port": 8080 , "t": 4 }  ',
]
CSV_HEADER = "time,src_ip,dst_ip,protocol,dst_port,observed"
CSV_POOL = [
    f"2026-11-20T09:00:01Z,{WEB},{API},TCP,8080,allow",
    f"2026-11-20T09:00:01Z,{NETSHOOT},{POSTGRES},TCP,5432,",
    f",{WEB},{API},tcp,8080,deny",
    CSV_HEADER,  # concatenated files each bring their header
    f"x,{WEB},{API},TCP",  # too few columns
    "",
    # the same flow with a time of its own (answered by the flow's key, the columns kept)
    f"2026-11-20T09:00:05Z,{WEB},{API},TCP,8080,allow",
    f"2026-11-20T09:00:06Z,{WEB},{API},TCP,8080,",
    f'"quoted, time",{WEB},{API},TCP,8080,deny',
    f"t,{WEB},{API},TCP,8080,maybe",  # a bad verdict
    f't,{WEB},{API},TCP,"8080',  # unterminated quote
]


def audit(path: Path, *, by_lines: bool, skip_invalid: bool, whatif: bool) -> dict[str, Any]:
    fmt = {"flows.jsonl": "jsonl", "flows.csv": "csv", "hubble.jsonl": "hubble"}.get(path.name)
    fmt = fmt if path.parent.name.startswith("log") else None
    out: list[str] = []
    diff = WhatIf(INDEX, CHANGE) if whatif else None
    error = None
    with read_flowlog(str(path), fmt, skip_invalid=skip_invalid) as log:
        try:
            run = run_audit(
                log if by_lines else iter(log),
                INDEX.decide_many,
                write=None if whatif else out.append,
                whatif=diff,
                explain_flow=lambda flow: INDEX.decide(flow, explain=True),
                chunk=5,
                keep_error=True,
            )
        except NetpolPdpError as exc:  # pragma: no cover - keep_error returns it
            error = str(exc)
        run.summary.read = log.stats
    report = report_data(run, str(path))
    return {
        "output": "".join(out),
        "report": report,
        "replaced": run.replaced,
        "generations": sorted(run.generations),
        "error": str(run.error) if run.error else error,
        "whatif": None if diff is None else diff.to_dict(),
    }


@pytest.fixture(autouse=True)
def tiny_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(line_pass, "LINE_CACHE_SIZE", 3)
    monkeypatch.setattr(line_pass, "PROBE_LINES", 12)


def same_both_ways(path: Path, skip_invalid: bool, whatif: bool) -> None:
    by_lines = audit(path, by_lines=True, skip_invalid=skip_invalid, whatif=whatif)
    by_records = audit(path, by_lines=False, skip_invalid=skip_invalid, whatif=whatif)
    assert by_lines == by_records


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.integers(0, len(JSONL_POOL) - 1), max_size=40),
    skip_invalid=st.booleans(),
    whatif=st.booleans(),
    bad_byte_at=st.none() | st.integers(0, 39),
)
def test_json_lines_audit_the_same_by_lines_and_by_records(
    tmp_path_factory: pytest.TempPathFactory,
    picks: list[int],
    skip_invalid: bool,
    whatif: bool,
    bad_byte_at: int | None,
) -> None:
    body = [JSONL_POOL[i].encode() for i in picks]
    if bad_byte_at is not None and bad_byte_at < len(body):
        body[bad_byte_at] = b'{"src_ip": "\xff"}'
    path = tmp_path_factory.mktemp("log") / "flows.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in body))
    same_both_ways(path, skip_invalid, whatif)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.integers(0, len(CSV_POOL) - 1), max_size=40), skip_invalid=st.booleans())
def test_csv_audits_the_same_by_lines_and_by_records(
    tmp_path_factory: pytest.TempPathFactory, picks: list[int], skip_invalid: bool
) -> None:
    path = tmp_path_factory.mktemp("log") / "flows.csv"
    path.write_text("\r\n".join([CSV_HEADER, *(CSV_POOL[i] for i in picks)]) + "\r\n")
    same_both_ways(path, skip_invalid, whatif=False)


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.*")))
@pytest.mark.parametrize("whatif", [False, True], ids=["audit", "what-if"])
def test_every_sample_log_audits_the_same_by_lines_and_by_records(
    tmp_path: Path, sample: str, whatif: bool
) -> None:
    """Each sample three times over: every line repeats, across chunks and cache flushes."""
    text = (SAMPLES / sample).read_bytes()
    first, _, rest = text.partition(b"\n")
    header = first + b"\n" if sample.endswith(("csv", "custom.log")) else b""
    body = rest if header else text
    path = tmp_path / sample
    path.write_bytes(header + body * 3)
    same_both_ways(path, skip_invalid=True, whatif=whatif)


@pytest.mark.parametrize("sample", sorted(p.name for p in (SAMPLES / "malformed").iterdir()))
def test_a_malformed_sample_stops_at_the_same_line_with_the_same_message(sample: str) -> None:
    path = SAMPLES / "malformed" / sample
    by_lines = audit(path, by_lines=True, skip_invalid=False, whatif=False)
    assert by_lines["error"] is not None
    assert by_lines == audit(path, by_lines=False, skip_invalid=False, whatif=False)


def test_a_repeated_line_is_parsed_twice_at_most_and_decided_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(line_pass, "LINE_CACHE_SIZE", 1000)
    path = tmp_path / "flows.jsonl"
    path.write_text((jsonl(WEB, API, 8080) + "\n" + jsonl(NETSHOOT, POSTGRES, 5432) + "\n") * 500)
    parsed: list[int] = []
    asked: list[object] = []
    with read_flowlog(str(path)) as log:
        parse = log.reader.parse

        def counting(line: int, text: str) -> Any:
            parsed.append(line)
            return parse(line, text)

        log.reader.parse = counting  # type: ignore[method-assign]
        run = run_audit(log, lambda flows: asked.extend(flows) or INDEX.decide_many(flows), write=[].append)
    # once as the text read to detect the format, once as bytes, then never again
    assert parsed == [1, 2, SNIFF_LINES + 1, SNIFF_LINES + 2]
    assert len(asked) == 2
    assert (run.summary.to_dict()["total"], log.stats.lines, log.stats.records) == (1000, 1000, 1000)


ABSENT = object()
HUBBLE_FIELDS = {
    "time": ["2026-11-20T09:00:01.100Z", "2026-11-20T09:00:02.200Z", "", 't\u00e9"q', 5, ABSENT],
    "node_name": ["default/node-a", "", None, ABSENT],
    "verdict": ["FORWARDED", "DROPPED", "AUDIT", 1, ABSENT],
    "drop_reason_desc": ["POLICY_DENIED", "CT_MAP_INSERTION_FAILED", "", 5, ABSENT],
    "traffic_direction": ["INGRESS", "EGRESS", "", None, ABSENT],
    "is_reply": [False, True, 1, None, ABSENT],
    "l4": [
        {"TCP": {"source_port": 51234, "destination_port": 8080}},
        {"TCP": {"source_port": 40000, "destination_port": 8080}},
        {"UDP": {"destination_port": 53}},
        {"ICMPv4": {"type": 8}},
        {"TCP": None},
        {"TCP": {"destination_port": True}},
        "TCP",
        ABSENT,
    ],
    "IP": [{"source": WEB, "destination": API}, {"source": NETSHOOT, "destination": POSTGRES}, "x", ABSENT],
    "source": [
        {"namespace": "frontend", "pod_name": "web-1"},
        {"pod_name": "web-1"},
        {"pod_name": 7},
        ABSENT,
    ],
    "destination": [{"namespace": "backend", "pod_name": "api-1"}, {"namespace": "backend"}, 3, ABSENT],
}


@st.composite
def hubble_lines(draw: st.DrawFn) -> str:
    flow = {
        k: v for k, options in HUBBLE_FIELDS.items() if (v := draw(st.sampled_from(options))) is not ABSENT
    }
    wrap = draw(st.sampled_from(["response", "bare", "event", "flow time only"]))
    if wrap == "bare":
        return json.dumps(flow)
    if wrap == "event":
        return '{"node_status": {"state_change": "NODE_CONNECTED"}}'
    outer: dict[str, object] = {"flow": flow}
    if wrap == "response":
        outer["time"] = flow.get("time", "2026-11-20T09:00:09Z")
        outer["node_name"] = draw(st.sampled_from(["default/node-b", None, ""]))
    return json.dumps(outer)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pool=st.lists(hubble_lines(), min_size=1, max_size=8), picks=st.lists(st.integers(0, 7), max_size=40))
def test_hubble_audits_the_same_by_lines_and_by_records(
    tmp_path_factory: pytest.TempPathFactory, pool: list[str], picks: list[int]
) -> None:
    path = tmp_path_factory.mktemp("log") / "hubble.jsonl"
    first = json.dumps({"flow": {"IP": {"source": WEB, "destination": API}, "verdict": "FORWARDED"}})
    path.write_text("\n".join([first, *(pool[i % len(pool)] for i in picks)]) + "\n")
    same_both_ways(path, skip_invalid=True, whatif=False)
