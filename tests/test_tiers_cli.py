"""The cluster policy tiers as users meet them: decide --explain, audit, what-if, validate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import Cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLUSTER, FLOWS = EXAMPLES / "cluster", EXAMPLES / "flows.jsonl"


def test_explain_names_tier_policy_rule_and_action(cli: Cli) -> None:
    status, out, _ = cli(
        "decide",
        "--source",
        str(CLUSTER),
        "--src",
        "10.244.1.99",
        "--dst",
        "10.244.2.2",
        "--port",
        "9153",
        "--explain",
    )
    assert status == 1
    assert "reason:      denied-by-admin-policy" in out
    assert "ingress of pod kube-system/coredns-5d78c-kq4zn: decided by the Admin tier" in out
    assert "denied by Admin tier ClusterNetworkPolicy protect-kube-system rule 2 (nothing-else): Deny" in out


def test_explain_shows_a_pass_on_the_way(cli: Cli) -> None:
    status, out, _ = cli(
        "decide",
        "--source",
        str(CLUSTER),
        "--src",
        "10.244.1.99",
        "--dst",
        "10.244.2.2",
        "--protocol",
        "UDP",
        "--port",
        "53",
        "--explain",
        "--json",
    )
    assert status == 0
    ingress = json.loads(out)["explanation"]["ingress"]
    assert ingress["passed"] == [
        {
            "tier": "Admin",
            "policy": "ClusterNetworkPolicy protect-kube-system",
            "rule": 0,
            "name": "dns-is-for-everyone",
            "action": "Pass",
        }
    ]
    assert "decided_by" not in ingress


def test_audit_counts_the_new_reasons(cli: Cli) -> None:
    status, _, err = cli("audit", str(FLOWS), "--source", str(CLUSTER), "--top", "40")
    assert status == 0
    assert "denied-by-admin-policy       1" in err and "denied-by-baseline-policy    1" in err


def test_what_if_without_a_cluster_scoped_policy(cli: Cli) -> None:
    status, out, err = cli("audit", str(FLOWS), "--source", str(CLUSTER), "--without", "protect-kube-system")
    assert status == 0  # nothing turns from ALLOW to DENY
    assert "what-if (remove ClusterNetworkPolicy protect-kube-system): 1 of 54 flows changes verdict" in err
    [group] = [json.loads(line) for line in out.splitlines()]
    assert (group["before_reason"], group["after_reason"]) == ("denied-by-admin-policy", "not-isolated")
    assert group["responsible"] == ["ClusterNetworkPolicy protect-kube-system"]


def test_what_if_with_an_admin_network_policy_file(cli: Cli) -> None:
    status, out, err = cli(
        "audit",
        str(FLOWS),
        "--source",
        str(CLUSTER),
        "--with",
        str(EXAMPLES / "whatif" / "no-debug-pod.yaml"),
    )
    assert status == 3  # allowed flows become denied
    assert (
        "what-if (add AdminNetworkPolicy no-debug-pod): 2 of 54 flows change verdict, 2 from ALLOW to DENY"
        in err
    )
    groups = [json.loads(line) for line in out.splitlines()]
    assert {g["after_reason"] for g in groups} == {"denied-by-admin-policy"}
    assert all(g["responsible"] == ["AdminNetworkPolicy no-debug-pod"] for g in groups)


def test_what_if_without_an_unknown_cluster_scoped_policy_is_a_one_line_error(cli: Cli) -> None:
    status, _, err = cli("audit", str(FLOWS), "--source", str(CLUSTER), "--without", "nope")
    assert status == 2
    assert (
        err.strip().splitlines()[-1] == "error: --without nope: no such cluster-scoped policy in the source "
        "(must be NAMESPACE/NAME of a NetworkPolicy or NAME of a cluster-scoped policy)"
    )


def test_validate_warns_about_two_policies_of_one_tier_and_priority(cli: Cli, tmp_path: Path) -> None:
    shutil.copytree(CLUSTER, tmp_path / "cluster")
    first = (CLUSTER / "policies" / "cluster.yaml").read_text().split("\n---\n")[0]
    (tmp_path / "cluster" / "policies" / "tie.yaml").write_text(first.replace("protect-kube-system", "a-tie"))
    status, out, err = cli("validate", "--source", str(tmp_path / "cluster"))
    assert status == 0 and out.startswith("ok: 63 objects")
    assert err.strip() == (
        "warning: ClusterNetworkPolicy a-tie and ClusterNetworkPolicy protect-kube-system share the Admin "
        "tier priority 10 and both select kube-system/coredns-5d78c-7hx2m: the API leaves their order "
        "undefined; "
        "ClusterNetworkPolicy a-tie is read first (by name)"
    )
    status, _, err = cli("validate", "--source", str(CLUSTER))
    assert status == 0 and "warning" not in err


def test_validate_reports_a_cluster_policy_error_with_its_field_path(cli: Cli, tmp_path: Path) -> None:
    bad = (CLUSTER / "policies" / "cluster.yaml").read_text().replace("priority: 10", "priority: 1001")
    (tmp_path / "cnp.yaml").write_text(bad)
    status, out, _ = cli("validate", "--source", str(tmp_path))
    assert status == 1
    assert "ClusterNetworkPolicy protect-kube-system: spec.priority: must be between 0 and 1000" in out


def test_audit_and_report_name_the_cluster_policy_that_denied(cli: Cli, tmp_path: Path) -> None:
    lines = FLOWS.read_text().splitlines()
    log = tmp_path / "denied.jsonl"
    log.write_text(f"{lines[42]}\n{lines[44]}\n")  # flows 43 and 45: an Admin and a Baseline Deny
    report = tmp_path / "report.html"
    status, _, err = cli("audit", str(log), "--source", str(CLUSTER), "--report", str(report))
    assert status == 0
    assert "kube-system/coredns-5d78c-kq4zn TCP/9153: ClusterNetworkPolicy protect-kube-system" in err
    assert "default/netshoot TCP/8080: ClusterNetworkPolicy default-namespace-default-deny" in err
    html = report.read_text()
    for text in (
        "denied-by-admin-policy",
        "denied-by-baseline-policy",
        "ClusterNetworkPolicy protect-kube-system",
    ):
        assert text in html


def test_a_failed_expectation_shows_the_cluster_rule_that_decided(cli: Cli, tmp_path: Path) -> None:
    expectations = tmp_path / "expect.yaml"
    expectations.write_text(
        "expectations:\n"
        "- name: the debug pod reads CoreDNS metrics\n"
        "  from: {namespace: default, labels: {app: netshoot}}\n"
        "  to: {namespace: kube-system, pod: coredns-5d78c-kq4zn}\n"
        "  port: 9153\n"
        "  expect: allow\n"
    )
    status, out, _ = cli("test", str(expectations), "--source", str(CLUSTER))
    assert status == 1
    assert "DENY (denied-by-admin-policy), expected ALLOW" in out
    assert "denied by Admin tier ClusterNetworkPolicy protect-kube-system rule 2 (nothing-else): Deny" in out
