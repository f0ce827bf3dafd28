"""Flow ends given as text -- ``NAMESPACE/NAME``, ``node/NAME``, an IP -- resolved to addresses.

A person asks about ``shop/frontend-0`` talking to ``shop/web-1``, not about two
addresses; the engine decides addresses.  This module turns the one into the
other at ONE :class:`~netpol_pdp.index.generation.Generation` -- the decision's --
so that the pod a name resolves to is the pod the decision then sees.

The forms (the first segment dispatches, :data:`RESOLVERS`):

- ``IP`` (no ``/``): the address itself, canonical (``::ffff:10.0.0.1`` is ``10.0.0.1``);
- ``node/NAME``: the Node's addresses (InternalIP/ExternalIP, as the feed keeps them);
- ``svc/NAMESPACE/NAME``: a Service's cluster IPs, the port a Service port (number
  or name): the flow is then decided through the Service (docs/services.md); a
  headless Service has no address: the flow's destination is the text
  ``svc/NAMESPACE/NAME`` itself, which the engine decides on the Service's ready
  endpoints of the source's family (docs/services.md, "Headless Services by name");
- ``NAMESPACE/NAME``: the pod's addresses (``status.podIPs``).

Errors are :class:`~netpol_pdp.index.errors.FlowError` naming the field the end
came in (``src_name``, ``dst_name``, ``dst_port_name``) and the object: an
unknown pod or node, a pod without an IP yet, a pod that finished (Succeeded /
Failed: it takes no part), a node without addresses.

Choices (docs/queries.md, "Decisions by name"):

- **Dual stack.** A pod or node with addresses of both families gives the one
  matching the other end's family.  When both ends have both families, the
  source's first listed address (``podIPs[0]``, the pod's primary family) picks
  the family.  Ends with no family in common are an error naming both.
- **Named port.** ``dst_port_name`` is a container port name of the destination
  pod, looked up with the flow's protocol; the flow then carries that port's
  number.  A destination that is no pod has no named ports: an error.
- A hostNetwork pod resolves to its IP, which is its node's: the decision then
  names the node (docs/semantics.md R4), as it would for the address.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeAlias

from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow, canonical_ip, normalize_port, normalize_protocol
from netpol_pdp.index.generation import Entry, PodEntry
from netpol_pdp.index.model import PORT_PROTOCOLS, Kind, Node, Object, ObjectKey, Pod, Service

#: The longest end text read: ``NAMESPACE/NAME`` is two 253-character DNS names
#: at most (a pod name is a DNS subdomain); longer text is refused unparsed.
MAX_NAME_CHARS = 520


class World(Protocol):
    """What resolution reads: one generation's objects by key and its address map."""

    def object(self, key: ObjectKey) -> Object | None: ...

    def entry(self, ip: str) -> Entry | None: ...


@dataclass(frozen=True, slots=True)
class Resolved:
    """One end: the text asked, what it named (``Pod ns/name``, ``Node n``, None for an
    IP), its addresses in their listed order, and the pod when it is one."""

    text: str
    ref: str | None
    addresses: tuple[str, ...]
    pod: Pod | None = None
    #: how a destination maps the asked port (a number, or a name) and protocol to the port
    #: the packet reaches, raising FlowError when it has none (a Service: its targetPort);
    #: None: a number is the packet's port and a name is the pod's container port
    port_for: Callable[[int | str, str], int] | None = None
    #: a headless Service: the flow's destination, ``svc/NAMESPACE/NAME`` (it has no address)
    headless: str | None = None


#: prefix -> resolver of the rest of the text (after ``prefix/``).  A resolver
#: gets the world, the rest of the text, the whole text and the field name.
Resolver = Callable[[World, str, str, str], Resolved]


def _node(world: World, rest: str, text: str, field: str) -> Resolved:
    if not rest or "/" in rest:
        raise FlowError(field, f"{text!r}: a node is given as node/NAME")
    node = world.object((Kind.NODE, "", rest))
    if not isinstance(node, Node):
        raise FlowError(field, f"node {rest} is not known")
    addresses = tuple(a for a in (canonical_ip(x) for x in node.addresses) if a is not None)
    if not addresses:
        raise FlowError(field, f"node {rest} has no InternalIP or ExternalIP address")
    return Resolved(text, node.ref, addresses)


def _service(world: World, rest: str, text: str, field: str) -> Resolved:
    """``svc/NAMESPACE/NAME``: the Service's cluster IPs, so that the flow is decided through
    the Service (docs/services.md); the port asked is a Service port, by number or name."""
    namespace, _, name = rest.partition("/")
    if not namespace or not name or "/" in name:
        raise FlowError(field, f"{text!r}: a Service is given as svc/NAMESPACE/NAME")
    svc = world.object((Kind.SERVICE, namespace, name))
    if not isinstance(svc, Service):
        raise FlowError(field, f"Service {namespace}/{name} is not known")
    if not svc.cluster_ips and not svc.headless:
        raise FlowError(field, f"Service {namespace}/{name} has no cluster IP (spec.clusterIP is unset)")

    def port_for(asked: int | str, protocol: str) -> int:
        if svc.headless and not svc.ports:  # DNS A records without SRV: the port is the client's
            if isinstance(asked, str):
                raise FlowError(
                    "dst_port_name",
                    f"Service {namespace}/{name} is headless without ports: give a port number",
                )
            return asked
        for sp in svc.ports:
            if sp.protocol == protocol and (sp.name == asked if isinstance(asked, str) else sp.port == asked):
                return sp.port
        known = ", ".join(f"{sp.name + ' ' if sp.name else ''}{sp.port}/{sp.protocol}" for sp in svc.ports)
        raise FlowError(
            "dst_port_name" if isinstance(asked, str) else "dst_port",
            f"Service {namespace}/{name} has no port {asked!r} for {protocol} (ports: {known or 'none'})",
        )

    if svc.headless:
        return Resolved(text, svc.ref, (), None, port_for, f"svc/{namespace}/{name}")
    return Resolved(text, svc.ref, svc.cluster_ips, None, port_for)


def headless_source(text: str) -> str:
    """The refusal of a headless Service as a flow's source."""
    return f"{text}: a headless Service has no address to send from; name one of its pods (NAMESPACE/NAME)"


def _pod(world: World, text: str, field: str) -> Resolved:
    namespace, _, name = text.partition("/")
    if not namespace or not name or "/" in name:
        raise FlowError(
            field, f"{text!r}: must be an IP, NAMESPACE/NAME (a pod), node/NAME or svc/NAMESPACE/NAME"
        )
    pod = world.object((Kind.POD, namespace, name))
    if not isinstance(pod, Pod):
        raise FlowError(field, f"pod {namespace}/{name} is not known")
    if pod.phase in ("Succeeded", "Failed"):
        raise FlowError(field, f"pod {namespace}/{name} is {pod.phase}: it takes no part in traffic")
    addresses = pod.ips  # normalised by validation (index/model.py)
    if not addresses:
        raise FlowError(field, f"pod {namespace}/{name} has no IP yet (status.podIPs is empty)")
    return Resolved(text, pod.ref, addresses, pod)


#: The prefixed forms.
RESOLVERS: dict[str, Resolver] = {"node": _node, "svc": _service}


def resolve(world: World, text: str, field: str) -> Resolved:
    """The end ``text`` at ``world``; raises :class:`FlowError` naming ``field``."""
    if not isinstance(text, str):
        raise FlowError(field, f"must be text (got {type(text).__name__})")
    text = text.strip()
    if not text:
        raise FlowError(field, "must not be empty")
    if len(text) > MAX_NAME_CHARS:
        raise FlowError(field, f"is longer than {MAX_NAME_CHARS} characters ({len(text)})")
    if "/" not in text:
        ip = canonical_ip(text)
        if ip is None:
            raise FlowError(
                field, f"{text!r}: must be an IP, NAMESPACE/NAME (a pod), node/NAME or svc/NAMESPACE/NAME"
            )
        entry = world.entry(ip)
        if type(entry) is PodEntry:  # an address of a pod: its named ports are known too
            namespace, _, name = entry.name.partition("/")
            pod = world.object((Kind.POD, namespace, name))
            if isinstance(pod, Pod):
                return Resolved(text, pod.ref, (ip,), pod)
        return Resolved(text, None, (ip,))
    prefix, _, rest = text.partition("/")
    resolver = RESOLVERS.get(prefix)
    if resolver is not None:
        return resolver(world, rest, text, field)
    return _pod(world, text, field)


def _family(ip: str) -> int:
    return 6 if ":" in ip else 4


def pick_pair(src: Resolved, dst: Resolved, src_field: str, dst_field: str) -> tuple[str, str]:
    """The (source, destination) addresses of one family: the first source address
    (in listed order) with a destination address of its family, and that address."""
    for s in src.addresses:
        for d in dst.addresses:
            if _family(s) == _family(d):
                return s, d
    families = "/".join(f"IPv{f}" for f in sorted({_family(a) for a in src.addresses}))
    other = "/".join(f"IPv{f}" for f in sorted({_family(a) for a in dst.addresses}))
    raise FlowError(
        dst_field,
        f"{dst.text} has only {other} addresses and {src.text} ({src_field}) only {families}: "
        "no address family in common",
    )


def named_port(dst: Resolved, port_name: str, protocol: str, field: str = "dst_port_name") -> int:
    """The number of the destination pod's container port ``port_name`` of ``protocol``."""
    if dst.pod is None:
        raise FlowError(field, f"{port_name!r}: a named port needs a pod destination ({dst.text} is no pod)")
    numbers = sorted({p.port for p in dst.pod.ports if p.name == port_name and p.protocol == protocol})
    if not numbers:
        names = sorted({f"{p.name}/{p.protocol}" for p in dst.pod.ports if p.name})
        known = ", ".join(names) if names else "none"
        raise FlowError(
            field,
            f"pod {dst.pod.namespace}/{dst.pod.name} has no container port named {port_name!r} "
            f"for {protocol} (named ports: {known})",
        )
    return numbers[0]


class FlowByName(NamedTuple):
    """A flow as a caller asks it when an end is a name: each end is text (a name or an IP),
    the port a number or (``dst_port_name``) a container port name of the destination.
    Resolved by :func:`resolve_flow` (the server's, or a local index's) at one generation."""

    src: str
    dst: str
    protocol: str = "TCP"
    dst_port: int = 0
    dst_port_name: str = ""


#: What a caller may ask about: a flow of addresses, or one whose ends may be names.
Asked: TypeAlias = Flow | FlowByName


def is_name(text: str) -> bool:
    """Whether an end's text is a name (anything but an IP address)."""
    return canonical_ip(text) is None


def flow_by_name(
    src: str, dst: str, protocol: object = "TCP", dst_port: object = None, dst_port_name: str = ""
) -> FlowByName:
    """A :class:`FlowByName`, its protocol and port checked (the names are checked when resolved)."""
    proto = normalize_protocol("TCP" if protocol is None else protocol)
    if dst_port_name:
        if dst_port not in (None, 0):
            raise FlowError("dst_port_name", "give a port number or a port name, not both")
        return FlowByName(src, dst, proto, 0, dst_port_name)
    return FlowByName(src, dst, proto, normalize_port(dst_port, proto))


@dataclass(frozen=True, slots=True)
class ResolvedFlow:
    """A flow as asked, by name or address, and the flow it resolved to."""

    src: Resolved
    dst: Resolved
    flow: Flow


def resolve_flow(
    world: World,
    src: str,
    dst: str,
    protocol: object = "TCP",
    dst_port: object = None,
    dst_port_name: str | None = None,
    fields: Sequence[str] = ("src_name", "dst_name", "dst_port_name"),
) -> ResolvedFlow:
    """Both ends resolved at ``world`` and the flow between them (``dst_port`` XOR ``dst_port_name``).

    ``fields`` names the two ends and the port name in errors (the CLI passes its options).
    """
    src_field, dst_field, port_field = fields
    proto = normalize_protocol("TCP" if protocol is None else protocol)
    s = resolve(world, src, src_field)
    if s.headless is not None:
        raise FlowError(src_field, headless_source(s.text))
    d = resolve(world, dst, dst_field)
    if d.headless is not None:  # no address: the source's first, whose family picks the endpoints
        s_ip, d_ip = s.addresses[0], d.headless
    else:
        s_ip, d_ip = pick_pair(s, d, src_field, dst_field)
    if d.port_for is not None:
        if dst_port_name and dst_port not in (None, 0):
            raise FlowError(port_field, "give a port number or a port name, not both")
        asked = dst_port_name or normalize_port(dst_port, proto)
        try:
            port = d.port_for(asked, proto)
        except FlowError as err:  # named by the caller's own port field (the CLI's ``--port``)
            if port_field == "dst_port_name":
                raise
            raise FlowError(port_field, err.message) from None
    elif dst_port_name:
        if dst_port not in (None, 0):
            raise FlowError(port_field, "give a port number or a port name, not both")
        if proto not in PORT_PROTOCOLS:
            raise FlowError(port_field, f"{proto} has no ports; only TCP, UDP and SCTP name ports")
        port = named_port(d, dst_port_name, proto, port_field)
    else:
        port = normalize_port(dst_port, proto)
    return ResolvedFlow(s, d, Flow(s_ip, d_ip, proto, port))


def resolve_asked(world: World, asked: FlowByName, fields: Sequence[str] | None = None) -> ResolvedFlow:
    """:func:`resolve_flow` of a :class:`FlowByName`; errors name ``src_name``, ``dst_name``,
    ``dst_port_name`` (or ``src_ip``/``dst_ip`` for an address end), else ``fields``."""
    if fields is None:
        fields = (
            "src_name" if is_name(asked.src) else "src_ip",
            "dst_name" if is_name(asked.dst) else "dst_ip",
            "dst_port_name",
        )
    return resolve_flow(
        world,
        asked.src,
        asked.dst,
        asked.protocol,
        asked.dst_port or None,
        asked.dst_port_name or None,
        fields,
    )
