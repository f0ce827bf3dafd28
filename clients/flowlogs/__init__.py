"""Flow-log readers: real logs (Hubble, AWS/GCP VPC, CSV, our JSON Lines) as a stream of flows.

How the pieces connect::

    path | "-" | URL --source.open_binary, source.iter_lines--> (line number, text), gzip undone
        --detect.detect_format (first lines) or --format--> one reader class
        --reader.parse(line, text)--> FlowRecord | Skip | None
        --reading.FlowLog (iterate)--> FlowRecord ... ; FlowLog.stats counts the rest

- ``record.py``   FlowRecord (the normalised Flow, the original fields kept, the
                  enforcer's observed verdict and observation point), Skip, ReadStats;
- ``errors.py``   FlowLogError: a bad line, naming the file, line and field;
- ``source.py``   opening a path, stdin or fsspec URL, gzip transparently, line by line;
- ``detect.py``   which format a log is, from its first lines;
- ``jsonl.py``, ``csvlog.py``, ``hubble.py``, ``awsvpc.py``, ``gcpvpc.py``: one reader each;
- ``reading.py``  the registry of readers and :func:`read_flowlog`, the one entry point.

A reader may also offer ``quick(raw, number)``: a cheap key for lines that differ
only in a field of their own (Hubble, our JSON Lines, CSV), which the audit's line
pass uses to reuse a first line's answer (``base.Reader``).

Readers know nothing about decisions: the audit feeds ``record.flow`` to whatever
decides (an in-process index, a gRPC server) and zips the answers back in order.
"""

from netpol_pdp.clients.flowlogs.errors import FlowLogError
from netpol_pdp.clients.flowlogs.reading import FORMATS, FlowLog, read_flowlog
from netpol_pdp.clients.flowlogs.record import Direction, FlowRecord, ReadStats, Skip

__all__ = [
    "FORMATS",
    "Direction",
    "FlowLog",
    "FlowLogError",
    "FlowRecord",
    "ReadStats",
    "Skip",
    "read_flowlog",
]
