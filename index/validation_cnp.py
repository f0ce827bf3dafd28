"""Cluster-scoped policy manifests -> :class:`~netpol_pdp.index.model.ClusterPolicy`.

Three kinds of ``policy.networking.k8s.io`` (kubernetes-sigs/network-policy-api),
validated as the API server would from the CRD schemas and their CEL rules, every
error with its field path:

- ``ClusterNetworkPolicy`` (v1alpha2): ``spec.tier`` ``Admin``/``Baseline``;
  ``spec.priority`` 0..1000; actions ``Accept``/``Deny``/``Pass``; ``protocols``
  entries of exactly one of ``tcp``/``udp``/``sctp`` (each with ``destinationPort``:
  exactly one of ``number`` or ``range{start,end}``, ``start < end``) or
  ``destinationNamedPort``; at most 25 rules per direction, 1..25 peers and
  protocols per rule.
- ``AdminNetworkPolicy`` (v1alpha1): the Admin tier; actions ``Allow`` (read as
  Accept)/``Deny``/``Pass``; ``ports`` entries of exactly one of
  ``portNumber{protocol,port}``, ``namedPort``, ``portRange{protocol,start,end}``;
  at most 100 rules per direction, 1..100 peers and ports per rule.
- ``BaselineAdminNetworkPolicy`` (v1alpha1): the Baseline tier, a singleton named
  ``default`` (CEL), actions ``Allow``/``Deny`` only, no ``domainNames`` peer.

Common to all: ``subject`` has exactly one of ``namespaces``/``pods``; a ``pods``
selector needs ``podSelector``; ingress peers are ``namespaces``/``pods``, egress
peers one of ``namespaces``/``pods``/``nodes``/``networks``/``domainNames``;
``networks`` 1..25 distinct CIDRs (at most 43 characters); ``domainNames`` 1..25
distinct names matching the API's pattern; a rule name at most 100 characters;
an egress rule with a ``networks``/``nodes``/``domainNames`` peer may not use a
named port (CEL); a ``domainNames`` peer only in an ``Accept`` rule.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from netpol_pdp.index.errors import FieldPath, ValidationError
from netpol_pdp.index.model import (
    BANP_PRIORITY,
    NAMED_PORT_PROTOCOL,
    PORT_PROTOCOLS,
    Action,
    ClusterPeer,
    ClusterPolicy,
    ClusterRule,
    IPNetwork,
    Kind,
    LabelSelector,
    PolicyPort,
    Tier,
)
from netpol_pdp.index.validation import (
    _DNS_SUBDOMAIN,
    _Errors,
    _labels,
    _list,
    _map,
    _metadata,
    _ref,
    parse_selector,
)

_DOMAIN_NAME = re.compile(
    r"^(\*\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$"
)


class _Schema:
    """What differs between the three kinds."""

    def __init__(self, kind: Kind, max_rules: int, max_items: int, actions: Mapping[str, Action]) -> None:
        self.kind = kind
        self.max_rules = max_rules
        self.max_items = max_items
        self.actions = actions
        self.v1alpha2 = kind is Kind.CLUSTER_NETWORK_POLICY

    @property
    def egress_peers(self) -> tuple[str, ...]:
        if self.kind is Kind.BASELINE_ADMIN_NETWORK_POLICY:
            return ("namespaces", "pods", "nodes", "networks")
        return ("namespaces", "pods", "nodes", "networks", "domainNames")


_ALL_ACTIONS = {"Accept": Action.ACCEPT, "Deny": Action.DENY, "Pass": Action.PASS}
_CNP = _Schema(Kind.CLUSTER_NETWORK_POLICY, 25, 25, _ALL_ACTIONS)
_ANP = _Schema(
    Kind.ADMIN_NETWORK_POLICY, 100, 100, {"Allow": Action.ACCEPT, "Deny": Action.DENY, "Pass": Action.PASS}
)
_BANP = _Schema(Kind.BASELINE_ADMIN_NETWORK_POLICY, 100, 100, {"Allow": Action.ACCEPT, "Deny": Action.DENY})


def _one_of(body: Mapping[str, Any], fields: tuple[str, ...], path: FieldPath, errs: _Errors) -> str | None:
    """The one field of ``fields`` set in ``body`` (min/maxProperties 1), or None after an error."""
    present = [f for f in body if body.get(f) is not None]
    unknown = [f for f in present if f not in fields]
    for f in unknown:
        errs.add(path.child(f), f"unknown field; expected exactly one of {_quoted(fields)}")
    known = [f for f in present if f in fields]
    if len(known) != 1:
        if not unknown:
            errs.add(path, f"must have exactly one of {_quoted(fields)}", sorted(known) or None)
        return None
    return known[0] if not unknown else None


def _quoted(fields: tuple[str, ...]) -> str:
    return ", ".join(f"`{f}`" for f in fields)


def _items(raw: object, path: FieldPath, errs: _Errors, lo: int, hi: int, required: bool) -> list[Any]:
    if raw is None:
        if required:
            errs.add(path, "is required")
        return []
    items = _list(raw, path, errs)
    if isinstance(raw, list) and not lo <= len(raw) <= hi:
        errs.add(path, f"must have {lo}..{hi} items", len(raw))
    return items


def _int(raw: object, path: FieldPath, errs: _Errors, lo: int, hi: int) -> int | None:
    if raw is None:
        errs.add(path, "is required")
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        errs.add(path, "must be an integer", raw)
        return None
    if not lo <= raw <= hi:
        errs.add(path, f"must be between {lo} and {hi}, inclusive", raw)
        return None
    return raw


def _namespaced_pod(raw: object, path: FieldPath, errs: _Errors) -> ClusterPeer:
    body = _map(raw, path, errs)
    if body.get("podSelector") is None:
        errs.add(path.child("podSelector"), "is required")
    pods = parse_selector(body.get("podSelector"), path.child("podSelector"), errs)
    namespaces = parse_selector(body.get("namespaceSelector"), path.child("namespaceSelector"), errs)
    return ClusterPeer(namespace_selector=namespaces, pod_selector=pods)


def _subject(raw: object, path: FieldPath, errs: _Errors) -> ClusterPeer:
    if raw is None:
        errs.add(path, "is required")
        return ClusterPeer(namespace_selector=LabelSelector())
    body = _map(raw, path, errs)
    which = _one_of(body, ("namespaces", "pods"), path, errs)
    if which == "pods":
        return _namespaced_pod(body["pods"], path.child("pods"), errs)
    if which == "namespaces":
        return ClusterPeer(
            namespace_selector=parse_selector(body["namespaces"], path.child("namespaces"), errs)
        )
    return ClusterPeer(namespace_selector=LabelSelector())


def _set_of_strings(raw: object, path: FieldPath, errs: _Errors) -> list[tuple[FieldPath, str]]:
    out: list[tuple[FieldPath, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(_items(raw, path, errs, 1, 25, True)):
        p = path.index(i)
        if not isinstance(item, str):
            errs.add(p, "must be a string", item)
        elif item in seen:
            errs.add(p, "duplicate value", item)
        else:
            seen.add(item)
            out.append((p, item))
    return out


def _networks(raw: object, path: FieldPath, errs: _Errors) -> tuple[IPNetwork, ...]:
    nets: list[IPNetwork] = []
    for p, item in _set_of_strings(raw, path, errs):
        if len(item) > 43:
            errs.add(p, "must be at most 43 characters", item)
            continue
        try:
            if "/" not in item:
                raise ValueError(item)
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            errs.add(p, "invalid CIDR format provided", item)
    return tuple(nets)


def _domain_names(raw: object, path: FieldPath, errs: _Errors) -> tuple[str, ...]:
    names: list[str] = []
    for p, item in _set_of_strings(raw, path, errs):
        if not _DOMAIN_NAME.match(item):
            errs.add(p, "must be a domain name, optionally with a leading `*.`", item)
        else:
            names.append(item)
    return tuple(names)


def _peer(raw: object, path: FieldPath, fields: tuple[str, ...], errs: _Errors) -> ClusterPeer | None:
    body = _map(raw, path, errs)
    which = _one_of(body, fields, path, errs)
    if which is None:
        return None
    value, p = body[which], path.child(which)
    if which == "namespaces":
        return ClusterPeer(namespace_selector=parse_selector(value, p, errs))
    if which == "pods":
        return _namespaced_pod(value, p, errs)
    if which == "nodes":
        return ClusterPeer(node_selector=parse_selector(value, p, errs))
    if which == "networks":
        return ClusterPeer(networks=_networks(value, p, errs))
    return ClusterPeer(domain_names=_domain_names(value, p, errs))


def _port_range(
    body: Mapping[str, Any], path: FieldPath, errs: _Errors, strict: bool
) -> tuple[int, int] | None:
    start = _int(body.get("start"), path.child("start"), errs, 1, 65535)
    end = _int(body.get("end"), path.child("end"), errs, 1, 65535)
    if start is None or end is None:
        return None
    if strict and not start < end:  # v1alpha2 CEL: self.start < self.end
        errs.add(path, "start port must be less than end port", f"{start}-{end}")
        return None
    if not start <= end:  # v1alpha1 has no CEL rule; an inverted range is still meaningless
        errs.add(path, "`start` must be less than or equal to `end`", f"{start}-{end}")
        return None
    return start, end


def _protocol_v1alpha2(raw: object, path: FieldPath, errs: _Errors) -> PolicyPort | None:
    body = _map(raw, path, errs)
    which = _one_of(body, ("tcp", "udp", "sctp", "destinationNamedPort"), path, errs)
    if which is None:
        return None
    if which == "destinationNamedPort":
        name = body[which]
        if not isinstance(name, str) or not name:
            errs.add(path.child(which), "must be a non-empty string", name)
            return None
        return PolicyPort(NAMED_PORT_PROTOCOL, name)
    p = path.child(which)
    proto = _map(body[which], p, errs)
    if proto.get("destinationPort") is None:
        errs.add(p, "must have `destinationPort`")
        return None
    dp = path.child(which).child("destinationPort")
    port = _map(proto["destinationPort"], dp, errs)
    kind = _one_of(port, ("number", "range"), dp, errs)
    if kind == "number":
        number = _int(port["number"], dp.child("number"), errs, 1, 65535)
        return PolicyPort(which.upper(), number) if number is not None else None
    if kind == "range":
        rng = _port_range(_map(port["range"], dp.child("range"), errs), dp.child("range"), errs, True)
        return PolicyPort(which.upper(), rng[0], rng[1]) if rng is not None else None
    return None


def _v1_protocol(raw: object, path: FieldPath, errs: _Errors) -> str:
    if raw is None:
        return "TCP"  # +kubebuilder:default=TCP
    if raw not in PORT_PROTOCOLS:
        errs.add(path, "must be one of `TCP`, `UDP`, `SCTP`", raw)
        return "TCP"
    return str(raw)


def _port_v1alpha1(raw: object, path: FieldPath, errs: _Errors) -> PolicyPort | None:
    body = _map(raw, path, errs)
    which = _one_of(body, ("portNumber", "namedPort", "portRange"), path, errs)
    if which is None:
        return None
    p = path.child(which)
    if which == "namedPort":
        name = body[which]
        if not isinstance(name, str) or not name:
            errs.add(p, "must be a non-empty string", name)
            return None
        return PolicyPort(NAMED_PORT_PROTOCOL, name)
    inner = _map(body[which], p, errs)
    protocol = _v1_protocol(inner.get("protocol"), p.child("protocol"), errs)
    if which == "portNumber":
        number = _int(inner.get("port"), p.child("port"), errs, 1, 65535)
        return PolicyPort(protocol, number) if number is not None else None
    rng = _port_range(inner, p, errs, False)
    return PolicyPort(protocol, rng[0], rng[1]) if rng is not None else None


def _rule(raw: object, path: FieldPath, egress: bool, schema: _Schema, errs: _Errors) -> ClusterRule | None:
    body = _map(raw, path, errs)
    name = body.get("name", "")
    if not isinstance(name, str):
        errs.add(path.child("name"), "must be a string", name)
        name = ""
    elif len(name) > 100:
        errs.add(path.child("name"), "may be at most 100 characters", len(name))
    action_raw = body.get("action")
    action = schema.actions.get(action_raw) if isinstance(action_raw, str) else None
    if action is None:
        errs.add(path.child("action"), f"must be one of {_quoted(tuple(schema.actions))}", action_raw)
    peers_field = "to" if egress else "from"
    fields = schema.egress_peers if egress else ("namespaces", "pods")
    peers: list[ClusterPeer] = []
    pp = path.child(peers_field)
    for i, item in enumerate(_items(body.get(peers_field), pp, errs, 1, schema.max_items, True)):
        peer = _peer(item, pp.index(i), fields, errs)
        if peer is not None:
            peers.append(peer)
            if peer.domain_names and action is not None and action is not Action.ACCEPT:
                errs.add(pp.index(i).child("domainNames"), "is only allowed in an `Accept` rule", action_raw)
    ports_field = "protocols" if schema.v1alpha2 else "ports"
    parse_port = _protocol_v1alpha2 if schema.v1alpha2 else _port_v1alpha1
    ports: list[PolicyPort] = []
    ptp = path.child(ports_field)
    for i, item in enumerate(_items(body.get(ports_field), ptp, errs, 1, schema.max_items, False)):
        port = parse_port(item, ptp.index(i), errs)
        if port is not None:
            ports.append(port)
    if (
        egress
        and any(p.protocol == NAMED_PORT_PROTOCOL for p in ports)
        and any(peer.networks or peer.node_selector is not None or peer.domain_names for peer in peers)
    ):
        errs.add(
            path,
            "networks/nodes/domainNames peer cannot be set with namedPorts since there are no "
            "namedPorts for networks/nodes/domainNames",
        )
    if action is None:
        return None
    return ClusterRule(name, action, tuple(peers), tuple(ports))


def _rules(
    spec: Mapping[str, Any], path: FieldPath, egress: bool, schema: _Schema, errs: _Errors
) -> tuple[ClusterRule, ...]:
    field_name = "egress" if egress else "ingress"
    p = path.child(field_name)
    raw = spec.get(field_name)
    out: list[ClusterRule] = []
    for i, item in enumerate(_items(raw, p, errs, 0, schema.max_rules, False)):
        rule = _rule(item, p.index(i), egress, schema, errs)
        if rule is not None:
            out.append(rule)
    return tuple(out)


def _parse(doc: Mapping[str, Any], schema: _Schema) -> ClusterPolicy:
    errs = _Errors()
    _, name, meta = _metadata(doc, errs, namespaced=False, name_re=_DNS_SUBDOMAIN)
    _labels(meta.get("labels"), FieldPath("metadata").child("labels"), errs)
    spec_path = FieldPath("spec")
    if doc.get("spec") is None:
        errs.add(spec_path, "is required")
        raise ValidationError(_ref(schema.kind.value, "", name), errs.items)
    spec = _map(doc.get("spec"), spec_path, errs)
    if schema.kind is Kind.CLUSTER_NETWORK_POLICY:
        tier_raw = spec.get("tier")
        if tier_raw not in ("Admin", "Baseline"):
            errs.add(spec_path.child("tier"), "must be one of `Admin`, `Baseline`", tier_raw)
        tier = Tier.BASELINE if tier_raw == "Baseline" else Tier.ADMIN
        priority = _int(spec.get("priority"), spec_path.child("priority"), errs, 0, 1000) or 0
    elif schema.kind is Kind.ADMIN_NETWORK_POLICY:
        tier = Tier.ADMIN
        priority = _int(spec.get("priority"), spec_path.child("priority"), errs, 0, 1000) or 0
    else:
        tier, priority = Tier.BASELINE, BANP_PRIORITY
        if name != "default":
            errs.add(
                FieldPath("metadata").child("name"),
                'only one baseline admin network policy with metadata.name="default" '
                "can be created in the cluster",
                name,
            )
    subject = _subject(spec.get("subject"), spec_path.child("subject"), errs)
    ingress = _rules(spec, spec_path, False, schema, errs)
    egress = _rules(spec, spec_path, True, schema, errs)
    if errs.items:
        raise ValidationError(_ref(schema.kind.value, "", name), errs.items)
    return ClusterPolicy(schema.kind, name, tier, priority, subject, ingress, egress)


def parse_cluster_network_policy(doc: Mapping[str, Any]) -> ClusterPolicy:
    return _parse(doc, _CNP)


def parse_admin_network_policy(doc: Mapping[str, Any]) -> ClusterPolicy:
    return _parse(doc, _ANP)


def parse_baseline_admin_network_policy(doc: Mapping[str, Any]) -> ClusterPolicy:
    return _parse(doc, _BANP)
