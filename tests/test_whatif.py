"""What-if: the same real flows against the current and a changed world; only changes, grouped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netpol_pdp.clients.auditing.audit import run_audit
from netpol_pdp.clients.auditing.whatif import WhatIf, WhatIfError, WorldChange
from netpol_pdp.clients.cli import main
from netpol_pdp.clients.flowlogs import read_flowlog
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import ManifestSource

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "examples" / "flowlogs"
CLUSTER = ROOT / "examples" / "cluster"
CHANGES = ROOT / "examples" / "whatif"
HUBBLE = str(SAMPLES / "hubble-observe.jsonl")

WEB_TO_API = {
    "src": "frontend app=web,tier=frontend",
    "dst": "backend app=api,tier=backend",
    "port": "TCP/8080",
    "before": "ALLOW",
    "after": "DENY",
    "before_reason": "allowed-by-policy",
    "after_reason": "denied-on-ingress",
    "count": 2,  # two web pods, one group: grouped by labels, not by pod
    "first_seen": "2026-11-20T09:00:01.100Z",
    "last_seen": "2026-11-20T09:00:07.000Z",
    "responsible": ["backend/api-from-web"],
    "example": {"src_ip": "10.244.1.12", "dst_ip": "10.244.1.20", "protocol": "TCP", "dst_port": 8080},
}


def whatif(capsys: pytest.CaptureFixture[str], *change: str) -> tuple[int, list[dict[str, object]], str]:
    status = main(["audit", HUBBLE, "--source", str(CLUSTER), *change])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def test_removing_a_policy_lists_the_real_flows_it_breaks_and_exits_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, groups, err = whatif(capsys, "--without", "backend/api-from-web")
    assert status == 3
    assert groups == [WEB_TO_API]
    assert "what-if (remove NetworkPolicy backend/api-from-web): 2 of 7 flows change verdict" in err


def test_replacing_a_policy_by_a_narrower_one_breaks_the_same_flows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, groups, _ = whatif(capsys, "--with", str(CHANGES / "api-from-web-tls-only.yaml"))
    assert status == 3
    assert groups == [WEB_TO_API]


def test_adding_an_allow_only_opens_flows_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    status, groups, _ = whatif(capsys, "--with", str(CHANGES / "redis-from-debug.yaml"))
    assert status == 0
    assert [
        (g["src"], g["dst"], g["port"], g["before"], g["after"], g["count"], g["responsible"]) for g in groups
    ] == [
        ("default app=netshoot", "data app=redis", "TCP/6379", "DENY", "ALLOW", 1, ["data/redis-from-debug"])
    ]


def test_a_change_that_touches_no_flow_lists_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    status, groups, err = whatif(capsys, "--without", "staging/default-deny-egress")
    assert (status, groups) == (0, [])
    assert "0 of 7 flows change verdict" in err


def test_both_worlds_are_decided_in_one_pass_over_each_distinct_flow(tmp_path: Path) -> None:
    log = tmp_path / "repeated.jsonl"
    log.write_text((Path(HUBBLE).read_text()) * 50)
    current = Index.from_objects(ManifestSource(CLUSTER).load().objects.values())
    change = WorldChange.load([], ["backend/api-from-web"])
    diff = WhatIf(current, change)
    run = run_audit(read_flowlog(str(log)), current.decide_many, whatif=diff)
    assert run.summary.dedup.flows == 350
    assert run.summary.dedup.decided == 7  # each distinct flow once, for both worlds
    assert [g.count for g in diff.sorted_groups()] == [100]
    assert current.counts()["NetworkPolicy"] == 18  # the current world is left as it was


@pytest.mark.parametrize(
    ("without", "message"),
    [
        ("backend/nope", "no such NetworkPolicy in the source"),
        ("api-from-web", "must be NAMESPACE/NAME"),
    ],
    ids=["removing a policy that does not exist is an error", "a name without namespace is an error"],
)
def test_a_bad_without_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], without: str, message: str
) -> None:
    status, _, err = whatif(capsys, "--without", without)
    assert status == 2
    assert message in err
    if without == "backend/nope":
        with pytest.raises(WhatIfError):
            WorldChange.load([], [without]).apply({})
