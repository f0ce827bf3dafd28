"""Every schema and CEL rule of the cluster policy CRDs (index/validation_cnp.py), table-driven.

A valid base manifest per kind plus one named tweak per row; each row asserts the
object named, the exact field path, the key part of the message, and that the
tweak caused exactly that one error.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from netpol_pdp.index.errors import ValidationError
from netpol_pdp.index.model import (
    BANP_PRIORITY,
    NAMED_PORT_PROTOCOL,
    Action,
    ClusterPeer,
    ClusterPolicy,
    Kind,
    LabelSelector,
    PolicyPort,
    Tier,
)
from netpol_pdp.index.validation import parse_object


def base_cnp() -> dict[str, Any]:
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": "guard"},
        "spec": {
            "tier": "Admin",
            "priority": 10,
            "subject": {"namespaces": {"matchLabels": {"env": "prod"}}},
            "ingress": [
                {
                    "name": "from-monitoring",
                    "action": "Accept",
                    "from": [
                        {"namespaces": {"matchLabels": {"team": "monitoring"}}},
                        {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "probe"}}}},
                    ],
                    "protocols": [
                        {"tcp": {"destinationPort": {"number": 9090}}},
                        {"udp": {"destinationPort": {"range": {"start": 5000, "end": 5010}}}},
                        {"destinationNamedPort": "metrics"},
                    ],
                }
            ],
            "egress": [
                {"action": "Deny", "to": [{"networks": ["10.0.0.0/8", "fd00::/8"]}]},
                {"action": "Pass", "to": [{"nodes": {"matchLabels": {"role": "infra"}}}]},
                {"action": "Accept", "to": [{"domainNames": ["*.example.com", "kubernetes.io"]}]},
            ],
        },
    }


def base_anp() -> dict[str, Any]:
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": "guard"},
        "spec": {
            "priority": 10,
            "subject": {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}},
            "ingress": [
                {
                    "action": "Allow",
                    "from": [{"namespaces": {}}],
                    "ports": [
                        {"portNumber": {"protocol": "TCP", "port": 80}},
                        {"portRange": {"start": 8000, "end": 8080}},
                        {"namedPort": "http"},
                    ],
                }
            ],
            "egress": [{"action": "Pass", "to": [{"networks": ["0.0.0.0/0"]}]}],
        },
    }


def base_banp() -> dict[str, Any]:
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": {
            "subject": {"namespaces": {}},
            "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}],
        },
    }


def test_the_bases_are_valid_and_read_as_tiers() -> None:
    cnp = parse_object(base_cnp())
    assert isinstance(cnp, ClusterPolicy)
    assert (cnp.kind, cnp.key, cnp.tier, cnp.priority) == (
        Kind.CLUSTER_NETWORK_POLICY,
        (Kind.CLUSTER_NETWORK_POLICY, "", "guard"),
        Tier.ADMIN,
        10,
    )
    assert cnp.subject == ClusterPeer(namespace_selector=LabelSelector((("env", "prod"),)))
    assert cnp.ingress[0].ports == (
        PolicyPort("TCP", 9090),
        PolicyPort("UDP", 5000, 5010),
        PolicyPort(NAMED_PORT_PROTOCOL, "metrics"),
    )
    assert cnp.egress[0].peers[0].networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert [r.action for r in cnp.egress] == [Action.DENY, Action.PASS, Action.ACCEPT]
    anp = parse_object(base_anp())
    assert isinstance(anp, ClusterPolicy) and anp.tier is Tier.ADMIN
    assert anp.ingress[0].action is Action.ACCEPT  # v1alpha1 Allow
    assert anp.ingress[0].ports[1] == PolicyPort("TCP", 8000, 8080)  # protocol defaults to TCP
    banp = parse_object(base_banp())
    assert isinstance(banp, ClusterPolicy)
    assert (banp.tier, banp.priority, banp.key) == (
        Tier.BASELINE,
        BANP_PRIORITY,
        (Kind.BASELINE_ADMIN_NETWORK_POLICY, "", "default"),
    )


Doc = dict[str, Any]


@dataclass(frozen=True)
class Bad:
    id: str
    base: Callable[[], Doc]
    tweak: Callable[[Doc], None]
    path: str
    message: str


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """A tweak that sets ``a.b[0].c`` to ``value`` (None deletes it)."""

    def tweak(doc: Doc) -> None:
        parts: list[Any] = []
        for piece in path.replace("]", "").split("."):
            name, *idx = piece.split("[")
            parts.append(name)
            parts.extend(int(i) for i in idx)
        target: Any = doc
        for p in parts[:-1]:
            target = target[p]
        if value is None:
            del target[parts[-1]]
        else:
            target[parts[-1]] = value

    return tweak


NS: Doc = {"namespaces": {}}
CNP, ANP, BANP = base_cnp, base_anp, base_banp

# fmt: off
BAD = [
    Bad("tier is an enum", CNP, _set("spec.tier", "Developer"),
        "spec.tier", "must be one of `Admin`, `Baseline`"),
    Bad("tier is required", CNP, _set("spec.tier", None), "spec.tier", "must be one of"),
    Bad("priority at most 1000", CNP, _set("spec.priority", 1001), "spec.priority", "between 0 and 1000"),
    Bad("priority at least 0", ANP, _set("spec.priority", -1), "spec.priority", "between 0 and 1000"),
    Bad("priority is an integer", CNP, _set("spec.priority", "10"), "spec.priority", "must be an integer"),
    Bad("priority is required", ANP, _set("spec.priority", None), "spec.priority", "is required"),
    Bad("subject is required", CNP, _set("spec.subject", None), "spec.subject", "is required"),
    Bad("subject has exactly one kind", CNP,
        _set("spec.subject.pods", {"namespaceSelector": {}, "podSelector": {}}),
        "spec.subject", "exactly one of `namespaces`, `pods`"),
    Bad("subject is not empty", CNP, _set("spec.subject", {}), "spec.subject", "exactly one of"),
    Bad("a pods selector needs podSelector", CNP, _set("spec.subject", {"pods": {"namespaceSelector": {}}}),
        "spec.subject.pods.podSelector", "is required"),
    Bad("selectors are validated", CNP, _set("spec.subject.namespaces", {"matchLabels": {"-bad": "x"}}),
        "spec.subject.namespaces.matchLabels[-bad]", "label key name"),
    Bad("at most 25 ingress rules (v1alpha2)", CNP,
        lambda d: d["spec"].update(ingress=[{"action": "Deny", "from": [NS]}] * 26),
        "spec.ingress", "must have 0..25 items"),
    Bad("at most 100 egress rules (v1alpha1)", ANP,
        lambda d: d["spec"].update(egress=[{"action": "Deny", "to": [NS]}] * 101),
        "spec.egress", "must have 0..100 items"),
    Bad("a rule name at most 100 characters", CNP, _set("spec.ingress[0].name", "r" * 101),
        "spec.ingress[0].name", "at most 100 characters"),
    Bad("action is an enum (v1alpha2)", CNP, _set("spec.ingress[0].action", "Allow"),
        "spec.ingress[0].action", "must be one of `Accept`, `Deny`, `Pass`"),
    Bad("action is an enum (v1alpha1)", ANP, _set("spec.ingress[0].action", "Accept"),
        "spec.ingress[0].action", "must be one of `Allow`, `Deny`, `Pass`"),
    Bad("no Pass in the Baseline tier (v1alpha1)", BANP, _set("spec.ingress[0].action", "Pass"),
        "spec.ingress[0].action", "must be one of `Allow`, `Deny`"),
    Bad("from is required", CNP, _set("spec.ingress[0].from", None), "spec.ingress[0].from", "is required"),
    Bad("from has at least one peer", CNP, _set("spec.ingress[0].from", []),
        "spec.ingress[0].from", "must have 1..25 items"),
    Bad("to has at most 25 peers", CNP, _set("spec.egress[0].to", [NS] * 26),
        "spec.egress[0].to", "must have 1..25 items"),
    Bad("a peer has one kind", CNP, _set("spec.egress[0].to[0].namespaces", {}),
        "spec.egress[0].to[0]", "exactly one of"),
    Bad("an ingress peer cannot be networks", CNP,
        _set("spec.ingress[0].from[0]", {"networks": ["10.0.0.0/8"]}),
        "spec.ingress[0].from[0].networks", "unknown field"),
    Bad("a Baseline v1alpha1 peer cannot be domainNames", BANP,
        lambda d: d["spec"].update(egress=[{"action": "Allow", "to": [{"domainNames": ["example.com"]}]}]),
        "spec.egress[0].to[0].domainNames", "unknown field"),
    Bad("networks are CIDRs", CNP, _set("spec.egress[0].to[0].networks[1]", "10.0.0.1"),
        "spec.egress[0].to[0].networks[1]", "invalid CIDR format provided"),
    Bad("networks are a set", CNP, _set("spec.egress[0].to[0].networks[1]", "10.0.0.0/8"),
        "spec.egress[0].to[0].networks[1]", "duplicate value"),
    Bad("networks at most 25", CNP,
        _set("spec.egress[0].to[0].networks", [f"10.0.{i}.0/24" for i in range(26)]),
        "spec.egress[0].to[0].networks", "must have 1..25 items"),
    Bad("networks at least 1", CNP, _set("spec.egress[0].to[0].networks", []),
        "spec.egress[0].to[0].networks", "must have 1..25 items"),
    Bad("a CIDR at most 43 characters", CNP, _set("spec.egress[0].to[0].networks[1]", "0" * 40 + "::/8"),
        "spec.egress[0].to[0].networks[1]", "at most 43 characters"),
    Bad("domain names follow the pattern", CNP, _set("spec.egress[2].to[0].domainNames[0]", "ex*.com"),
        "spec.egress[2].to[0].domainNames[0]", "must be a domain name"),
    Bad("domainNames only in an Accept rule", CNP, _set("spec.egress[2].action", "Deny"),
        "spec.egress[2].to[0].domainNames", "only allowed in an `Accept` rule"),
    Bad("a protocol entry has one kind", CNP,
        _set("spec.ingress[0].protocols[0].udp", {"destinationPort": {"number": 1}}),
        "spec.ingress[0].protocols[0]", "exactly one of `tcp`, `udp`, `sctp`, `destinationNamedPort`"),
    Bad("tcp needs destinationPort", CNP, _set("spec.ingress[0].protocols[0].tcp", {}),
        "spec.ingress[0].protocols[0].tcp", "must have `destinationPort`"),
    Bad("a destinationPort has number or range", CNP,
        _set("spec.ingress[0].protocols[0].tcp.destinationPort.range", {"start": 1, "end": 2}),
        "spec.ingress[0].protocols[0].tcp.destinationPort", "exactly one of `number`, `range`"),
    Bad("a port number within 1..65535", CNP,
        _set("spec.ingress[0].protocols[0].tcp.destinationPort.number", 0),
        "spec.ingress[0].protocols[0].tcp.destinationPort.number", "between 1 and 65535"),
    Bad("a range start < end (CEL)", CNP,
        _set("spec.ingress[0].protocols[1].udp.destinationPort.range.end", 5000),
        "spec.ingress[0].protocols[1].udp.destinationPort.range", "start port must be less than end port"),
    Bad("a range end within 1..65535", CNP,
        _set("spec.ingress[0].protocols[1].udp.destinationPort.range.end", 70000),
        "spec.ingress[0].protocols[1].udp.destinationPort.range.end", "between 1 and 65535"),
    Bad("protocols at least 1", CNP, _set("spec.ingress[0].protocols", []),
        "spec.ingress[0].protocols", "must have 1..25 items"),
    Bad("a named port with networks peers (CEL)", CNP,
        _set("spec.egress[0].protocols", [{"destinationNamedPort": "http"}]),
        "spec.egress[0]", "networks/nodes/domainNames peer cannot be set with namedPorts"),
    Bad("a named port with nodes peers (CEL, v1alpha1)", ANP,
        lambda d: d["spec"]["egress"].append(
            {"action": "Deny", "to": [{"nodes": {}}], "ports": [{"namedPort": "http"}]}),
        "spec.egress[1]", "networks/nodes/domainNames peer cannot be set with namedPorts"),
    Bad("a v1alpha1 port entry has one kind", ANP,
        _set("spec.ingress[0].ports[2].portNumber", {"port": 1}),
        "spec.ingress[0].ports[2]", "exactly one of `portNumber`, `namedPort`, `portRange`"),
    Bad("a v1alpha1 protocol is TCP/UDP/SCTP", ANP,
        _set("spec.ingress[0].ports[0].portNumber.protocol", "tcp"),
        "spec.ingress[0].ports[0].portNumber.protocol", "must be one of `TCP`, `UDP`, `SCTP`"),
    Bad("a v1alpha1 range is not inverted", ANP, _set("spec.ingress[0].ports[1].portRange.start", 9000),
        "spec.ingress[0].ports[1].portRange", "less than or equal to `end`"),
    Bad("the v1alpha1 Baseline policy is named default (CEL)", BANP, _set("metadata.name", "other"),
        "metadata.name", 'only one baseline admin network policy with metadata.name="default"'),
    Bad("metadata.name is a DNS subdomain", CNP, _set("metadata.name", "Guard"),
        "metadata.name", "lower-case DNS name"),
    Bad("spec is required", CNP, _set("spec", None), "spec", "is required"),
]
# fmt: on


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_each_rule_reports_its_field_path(bad: Bad) -> None:
    doc = copy.deepcopy(bad.base())
    bad.tweak(doc)
    with pytest.raises(ValidationError) as caught:
        parse_object(doc)
    err = caught.value
    assert err.obj == f"{doc['kind']} {doc['metadata']['name']}"
    assert [e.path for e in err.errors] == [bad.path], err
    assert bad.message in err.errors[0].message, err


def test_every_error_is_reported_at_once() -> None:
    doc = base_cnp()
    doc["spec"]["priority"] = 5000
    doc["spec"]["ingress"][0]["action"] = "Drop"
    doc["spec"]["egress"][0]["to"][0]["networks"][0] = "nope"
    with pytest.raises(ValidationError) as caught:
        parse_object(doc)
    assert [e.path for e in caught.value.errors] == [
        "spec.priority",
        "spec.ingress[0].action",
        "spec.egress[0].to[0].networks[0]",
    ]
