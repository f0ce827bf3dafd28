"""Which format a log is, from its first non-blank lines.

The readers' own ``sniff`` decide, each on the first line that parses.  They
are asked most specific first (a GCP entry and a Hubble flow are both JSON, and
our JSON Lines is the loosest JSON shape); the first that recognises the lines
wins.  When none does, the error quotes the first line and lists ``--format``
values.
"""

from __future__ import annotations

from collections.abc import Sequence

from netpol_pdp.clients.flowlogs.awsvpc import AwsVpcReader
from netpol_pdp.clients.flowlogs.base import Reader
from netpol_pdp.clients.flowlogs.csvlog import CsvReader
from netpol_pdp.clients.flowlogs.gcpvpc import GcpVpcReader
from netpol_pdp.clients.flowlogs.hubble import HubbleReader
from netpol_pdp.clients.flowlogs.jsonl import JsonLinesReader

#: Every reader, in sniffing order; ``--format`` takes their ``name``.
READERS: tuple[type[Reader], ...] = (GcpVpcReader, HubbleReader, JsonLinesReader, AwsVpcReader, CsvReader)

#: How many non-blank lines detection looks at.
SNIFF_LINES = 5


def detect_format(lines: Sequence[str]) -> type[Reader] | None:
    """The reader whose format these first non-blank lines are, or None."""
    for reader in READERS:
        if reader.sniff(lines):
            return reader
    return None
