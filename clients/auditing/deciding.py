"""Deciding a stream of flow records, in order, each distinct flow once.

Flow logs repeat heavily (the same client calls the same service thousands of
times), so records are batched and each batch asks the decider only for flows
it has not answered recently.  The decider is any function from a batch of
flows to their decisions in order -- an in-process :class:`Index`, a gRPC
client, a pool of workers -- so the readers and the audit logic never depend
on where decisions come from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from netpol_pdp.clients.flowlogs.record import FlowRecord
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.flows import Flow

#: Decisions for a batch of flows, in the same order.
Decider = Callable[[Sequence[Flow]], Sequence[Decision]]
#: What a batch decider answers per flow: a Decision, or a pair of them (what-if).
Answer = TypeVar("Answer")

BATCH_SIZE = 4096
#: Distinct flows remembered across batches; the memo is emptied when full, so
#: memory stays bounded on logs with millions of distinct flows.
MEMO_SIZE = 200_000


@dataclass(slots=True)
class DedupStats:
    """``flows`` seen, and ``decided``: how many the decider was actually asked."""

    flows: int = 0
    decided: int = 0

    def merge(self, other: DedupStats) -> None:
        self.flows += other.flows
        self.decided += other.decided


def batched(records: Iterable[FlowRecord], size: int) -> Iterator[list[FlowRecord]]:
    it = iter(records)
    while batch := list(islice(it, size)):
        yield batch


def decide_batches(
    records: Iterable[FlowRecord],
    decide: Callable[[Sequence[Flow]], Sequence[Answer]],
    stats: DedupStats | None = None,
    batch_size: int = BATCH_SIZE,
    memo_size: int = MEMO_SIZE,
) -> Iterator[tuple[list[FlowRecord], list[Answer]]]:
    """Batches of records with their answers, in input order; each distinct flow decided once while memoised.

    ``decide`` is usually a :data:`Decider`; the what-if passes one that answers
    a (current, changed) pair per flow.  Batch by batch rather than record by
    record because a generator's step per line is a measurable share of an audit.
    """
    stats = stats if stats is not None else DedupStats()
    memo: dict[Flow, Answer] = {}
    for batch in batched(records, batch_size):
        flows = [r.flow for r in batch]
        missing = list(dict.fromkeys(f for f in flows if f not in memo))
        if missing:
            if len(memo) + len(missing) > memo_size:
                memo.clear()  # then every flow of this batch is missing, not only the new ones
                missing = list(dict.fromkeys(flows))
            answers = decide(missing)
            if len(answers) != len(missing):
                raise RuntimeError(f"the decider answered {len(answers)} flows for {len(missing)} asked")
            memo.update(zip(missing, answers, strict=True))
        stats.flows += len(batch)
        stats.decided += len(missing)
        yield batch, list(map(memo.__getitem__, flows))


def decide_records(
    records: Iterable[FlowRecord],
    decide: Callable[[Sequence[Flow]], Sequence[Answer]],
    stats: DedupStats | None = None,
    batch_size: int = BATCH_SIZE,
    memo_size: int = MEMO_SIZE,
) -> Iterator[tuple[FlowRecord, Answer]]:
    """Each record with its answer, in input order (:func:`decide_batches`, one record at a time)."""
    for batch, answers in decide_batches(records, decide, stats, batch_size, memo_size):
        yield from zip(batch, answers, strict=True)
