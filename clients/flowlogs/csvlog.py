"""CSV with a header naming at least ``src_ip`` and ``dst_ip`` (``protocol``, ``dst_port`` optional).

The same columns and meaning as our JSON Lines; every column is kept in the
output.  Lines are parsed one at a time (quoted fields may hold commas, not line
breaks), which keeps the reader streaming and line numbers exact.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Hashable, Sequence
from typing import ClassVar

from netpol_pdp.clients.flowlogs.base import RawLine
from netpol_pdp.clients.flowlogs.errors import LineError
from netpol_pdp.clients.flowlogs.jsonl import record_from_mapping
from netpol_pdp.clients.flowlogs.record import DECISION_FIELDS, FlowRecord, Skip
from netpol_pdp.clients.flowlogs.source import decode_line

REQUIRED = ("src_ip", "dst_ip")


def split_csv(text: str) -> list[str]:
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise LineError("line", f"is not valid CSV ({exc})") from None


class CsvReader:
    name: ClassVar[str] = "csv"
    description: ClassVar[str] = "CSV with a header line: src_ip,dst_ip[,protocol][,dst_port][,...]"

    def __init__(self) -> None:
        self.header: list[str] | None = None

    @classmethod
    def sniff(cls, lines: Sequence[str]) -> bool:
        if not lines or lines[0].lstrip().startswith("{"):
            return False
        try:
            header = [h.strip() for h in next(csv.reader([lines[0]]))]
        except csv.Error:
            return False
        return len(header) > 1 and all(name in header for name in REQUIRED)

    def parse(self, line: int, text: str) -> FlowRecord | Skip:
        cells = [c.strip() for c in split_csv(text)]
        if self.header is None:
            missing = [name for name in REQUIRED if name not in cells]
            if missing:
                raise LineError("header", f"must name the columns {', '.join(missing)}")
            if len(set(cells)) != len(cells):
                raise LineError("header", "names a column twice")
            self.header = cells
            return Skip("header")
        if cells == self.header:
            return Skip("header")  # concatenated files each bring their header
        if len(cells) != len(self.header):
            raise LineError("line", f"has {len(cells)} columns, the header has {len(self.header)}")
        return record_from_mapping(line, dict(zip(self.header, cells, strict=True)))

    def quick(self, raw: RawLine, number: int) -> tuple[Hashable, str] | None:
        """A record line keyed by its flow, observed and direction cells; its head is its columns as JSON.

        Before the header, a header line, a line of the wrong width, or one with
        a column the decision overrides: parsed.
        """
        header = self.header
        if header is None:
            return None
        text = decode_line(raw, number) if type(raw) is bytes else raw
        if type(text) is not str:
            return None
        try:
            cells = [c.strip() for c in next(csv.reader([text], strict=True))]
        except (csv.Error, StopIteration):
            return None
        if len(cells) != len(header) or cells == header:
            return None
        row = dict(zip(header, cells, strict=True))
        if not DECISION_FIELDS.isdisjoint(row):
            return None
        get = row.get
        observed = get("observed")
        key = (get("src_ip"), get("dst_ip"), get("protocol"), get("dst_port"), observed, get("direction"))
        if observed:  # a verdict: normalised into the decision's part of the line
            del row["observed"]
        return key, json.dumps(row)[:-1] + ", "
