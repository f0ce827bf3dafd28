"""Policy expectations: "this should connect, that should not", checked offline against the index.

An expectations file (YAML) is a list -- or ``{expectations: [...]}`` -- of::

    - name: web reaches the api            # optional; a name is made from the ends otherwise
      from: {namespace: frontend, labels: {app: web}}
      to:   {namespace: backend, pod: api-5b7f9-4hq2c}
      port: http                           # a number, or a container port name of the destination
      protocol: TCP                        # default TCP
      expect: allow                        # allow | deny

An end is a pod (``namespace`` + ``pod``, or the text ``NAMESPACE/NAME``), a node
(``node/NAME``), the pods of a namespace matching ``labels`` (or every pod of the
``namespace``), an ``ip`` (or the address as text), or a ``cidr``.  With ``test
--server`` (:func:`check_remote`) every expectation is one flow by name, resolved
by the server; ends by labels need the manifests and are an ERROR there.  An
expectation holds when **every** concrete flow it stands for -- each source pod
to each destination pod -- gets the expected verdict; one that selects no pod
fails (a vacuous pass would hide a typo).  A pod is reached at its first
address of the other end's IP family (its first address otherwise); a CIDR
stands for its first host address.  Named ports resolve per destination pod,
as NetworkPolicy resolves them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netpol_pdp.index.decision import Decision, Verdict
from netpol_pdp.index.documents import DocumentError, yaml_document
from netpol_pdp.index.ends import FlowByName, headless_source, resolve
from netpol_pdp.index.errors import FlowError, NetpolPdpError
from netpol_pdp.index.flows import Flow, canonical_ip, make_flow, normalize_protocol
from netpol_pdp.index.generation import Generation
from netpol_pdp.index.model import PORT_PROTOCOLS, Kind, Object, ObjectKey, Pod

END_KEYS = frozenset({"namespace", "pod", "labels", "ip", "cidr"})
CASE_KEYS = frozenset({"name", "from", "to", "port", "protocol", "expect"})


class ExpectationError(NetpolPdpError):
    """The expectations file is malformed; ``problems`` name the entry and field each."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class End:
    """One side of an expectation, as written."""

    namespace: str | None = None
    pod: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None
    #: an end written as text: ``NAMESPACE/NAME`` (a pod), ``node/NAME`` (index/ends.py)
    name: str | None = None

    def __str__(self) -> str:
        if self.name is not None:
            return self.name
        if self.ip is not None:
            return self.ip
        if self.pod is not None:
            return f"{self.namespace}/{self.pod}"
        shown = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.namespace} {shown}" if shown else f"{self.namespace} (every pod)"


@dataclass(frozen=True, slots=True)
class Expectation:
    index: int
    name: str
    src: End
    dst: End
    protocol: str
    port: int | str | None
    expect: Verdict


@dataclass(frozen=True, slots=True)
class Checked:
    """One concrete flow of an expectation and what the index said."""

    flow: Flow | FlowByName  # by name: checked by a server, which resolved it
    src: str
    dst: str
    decision: Decision | None
    problem: str | None = None  # why no flow could be made (a named port the pod lacks, ...)


@dataclass(slots=True)
class Result:
    expectation: Expectation
    checked: list[Checked] = field(default_factory=list)
    problem: str | None = None  # why it could not be checked at all

    @property
    def wrong(self) -> list[Checked]:
        exp = self.expectation.expect
        return [c for c in self.checked if c.decision is None or c.decision.verdict is not exp]

    @property
    def passed(self) -> bool:
        return self.problem is None and bool(self.checked) and not self.wrong


# --- parsing --------------------------------------------------------------------------------


def _end(raw: object, where: str, problems: list[str]) -> End | None:
    if isinstance(raw, str) and raw.strip():
        text = raw.strip()
        ip = canonical_ip(text)
        return End(ip=ip) if ip is not None else End(name=text)
    if not isinstance(raw, Mapping):
        problems.append(
            f"{where}: must be NAMESPACE/NAME, node/NAME, an IP, or a mapping with namespace/pod/labels, "
            "ip or cidr"
        )
        return None
    unknown = sorted(set(raw) - END_KEYS)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(unknown)}")
        return None
    if "ip" in raw or "cidr" in raw:
        if len(raw) != 1:
            problems.append(f"{where}: `ip` or `cidr` stands alone (no namespace, pod or labels beside it)")
            return None
        if "ip" in raw:
            try:
                return End(ip=str(ipaddress.ip_address(str(raw["ip"]))))
            except ValueError:
                problems.append(f"{where}.ip: must be an IPv4 or IPv6 address (got {raw['ip']!r})")
                return None
        try:
            net = ipaddress.ip_network(str(raw["cidr"]), strict=False)
        except ValueError:
            problems.append(f"{where}.cidr: must be a CIDR (got {raw['cidr']!r})")
            return None
        host = net.network_address if net.num_addresses == 1 else net.network_address + 1
        return End(ip=str(host))
    namespace = raw.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        problems.append(f"{where}.namespace: is required (with pod or labels), unless ip or cidr is given")
        return None
    if "pod" in raw and "labels" in raw:
        problems.append(f"{where}: give `pod` or `labels`, not both")
        return None
    pod = raw.get("pod")
    if pod is not None and (not isinstance(pod, str) or not pod):
        problems.append(f"{where}.pod: must be a pod name")
        return None
    labels = raw.get("labels", {})
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int | bool) for k, v in labels.items()
    ):
        problems.append(f"{where}.labels: must map label keys to values")
        return None
    text_labels = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in labels.items()}
    return End(namespace=namespace, pod=pod, labels=text_labels)


def parse_expectations(doc: object, path: str) -> list[Expectation]:
    """Every expectation of a loaded YAML document; raises :class:`ExpectationError` listing every problem."""
    if isinstance(doc, Mapping) and "expectations" in doc:
        doc = doc["expectations"]
    if not isinstance(doc, list) or not doc:
        raise ExpectationError(
            path, ["must be a non-empty list of expectations (or `expectations:` holding one)"]
        )
    problems: list[str] = []
    out: list[Expectation] = []
    for i, raw in enumerate(doc):
        where = f"expectations[{i}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be a mapping")
            continue
        before = len(problems)
        unknown = sorted(set(raw) - CASE_KEYS)
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(unknown)}")
        for key in ("from", "to", "expect"):
            if key not in raw:
                problems.append(f"{where}.{key}: is required")
        src = _end(raw.get("from"), f"{where}.from", problems) if "from" in raw else None
        dst = _end(raw.get("to"), f"{where}.to", problems) if "to" in raw else None
        expect = str(raw.get("expect", "")).strip().upper()
        if "expect" in raw and expect not in ("ALLOW", "DENY"):
            problems.append(f"{where}.expect: must be allow or deny (got {raw['expect']!r})")
        try:
            protocol = normalize_protocol(raw.get("protocol", "TCP"))
        except FlowError as err:
            problems.append(f"{where}.protocol: {err.message}")
            protocol = "TCP"
        port = raw.get("port")
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or (port is not None and not isinstance(port, int | str)):
            problems.append(f"{where}.port: must be a port number or a container port name")
        elif isinstance(port, str) and dst is not None and dst.ip is not None and dst.name is None:
            problems.append(f"{where}.port: a named port needs a pod destination (`to` is an address)")
        elif port is None and protocol in PORT_PROTOCOLS:
            problems.append(f"{where}.port: is required for {protocol}")
        elif isinstance(port, int) and not 1 <= port <= 65535:
            problems.append(f"{where}.port: must be between 1 and 65535 (got {port})")
        if len(problems) > before or src is None or dst is None:
            continue
        name = raw.get("name")
        if name is None:
            name = f"{src} -> {dst} {protocol}/{port if port is not None else '*'} {expect.lower()}"
        out.append(Expectation(i, str(name), src, dst, protocol, port, Verdict(expect)))
    if problems:
        raise ExpectationError(path, problems)
    return out


def load_expectations(path: str) -> list[Expectation]:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as err:
        raise ExpectationError(path, [str(err.strerror or err)]) from None
    except UnicodeDecodeError as err:
        raise ExpectationError(path, [f"not UTF-8 text (byte offset {err.start})"]) from None
    try:
        doc = yaml_document(text)
    except DocumentError as err:  # worded as `validate` words a manifest's: one located line
        raise ExpectationError(path, [err.located(path).removeprefix(f"{path}: ")]) from None
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError) as err:
        # PyYAML's constructors raise these on values that parse but do not convert (an empty
        # ``!!int``, the date ``2024-13-45``, an integer of 5,000 digits): still a bad file.
        raise ExpectationError(
            path, [f"invalid YAML: a value cannot be read ({type(err).__name__}: {err})"]
        ) from None
    return parse_expectations(doc, path)


# --- checking -------------------------------------------------------------------------------


def _family(ip: str) -> int:
    return ipaddress.ip_address(ip).version


def _pick(ips: Sequence[str], family: int | None) -> str:
    for ip in ips:
        if family is None or _family(ip) == family:
            return ip
    return ips[0]


class World:
    """The live pods of a loaded world, for expanding ends into pods; ``gen`` (the index's
    generation, when given) resolves ends written as names (index/ends.py)."""

    def __init__(self, objects: Mapping[ObjectKey, Object], gen: Generation | None = None) -> None:
        self.gen = gen
        self.pods = [
            obj
            for key, obj in sorted(objects.items(), key=lambda kv: (kv[0][1], kv[0][2]))
            if key[0] is Kind.POD and isinstance(obj, Pod) and obj.live and not obj.host_network
        ]

    def select(self, end: End) -> list[Pod]:
        return [
            p
            for p in self.pods
            if p.namespace == end.namespace
            and (end.pod is None or p.name == end.pod)
            and all(p.labels.get(k) == v for k, v in end.labels.items())
        ]


def _port_of(pod: Pod | None, exp: Expectation) -> int | str | None:
    """The numeric port for this destination, or a problem text."""
    if not isinstance(exp.port, str):
        return exp.port
    if pod is not None:
        for cp in pod.ports:
            if cp.name == exp.port and cp.protocol == exp.protocol:
                return cp.port
    return None


def _addresses(src_ips: Sequence[str], dst_ips: Sequence[str]) -> tuple[str, str]:
    """Source and destination addresses, a pod's chosen in the other end's IP family
    (a single address -- an ``ip`` end -- fixes the family)."""
    if len(dst_ips) == 1 and len(src_ips) > 1:
        return _pick(src_ips, _family(dst_ips[0])), dst_ips[0]
    return src_ips[0], _pick(dst_ips, _family(src_ips[0]))


#: (name, pod, addresses, how a Service maps the asked port) of one concrete end
_End = tuple[str, Pod | None, tuple[str, ...], Callable[[int | str, str], int] | None]


def _ends(world: World, end: End, where: str) -> list[_End]:
    """The concrete ends of ``end``; a name that does not resolve raises FlowError.  A headless
    Service's address is its name ``svc/NAMESPACE/NAME`` (docs/services.md)."""
    if end.name is not None:
        if world.gen is None:
            raise FlowError(where, f"{end.name}: names are resolved by an index (give --source)")
        resolved = resolve(world.gen, end.name, where)
        if resolved.headless is not None and where == "from":
            raise FlowError(where, headless_source(end.name))
        addresses = (resolved.headless,) if resolved.headless is not None else resolved.addresses
        return [(end.name, resolved.pod, addresses, resolved.port_for)]
    if end.ip is not None:
        return [(end.ip, None, (end.ip,), None)]
    return [(f"{p.namespace}/{p.name}", p, p.ips, None) for p in world.select(end)]


def check(
    expectations: Sequence[Expectation], world: World, decide: Callable[[Flow], Decision]
) -> list[Result]:
    """Each expectation expanded into its concrete flows and decided."""
    results: list[Result] = []
    for exp in expectations:
        result = Result(exp)
        results.append(result)
        try:
            srcs, dsts = _ends(world, exp.src, "from"), _ends(world, exp.dst, "to")
        except FlowError as err:
            result.problem = f"`{err.field}`: {err.message}"
            continue
        empty = [
            f"`{side}` ({end}) selects no live pod"
            for side, end, ends in (("from", exp.src, srcs), ("to", exp.dst, dsts))
            if not ends
        ]
        if empty:
            result.problem = "; ".join(empty)
            continue
        for src_name, _src_pod, src_ips, _ in srcs:
            for dst_name, dst_pod, dst_ips, port_for in dsts:
                headless = dst_ips[0].startswith("svc/")
                src_ip, dst_ip = (src_ips[0], dst_ips[0]) if headless else _addresses(src_ips, dst_ips)
                if port_for is not None and exp.port is not None:  # a Service port, by number or name
                    try:
                        port: int | str | None = port_for(exp.port, exp.protocol)
                    except FlowError as err:
                        result.problem = f"port: {err.message}"
                        break
                else:
                    port = _port_of(dst_pod, exp)
                if port is None and isinstance(exp.port, str):
                    missing = f"{dst_name} has no {exp.protocol} container port named {exp.port!r}"
                    flow = Flow(src_ip, dst_ip, exp.protocol, 0)
                    result.checked.append(Checked(flow, src_name, dst_name, None, missing))
                    continue
                try:
                    flow = make_flow(src_ip, src_ip if headless else dst_ip, exp.protocol, port)
                    flow = flow._replace(dst_ip=dst_ip)
                except FlowError as err:
                    result.problem = f"port: {err.message}"
                    break
                result.checked.append(Checked(flow, src_name, dst_name, decide(flow)))
            if result.problem:
                break
    return results


def check_remote(
    expectations: Sequence[Expectation], decide: Callable[[FlowByName], Decision | FlowError]
) -> list[Result]:
    """Each expectation as ONE flow by name, decided by a server (``test --server``).

    Ends must be concrete: a name (``NAMESPACE/NAME``, ``node/NAME``, ``{namespace, pod}``)
    or an address; the server resolves the names at its generation.  An end that selects
    pods by labels needs the manifests, so it is an ERROR here.
    """
    results: list[Result] = []
    for exp in expectations:
        result = Result(exp)
        results.append(result)
        texts: list[str] = []
        for side, end in (("from", exp.src), ("to", exp.dst)):
            if end.name is not None or end.ip is not None:
                texts.append(end.name or end.ip or "")
            elif end.pod is not None:
                texts.append(f"{end.namespace}/{end.pod}")
            else:
                result.problem = (
                    f"`{side}` ({end}) selects pods by labels, which needs the manifests: give the pod "
                    "as NAMESPACE/NAME, or check with --source"
                )
                break
        if result.problem is not None:
            continue
        port_name = exp.port if isinstance(exp.port, str) else ""
        number = exp.port if isinstance(exp.port, int) else 0
        asked = FlowByName(texts[0], texts[1], exp.protocol, number, port_name)
        decision = decide(asked)
        if isinstance(decision, FlowError):
            result.problem = f"`{decision.field}`: {decision.message}"
            continue
        result.checked.append(Checked(asked, texts[0], texts[1], decision))
    return results
