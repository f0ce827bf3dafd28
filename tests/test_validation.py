"""Every validation rule (SEMANTICS.md "Validation", index/validation.py docstring), table-driven.

A valid base manifest plus one named tweak per row; each row asserts the object
named, the exact field path, and the key part of the message, and that the tweak
caused exactly that one error.  Defaulting and "every error at once" follow, then
a fuzz property: whatever the manifest, validation answers with an object or a
ValidationError, never another exception.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netpol_pdp.index.errors import ValidationError
from netpol_pdp.index.model import IPBlock, LabelSelector, Namespace, NetworkPolicy, Node, Pod, PolicyPort
from netpol_pdp.index.validation import parse_object


def base_policy() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web-allow", "namespace": "default", "labels": {"team": "web"}},
        "spec": {
            "podSelector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}],
            },
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"app": "db"}}},
                        {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}},
                        {
                            "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Exists"}]},
                            "podSelector": {},
                        },
                    ],
                    "ports": [
                        {"protocol": "TCP", "port": 80},
                        {"port": 8000, "endPort": 8080},
                        {"protocol": "UDP", "port": "dns"},
                    ],
                }
            ],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "fd00::/64", "except": ["fd00::/80"]}}],
                    "ports": [{"protocol": "SCTP"}],
                }
            ],
        },
    }


def base_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "namespace": "prod",
            "labels": {"app": "web"},
            "creationTimestamp": "2024-01-01T00:00:00Z",
        },
        "spec": {
            "nodeName": "n1",
            "containers": [
                {"name": "main", "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}
            ],
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.1",
            "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
        },
    }


def base_namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "labels": {"env": "prod"}}}


def base_node() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "192.168.0.1"},
                {"type": "Hostname", "address": "n1"},
            ]
        },
    }


BASES = {"policy": base_policy, "pod": base_pod, "namespace": base_namespace, "node": base_node}
REFS = {
    "policy": "NetworkPolicy default/web-allow",
    "pod": "Pod prod/web-0",
    "namespace": "Namespace prod",
    "node": "Node n1",
}
DELETE = object()

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def tweak(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``doc`` with the field at ``path`` (``spec.ingress[0].ports[1].port``) set, or removed (DELETE)."""
    out = copy.deepcopy(doc)
    steps: list[str | int] = [int(i) if i else name for name, i in _STEP.findall(path)]
    target: Any = out
    for step in steps[:-1]:
        target = target[step]
    if value is DELETE:
        del target[steps[-1]]
    else:
        target[steps[-1]] = value
    return out


def errors_of(doc: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_object(doc)
    return info.value


def test_the_base_manifests_are_valid() -> None:
    for make in BASES.values():
        assert parse_object(make()) is not None


IN0 = "spec.ingress[0]"
FROM = f"{IN0}.from"
PORTS = f"{IN0}.ports"
SEL = "spec.podSelector"


@dataclass(frozen=True)
class R:
    """One rule broken: set ``field`` of ``base`` to ``value``; expect ``message`` at ``at`` or ``field``."""

    id: str
    base: str
    field: str
    value: Any
    message: str
    at: str | None = None


# fmt: off
RULES: list[R] = [
    # 1. cidr
    R("a cidr that is not a CIDR", "policy", f"{FROM}[1].ipBlock.cidr", "10.0.0.300/16", "valid CIDR"),
    R("a cidr without a prefix length", "policy", f"{FROM}[1].ipBlock.cidr", "10.0.0.0", "valid CIDR"),
    R("a cidr with a prefix too long", "policy", f"{FROM}[1].ipBlock.cidr", "10.0.0.0/33", "valid CIDR"),
    R("an IPv6 cidr with a prefix too long", "policy",
      "spec.egress[0].to[0].ipBlock.cidr", "fd00::/129", "valid CIDR"),
    R("a cidr that is not a string", "policy", f"{FROM}[1].ipBlock.cidr", 10, "valid CIDR"),
    R("an ipBlock without cidr", "policy",
      f"{FROM}[1].ipBlock", {"except": []}, "is required", at=f"{FROM}[1].ipBlock.cidr"),
    R("an except that is not a CIDR", "policy", f"{FROM}[1].ipBlock.except[0]", "10.0.1.0/x", "valid CIDR"),
    # 2. except strictly inside
    R("an except outside its cidr", "policy",
      f"{FROM}[1].ipBlock.except[0]", "10.1.0.0/24", "strict subset of `cidr`"),
    R("an except equal to its cidr", "policy",
      f"{FROM}[1].ipBlock.except[0]", "10.0.0.0/16", "strict subset of `cidr`"),
    R("an except equal to its cidr once host bits are cleared", "policy",
      f"{FROM}[1].ipBlock.except[0]", "10.0.9.9/16", "strict subset of `cidr`"),
    R("an except larger than its cidr", "policy",
      f"{FROM}[1].ipBlock.except[0]", "10.0.0.0/8", "strict subset of `cidr`"),
    R("an except of the other IP family", "policy",
      f"{FROM}[1].ipBlock.except[0]", "fd00::/64", "strict subset of `cidr`"),
    R("an IPv4 except in an IPv6 cidr", "policy",
      "spec.egress[0].to[0].ipBlock.except[0]", "10.0.0.0/8", "strict subset of `cidr`"),
    # 3. port range
    R("port 0", "policy", f"{PORTS}[0].port", 0, "between 1 and 65535"),
    R("port 65536", "policy", f"{PORTS}[0].port", 65536, "between 1 and 65535"),
    R("a negative port", "policy", f"{PORTS}[0].port", -1, "between 1 and 65535"),
    R("a port that is a boolean", "policy", f"{PORTS}[0].port", True, "integer"),
    R("a port that is a float", "policy", f"{PORTS}[0].port", 80.5, "integer"),
    # 4. endPort
    R("endPort without port", "policy",
      f"{PORTS}[1].port", DELETE, "`port` is not a number", at=f"{PORTS}[1].endPort"),
    R("endPort with a named port", "policy",
      f"{PORTS}[1].port", "http", "`port` is not a number", at=f"{PORTS}[1].endPort"),
    R("endPort below port", "policy", f"{PORTS}[1].endPort", 7999, "greater than or equal to `port`"),
    R("endPort above 65535", "policy", f"{PORTS}[1].endPort", 65536, "between 1 and 65535"),
    R("endPort that is not a number", "policy", f"{PORTS}[1].endPort", "8080", "integer"),
    # 5. IANA service names
    R("a port name longer than 15 characters", "policy",
      f"{PORTS}[2].port", "a234567890123456", "at most 15 characters"),
    R("a port name in upper case", "policy", f"{PORTS}[2].port", "DNS", "lower-case"),
    R("a port name with no letter", "policy", f"{PORTS}[2].port", "8080", "at least one letter"),
    R("a port name with only digits and '-'", "policy", f"{PORTS}[2].port", "80-80", "at least one letter"),
    R("a port name with a leading '-'", "policy", f"{PORTS}[2].port", "-dns", "starting and ending"),
    R("a port name with a trailing '-'", "policy", f"{PORTS}[2].port", "dns-", "starting and ending"),
    R("a port name with a double '-'", "policy", f"{PORTS}[2].port", "my--dns", "'--'"),
    R("a port name with '_'", "policy", f"{PORTS}[2].port", "my_dns", "lower-case"),
    R("an empty port name", "policy", f"{PORTS}[2].port", "", "lower-case"),
    R("a container port name that is not an IANA name", "pod",
      "spec.containers[0].ports[0].name", "HTTP", "lower-case"),
    # 6. protocol
    R("an unknown protocol", "policy", f"{PORTS}[0].protocol", "ICMP", "`TCP`, `UDP`, `SCTP`"),
    R("a lower-case protocol (the API server is case sensitive)", "policy",
      f"{PORTS}[0].protocol", "tcp", "`TCP`, `UDP`, `SCTP`"),
    R("a protocol that is a number", "policy", f"{PORTS}[0].protocol", 6, "`TCP`, `UDP`, `SCTP`"),
    R("a container port's unknown protocol", "pod",
      "spec.containers[0].ports[0].protocol", "HTTP", "`TCP`, `UDP`, `SCTP`"),
    R("a container port out of range", "pod",
      "spec.containers[0].ports[0].containerPort", 0, "between 1 and 65535"),
    # 7. operators
    R("an unknown operator", "policy",
      f"{SEL}.matchExpressions[0].operator", "Equals", "`In`, `NotIn`, `Exists`, `DoesNotExist`"),
    R("an operator in the wrong case", "policy",
      f"{SEL}.matchExpressions[0].operator", "in", "`In`, `NotIn`, `Exists`, `DoesNotExist`"),
    R("a missing operator", "policy",
      f"{SEL}.matchExpressions[0].operator", DELETE, "`In`, `NotIn`, `Exists`, `DoesNotExist`"),
    R("In without values", "policy",
      f"{SEL}.matchExpressions[0].values", DELETE, "must be specified when `operator` is 'In'"),
    R("In with an empty values list", "policy",
      f"{SEL}.matchExpressions[0].values", [], "must be specified when `operator` is 'In'"),
    R("NotIn without values", "policy",
      f"{SEL}.matchExpressions[0]", {"key": "tier", "operator": "NotIn"},
      "must be specified when `operator` is 'NotIn'", at=f"{SEL}.matchExpressions[0].values"),
    R("Exists with values", "policy",
      f"{FROM}[2].namespaceSelector.matchExpressions[0].values", ["prod"],
      "may not be specified when `operator` is 'Exists'"),
    R("DoesNotExist with values", "policy",
      f"{SEL}.matchExpressions[0]", {"key": "tier", "operator": "DoesNotExist", "values": ["x"]},
      "may not be specified when `operator` is 'DoesNotExist'", at=f"{SEL}.matchExpressions[0].values"),
    # 8. label keys and values
    R("a label key starting with '-'", "pod",
      "metadata.labels", {"-app": "web"}, "label key", at="metadata.labels[-app]"),
    R("a label key with a space", "pod",
      "metadata.labels", {"my app": "web"}, "label key", at="metadata.labels[my app]"),
    R("a label key name over 63 characters", "pod",
      "metadata.labels", {"a" * 64: "web"}, "at most 63", at=f"metadata.labels[{'a' * 64}]"),
    R("a label key with an upper-case prefix", "namespace",
      "metadata.labels", {"Example.com/team": "a"},
      "prefix must be a DNS subdomain", at="metadata.labels[Example.com/team]"),
    R("a label key with an empty prefix", "namespace",
      "metadata.labels", {"/team": "a"}, "prefix must be a DNS subdomain", at="metadata.labels[/team]"),
    R("a label key with an empty name", "namespace",
      "metadata.labels", {"example.com/": "a"}, "label key name", at="metadata.labels[example.com/]"),
    R("a label key with two '/'", "namespace",
      "metadata.labels", {"a/b/c": "a"}, "prefix must be a DNS subdomain", at="metadata.labels[a/b/c]"),
    R("a label value over 63 characters", "pod",
      "metadata.labels.app", "v" * 64, "label value", at="metadata.labels[app]"),
    R("a label value ending with '.'", "pod",
      "metadata.labels.app", "web.", "label value", at="metadata.labels[app]"),
    R("a label value that is not a string", "pod",
      "metadata.labels.app", 1, "must be a string", at="metadata.labels[app]"),
    R("an invalid key in matchLabels", "policy",
      f"{SEL}.matchLabels", {"app!": "web"}, "label key", at=f"{SEL}.matchLabels[app!]"),
    R("an invalid value in matchLabels", "policy",
      f"{FROM}[0].podSelector.matchLabels.app", "db?",
      "label value", at=f"{FROM}[0].podSelector.matchLabels[app]"),
    R("an invalid key in matchExpressions", "policy", f"{SEL}.matchExpressions[0].key", "tier/", "label key"),
    R("a missing key in matchExpressions", "policy", f"{SEL}.matchExpressions[0].key", DELETE, "label key"),
    R("an invalid value in matchExpressions", "policy",
      f"{SEL}.matchExpressions[0].values", ["front", "-x"],
      "label value", at=f"{SEL}.matchExpressions[0].values[1]"),
    # 9. peers
    R("ipBlock together with podSelector", "policy",
      f"{FROM}[1].podSelector", {}, "may not specify both `ipBlock` and another peer", at=f"{FROM}[1]"),
    R("ipBlock together with namespaceSelector", "policy",
      f"{FROM}[1].namespaceSelector", {"matchLabels": {"a": "b"}},
      "may not specify both `ipBlock` and another peer", at=f"{FROM}[1]"),
    R("an empty peer", "policy", f"{FROM}[0]", {}, "must specify a peer"),
    R("an empty peer on egress", "policy", "spec.egress[0].to[0]", {}, "must specify a peer"),
    # policy types, shapes, names and addresses
    R("three policy types (the API server allows at most two)", "policy",
      "spec.policyTypes", ["Ingress", "Egress", "Ingress"], "may not specify more than two policyTypes"),
    R("an unknown policy type", "policy",
      "spec.policyTypes", ["Ingress", "ingress"], "`Ingress` or `Egress`", at="spec.policyTypes[1]"),
    R("ingress that is not a list", "policy", "spec.ingress", {"from": []}, "must be a list"),
    R("a selector that is not an object", "policy", f"{SEL}", "app=web", "must be an object"),
    R("policy labels are validated too", "policy",
      "metadata.labels", {"team": "-web"}, "label value", at="metadata.labels[team]"),
    R("node labels are validated too", "node",
      "metadata.labels", {"-role": "x"}, "label key", at="metadata.labels[-role]"),
    R("a pod IP that is not an address", "pod", "status.podIPs[1].ip", "fd00::g", "valid IP"),
    R("a podIP that is not an address", "pod", "status.podIP", "10.0.0.256", "valid IP"),
    R("a creationTimestamp that is not a time", "pod", "metadata.creationTimestamp", "yesterday", "RFC 3339"),
    R("hostNetwork that is not a boolean", "pod", "spec.hostNetwork", "true", "boolean"),
    R("a node address that is not an IP", "node",
      "status.addresses[0].address", "192.168.0.1/24", "valid IP"),
]
# fmt: on


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_validation_rule(rule: R) -> None:
    error = errors_of(tweak(BASES[rule.base](), rule.field, rule.value))
    path = rule.at or rule.field
    assert error.obj == REFS[rule.base]
    assert [(e.path, rule.message in e.message) for e in error.errors] == [(path, True)], error.errors
    assert f"{REFS[rule.base]}: {path}: " in str(error)


# --- what is valid stays valid ----------------------------------------------------------------

# fmt: off
VALID: list[tuple[str, str, str, Any]] = [
    ("a port name of exactly 15 characters", "policy", f"{PORTS}[2].port", "a23456789012345"),
    ("a port name with a single inner '-'", "policy", f"{PORTS}[2].port", "my-dns"),
    ("a port name starting with a digit", "policy", f"{PORTS}[2].port", "9p"),
    ("port 1 and port 65535", "policy", f"{PORTS}[1]", {"port": 1, "endPort": 65535}),
    ("endPort equal to port", "policy", f"{PORTS}[1].endPort", 8000),
    ("a cidr with host bits set", "policy", f"{FROM}[1].ipBlock.cidr", "10.0.77.1/16"),
    ("an except with host bits set", "policy", f"{FROM}[1].ipBlock.except[0]", "10.0.1.1/24"),
    ("an /32 except in a /31", "policy", f"{FROM}[1].ipBlock",
     {"cidr": "10.0.0.0/31", "except": ["10.0.0.1/32"]}),
    ("Exists with an empty values list", "policy",
     f"{FROM}[2].namespaceSelector.matchExpressions[0].values", []),
    ("an empty label value", "pod", "metadata.labels.app", ""),
    ("a label key with a prefix and upper-case name", "pod", "metadata.labels", {"example.com/App_v.1": "x"}),
    ("a label value of 63 characters", "pod", "metadata.labels.app", "v" * 63),
    ("an empty peer list and port list", "policy", f"{IN0}", {"from": [], "ports": []}),
    ("an absent podSelector (selects every pod)", "policy", "spec.podSelector", DELETE),
    ("an SCTP container port", "pod", "spec.containers[0].ports[0].protocol", "SCTP"),
    ("an IPv6-only pod", "pod", "status", {"podIPs": [{"ip": "fd00::1"}]}),
]
# fmt: on


@pytest.mark.parametrize(("base", "field", "value"), [r[1:] for r in VALID], ids=[r[0] for r in VALID])
def test_valid_edge_cases_are_accepted(base: str, field: str, value: Any) -> None:
    assert parse_object(tweak(BASES[base](), field, value)) is not None


def test_every_error_is_reported_at_once() -> None:
    doc = base_policy()
    for field, value in [
        (f"{FROM}[1].ipBlock.cidr", "nope"),
        (f"{PORTS}[0].port", 0),
        (f"{PORTS}[1].endPort", 1),
        (f"{PORTS}[2].protocol", "tcp"),
        (f"{SEL}.matchExpressions[0].operator", "Equals"),
        ("spec.egress[0].to[0]", {}),
        ("metadata.labels", {"-bad": "x"}),
    ]:
        doc = tweak(doc, field, value)
    error = errors_of(doc)
    assert sorted(e.path for e in error.errors) == sorted(
        [
            "metadata.labels[-bad]",
            f"{SEL}.matchExpressions[0].operator",
            f"{FROM}[1].ipBlock.cidr",
            f"{PORTS}[0].port",
            f"{PORTS}[1].endPort",
            f"{PORTS}[2].protocol",
            "spec.egress[0].to[0]",
        ]
    )
    assert str(error).startswith("NetworkPolicy default/web-allow: ")


def test_a_peer_with_ipblock_and_a_selector_still_has_its_ipblock_checked() -> None:
    # as the API server: the peer is refused, and its ipBlock's own errors are reported too
    doc = tweak(
        base_policy(),
        f"{FROM}[2]",
        {"podSelector": {}, "ipBlock": {"cidr": "10.0.0.0/16", "except": ["192.168.0.0/24"]}},
    )
    assert [e.path for e in errors_of(doc).errors] == [f"{FROM}[2]", f"{FROM}[2].ipBlock.except[0]"]
    doc = tweak(base_policy(), f"{FROM}[2]", {"namespaceSelector": {}, "ipBlock": {"cidr": "nope"}})
    assert [e.path for e in errors_of(doc).errors] == [f"{FROM}[2]", f"{FROM}[2].ipBlock.cidr"]


@pytest.mark.parametrize(
    ("base", "field", "value", "ref", "path", "message"),
    [
        (
            "policy",
            "metadata.name",
            DELETE,
            "NetworkPolicy default/<unnamed>",
            "metadata.name",
            "is required",
        ),
        ("pod", "metadata.name", "Web_0", "Pod prod/Web_0", "metadata.name", "DNS name"),
        ("pod", "metadata.namespace", "Prod", "Pod Prod/web-0", "metadata.namespace", "DNS label"),
        ("namespace", "metadata.name", "a.b", "Namespace a.b", "metadata.name", "DNS name"),
    ],
    ids=[
        "a policy without a name is named <unnamed>",
        "a pod name that is not a DNS subdomain",
        "a namespace that is not a DNS label",
        "a namespace name must be a DNS label (no dots)",
    ],
)
def test_object_names(base: str, field: str, value: Any, ref: str, path: str, message: str) -> None:
    error = errors_of(tweak(BASES[base](), field, value))
    assert error.obj == ref
    assert [(e.path, message in e.message) for e in error.errors] == [(path, True)]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "must be a Kubernetes object"),
        ({"metadata": {"name": "x"}}, "kind: is required"),
        ({"kind": ["Pod"]}, "kind: must be a string"),
    ],
    ids=["a document that is not a map", "a document without kind", "a kind that is not a string"],
)
def test_documents_that_are_not_objects(doc: Any, message: str) -> None:
    error = errors_of(doc)
    assert error.obj == "document"
    assert message in str(error)


def test_other_kinds_are_ignored() -> None:
    assert parse_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}}) is None


# --- defaulting (what the API server would do) ----------------------------------------------


def parsed_policy(**spec: Any) -> NetworkPolicy:
    doc = {"kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": spec}
    obj = parse_object(doc)
    assert isinstance(obj, NetworkPolicy)
    return obj


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        ({}, {"Ingress"}),
        ({"ingress": [{}]}, {"Ingress"}),
        ({"egress": []}, {"Ingress"}),
        ({"egress": [{}]}, {"Ingress", "Egress"}),
        ({"policyTypes": [], "egress": [{}]}, {"Ingress", "Egress"}),
        ({"policyTypes": ["Egress"]}, {"Egress"}),
        ({"policyTypes": ["Egress"], "ingress": [{}]}, {"Egress"}),
        ({"policyTypes": ["Ingress", "Egress"]}, {"Ingress", "Egress"}),
    ],
    ids=[
        "no policyTypes, no rules: Ingress",
        "no policyTypes, ingress rules: Ingress",
        "no policyTypes, `egress: []`: Ingress only",
        "no policyTypes, an egress rule: Ingress and Egress",
        "an empty policyTypes is defaulted the same way",
        "policyTypes given: exactly those (Egress)",
        "policyTypes given: ingress rules do not add Ingress",
        "policyTypes given: both",
    ],
)
def test_effective_policy_types(spec: dict[str, Any], types: set[str]) -> None:
    assert parsed_policy(**spec).policy_types == frozenset(types)


def test_policy_namespace_defaults_to_default() -> None:
    assert parsed_policy().namespace == "default"


@pytest.mark.parametrize("namespace", [None, ""], ids=["null", "empty"])
def test_an_unset_namespace_is_default(namespace: str | None) -> None:
    obj = parse_object({"kind": "Pod", "metadata": {"name": "x", "namespace": namespace}})
    assert isinstance(obj, Pod) and obj.namespace == "default"


def test_namespace_gets_its_name_label() -> None:
    obj = parse_object(base_namespace())
    assert isinstance(obj, Namespace)
    assert dict(obj.labels) == {"env": "prod", "kubernetes.io/metadata.name": "prod"}


def test_namespace_name_label_cannot_be_overridden() -> None:
    obj = parse_object(
        tweak(base_namespace(), "metadata.labels", {"kubernetes.io/metadata.name": "kube-system"})
    )
    assert isinstance(obj, Namespace) and obj.labels["kubernetes.io/metadata.name"] == "prod"


def test_protocol_defaults_to_tcp_and_cidrs_lose_host_bits() -> None:
    policy = parsed_policy(
        ingress=[
            {
                "from": [{"ipBlock": {"cidr": "10.0.0.1/24", "except": ["10.0.0.129/25"]}}],
                "ports": [{"port": 80}, {}],
            }
        ]
    )
    rule = policy.ingress[0]
    assert rule.ports == (PolicyPort("TCP", 80), PolicyPort("TCP", None))
    assert rule.peers[0].ip_block == IPBlock(
        ipaddress.ip_network("10.0.0.0/24"), (ipaddress.ip_network("10.0.0.128/25"),)
    )


def test_peer_selectors_keep_absent_apart_from_empty() -> None:
    policy = parsed_policy(
        ingress=[
            {
                "from": [
                    {"podSelector": {}},
                    {"namespaceSelector": {}},
                    {"podSelector": {}, "namespaceSelector": {}},
                ]
            }
        ]
    )
    p0, p1, p2 = policy.ingress[0].peers
    assert (p0.pod_selector, p0.namespace_selector) == (LabelSelector(), None)
    assert (p1.pod_selector, p1.namespace_selector) == (None, LabelSelector())
    assert (p2.pod_selector, p2.namespace_selector) == (LabelSelector(), LabelSelector())


def test_pod_fields() -> None:
    pod = parse_object(base_pod())
    assert isinstance(pod, Pod)
    assert (pod.namespace, pod.name, pod.node_name, pod.ips, pod.phase) == (
        "prod",
        "web-0",
        "n1",
        ("10.0.0.1", "fd00::1"),
        "Running",
    )
    assert pod.created == 1704067200.0 and pod.live


def test_pod_ip_alone_and_ipv6_normalised() -> None:
    pod = parse_object(tweak(base_pod(), "status", {"podIP": "FD00:0::1"}))
    assert isinstance(pod, Pod) and pod.ips == ("fd00::1",)


def test_node_keeps_only_ip_addresses() -> None:
    node = parse_object(
        tweak(
            base_node(),
            "status.addresses",
            [
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "192.168.0.1"},
                {"type": "ExternalIP", "address": "203.0.113.1"},
                {"type": "InternalDNS", "address": "n1.local"},
            ],
        )
    )
    assert isinstance(node, Node) and node.addresses == ("192.168.0.1", "203.0.113.1")


# --- never a crash ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 70000)
    | st.sampled_from(
        ["", "x", "TCP", "tcp", "In", "Exists", "10.0.0.0/8", "fd00::/64", "10.0.0.1", "http", "-", "a/b"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "podSelector",
                    "namespaceSelector",
                    "ipBlock",
                    "cidr",
                    "except",
                    "ports",
                    "port",
                    "endPort",
                    "protocol",
                    "from",
                    "to",
                    "matchLabels",
                    "matchExpressions",
                    "key",
                    "operator",
                    "values",
                    "app",
                    "name",
                    "containerPort",
                    "ip",
                    "type",
                    "address",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(
    st.sampled_from(["NetworkPolicy", "Pod", "Namespace", "Node"]),
    st.dictionaries(
        st.sampled_from(["name", "namespace", "labels", "creationTimestamp"]), json_values, max_size=4
    ),
    st.dictionaries(
        st.sampled_from(
            ["podSelector", "ingress", "egress", "policyTypes", "containers", "hostNetwork", "nodeName"]
        ),
        json_values,
        max_size=4,
    ),
    st.dictionaries(st.sampled_from(["podIP", "podIPs", "phase", "addresses"]), json_values, max_size=3),
)
def test_validation_never_crashes(kind: str, metadata: Any, spec: Any, status: Any) -> None:
    """Whatever the manifest holds: a model object, or a ValidationError naming the object."""
    try:
        parse_object({"kind": kind, "metadata": metadata, "spec": spec, "status": status})
    except ValidationError as error:
        assert error.obj.startswith(kind) and error.errors
