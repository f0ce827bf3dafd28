"""Serving limits and the configuration error, free of grpc imports.

``netpol-pdp`` imports every command module to build its parser, so what the
``serve`` command needs at parse time lives here rather than beside the grpc
code (which is imported only when the server starts).
"""

from __future__ import annotations

#: The default (and documented) largest batch, in flows.  10,000 flows is
#: ~0.5 MB of request and ~0.5-1 MB of unexplained response, well under
#: :data:`MAX_MESSAGE_BYTES`; larger batches amortise nothing more (docs/grpc.md).
DEFAULT_MAX_BATCH = 10_000
#: Largest message either way; a full batch, explained, stays far below it.
#: The client sets the same limit.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ConfigError(ValueError):
    """A serving option is wrong or missing; the message names the option."""
