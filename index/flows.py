"""Flows: what is asked, and how raw input becomes one.

A :class:`Flow` is a plain named tuple so that it is cheap to build, hashable
(the decision cache and flow-log deduplication key on it) and normalised: IPs in
``ipaddress``'s canonical text, protocol upper case.  Build flows from untrusted
input with :func:`parse_flow`, which names the bad field in a :class:`FlowError`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.model import PORT_PROTOCOLS

#: IANA numbers of the named protocols, and the other IP protocols a flow may
#: name besides TCP/UDP/SCTP.  A flow of another protocol is matched only by
#: port-less rules (SEMANTICS.md choice).
IANA_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPV6", 132: "SCTP"}
OTHER_PROTOCOLS = frozenset({"ICMP", "ICMPV6", "GRE", "ESP", "AH", "IGMP"})


#: The most digits a number read from text may have: far above any port, protocol
#: or epoch second, far below Python's 4,300-digit limit on int() of a string.
MAX_DIGITS = 20


def ascii_int(text: str) -> int | None:
    """``text`` (surrounding blanks allowed) as a non-negative integer of ASCII digits, else None.

    ``str.isdigit`` and ``int`` accept Unicode digits ('²', Arabic-Indic '٨'), which
    no log or manifest means as a number; a string of more than :data:`MAX_DIGITS`
    digits is no port, protocol or time either (and ``int`` refuses more than 4,300).
    """
    text = text.strip()
    if not text or len(text) > MAX_DIGITS or not text.isascii() or not text.isdigit():
        return None
    return int(text)


class Flow(NamedTuple):
    src_ip: str
    dst_ip: str
    protocol: str = "TCP"
    dst_port: int = 0


#: The longest text an address may have: an IPv6 address with an embedded IPv4
#: tail, ``ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255``, is 45 characters.
#: Longer text is refused before any parsing or caching, so what callers send
#: cannot grow memory (issue 16).
MAX_IP_CHARS = 45


@lru_cache(maxsize=1 << 16)
def _parse_ip(text: str) -> str:
    """Canonical text of an address; raises ValueError, so invalid text is never cached.
    Cached: parsing with ``ipaddress`` costs ~2 µs, more than a cached decision, and
    flow logs and callers repeat the same addresses endlessly."""
    ip = ipaddress.ip_address(text.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def canonical_ip(text: str) -> str | None:
    """The address as the index stores it, or None when ``text`` is no address.

    One rule for every way in (Decide, Check, flow logs): an IPv4-mapped IPv6
    address (``::ffff:10.244.1.12``, what a dual-stack socket reports for an IPv4
    peer) is that IPv4 address (docs/semantics.md).
    """
    if not text or len(text) > MAX_IP_CHARS:
        return None
    try:
        return _parse_ip(text)
    except ValueError:
        return None


def normalize_ip(value: object, field: str) -> str:
    canonical = canonical_ip(value) if isinstance(value, str) else None
    if canonical is None:
        # FlowError cuts the echoed value (FlowError.MAX_MESSAGE)
        raise FlowError(field, f"must be an IPv4 or IPv6 address (got {value!r})")
    return canonical


def normalize_protocol(value: object, field: str = "protocol") -> str:
    """TCP/UDP/SCTP (any case), another known IP protocol name, or an IANA number."""
    if isinstance(value, bool):
        raise FlowError(field, f"unknown protocol {value!r}")
    if isinstance(value, int):
        if value in IANA_PROTOCOLS:
            return IANA_PROTOCOLS[value]
        if 0 <= value <= 255:
            return str(value)
        raise FlowError(field, f"unknown protocol {value!r}")
    if isinstance(value, str):
        text = value.strip().upper()
        if text in PORT_PROTOCOLS or text in OTHER_PROTOCOLS:
            return text
        number = ascii_int(text)
        if number is not None:
            return normalize_protocol(number, field)
    raise FlowError(
        field, f"unknown protocol {value!r}: must be TCP, UDP, SCTP, ICMP, ICMPv6 or an IANA number"
    )


def normalize_port(value: object, protocol: str, field: str = "dst_port") -> int:
    if isinstance(value, str):
        number = ascii_int(value)
        if number is not None:
            value = number
    if value is None and protocol not in PORT_PROTOCOLS:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise FlowError(field, f"must be an integer port (got {value!r})")
    if protocol in PORT_PROTOCOLS:
        if not 1 <= value <= 65535:
            raise FlowError(field, f"must be between 1 and 65535 for {protocol} (got {value})")
    elif not 0 <= value <= 65535:
        raise FlowError(field, f"must be between 0 and 65535 (got {value})")
    return value


def make_flow(src_ip: object, dst_ip: object, protocol: object = "TCP", dst_port: object = None) -> Flow:
    """Validate and normalise one flow; raises :class:`FlowError` naming the field."""
    proto = normalize_protocol("TCP" if protocol is None else protocol)
    return Flow(
        normalize_ip(src_ip, "src_ip"),
        normalize_ip(dst_ip, "dst_ip"),
        proto,
        normalize_port(dst_port, proto),
    )


def parse_flow(record: Mapping[str, Any]) -> Flow:
    """A flow from a mapping with ``src_ip``, ``dst_ip``, ``protocol`` (default TCP), ``dst_port``."""
    if not isinstance(record, Mapping):
        raise FlowError("flow", f"must be an object (got {type(record).__name__})")
    for name in ("src_ip", "dst_ip"):
        if name not in record:
            raise FlowError(name, "is required")
    return make_flow(record["src_ip"], record["dst_ip"], record.get("protocol"), record.get("dst_port"))
