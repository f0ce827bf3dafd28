"""The Python client of the decision service and the ``netpol-pdp`` command line.

Public surface (``__all__``, guarded by a test):

- :class:`DecisionClient` (``client.py``): the synchronous client;
- :class:`AsyncDecisionClient` (``aio.py``): the same API for asyncio;
- :class:`ClientTls`, :class:`Retry`: connection options; :class:`ClientError`:
  a call that failed for good.

The clients' shared parts:

- ``_channel.py``     what both clients share: ``ChannelClient`` (options, channel,
                      stubs), TLS, back-off, batching, decoding batch answers;
- ``_options.py``     the ``--server``/TLS command-line options and the client they build.

The command line (``cli.py`` builds the parser; one ``cmd_<name>.py`` per subcommand:
``decide``, ``reach``, ``matrix``, ``audit``, ``validate``, ``test``, ``serve``, ``status``,
``bench``), and what its commands share:

- ``sources.py``      the ``--source`` option, building an index from it, and the warning
                      for a source that holds no pod;
- ``queryout.py``     what ``reach`` and ``matrix`` print: text, CSV, JSON, the HTML heat map
                      (``auditing/templates/matrix.html.j2``);
- ``render.py``       human-readable flows, decisions and explanations; ``plural`` (counts
                      that agree with their noun) and ``printable`` (every message escaped);
- ``expectations.py`` the expectations of ``netpol-pdp test`` and their checking;
- ``junit.py``        JUnit XML for ``netpol-pdp test --junit``;
- ``errors.py``       ``CommandError``: a message for the user and an exit status.

Sub-packages: ``flowlogs/`` (the flow-log readers: Hubble, AWS/GCP VPC, CSV, JSON
Lines) and ``auditing/`` (the audit pass, observed-vs-policy, what-if, reports,
``--jobs``/``--dask``).  ``envoy/`` holds the Envoy and Istio configuration
examples of docs/envoy.md (data, no code).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netpol_pdp.clients._channel import ClientError, ClientTls, Retry
    from netpol_pdp.clients.aio import AsyncDecisionClient
    from netpol_pdp.clients.client import DecisionClient

__all__ = ["AsyncDecisionClient", "ClientError", "ClientTls", "DecisionClient", "Retry"]

#: Where each public name lives.  Imported on first use (PEP 562) so that the
#: command line, whose modules sit in this package, does not pay for grpc
#: unless a command talks to a server.
_HOME = {
    "AsyncDecisionClient": "netpol_pdp.clients.aio",
    "ClientError": "netpol_pdp.clients._channel",
    "ClientTls": "netpol_pdp.clients._channel",
    "DecisionClient": "netpol_pdp.clients.client",
    "Retry": "netpol_pdp.clients._channel",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
