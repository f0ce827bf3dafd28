"""A per-generation cache from a flow's wire bytes straight to its encoded result.

Why: flows repeat (sidecars call the same services, flow logs repeat the same
pairs), and for a repeated flow the service's own work was all per-flow Python:
reading five fields of a protobuf message, validating and normalising the
addresses, building a :class:`~netpol_pdp.index.flows.Flow`, looking up the
index's decision cache, and finding the decision's encoded bytes.  That cost
about twice what the echo service (same messages, no deciding) spends per flow.

Here the key is the flow submessage's own serialized bytes, cut out of the
request without building any per-flow object (:func:`flow_chunks`), and the
value is the encoded ``FlowResult`` entry of the batch response: a repeated
flow costs one dict lookup.  The bytes identify the flow exactly: a miss is
parsed from those same bytes, so two byte strings meaning the same flow are
only two entries of one decision.

Rules that keep it correct (each has a test in ``tests/rpc/test_wirecache.py``):

- **one generation per slot**: a :class:`Slot` belongs to one index object and
  one generation; a request finding the index at another generation starts a
  new slot, and an entry is stored only when its decision was made at the
  slot's generation, so a batch never mixes generations and a reload is never
  hidden by the cache;
- **only decisions**: a malformed flow is never stored (its error is worked out
  every time, as before), so the cache never answers for one;
- **never explained**: explained decisions bypass the cache entirely, as they
  bypass the index's own decision cache;
- **never by name**: a flow with ``src_name``/``dst_name``/``dst_port_name``
  (index/ends.py) is resolved at the slot's generation and decided, but its
  entry is never stored (server/service.py): the same bytes mean another
  address once the pod moves;
- **bounded by bytes**: a slot whose keys and values reach :data:`CACHE_BYTES`
  (or :data:`CACHE_LIMIT` entries) is replaced by an empty one at the next
  request, and a flow whose wire bytes exceed :data:`MAX_CHUNK_BYTES` (a valid
  flow carrying a large unknown field) is decided but never stored.

Serving threads share it without a lock: dict reads and writes are atomic, a
slot is replaced by one attribute assignment, and a request keeps the slot it
started with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, cast

from netpol_pdp.index.decision import Reason, Verdict
from netpol_pdp.server.decoding import varint
from netpol_pdp.v1 import decision_pb2 as pb

#: Entries held per generation before the slot is replaced by an empty one.
CACHE_LIMIT = 1 << 18
#: Bytes (keys and values) held per generation before the slot is replaced.
CACHE_BYTES = 64 << 20
#: A flow's wire bytes longer than this are never a key: two 45-character
#: addresses and the integer fields take under 120 bytes.
MAX_CHUNK_BYTES = 256

_REQUEST_ID = 0x08  # DecideBatchRequest.request_id: field 1, varint
_FLOWS = 0x12  # DecideBatchRequest.flows: field 2, length-delimited
_EXPLAIN = 0x18  # DecideBatchRequest.explain: field 3, varint


class Slot:
    """The entries of one index object at one generation."""

    __slots__ = ("entries", "generation", "index", "kinds", "size")

    def __init__(self, index: Any, generation: int) -> None:
        self.index = index
        self.generation = generation
        #: flow wire bytes -> the ``results`` entry (tag, length, FlowResult) of its decision
        self.entries: dict[bytes, bytes] = {}
        #: results entry -> (verdict, reason), for the decision metrics
        self.kinds: dict[bytes, tuple[Verdict, Reason]] = {}
        #: bytes of the keys and values stored (approximate under concurrent puts)
        self.size = 0

    def put(self, chunk: bytes, entry: bytes, verdict: Verdict, reason: Reason) -> None:
        if len(chunk) > MAX_CHUNK_BYTES:
            return
        self.size += len(chunk) + len(entry)
        self.entries[chunk] = entry
        self.kinds[entry] = (verdict, reason)

    def tally(self, results: Iterable[bytes]) -> Mapping[tuple[Verdict, Reason], int]:
        """(verdict, reason) -> count over a batch's results entries; error entries are not counted.

        Counted in C (``Counter`` over ``map``): no Python step per flow.
        """
        counts: Counter[tuple[Verdict, Reason] | None] = Counter(map(self.kinds.get, results))
        counts.pop(None, None)  # the malformed flows' entries
        return cast("Counter[tuple[Verdict, Reason]]", counts)


class WireCache:
    """The current :class:`Slot`, renewed when the index, its generation or the size changes."""

    def __init__(self, limit: int = CACHE_LIMIT, limit_bytes: int = CACHE_BYTES) -> None:
        self.limit = limit
        self.limit_bytes = limit_bytes
        self._slot = Slot(None, -1)

    def slot(self, index: Any) -> Slot:
        """The slot for ``index`` as published now (read once per request)."""
        slot = self._slot
        generation = index.generation
        if (
            slot.index is not index
            or slot.generation != generation
            or len(slot.entries) >= self.limit
            or slot.size >= self.limit_bytes
        ):
            slot = self._slot = Slot(index, generation)
        return slot


def flow_chunks(request: pb.DecideBatchRequest) -> list[bytes]:
    """The serialized bytes of each flow of ``request``, in order.

    The request is serialized again (one C call, ~30 ns a flow) and its
    top-level fields are walked: request_id and explain are skipped, each
    ``flows`` field is cut out.  Anything else (a field this version does not
    know, kept by protobuf as an unknown field) falls back to serializing each
    flow on its own, which gives the same bytes.
    """
    data = request.SerializeToString()
    chunks: list[bytes] = []
    append = chunks.append
    pos = 0
    end = len(data)
    try:
        while pos < end:
            tag = data[pos]
            if tag == _FLOWS:
                size = data[pos + 1]
                pos += 2
                if size & 0x80:
                    size, pos = varint(data, pos - 1)
                append(data[pos : pos + size])
                pos += size
            elif tag in (_REQUEST_ID, _EXPLAIN):
                _, pos = varint(data, pos + 1)
            else:
                return _each(request.flows)
    except IndexError:  # pragma: no cover - protobuf's own output is never truncated
        return _each(request.flows)
    if pos != end:  # pragma: no cover - as above
        return _each(request.flows)
    return chunks


def _each(flows: Iterable[pb.Flow]) -> list[bytes]:
    return [f.SerializeToString() for f in flows]


def entry_body(entry: bytes) -> bytes:
    """The ``FlowResult`` inside a ``results`` entry (after its tag and length).

    ``FlowResult{decision}`` and ``DecideResponse{decision}`` put the decision in
    field 1 alike, so this is also the unary ``DecideResponse`` of that decision.
    """
    pos = 1
    while entry[pos] & 0x80:
        pos += 1
    return entry[pos + 1 :]
