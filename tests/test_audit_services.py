"""Auditing flow logs addressed to Services: decided through the Services, grouped by Service.

A small world (two Services with endpoints that decide differently, one without a
ready endpoint) and the same flows as JSON Lines, CSV and Hubble: every format
gives the same decisions, the JSON and HTML reports and the stderr summary group
the Service flows by Service and port, and observed-vs-policy compares the
enforcer's verdict with the endpoints' (a flow to a partially allowed Service
went to ONE endpoint: either verdict agrees).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from netpol_pdp.clients.auditing.agreement import Agreement, compare
from netpol_pdp.clients.auditing.summary import AuditSummary
from netpol_pdp.clients.cli import main
from netpol_pdp.clients.flowlogs.record import Direction, FlowRecord
from netpol_pdp.index.decision import Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import make_flow
from netpol_pdp.index.model import Upsert
from netpol_pdp.index.validation import parse_object

CLIENT, STRANGER = "10.1.0.9", "10.2.0.9"
WEB_VIP, DB_VIP, EMPTY_VIP = "10.96.0.10", "10.96.0.20", "10.96.0.30"


def _pod(ns: str, name: str, ip: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": ip},
    }


def _service(name: str, vip: str, port: int, target: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": "shop", "name": name},
        "spec": {"clusterIP": vip, "ports": [{"port": port, "targetPort": target, "protocol": "TCP"}]},
    }


def _slice(service: str, port: int, *endpoints: tuple[str, bool]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": "shop",
            "name": f"{service}-1",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in endpoints],
        "ports": [{"port": port, "protocol": "TCP"}],
    }


def _allow_from(name: str, target: str, source: str) -> dict[str, Any]:
    peer = {"podSelector": {"matchLabels": {"app": source}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "shop", "name": name},
        "spec": {"podSelector": {"matchLabels": {"app": target}}, "ingress": [{"from": [peer]}]},
    }


WORLD = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
    _pod("shop", "web-a", "10.1.0.1", app="web"),
    _pod("shop", "web-b", "10.1.0.2", app="canary"),  # no policy isolates it
    _pod("shop", "db", "10.1.0.5", app="db"),
    _pod("shop", "client", CLIENT, app="client"),
    _pod("other", "stranger", STRANGER, app="client"),
    _allow_from("web", "web", "client"),  # only shop's clients reach web-a
    _allow_from("db", "db", "web"),
    _service("web", WEB_VIP, 80, 8080),
    _slice("web", 8080, ("10.1.0.1", True), ("10.1.0.2", True)),
    _service("db", DB_VIP, 5432, 5432),
    _slice("db", 5432, ("10.1.0.5", True)),
    _service("empty", EMPTY_VIP, 80, 8080),
    _slice("empty", 8080, ("10.1.0.6", False)),
]

#: (src, dst, port, observed) -> (verdict, reason, agreement)
FLOWS = [
    ((CLIENT, WEB_VIP, 80, "allow"), ("ALLOW", "allowed-by-policy", "agrees")),
    ((STRANGER, WEB_VIP, 80, "allow"), ("DENY", "service-partially-allowed", "agrees")),
    ((STRANGER, WEB_VIP, 80, "deny"), ("DENY", "service-partially-allowed", "agrees")),
    ((CLIENT, DB_VIP, 5432, "allow"), ("DENY", "denied-on-ingress", "forwarded-but-policy-denies")),
    ((CLIENT, EMPTY_VIP, 80, "deny"), ("DENY", "service-no-ready-endpoints", "agrees")),
    ((CLIENT, WEB_VIP, 81, "deny"), ("DENY", "service-port-not-found", "agrees")),
    ((CLIENT, "10.1.0.1", 8080, "allow"), ("ALLOW", "allowed-by-policy", "agrees")),  # a pod, no Service
]

#: what the report says per (Service, port): flows, allowed, denied, partially allowed, unreachable
BY_SERVICE = [
    ("shop/web", "TCP/80", 3, 1, 2, 2, 0),
    ("shop/db", "TCP/5432", 1, 0, 1, 0, 0),
    ("shop/empty", "TCP/80", 1, 0, 1, 0, 1),
    ("shop/web", "TCP/81", 1, 0, 1, 0, 1),
]


def jsonl_log() -> str:
    rows = [
        {"src_ip": s, "dst_ip": d, "protocol": "TCP", "dst_port": p, "observed": o}
        for (s, d, p, o), _ in FLOWS
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


def csv_log() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", "src_ip", "dst_ip", "protocol", "dst_port", "observed"])
    for i, ((s, d, p, o), _) in enumerate(FLOWS):
        writer.writerow([f"2026-11-20T09:00:0{i}Z", s, d, "TCP", p, o])
    return out.getvalue()


def hubble_log() -> str:
    """Hubble flows as a node without socket load-balancing records them: before translation."""
    lines = []
    for i, ((s, d, p, o), _) in enumerate(FLOWS):
        flow = {
            "time": f"2026-11-20T09:00:0{i}.000Z",
            "verdict": "FORWARDED" if o == "allow" else "DROPPED",
            "IP": {"source": s, "destination": d, "ipVersion": "IPv4"},
            "l4": {"TCP": {"source_port": 40000 + i, "destination_port": p, "flags": {"SYN": True}}},
            "Type": "L3_L4",
            "reply": False,
            "traffic_direction": "EGRESS",
        }
        if o == "deny":
            flow |= {"drop_reason": 133, "drop_reason_desc": "POLICY_DENIED"}
        lines.append(json.dumps({"flow": flow}) + "\n")
    return "".join(lines)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cluster") / "cluster.yaml"
    path.write_text(yaml.safe_dump_all(WORLD))
    return path


def audit(
    cluster: Path, tmp_path: Path, name: str, text: str
) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    log = tmp_path / name
    log.write_text(text)
    out = tmp_path / "decisions.jsonl"
    report = tmp_path / "report.json"
    argv = ["audit", str(log), "--source", str(cluster), "-o", str(out), "--report", str(report)]
    argv += ["--report", str(tmp_path / "report.html")]
    status = main(argv)
    decisions = [json.loads(line) for line in out.read_text().splitlines()]
    return status, decisions, json.loads(report.read_text())


LOGS = {
    "JSON Lines": ("flows.jsonl", jsonl_log),
    "CSV": ("flows.csv", csv_log),
    "Hubble": ("hubble.json", hubble_log),
}


@pytest.mark.parametrize("fmt", LOGS.keys())
def test_every_format_decides_service_addresses_through_the_services(
    cluster: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name, make = LOGS[fmt]
    status, decisions, report = audit(cluster, tmp_path, name, make())
    assert status == 0
    got = [(d["verdict"], d["reason"]) for d in decisions]
    assert got == [(verdict, reason) for _, (verdict, reason, _) in FLOWS]
    rows = [
        (
            r["service"],
            r["port"],
            r["flows"],
            r["allowed"],
            r["denied"],
            r["partially_allowed"],
            r["unreachable"],
        )
        for r in report["services"]
    ]
    assert rows == BY_SERVICE
    assert {p["dst"] for p in report["top_denied"]} == {
        "service shop/web",
        "service shop/db",
        "service shop/empty",
    }
    isolating = {(p["src"], p["dst"]): p["isolating_policies"] for p in report["top_denied"]}
    assert isolating[("pod other/stranger", "service shop/web")] == ["shop/web"], "from the denying endpoint"
    assert isolating[("pod shop/client", "service shop/db")] == ["shop/db"]
    assert isolating[("pod shop/client", "service shop/empty")] == [], "no endpoint: no policy to name"
    heat = {(c["src_namespace"], c["dst_namespace"]): c["denied"] for c in report["heat_map"]}
    assert heat[("other", "shop")] == 2, "a flow to a Service counts in the Service's namespace"
    observed = report["observed"]
    if fmt == "Hubble":
        # seen at the client's egress: the db forward says nothing of db's ingress (agrees), and
        # the drop at the partially allowed web is stricter than policy: no endpoint denies egress
        assert (observed["forwarded-but-policy-denies"], observed["dropped-but-policy-allows"]) == (0, 1)
    else:  # end to end: the db flow is forwarded although db's ingress denies it
        assert (observed["forwarded-but-policy-denies"], observed["dropped-but-policy-allows"]) == (1, 0)
    assert observed["agrees"] == len(FLOWS) - 1
    summary = capsys.readouterr().err
    assert "flows to Services" in summary
    assert "service shop/web TCP/80: 1 / 2, 2, 0" in summary
    html = (tmp_path / "report.html").read_text()
    assert 'id="services"' in html
    assert "<td>shop/empty</td>" in html


def test_a_log_without_service_flows_has_no_service_rows(cluster: Path, tmp_path: Path) -> None:
    _, _, report = audit(
        cluster,
        tmp_path,
        "pods.jsonl",
        json.dumps({"src_ip": CLIENT, "dst_ip": "10.1.0.1", "protocol": "TCP", "dst_port": 8080}) + "\n",
    )
    assert report["services"] == []
    assert 'id="services"' not in (tmp_path / "report.html").read_text()


def world_index() -> Index:
    index = Index()
    objects = [parse_object(m) for m in WORLD]
    index.apply([Upsert(o) for o in objects if o is not None])
    return index


AGREEMENT = [
    (
        "a forward to a partially allowed Service agrees: an allowing endpoint was picked",
        STRANGER,
        WEB_VIP,
        80,
        Verdict.ALLOW,
        None,
        Agreement.AGREES,
    ),
    (
        "a drop at a partially allowed Service agrees: a denying endpoint was picked",
        STRANGER,
        WEB_VIP,
        80,
        Verdict.DENY,
        None,
        Agreement.AGREES,
    ),
    (
        "a forward to a Service every endpoint denies is not enforced",
        CLIENT,
        DB_VIP,
        5432,
        Verdict.ALLOW,
        None,
        Agreement.FORWARDED_BUT_DENIED,
    ),
    (
        "a drop at a Service every endpoint allows is stricter than the policy",
        CLIENT,
        WEB_VIP,
        80,
        Verdict.DENY,
        None,
        Agreement.DROPPED_BUT_ALLOWED,
    ),
    (
        "a forward at egress to a Service every endpoint denies on ingress agrees",
        CLIENT,
        DB_VIP,
        5432,
        Verdict.ALLOW,
        Direction.EGRESS,
        Agreement.AGREES,
    ),
    (
        "a forward to a Service without ready endpoints is compared as its DENY",
        CLIENT,
        EMPTY_VIP,
        80,
        Verdict.ALLOW,
        None,
        Agreement.FORWARDED_BUT_DENIED,
    ),
]


@pytest.mark.parametrize(
    ("src", "dst", "port", "observed", "direction", "expected"),
    [a[1:] for a in AGREEMENT],
    ids=[a[0] for a in AGREEMENT],
)
def test_observed_vs_policy_compares_with_the_endpoint_the_enforcer_judged(
    src: str, dst: str, port: int, observed: Verdict, direction: Direction | None, expected: Agreement
) -> None:
    decision = world_index().decide(make_flow(src, dst, "TCP", port))
    assert decision.service is not None
    assert compare(observed, direction, decision) is expected


def test_service_rows_of_partitions_merge_to_those_of_one_pass() -> None:
    """What ``--jobs``/``--dask`` rely on: summaries of parts add up to the summary of the whole."""
    index = world_index()
    records = [
        FlowRecord(i, make_flow(s, d, "TCP", p), {}, Verdict.ALLOW if o == "allow" else Verdict.DENY)
        for i, ((s, d, p, o), _) in enumerate(FLOWS * 3)
    ]
    whole, first, second = AuditSummary(), AuditSummary(), AuditSummary()
    for n, record in enumerate(records):
        decision = index.decide(record.flow)
        agreement = compare(record.observed, None, decision)
        whole.add(record, decision, agreement)
        (first if n % 2 else second).add(record, decision, agreement)
    first.merge(second)
    assert first.by_service() == whole.by_service()
    key, counts = whole.by_service()[0]
    assert (key, counts[0] + counts[1]) == (("shop/web", "TCP/80"), 9)
