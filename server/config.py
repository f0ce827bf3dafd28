"""Serving limits and the configuration error, free of grpc imports.

``netpol-pdp`` imports every command module to build its parser, so what the
``serve`` command needs at parse time lives here rather than beside the grpc
code (which is imported only when the server starts).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

#: The default (and documented) largest batch, in flows.  10,000 flows is
#: ~0.5 MB of request and ~0.5-1 MB of unexplained response, well under
#: :data:`MAX_MESSAGE_BYTES`; larger batches amortise nothing more (docs/grpc.md).
DEFAULT_MAX_BATCH = 10_000
#: Largest message either way; a full batch, explained, stays far below it.
#: The client sets the same limit.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ConfigError(ValueError):
    """A serving option is wrong or missing; the message names the option."""


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: where plaintext is allowed without ``--insecure``.

    One rule for the server's ``--listen`` and the client's ``--server``.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: What a PEM file given to ``--tls-cert``/``--tls-key``/``--client-ca``/``--tls-ca`` must hold.
PEM_CERTIFICATE = "CERTIFICATE"
PEM_PRIVATE_KEY = "PRIVATE KEY"


def read_pem(path: Path, option: str, label: str) -> bytes:
    """The bytes of a PEM file holding a ``-----BEGIN ... <label>-----`` block.

    Checked here because grpc reports a certificate it cannot use only when the
    port is bound (as "cannot bind") or the first call fails, naming neither the
    option nor the file.  Raises :class:`ConfigError` naming both.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot read: {exc.strerror or exc}") from None
    if re.search(rb"-----BEGIN [A-Z0-9 ]*" + label.encode() + rb"-----", data) is None:
        raise ConfigError(f"{option} {path}: not a PEM file holding a {label.lower()}")
    return data
