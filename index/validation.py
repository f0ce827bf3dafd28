"""Manifest dicts -> validated model objects, with every error located.

Rules enforced (SEMANTICS.md, "Validation"), each mirrored by a test:

1. ``ipBlock.cidr`` must be an IPv4/IPv6 CIDR; host bits are cleared
   (``10.0.0.1/24`` -> ``10.0.0.0/24``).
2. each ``ipBlock.except`` entry must be a CIDR of the same family strictly
   inside ``cidr``.
3. a numeric ``port`` must be within 1..65535.
4. ``endPort`` needs a numeric ``port`` and must be >= it (and <= 65535).
5. a named ``port`` must be an IANA service name: at most 15 characters,
   lower-case alphanumerics and ``-``, at least one letter, no leading,
   trailing or double ``-``.
6. ``protocol`` must be ``TCP``, ``UDP`` or ``SCTP`` (case sensitive, as the API
   server requires).
7. selector operators are ``In``/``NotIn`` (non-empty ``values``) and
   ``Exists``/``DoesNotExist`` (no ``values``).
8. label keys are qualified names (optional DNS-subdomain prefix ``/`` a name of
   at most 63 characters); label values are empty or such a name.
9. a peer holds ``ipBlock`` alone, or one or both selectors, never both kinds,
   and never nothing; a peer with both still has its ``ipBlock`` checked.
10. ``policyTypes`` holds at most two entries.

Defaulting (what the API server would do, so a file source behaves the same):
``protocol`` -> TCP; ``metadata.namespace`` -> ``default``; a namespace gets
``kubernetes.io/metadata.name=<name>``; effective ``policyTypes`` is the field
when present and non-empty, else ``Ingress`` plus ``Egress`` iff ``egress`` has
at least one rule.

Validation collects every problem of an object before raising one
:class:`ValidationError` naming it (``NetworkPolicy default/web``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from netpol_pdp.index.errors import FieldError, FieldPath, ValidationError
from netpol_pdp.index.model import (
    NAMESPACE_NAME_LABEL,
    PORT_PROTOCOLS,
    ContainerPort,
    IPBlock,
    IPNetwork,
    Kind,
    LabelSelector,
    Namespace,
    NetworkPolicy,
    Node,
    Object,
    Operator,
    Peer,
    Pod,
    PolicyPort,
    Requirement,
    Rule,
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_HAS_LETTER = re.compile(r"[a-z]")

_OPERATORS = frozenset(op.value for op in Operator)

#: The kinds this engine reads; documents of other kinds are ignored (and counted).
KINDS = frozenset(k.value for k in Kind)


class _Errors:
    """Accumulates FieldErrors while validation descends."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, path: FieldPath, message: str, value: object = None) -> None:
        self.items.append(FieldError(str(path), message, value))


# --- labels and names -------------------------------------------------------------------


def label_key_problem(key: object) -> str | None:
    """Why ``key`` is not a valid label key, or None."""
    if not isinstance(key, str) or not key:
        return "label key must be a non-empty string"
    prefix, sep, name = key.rpartition("/")
    if sep and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "label key prefix must be a DNS subdomain (lower case, at most 253 characters)"
    if len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            "label key name must be at most 63 characters of alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric"
        )
    return None


def label_value_problem(value: object) -> str | None:
    """Why ``value`` is not a valid label value, or None."""
    if not isinstance(value, str):
        return "label value must be a string"
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        return (
            "label value must be empty or at most 63 characters of alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric"
        )
    return None


def service_name_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA service name (a named port), or None."""
    if len(name) > 15:
        return "port name must be at most 15 characters"
    if not _SERVICE_NAME.match(name):
        return "port name must be lower-case alphanumerics or '-', starting and ending with an alphanumeric"
    if "--" in name:
        return "port name must not contain '--'"
    if not _HAS_LETTER.search(name):
        return "port name must contain at least one letter"
    return None


#: Label (key, value) pairs found valid: the replicas of a workload share their labels, so
#: most pairs of a world are checked once.  Bounded: cleared when full (a long-running
#: feed sees label values come and go).
_VALID_LABELS: set[tuple[str, str]] = set()
_MAX_VALID_LABELS = 65_536


def _plain_labels(raw: object) -> dict[str, str] | None:
    """A copy of a map of labels when every pair is valid, else None (nothing reported)."""
    if type(raw) is not dict:
        return None
    valid = _VALID_LABELS
    for pair in raw.items():
        k, v = pair
        if type(k) is not str or type(v) is not str:
            return None
        if pair not in valid:
            if label_key_problem(k) is not None or label_value_problem(v) is not None:
                return None
            if len(valid) >= _MAX_VALID_LABELS:
                valid.clear()
            valid.add(pair)
    return dict(raw)


def _labels(raw: object, path: FieldPath, errs: _Errors) -> dict[str, str]:
    if raw is None:
        return {}
    plain = _plain_labels(raw)
    if plain is not None:
        return plain
    if type(raw) is not dict and not isinstance(raw, Mapping):
        errs.add(path, "must be a map of label keys to values", raw)
        return {}
    out: dict[str, str] = {}
    for k, v in raw.items():
        problem = label_key_problem(k)
        if problem:
            errs.add(path.key(str(k)), problem, k)
            continue
        problem = label_value_problem(v)
        if problem:
            errs.add(path.key(k), problem, v)
            continue
        out[k] = v
    return out


def _list(raw: object, path: FieldPath, errs: _Errors) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errs.add(path, "must be a list", raw)
        return []
    return raw


def _map(raw: object, path: FieldPath, errs: _Errors) -> Mapping[str, Any]:
    if type(raw) is dict:  # what the parsers give: no ABC check
        return raw
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        errs.add(path, "must be an object", raw)
        return {}
    return raw


# --- selectors --------------------------------------------------------------------------


def parse_selector(raw: object, path: FieldPath, errs: _Errors) -> LabelSelector:
    body = _map(raw, path, errs)
    labels = _labels(body.get("matchLabels"), path.child("matchLabels"), errs)
    reqs: list[Requirement] = []
    exprs = _list(body.get("matchExpressions"), path.child("matchExpressions"), errs)
    for i, item in enumerate(exprs):
        p = path.child("matchExpressions").index(i)
        expr = _map(item, p, errs)
        key = expr.get("key")
        key_problem = label_key_problem(key)
        if key_problem:
            errs.add(p.child("key"), key_problem, key)
        op_raw = expr.get("operator")
        if not isinstance(op_raw, str) or op_raw not in _OPERATORS:
            errs.add(
                p.child("operator"),
                "must be one of `In`, `NotIn`, `Exists`, `DoesNotExist`",
                op_raw,
            )
            continue
        op = Operator(op_raw)
        values_raw = expr.get("values")
        values = _list(values_raw, p.child("values"), errs)
        if op in (Operator.IN, Operator.NOT_IN):
            if not values:
                errs.add(p.child("values"), f"must be specified when `operator` is '{op.value}'")
        elif values_raw is not None and values:
            errs.add(p.child("values"), f"may not be specified when `operator` is '{op.value}'")
        good: set[str] = set()
        for j, v in enumerate(values):
            problem = label_value_problem(v)
            if problem:
                errs.add(p.child("values").index(j), problem, v)
            else:
                good.add(v)
        if key_problem is None and isinstance(key, str):
            reqs.append(Requirement(key, op, frozenset(good)))
    reqs.sort(key=lambda r: (r.key, r.operator.value, sorted(r.values)))
    return LabelSelector(tuple(sorted(labels.items())), tuple(reqs))


# --- ipBlock and ports ------------------------------------------------------------------


def _network(raw: object, path: FieldPath, errs: _Errors) -> IPNetwork | None:
    if not isinstance(raw, str) or "/" not in raw:
        errs.add(path, "must be a valid CIDR (for example 10.0.0.0/8 or fd00::/64)", raw)
        return None
    try:
        return ipaddress.ip_network(raw.strip(), strict=False)
    except ValueError:
        errs.add(path, "must be a valid CIDR (for example 10.0.0.0/8 or fd00::/64)", raw)
        return None


def parse_ip_block(raw: object, path: FieldPath, errs: _Errors) -> IPBlock | None:
    body = _map(raw, path, errs)
    if "cidr" not in body:
        errs.add(path.child("cidr"), "is required")
        return None
    cidr = _network(body.get("cidr"), path.child("cidr"), errs)
    excepts: list[IPNetwork] = []
    for i, item in enumerate(_list(body.get("except"), path.child("except"), errs)):
        p = path.child("except").index(i)
        net = _network(item, p, errs)
        if net is None or cidr is None:
            continue
        if net.version != cidr.version or not net.subnet_of(cidr) or net.prefixlen <= cidr.prefixlen:  # type: ignore[arg-type]
            errs.add(p, f"must be a strict subset of `cidr` {cidr}", item)
            continue
        excepts.append(net)
    if cidr is None:
        return None
    return IPBlock(cidr, tuple(excepts))


def _protocol(raw: object, path: FieldPath, errs: _Errors) -> str:
    if raw is None:
        return "TCP"
    if raw not in PORT_PROTOCOLS:
        errs.add(path, "must be one of `TCP`, `UDP`, `SCTP`", raw)
        return "TCP"
    return str(raw)


def _port_number(raw: object, path: FieldPath, errs: _Errors) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int):
        errs.add(path, "must be an integer", raw)
        return None
    if not 1 <= raw <= 65535:
        errs.add(path, "must be between 1 and 65535, inclusive", raw)
        return None
    return raw


def parse_policy_port(raw: object, path: FieldPath, errs: _Errors) -> PolicyPort:
    body = _map(raw, path, errs)
    protocol = _protocol(body.get("protocol"), path.child("protocol"), errs)
    port_raw = body.get("port")
    port: int | str | None = None
    if isinstance(port_raw, str):
        problem = service_name_problem(port_raw)
        if problem:
            errs.add(path.child("port"), problem, port_raw)
        port = port_raw
    elif port_raw is not None:
        port = _port_number(port_raw, path.child("port"), errs)
    end_raw = body.get("endPort")
    end_port: int | None = None
    if end_raw is not None:
        end_port = _port_number(end_raw, path.child("endPort"), errs)
        if not isinstance(port_raw, int) or isinstance(port_raw, bool):
            errs.add(path.child("endPort"), "may not be specified when `port` is not a number", end_raw)
        elif end_port is not None and end_port < port_raw:
            errs.add(path.child("endPort"), "must be greater than or equal to `port`", end_raw)
    return PolicyPort(protocol, port, end_port)


def parse_peer(raw: object, path: FieldPath, errs: _Errors) -> Peer | None:
    body = _map(raw, path, errs)
    has_pod = body.get("podSelector") is not None
    has_ns = body.get("namespaceSelector") is not None
    has_ip = body.get("ipBlock") is not None
    if has_ip and (has_pod or has_ns):
        errs.add(
            path, "may not specify both `ipBlock` and another peer (`podSelector` or `namespaceSelector`)"
        )
        parse_ip_block(body["ipBlock"], path.child("ipBlock"), errs)  # its own errors, as the API server
        return None
    if not (has_ip or has_pod or has_ns):
        errs.add(path, "must specify a peer: `podSelector`, `namespaceSelector` or `ipBlock`")
        return None
    if has_ip:
        block = parse_ip_block(body["ipBlock"], path.child("ipBlock"), errs)
        return Peer(ip_block=block) if block else None
    pod_sel = parse_selector(body["podSelector"], path.child("podSelector"), errs) if has_pod else None
    ns_sel = (
        parse_selector(body["namespaceSelector"], path.child("namespaceSelector"), errs) if has_ns else None
    )
    return Peer(pod_selector=pod_sel, namespace_selector=ns_sel)


def parse_rule(raw: object, path: FieldPath, peers_field: str, errs: _Errors) -> Rule:
    body = _map(raw, path, errs)
    peers = []
    for i, item in enumerate(_list(body.get(peers_field), path.child(peers_field), errs)):
        peer = parse_peer(item, path.child(peers_field).index(i), errs)
        if peer is not None:
            peers.append(peer)
    ports = [
        parse_policy_port(item, path.child("ports").index(i), errs)
        for i, item in enumerate(_list(body.get("ports"), path.child("ports"), errs))
    ]
    return Rule(tuple(peers), tuple(ports))


# --- objects ----------------------------------------------------------------------------


def _metadata(
    doc: Mapping[str, Any], errs: _Errors, *, namespaced: bool, name_re: re.Pattern[str]
) -> tuple[str, str, Mapping[str, Any]]:
    path = FieldPath("metadata")
    meta = _map(doc.get("metadata"), path, errs)
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        errs.add(path.child("name"), "is required")
        name = "<unnamed>"
    elif len(name) > 253 or not name_re.match(name):
        errs.add(path.child("name"), "must be a lower-case DNS name", name)
    namespace = ""
    if namespaced:
        ns = meta.get("namespace", "default")
        if ns is None or ns == "":  # kubectl and the API treat an empty namespace as unset
            ns = "default"
        if not isinstance(ns, str) or len(ns) > 63 or not _DNS_LABEL.match(ns):
            errs.add(path.child("namespace"), "must be a lower-case DNS label", ns)
            ns = str(ns)
        namespace = ns
    return namespace, name, meta


def _ref(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _parse_time(raw: object, path: FieldPath, errs: _Errors) -> float:
    if raw is None:
        return 0.0
    if isinstance(raw, datetime):  # the kubernetes client and YAML both produce these
        return raw.timestamp()
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    errs.add(path, "must be an RFC 3339 timestamp", raw)
    return 0.0


#: A dotted-quad IPv4 address already in the form ``ipaddress`` writes (no leading zeros):
#: returned as it is, without building an address object (the common case, once per pod).
_CANONICAL_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)


def _ip_text(raw: object) -> str | None:
    """``raw`` as ``ipaddress`` writes the address, or None when it is not one."""
    if type(raw) is str and _CANONICAL_IPV4.fullmatch(raw):
        return raw
    try:
        return str(ipaddress.ip_address(str(raw).strip()))
    except ValueError:
        return None


def _ip(raw: object, path: FieldPath, errs: _Errors) -> str | None:
    ip = _ip_text(raw)
    if ip is None:
        errs.add(path, "must be a valid IP address", raw)
    return ip


def parse_namespace(doc: Mapping[str, Any]) -> Namespace:
    errs = _Errors()
    _, name, meta = _metadata(doc, errs, namespaced=False, name_re=_DNS_LABEL)
    labels = _labels(meta.get("labels"), FieldPath("metadata").child("labels"), errs)
    if errs.items:
        raise ValidationError(_ref("Namespace", "", name), errs.items)
    labels[NAMESPACE_NAME_LABEL] = name
    return Namespace(name, labels)


def parse_pod(doc: Mapping[str, Any]) -> Pod:
    plain = _plain_pod(doc)
    if plain is not None:
        return plain
    return _located_pod(doc)


def _plain_pod(doc: Mapping[str, Any]) -> Pod | None:
    """The Pod of a manifest with nothing to report, without building a field path; None
    for anything else (and for shapes it leaves to :func:`_located_pod`, which reads the
    manifest again, locates every problem, and is the contract: the same Pod when
    there is none).  Pods are most of a world: this is most of its validation."""
    meta = doc.get("metadata")
    if type(meta) is not dict:
        return None
    name = meta.get("name")
    if type(name) is not str or not name or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return None
    namespace = meta.get("namespace", "default")
    if namespace is None or namespace == "":
        namespace = "default"
    if type(namespace) is not str or len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        return None
    raw_labels = meta.get("labels")
    labels = {} if raw_labels is None else _plain_labels(raw_labels)
    if labels is None:
        return None
    created = 0.0
    if meta.get("creationTimestamp") is not None:
        errs = _Errors()
        created = _parse_time(meta["creationTimestamp"], _CREATED_PATH, errs)
        if errs.items:
            return None
    spec = doc.get("spec", {})
    if spec is None:
        spec = {}
    status = doc.get("status", {})
    if status is None:
        status = {}
    if type(spec) is not dict or type(status) is not dict:
        return None
    node_name = spec.get("nodeName")
    host_network = spec.get("hostNetwork", False)
    phase = status.get("phase")
    if (node_name is not None and type(node_name) is not str) or type(host_network) is not bool:
        return None
    if phase is not None and type(phase) is not str:
        return None
    ports = _plain_container_ports(spec.get("containers"))
    ips = _plain_pod_ips(status)
    if ports is None or ips is None:
        return None
    return Pod(namespace, name, labels, node_name, host_network, ips, phase, ports, created)


_CREATED_PATH = FieldPath("metadata.creationTimestamp")


def _plain_container_ports(containers: object) -> tuple[ContainerPort, ...] | None:
    """``spec.containers[*].ports`` when every one is valid, else None (see :func:`_plain_pod`)."""
    if containers is None:
        return ()
    if type(containers) is not list:
        return None
    ports: list[ContainerPort] = []
    for container in containers:
        if container is None:
            continue
        if type(container) is not dict:
            return None
        raw_ports = container.get("ports")
        if raw_ports is None:
            continue
        if type(raw_ports) is not list:
            return None
        for port in raw_ports:
            if type(port) is not dict:
                return None
            number = port.get("containerPort")
            protocol = port.get("protocol", "TCP")
            pname = port.get("name")
            if type(number) is not int or not 1 <= number <= 65535:
                return None
            if type(protocol) is not str or protocol not in PORT_PROTOCOLS:
                return None
            if pname is not None and (type(pname) is not str or service_name_problem(pname) is not None):
                return None
            ports.append(ContainerPort(number, protocol, pname))
    return tuple(ports)


def _plain_pod_ips(status: dict[str, Any]) -> tuple[str, ...] | None:
    """``status.podIP`` first, then ``status.podIPs``, when every one is valid, else None."""
    raw_ips = status.get("podIPs")
    ips: list[str] = []
    if raw_ips is not None:
        if type(raw_ips) is not list:
            return None
        for entry in raw_ips:
            if type(entry) is not dict:
                return None
            ip = _ip_text(entry.get("ip"))
            if ip is None:
                return None
            if ip not in ips:
                ips.append(ip)
    if status.get("podIP"):
        ip = _ip_text(status["podIP"])
        if ip is None:
            return None
        if ip not in ips:
            ips.insert(0, ip)
    return tuple(ips)


def _located_pod(doc: Mapping[str, Any]) -> Pod:
    errs = _Errors()
    namespace, name, meta = _metadata(doc, errs, namespaced=True, name_re=_DNS_SUBDOMAIN)
    labels = _labels(meta.get("labels"), FieldPath("metadata").child("labels"), errs)
    created = _parse_time(meta.get("creationTimestamp"), FieldPath("metadata.creationTimestamp"), errs)
    spec_path = FieldPath("spec")
    spec = _map(doc.get("spec"), spec_path, errs)
    node_name = spec.get("nodeName")
    if node_name is not None and not isinstance(node_name, str):
        errs.add(spec_path.child("nodeName"), "must be a string", node_name)
        node_name = None
    host_network = spec.get("hostNetwork", False)
    if not isinstance(host_network, bool):
        errs.add(spec_path.child("hostNetwork"), "must be a boolean", host_network)
        host_network = False
    ports: list[ContainerPort] = []
    containers_path = spec_path.child("containers")
    for ci, container in enumerate(_list(spec.get("containers"), containers_path, errs)):
        cpath = containers_path.index(ci)
        cbody = _map(container, cpath, errs)
        for pi, praw in enumerate(_list(cbody.get("ports"), cpath.child("ports"), errs)):
            ppath = cpath.child("ports").index(pi)
            pbody = _map(praw, ppath, errs)
            number = _port_number(pbody.get("containerPort"), ppath.child("containerPort"), errs)
            protocol = _protocol(pbody.get("protocol"), ppath.child("protocol"), errs)
            pname = pbody.get("name")
            if pname is not None:
                problem = service_name_problem(pname) if isinstance(pname, str) else "must be a string"
                if problem:
                    errs.add(ppath.child("name"), problem, pname)
                    pname = None
            if number is not None:
                ports.append(ContainerPort(number, protocol, pname))
    status_path = FieldPath("status")
    status = _map(doc.get("status"), status_path, errs)
    ips: list[str] = []
    for i, entry in enumerate(_list(status.get("podIPs"), status_path.child("podIPs"), errs)):
        raw = entry.get("ip") if type(entry) is dict or isinstance(entry, Mapping) else entry
        ip = _ip(raw, status_path.child("podIPs").index(i).child("ip"), errs)
        if ip is not None and ip not in ips:
            ips.append(ip)
    if status.get("podIP"):
        ip = _ip(status["podIP"], status_path.child("podIP"), errs)
        if ip is not None and ip not in ips:
            ips.insert(0, ip)
    phase = status.get("phase")
    if phase is not None and not isinstance(phase, str):
        errs.add(status_path.child("phase"), "must be a string", phase)
        phase = None
    if errs.items:
        raise ValidationError(_ref("Pod", namespace, name), errs.items)
    return Pod(
        namespace=namespace,
        name=name,
        labels=labels,
        node_name=node_name,
        host_network=host_network,
        ips=tuple(ips),
        phase=phase,
        ports=tuple(ports),
        created=created,
    )


def parse_node(doc: Mapping[str, Any]) -> Node:
    errs = _Errors()
    _, name, meta = _metadata(doc, errs, namespaced=False, name_re=_DNS_SUBDOMAIN)
    labels = _labels(meta.get("labels"), FieldPath("metadata").child("labels"), errs)
    status_path = FieldPath("status")
    status = _map(doc.get("status"), status_path, errs)
    addresses: list[str] = []
    for i, entry in enumerate(_list(status.get("addresses"), status_path.child("addresses"), errs)):
        p = status_path.child("addresses").index(i)
        body = _map(entry, p, errs)
        if body.get("type") not in ("InternalIP", "ExternalIP"):
            continue  # Hostname / InternalDNS / ExternalDNS carry names, not IPs
        ip = _ip(body.get("address"), p.child("address"), errs)
        if ip is not None and ip not in addresses:
            addresses.append(ip)
    if errs.items:
        raise ValidationError(_ref("Node", "", name), errs.items)
    return Node(name, tuple(addresses), labels)


def parse_network_policy(doc: Mapping[str, Any]) -> NetworkPolicy:
    errs = _Errors()
    namespace, name, meta = _metadata(doc, errs, namespaced=True, name_re=_DNS_SUBDOMAIN)
    _labels(meta.get("labels"), FieldPath("metadata").child("labels"), errs)  # unused, but must be valid
    spec_path = FieldPath("spec")
    spec = _map(doc.get("spec"), spec_path, errs)
    pod_selector = parse_selector(spec.get("podSelector"), spec_path.child("podSelector"), errs)
    ingress = tuple(
        parse_rule(item, spec_path.child("ingress").index(i), "from", errs)
        for i, item in enumerate(_list(spec.get("ingress"), spec_path.child("ingress"), errs))
    )
    egress = tuple(
        parse_rule(item, spec_path.child("egress").index(i), "to", errs)
        for i, item in enumerate(_list(spec.get("egress"), spec_path.child("egress"), errs))
    )
    types_raw = _list(spec.get("policyTypes"), spec_path.child("policyTypes"), errs)
    types: set[str] = set()
    if len(types_raw) > 2:
        errs.add(spec_path.child("policyTypes"), "may not specify more than two policyTypes", types_raw)
    for i, t in enumerate(types_raw):
        if t not in ("Ingress", "Egress"):
            errs.add(spec_path.child("policyTypes").index(i), "must be `Ingress` or `Egress`", t)
        else:
            types.add(t)
    if not types_raw:
        types = {"Ingress"}
        if egress:
            types.add("Egress")
    if errs.items:
        raise ValidationError(_ref("NetworkPolicy", namespace, name), errs.items)
    return NetworkPolicy(namespace, name, pod_selector, frozenset(types), ingress, egress)


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Object]] = {
    Kind.NAMESPACE.value: parse_namespace,
    Kind.POD.value: parse_pod,
    Kind.NODE.value: parse_node,
    Kind.NETWORK_POLICY.value: parse_network_policy,
}


#: Cluster-scoped policy kinds and their parser in validation_cnp.py.
_CLUSTER_KINDS = {
    Kind.CLUSTER_NETWORK_POLICY.value: "parse_cluster_network_policy",
    Kind.ADMIN_NETWORK_POLICY.value: "parse_admin_network_policy",
    Kind.BASELINE_ADMIN_NETWORK_POLICY.value: "parse_baseline_admin_network_policy",
}
#: The Service kinds and their parser in validation_svc.py.
_SERVICE_KINDS = {
    Kind.SERVICE.value: "parse_service",
    Kind.ENDPOINT_SLICE.value: "parse_endpoint_slice",
}


def parse_object(doc: Mapping[str, Any]) -> Object | None:
    """Validate one manifest; None for a kind this engine does not read.

    Raises :class:`ValidationError` (naming the object and every bad field).
    """
    if not isinstance(doc, Mapping):
        raise ValidationError("document", [FieldError("", "must be a Kubernetes object (a map)", doc)])
    kind = doc.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise ValidationError("document", [FieldError("kind", "must be a string", kind)])
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None and kind in _CLUSTER_KINDS:
        from netpol_pdp.index import validation_cnp  # noqa: PLC0415 (it imports this module)

        parser = getattr(validation_cnp, _CLUSTER_KINDS[kind])
    elif parser is None and kind in _SERVICE_KINDS:
        from netpol_pdp.index import validation_svc  # noqa: PLC0415 (it imports this module)

        parser = getattr(validation_svc, _SERVICE_KINDS[kind])
    if parser is None:
        if kind is None:
            raise ValidationError("document", [FieldError("kind", "is required")])
        return None
    return parser(doc)
