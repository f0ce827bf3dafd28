"""Auditing in partitions: ``--jobs N`` local worker processes, or a Dask cluster (``--dask``).

A plain file or URL is cut into byte ranges that the workers read themselves
(after counting the lines of each range, so every line keeps its number);
stdin, gzip and ``memory://`` logs are read here and shipped as partitions of
raw lines.  A header line goes to every partition's reader first.  Each worker
parses, decides and renders its partitions with the same code as a
single-process audit (:func:`~netpol_pdp.clients.flowlogs.reading.parse_lines`,
:func:`run_audit`), against an index it builds **once** from the world's
objects (sent once per worker: a pool initializer, or one Dask
``scatter(broadcast=True)``) and keeps for the following partitions.  Results
come back in log order, a bounded number in flight so memory stays flat;
output text is written in order and the summaries and what-if diffs merge by
addition.  The decisions, the output and the summary are those of one process;
only the ``dedup`` counters differ (each worker deduplicates on its own).
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from netpol_pdp.clients.auditing.audit import AuditRun, run_audit
from netpol_pdp.clients.auditing.summary import AuditSummary
from netpol_pdp.clients.auditing.whatif import ChangeGroup, GroupKey, WhatIf, WorldChange
from netpol_pdp.clients.flowlogs.errors import FlowLogError
from netpol_pdp.clients.flowlogs.reading import FORMATS, FlowLog, parse_lines
from netpol_pdp.clients.flowlogs.record import ReadStats
from netpol_pdp.clients.flowlogs.source import (
    count_range,
    header_end,
    iter_lines,
    range_lines,
    size_of,
    splittable,
)
from netpol_pdp.index.decision import Decision, Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import Object

PARTITION_LINES = 20_000
PARTITION_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class WorldSpec:
    """What a worker needs to build its index once: the objects, the what-if change, explain or not."""

    objects: tuple[Object, ...]
    change: WorldChange | None = None
    explain: bool = False
    #: ``--service-partial``: the verdict of a partially allowed Service flow
    service_partial: Verdict = Verdict.DENY
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True, slots=True)
class Partition:
    """Raw numbered ``lines`` shipped from here, or a ``byte_range`` the worker reads itself.

    A byte range holds the lines that start in it; ``first_line`` is the number
    of the first of them (counted beforehand, so errors name the right line).
    """

    path: str
    fmt: str
    preamble: tuple[int, str] | None
    lines: list[tuple[int, str]]
    skip_invalid: bool
    write: bool
    byte_range: tuple[int, int] | None = None
    first_line: int = 1


@dataclass(slots=True)
class PartitionResult:
    text: str
    summary: AuditSummary
    #: the what-if diff of the partition (not the WhatIf: its indexes stay in the worker)
    groups: dict[GroupKey, ChangeGroup] | None
    whatif_flows: int
    warnings: list[str]
    generations: set[int]
    replaced: int
    error: tuple[int, str, str] | None  # (line, field, message): exceptions do not travel well


#: Per worker process: the world built for a spec (by token), reused by every partition.
_WORLDS: dict[str, tuple[Index, WhatIf | None]] = {}
_INSTALLED: list[WorldSpec] = []


def _world(spec: WorldSpec) -> tuple[Index, WhatIf | None]:
    built = _WORLDS.get(spec.token)
    if built is None:
        _WORLDS.clear()  # one audit's world at a time
        index = Index.from_objects(spec.objects, spec.service_partial)
        built = _WORLDS[spec.token] = (index, WhatIf(index, spec.change) if spec.change else None)
    return built


def audit_partition(spec: WorldSpec, part: Partition) -> PartitionResult:
    """One partition, in a worker: parse, decide, render, count (no explaining: that is done once)."""
    index, whatif_world = _world(spec)
    whatif = whatif_world.fresh() if whatif_world is not None else None
    reader = FORMATS[part.fmt]()
    if part.preamble is not None:
        reader.parse(*part.preamble)
    stats = ReadStats(format=part.fmt)
    warnings: list[str] = []
    numbered: Iterable[tuple[int, str]] = part.lines
    if part.byte_range is not None:
        numbered = iter_lines(part.path, range_lines(part.path, *part.byte_range), part.first_line)
    records = parse_lines(
        reader, numbered, stats, part.path, part.skip_invalid, lambda err: warnings.append(err.located)
    )
    out: list[str] = []
    decide = functools.partial(index.decide_many, explain=spec.explain)
    run = run_audit(
        records,
        decide,
        write=out.append if part.write else None,
        whatif=whatif,
        finish=False,
        keep_error=True,
    )
    run.summary.read = stats
    run.summary.fold()
    error = None
    if isinstance(run.error, FlowLogError):
        error = (run.error.line, run.error.field, run.error.message)
    return PartitionResult(
        "".join(out),
        run.summary,
        None if whatif is None else whatif.groups,
        0 if whatif is None else whatif.flows,
        warnings,
        run.generations,
        run.replaced,
        error,
    )


def _install(spec: WorldSpec) -> None:
    _INSTALLED[:] = [spec]


def _audit_installed(part: Partition) -> PartitionResult:
    return audit_partition(_INSTALLED[0], part)


class Result(Protocol):
    """A pending task: a ``concurrent.futures.Future`` or a Dask future."""

    def result(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Workers:
    """Somewhere to run partitions: ``audit(part)`` and ``count(path, start, end)`` return futures."""

    audit: Callable[[Partition], Result]
    count: Callable[[str, int, int], Result]
    size: int


@contextmanager
def local_pool(spec: WorldSpec, jobs: int) -> Iterator[Workers]:
    """``jobs`` worker processes, each given the world once (spawned: no inherited threads or files)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_install, initargs=(spec,)) as pool:
        yield Workers(
            audit=lambda part: pool.submit(_audit_installed, part),
            count=lambda path, start, end: pool.submit(count_range, path, start, end),
            size=jobs,
        )


@contextmanager
def dask_cluster(spec: WorldSpec, address: str, jobs: int) -> Iterator[Workers]:
    """A Dask client: ``local`` starts a LocalCluster of ``jobs`` processes on loopback."""
    try:
        from distributed import Client, LocalCluster  # noqa: PLC0415 - only --dask needs Dask
    except ImportError:
        raise FlowLogError("--dask", 0, "", "needs Dask: pip install 'netpol-pdp[dask]'") from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # Without this the scheduler's HTTP endpoint (health, metrics) still takes the fixed
            # port 8787, so a second audit on the machine fails with "Port 8787 is already in use".
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=40,  # logging.ERROR
        )
        client = Client(cluster)  # type: ignore[no-untyped-call]
    else:
        try:
            client = Client(address)  # type: ignore[no-untyped-call]
        except (OSError, ValueError) as exc:  # unreachable (after Dask's connect timeout) or malformed
            raise FlowLogError("--dask", 0, "", f"cannot use the Dask scheduler {address!r}: {exc}") from None
    try:
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        [world] = client.scatter([spec], broadcast=True)  # type: ignore[no-untyped-call]

        def audit(part: Partition) -> Result:
            # Shipped lines travel as data, not inside the task graph (which is for small arguments).
            [data] = client.scatter([part], hash=False)  # type: ignore[no-untyped-call]
            return client.submit(audit_partition, world, data, pure=False)

        def count(path: str, start: int, end: int) -> Result:
            return client.submit(count_range, path, start, end, pure=False)

        yield Workers(audit, count, workers)
    finally:
        client.close()  # type: ignore[no-untyped-call]
        if cluster is not None:
            cluster.close()


def range_partitions(log: FlowLog, workers: Workers, size: int, write: bool) -> Iterator[Partition]:
    """Byte ranges of about ``size`` tiling the file after its header, numbered by counting first.

    The lines of each range are counted by the workers in parallel (a fast pass
    over bytes), so that each range knows the number of its first line.
    """
    preamble = log.read_preamble()
    path = log.path
    start = header_end(path, preamble[0]) if preamble is not None else 0
    total = size_of(path)
    bounds = [*range(start, total, size), total] if total > start else []
    ranges = list(itertools.pairwise(bounds))
    counts = [workers.count(path, a, b) for a, b in ranges]
    first = preamble[0] + 1 if preamble is not None else 1
    for byte_range, count in zip(ranges, counts, strict=True):
        yield Partition(path, log.stats.format, preamble, [], log.skip_invalid, write, byte_range, first)
        first += int(count.result())


def run_partitioned(
    log: FlowLog,
    workers: Workers,
    *,
    write: Callable[[str], object] | None,
    whatif: WhatIf | None,
    explain_flow: Callable[[Flow], Decision] | None,
    warn: Callable[[str], object] | None = None,
    progress: Callable[[int], object] | None = None,
    partition_lines: int = PARTITION_LINES,
    partition_bytes: int = PARTITION_BYTES,
    by_range: bool | None = None,
) -> AuditRun:
    """The audit of ``log`` over workers; same output, summary and what-if as :func:`run_audit`.

    Plain files and URLs are split into byte ranges the workers read themselves
    (``by_range``, the default for them); stdin, gzip and ``memory://`` are read
    here and shipped as partitions of ``partition_lines`` lines.
    """
    began = time.perf_counter()
    summary = AuditSummary()
    run = AuditRun(summary, whatif)
    read = log.stats
    in_flight: deque[Result] = deque()

    def take(result: PartitionResult) -> None:
        if write is not None and result.text:
            write(result.text)
        if warn is not None:
            for message in result.warnings:
                warn(message)
        summary.merge(result.summary)  # the partition's read counts included
        run.generations |= result.generations
        run.replaced += result.replaced
        if whatif is not None and result.groups is not None:
            whatif.merge(result.groups, result.whatif_flows)
        if progress is not None:
            progress(result.summary.total)
        if result.error is not None:
            for later in in_flight:
                cancel = getattr(later, "cancel", None)
                if cancel is not None:
                    cancel()
            line, field_name, message = result.error
            raise FlowLogError(log.path, line, field_name, message)

    if by_range is None:
        by_range = splittable(log.path)
    parts: Iterable[Partition]
    if by_range:
        parts = range_partitions(log, workers, partition_bytes, write is not None)
    else:
        parts = (
            Partition(log.path, read.format, log.preamble, lines, log.skip_invalid, write is not None)
            for lines in log.partitions(partition_lines)
        )
    for part in parts:
        in_flight.append(workers.audit(part))
        if len(in_flight) >= 2 * workers.size:
            take(in_flight.popleft().result())
    while in_flight:
        take(in_flight.popleft().result())
    read.merge(summary.read)  # this process read the header line, if any
    summary.read = read
    if explain_flow is not None:
        summary.explain_top(explain_flow)
    if whatif is not None:
        whatif.explain()
    run.seconds = time.perf_counter() - began
    return run
