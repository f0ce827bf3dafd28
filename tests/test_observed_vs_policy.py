"""Observed vs policy: the enforcer's verdict in the log against the policy's, where it looked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netpol_pdp.clients.auditing.agreement import Agreement, compare
from netpol_pdp.clients.cli import main
from netpol_pdp.clients.flowlogs.record import Direction
from netpol_pdp.index.decision import Decision, Endpoint, EndpointKind, Reason, Verdict

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "examples" / "flowlogs"
CLUSTER = ROOT / "examples" / "cluster"

AGREES = Agreement.AGREES
DROPPED_BUT_ALLOWED = Agreement.DROPPED_BUT_ALLOWED
FORWARDED_BUT_DENIED = Agreement.FORWARDED_BUT_DENIED
ALLOW, DENY = Verdict.ALLOW, Verdict.DENY
IN, OUT = Direction.INGRESS, Direction.EGRESS


def decision(reason: Reason) -> Decision:
    allowed = reason in (Reason.ALLOWED_BY_POLICY, Reason.NOT_ISOLATED, Reason.LOOPBACK, Reason.NO_POD)
    pod = Endpoint(EndpointKind.POD, "ns/p", "ns")
    return Decision(ALLOW if allowed else DENY, reason, 1, pod, pod)


RULES = [
    ("no observed verdict: nothing to compare", None, IN, Reason.DENIED_BOTH, None),
    ("forwarded and allowed agree", ALLOW, None, Reason.ALLOWED_BY_POLICY, AGREES),
    ("dropped and denied agree", DENY, None, Reason.DENIED_INGRESS, AGREES),
    ("forwarded but denied: policy not enforced", ALLOW, None, Reason.DENIED_EGRESS, FORWARDED_BUT_DENIED),
    ("dropped but allowed: enforcer stricter", DENY, None, Reason.NOT_ISOLATED, DROPPED_BUT_ALLOWED),
    ("forwarded at egress says nothing of ingress", ALLOW, OUT, Reason.DENIED_INGRESS, AGREES),
    (
        "forwarded at egress disagrees with an egress denial",
        ALLOW,
        OUT,
        Reason.DENIED_EGRESS,
        FORWARDED_BUT_DENIED,
    ),
    ("dropped at egress agrees with an egress denial", DENY, OUT, Reason.DENIED_BOTH, AGREES),
    (
        "dropped at egress disagrees with an ingress-only denial",
        DENY,
        OUT,
        Reason.DENIED_INGRESS,
        DROPPED_BUT_ALLOWED,
    ),
    (
        "forwarded at ingress means the whole path was allowed",
        ALLOW,
        IN,
        Reason.DENIED_EGRESS,
        FORWARDED_BUT_DENIED,
    ),
    ("dropped at ingress agrees with an ingress denial", DENY, IN, Reason.DENIED_BOTH, AGREES),
    (
        "dropped at ingress disagrees with an egress-only denial",
        DENY,
        IN,
        Reason.DENIED_EGRESS,
        DROPPED_BUT_ALLOWED,
    ),
]


@pytest.mark.parametrize(
    ("observed", "direction", "reason", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_agreement_respects_where_the_enforcer_looked(
    observed: Verdict | None, direction: Direction | None, reason: Reason, expected: Agreement | None
) -> None:
    assert compare(observed, direction, decision(reason)) == expected


def audit_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], sample: str) -> tuple[list[dict], dict]:
    report = tmp_path / "report.json"
    status = main(["audit", str(SAMPLES / sample), "--source", str(CLUSTER), "--report", str(report)])
    assert status == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return lines, json.loads(report.read_text())


def test_hubble_shows_both_kinds_of_disagreement_grouped_by_pod_pair_and_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, report = audit_json(tmp_path, capsys, "hubble-observe.jsonl")
    assert [line.get("agreement") for line in lines] == [
        "agrees",  # web -> api 8080, forwarded at ingress, allowed
        "agrees",  # prometheus -> postgres 5432, policy drop at ingress, denied on both
        "agrees",  # web -> coredns 53, forwarded at egress, web's egress is not isolated
        "agrees",  # api -> postgres 5432, forwarded at egress
        None,  # a conntrack drop is not a policy verdict
        "forwarded-but-policy-denies",  # netshoot -> redis: policy not enforced
        "dropped-but-policy-allows",  # web (node-b) -> api: the enforcer is stricter
    ]
    observed = report["observed"]
    assert (observed["compared"], observed["agrees"]) == (6, 4)
    assert observed["disagreements"] == {
        "dropped-but-policy-allows": [
            {
                "src": "pod frontend/web-6d4cf-z8mfn",
                "dst": "pod backend/api-5b7f9-4hq2c",
                "port": "TCP/8080",
                "count": 1,
            }
        ],
        "forwarded-but-policy-denies": [
            {"src": "pod default/netshoot", "dst": "pod data/redis-0", "port": "TCP/6379", "count": 1}
        ],
    }


def test_the_stderr_summary_lists_disagreements_by_kind(capsys: pytest.CaptureFixture[str]) -> None:
    main(["audit", str(SAMPLES / "hubble-observe.jsonl"), "--source", str(CLUSTER)])
    err = capsys.readouterr().err
    assert "observed vs policy: 6 compared, 4 agree" in err
    assert "dropped-but-policy-allows: 1" in err
    assert "pod default/netshoot -> pod data/redis-0 TCP/6379" in err


def test_repeated_disagreements_are_counted_in_one_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = (SAMPLES / "hubble-observe.jsonl").read_text().splitlines()[8]  # netshoot -> redis, forwarded
    log = tmp_path / "hubble.jsonl"
    log.write_text((line + "\n") * 5)
    report = tmp_path / "r.json"
    main(["audit", str(log), "--source", str(CLUSTER), "--report", str(report)])
    capsys.readouterr()
    rows = json.loads(report.read_text())["observed"]["disagreements"]["forwarded-but-policy-denies"]
    assert rows == [
        {"src": "pod default/netshoot", "dst": "pod data/redis-0", "port": "TCP/6379", "count": 5}
    ]


def test_vpc_accept_and_reject_are_compared_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines, report = audit_json(tmp_path, capsys, "aws-vpc-custom.log")
    assert [line["agreement"] for line in lines] == ["agrees", "agrees", "agrees"]
    assert report["observed"]["compared"] == 3
