"""Service and EndpointSlice manifests -> :class:`~netpol_pdp.index.model.Service` /
:class:`~netpol_pdp.index.model.EndpointSlice`, every error with its field path.

What is checked (as the API server's validation does, k8s.io/api core/v1 and
discovery/v1 types; docs/services.md):

Service (v1):

S1. ``spec.type`` is ``ClusterIP`` (default), ``NodePort``, ``LoadBalancer`` or
    ``ExternalName``.
S2. ``spec.clusterIP`` is unset, ``""``, ``None`` (headless) or an IP address;
    ``spec.clusterIPs`` holds at most two, of different families (dual stack), the
    first equal to ``clusterIP`` when both are given; ``None`` only alone.
S3. ``spec.ports`` is required unless the Service is headless or ExternalName; each
    has ``port`` 1..65535, ``protocol`` TCP/UDP/SCTP, ``targetPort`` a number
    1..65535 or a port name (IANA service name; default: ``port``), ``nodePort``
    1..65535 only for NodePort/LoadBalancer; a ``name`` (DNS label) is required
    when there are two ports or more, names are unique, and so are
    (``port``, ``protocol``) pairs.
S4. ``spec.externalIPs`` and ``status.loadBalancer.ingress[].ip`` are IP addresses.
S5. ``spec.externalTrafficPolicy`` is ``Cluster`` (default) or ``Local``, and may be
    set only for a NodePort/LoadBalancer Service or one with externalIPs;
    ``spec.internalTrafficPolicy`` is ``Cluster`` (default) or ``Local``.
S6. ``spec.selector`` is a map of labels.

EndpointSlice (discovery.k8s.io/v1):

E1. ``addressType`` is required: ``IPv4``, ``IPv6`` or ``FQDN``.
E2. each ``endpoints[i].addresses`` holds 1..100 addresses, each an address of
    the slice's family (FQDN: a DNS subdomain); at most 1000 endpoints.
E3. ``conditions.ready``/``serving``/``terminating`` are booleans when set; unset
    ready means ready, unset serving means ``ready``, unset terminating means false.
E4. ``ports[i].name`` is empty or a DNS label, ``port`` 1..65535 when set,
    ``protocol`` TCP/UDP/SCTP; names are unique; at most 100 ports.
E5. the ``kubernetes.io/service-name`` label (when set) names the owning Service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netpol_pdp.index.errors import FieldPath, ValidationError
from netpol_pdp.index.flows import canonical_ip
from netpol_pdp.index.model import (
    SERVICE_NAME_LABEL,
    EndpointSlice,
    Service,
    ServicePort,
    ServiceType,
    SliceEndpoint,
    SlicePort,
    TrafficPolicy,
)
from netpol_pdp.index.validation import (
    _DNS_LABEL,
    _DNS_SUBDOMAIN,
    _Errors,
    _ip,
    _labels,
    _list,
    _map,
    _metadata,
    _port_number,
    _protocol,
    _ref,
    service_name_problem,
)

_TYPES = {t.value: t for t in ServiceType}
_POLICIES = {p.value: p for p in TrafficPolicy}
_ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
MAX_SLICE_ENDPOINTS = 1000
MAX_ENDPOINT_ADDRESSES = 100
MAX_SLICE_PORTS = 100


def _enum(raw: object, allowed: Mapping[str, Any], default: Any, path: FieldPath, errs: _Errors) -> Any:
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str) or raw not in allowed:
        errs.add(path, "must be one of " + ", ".join(f"`{v}`" for v in allowed), raw)
        return default
    return allowed[raw]


def _port_name(raw: object, path: FieldPath, errs: _Errors) -> str:
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str) or len(raw) > 63 or not _DNS_LABEL.match(raw):
        errs.add(path, "must be a lower-case DNS label (at most 63 characters)", raw)
        return ""
    return raw


def _addresses(raw: object, path: FieldPath, errs: _Errors) -> list[str]:
    out: list[str] = []
    for i, item in enumerate(_list(raw, path, errs)):
        ip = _ip(item, path.index(i), errs)
        if ip is not None and ip not in out:
            out.append(ip)
    return out


def _cluster_ips(spec: Mapping[str, Any], path: FieldPath, errs: _Errors) -> tuple[list[str], bool]:
    """(``clusterIPs`` normalised, headless) from ``clusterIP`` and ``clusterIPs`` (S2)."""
    single = spec.get("clusterIP")
    many = _list(spec.get("clusterIPs"), path.child("clusterIPs"), errs)
    texts: list[object] = list(many) if many else ([single] if single not in (None, "") else [])
    if many and single not in (None, "") and many[0] != single and canonical_ip(str(many[0])) is not None:
        errs.add(path.child("clusterIPs").index(0), "must match `clusterIP` when both are specified", many[0])
    if len(texts) > 2:
        errs.add(path.child("clusterIPs"), "may hold at most two addresses (one per IP family)", many)
    field = path.child("clusterIPs") if many else path.child("clusterIP")
    if "None" in texts:
        if len(texts) > 1:
            errs.add(field, "`None` may not be combined with an address", texts)
        return [], True
    ips: list[str] = []
    families: set[int] = set()
    for i, text in enumerate(texts[:2]):
        ip = _ip(text, field.index(i) if many else field, errs)
        if ip is None:
            continue
        family = _version(ip)
        if family in families:
            errs.add(field.index(i) if many else field, "must be of a different IP family (dual stack)", text)
            continue
        families.add(family)
        ips.append(ip)
    return ips, False


def _service_port(
    raw: object, path: FieldPath, stype: ServiceType | None, errs: _Errors, named: bool
) -> ServicePort | None:
    body = _map(raw, path, errs)
    name = _port_name(body.get("name"), path.child("name"), errs)
    if named and body.get("name") in (None, ""):
        errs.add(path.child("name"), "is required when there is more than one port")
    port = _port_number(body.get("port"), path.child("port"), errs) if "port" in body else None
    if "port" not in body:
        errs.add(path.child("port"), "is required")
    protocol = _protocol(body.get("protocol"), path.child("protocol"), errs)
    target_raw = body.get("targetPort")
    target: int | str | None
    if target_raw is None or target_raw == 0:
        target = port
    elif isinstance(target_raw, str) and not target_raw.isdigit():
        problem = service_name_problem(target_raw)
        if problem:
            errs.add(path.child("targetPort"), problem, target_raw)
        target = target_raw
    else:
        number = int(target_raw) if isinstance(target_raw, str) else target_raw
        target = _port_number(number, path.child("targetPort"), errs)
    node_port = None
    if body.get("nodePort") not in (None, 0):
        node_port = _port_number(body.get("nodePort"), path.child("nodePort"), errs)
        if stype is not None and stype not in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER):
            errs.add(path.child("nodePort"), f"may not be used when `type` is '{stype.value}'", node_port)
    if port is None:
        return None
    return ServicePort(port, protocol, name, target, node_port)


def parse_service(doc: Mapping[str, Any]) -> Service:
    errs = _Errors()
    namespace, name, meta = _metadata(doc, errs, namespaced=True, name_re=_DNS_LABEL)
    _labels(meta.get("labels"), FieldPath("metadata").child("labels"), errs)
    spec_path = FieldPath("spec")
    spec = _map(doc.get("spec"), spec_path, errs)
    stype: ServiceType = _enum(
        spec.get("type"), _TYPES, ServiceType.CLUSTER_IP, spec_path.child("type"), errs
    )
    type_ok = spec.get("type") in (None, "", *_TYPES)  # else only the type is reported
    cluster_ips, headless = _cluster_ips(spec, spec_path, errs)
    if stype is ServiceType.EXTERNAL_NAME:
        cluster_ips, headless = [], False
    ports_path = spec_path.child("ports")
    raw_ports = _list(spec.get("ports"), ports_path, errs)
    if not raw_ports and not headless and stype is not ServiceType.EXTERNAL_NAME:
        errs.add(ports_path, "is required (unless `clusterIP` is 'None' or `type` is 'ExternalName')")
    ports: list[ServicePort] = []
    for i, item in enumerate(raw_ports):
        sp = _service_port(item, ports_path.index(i), stype if type_ok else None, errs, len(raw_ports) > 1)
        if sp is None:
            continue
        if sp.name and any(p.name == sp.name for p in ports):
            errs.add(ports_path.index(i).child("name"), "must be unique", sp.name)
        if any((p.port, p.protocol) == (sp.port, sp.protocol) for p in ports):
            errs.add(ports_path.index(i), f"duplicate `port` and `protocol` {sp.port}/{sp.protocol}")
        ports.append(sp)
    selector = None
    if spec.get("selector") is not None:
        selector = _labels(spec.get("selector"), spec_path.child("selector"), errs)
    external_ips = _addresses(spec.get("externalIPs"), spec_path.child("externalIPs"), errs)
    external = stype in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER) or bool(external_ips)
    etp_raw = spec.get("externalTrafficPolicy")
    etp = _enum(etp_raw, _POLICIES, TrafficPolicy.CLUSTER, spec_path.child("externalTrafficPolicy"), errs)
    if etp_raw not in (None, "") and not external and type_ok:
        errs.add(
            spec_path.child("externalTrafficPolicy"),
            "may only be set for an externally reachable Service (NodePort, LoadBalancer or externalIPs)",
            etp_raw,
        )
    itp = _enum(
        spec.get("internalTrafficPolicy"),
        _POLICIES,
        TrafficPolicy.CLUSTER,
        spec_path.child("internalTrafficPolicy"),
        errs,
    )
    status_path = FieldPath("status").child("loadBalancer").child("ingress")
    lb = _map(
        _map(doc.get("status"), FieldPath("status"), errs).get("loadBalancer"),
        FieldPath("status").child("loadBalancer"),
        errs,
    )
    lb_ips: list[str] = []
    for i, item in enumerate(_list(lb.get("ingress"), status_path, errs)):
        entry = _map(item, status_path.index(i), errs)
        if entry.get("ip") not in (None, ""):  # a hostname-only ingress has no address to decide
            ip = _ip(entry.get("ip"), status_path.index(i).child("ip"), errs)
            if ip is not None and ip not in lb_ips:
                lb_ips.append(ip)
    if errs.items:
        raise ValidationError(_ref("Service", namespace, name), errs.items)
    return Service(
        namespace,
        name,
        stype,
        tuple(cluster_ips),
        headless,
        tuple(ports),
        selector,
        tuple(external_ips),
        tuple(lb_ips),
        etp,
        itp,
    )


def _condition(body: Mapping[str, Any], key: str, default: bool, path: FieldPath, errs: _Errors) -> bool:
    raw = body.get(key)
    if raw is None:
        return default
    if not isinstance(raw, bool):
        errs.add(path.child(key), "must be a boolean", raw)
        return default
    return raw


def _version(ip: str) -> int:
    """The IP version of an address ``_ip`` returned: its text is canonical, and only IPv6 text
    has a ``:``, so the address is parsed once (a slice's addresses are the feed's hot spot)."""
    return 6 if ":" in ip else 4


def _slice_endpoint(raw: object, path: FieldPath, family: str, errs: _Errors) -> SliceEndpoint | None:
    body = _map(raw, path, errs)
    apath = path.child("addresses")
    raw_addresses = _list(body.get("addresses"), apath, errs)
    if not raw_addresses:
        errs.add(apath, "must hold at least one address")
    elif len(raw_addresses) > MAX_ENDPOINT_ADDRESSES:
        errs.add(apath, f"may hold at most {MAX_ENDPOINT_ADDRESSES} addresses", len(raw_addresses))
    addresses: list[str] = []
    for i, text in enumerate(raw_addresses[:MAX_ENDPOINT_ADDRESSES]):
        if family == "FQDN":
            if not isinstance(text, str) or len(text) > 253 or not _DNS_SUBDOMAIN.match(text):
                errs.add(apath.index(i), "must be a DNS subdomain (addressType FQDN)", text)
            continue  # an FQDN endpoint has no address to decide
        ip = _ip(text, apath.index(i), errs)
        if ip is None:
            continue
        if f"IPv{_version(ip)}" != family:
            errs.add(apath.index(i), f"must be an {family} address (`addressType`)", text)
            continue
        if ip not in addresses:
            addresses.append(ip)
    cpath = path.child("conditions")
    conditions = _map(body.get("conditions"), cpath, errs)
    ready = _condition(conditions, "ready", True, cpath, errs)
    serving = _condition(conditions, "serving", ready, cpath, errs)
    terminating = _condition(conditions, "terminating", False, cpath, errs)
    node_name = body.get("nodeName")
    if node_name is not None and not isinstance(node_name, str):
        errs.add(path.child("nodeName"), "must be a string", node_name)
        node_name = None
    hostname = body.get("hostname")
    if hostname is not None and (not isinstance(hostname, str) or not _DNS_LABEL.match(hostname)):
        errs.add(path.child("hostname"), "must be a lower-case DNS label", hostname)
        hostname = None
    target = None
    if body.get("targetRef") is not None:
        ref = _map(body.get("targetRef"), path.child("targetRef"), errs)
        kind, ns, name = ref.get("kind"), ref.get("namespace"), ref.get("name")
        if not isinstance(name, str) or not name:
            errs.add(path.child("targetRef").child("name"), "is required")
        else:
            label = kind if isinstance(kind, str) and kind else "object"
            target = f"{label} {ns}/{name}" if isinstance(ns, str) and ns else f"{label} {name}"
    return SliceEndpoint(tuple(addresses), ready, serving, terminating, node_name, target, hostname)


def parse_endpoint_slice(doc: Mapping[str, Any]) -> EndpointSlice:
    errs = _Errors()
    namespace, name, meta = _metadata(doc, errs, namespaced=True, name_re=_DNS_SUBDOMAIN)
    labels = _labels(meta.get("labels"), FieldPath("metadata").child("labels"), errs)
    family = doc.get("addressType")
    if family is None:
        errs.add(FieldPath("addressType"), "is required")
        family = "IPv4"
    elif family not in _ADDRESS_TYPES:
        errs.add(FieldPath("addressType"), "must be one of `IPv4`, `IPv6`, `FQDN`", family)
        family = "IPv4"
    epath = FieldPath("endpoints")
    raw_endpoints = _list(doc.get("endpoints"), epath, errs)
    if len(raw_endpoints) > MAX_SLICE_ENDPOINTS:
        errs.add(epath, f"may hold at most {MAX_SLICE_ENDPOINTS} endpoints", len(raw_endpoints))
    endpoints = [
        ep
        for i, item in enumerate(raw_endpoints[:MAX_SLICE_ENDPOINTS])
        if (ep := _slice_endpoint(item, epath.index(i), family, errs)) is not None
    ]
    ppath = FieldPath("ports")
    raw_ports = _list(doc.get("ports"), ppath, errs)
    if len(raw_ports) > MAX_SLICE_PORTS:
        errs.add(ppath, f"may hold at most {MAX_SLICE_PORTS} ports", len(raw_ports))
    ports: list[SlicePort] = []
    for i, item in enumerate(raw_ports[:MAX_SLICE_PORTS]):
        body = _map(item, ppath.index(i), errs)
        pname = _port_name(body.get("name"), ppath.index(i).child("name"), errs)
        if any(p.name == pname for p in ports):
            errs.add(ppath.index(i).child("name"), "must be unique", pname)
        protocol = _protocol(body.get("protocol"), ppath.index(i).child("protocol"), errs)
        number = None
        if body.get("port") is not None:
            number = _port_number(body.get("port"), ppath.index(i).child("port"), errs)
        ports.append(SlicePort(pname, protocol, number))
    if errs.items:
        raise ValidationError(_ref("EndpointSlice", namespace, name), errs.items)
    return EndpointSlice(
        namespace, name, family, labels.get(SERVICE_NAME_LABEL), tuple(endpoints), tuple(ports)
    )
