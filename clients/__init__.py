"""The Python client of the decision service and the ``netpol-pdp`` command line.

Public surface (``__all__``, guarded by a test):

- :class:`DecisionClient` (``client.py``): the synchronous client;
- :class:`AsyncDecisionClient` (``aio.py``): the same API for asyncio;
- :class:`ClientTls`, :class:`Retry`: connection options; :class:`ClientError`:
  a call that failed for good.

Private modules: ``_channel.py`` (what both clients share: channel options,
TLS, back-off, batching), ``_options.py`` (the ``--server``/TLS command-line
options).  Each ``cmd_<name>.py`` is one ``netpol-pdp`` subcommand.
"""

from netpol_pdp.clients._channel import ClientError, ClientTls, Retry
from netpol_pdp.clients.aio import AsyncDecisionClient
from netpol_pdp.clients.client import DecisionClient

__all__ = ["AsyncDecisionClient", "ClientError", "ClientTls", "DecisionClient", "Retry"]
