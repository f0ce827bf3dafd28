"""Audits in partitions (--jobs, --dask) give the single-process output, summary and what-if."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from netpol_pdp.clients.auditing.audit import AuditRun, run_audit
from netpol_pdp.clients.auditing.parallel import WorldSpec, dask_cluster, local_pool, run_partitioned
from netpol_pdp.clients.auditing.report import report_data
from netpol_pdp.clients.auditing.whatif import WhatIf, WorldChange
from netpol_pdp.clients.cli import main
from netpol_pdp.clients.flowlogs import FlowLogError, read_flowlog
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import ManifestSource

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "examples" / "cluster"
SAMPLES = ROOT / "examples" / "flowlogs"


@pytest.fixture(scope="module")
def index() -> Index:
    return Index.from_objects(ManifestSource(CLUSTER).load().objects.values())


def single(index: Index, path: str, change: WorldChange | None = None) -> tuple[str, dict[str, Any]]:
    out: list[str] = []
    whatif = WhatIf(index, change) if change else None
    with read_flowlog(path, skip_invalid=True) as log:
        run = run_audit(
            log, index.decide_many, write=out.append, whatif=whatif, explain_flow=explained(index)
        )
        run.summary.read = log.stats
    return "".join(out), comparable(run, path)


def explained(index: Index) -> Callable[[Any], Any]:
    return lambda flow: index.decide(flow, explain=True)


def comparable(run: AuditRun, path: str) -> dict[str, Any]:
    data = report_data(run, path)
    del data["dedup"]  # each worker deduplicates on its own: a performance counter, not a result
    return data


def partitioned(
    index: Index,
    path: str,
    workers: Any,
    change: WorldChange | None = None,
    *,
    by_range: bool,
) -> tuple[str, dict[str, Any]]:
    """Tiny partitions, so that every sample log spans several (7 lines, or 300 bytes)."""
    out: list[str] = []
    whatif = WhatIf(index, change) if change else None
    with read_flowlog(path, skip_invalid=True) as log, workers as pool:
        run = run_partitioned(
            log,
            pool,
            write=out.append,
            whatif=whatif,
            explain_flow=explained(index),
            partition_lines=7,
            partition_bytes=300,
            by_range=by_range,
        )
    return "".join(out), comparable(run, path)


def repeated(tmp_path: Path, sample: str, times: int, header: bool = False) -> str:
    lines = (SAMPLES / sample).read_text().splitlines(keepends=True)
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    path = tmp_path / sample
    path.write_text("".join(head + body * times))
    return str(path)


MODES = [
    pytest.param(True, id="workers read byte ranges"),
    pytest.param(False, id="lines shipped to workers"),
]

SAMPLE_LOGS = [
    ("hubble-observe.jsonl", False),
    ("aws-vpc-custom.log", True),  # a header line every partition must read first
    ("flows.csv", True),
    ("aws-vpc-default.log", False),
]


@pytest.mark.parametrize("by_range", MODES)
@pytest.mark.parametrize(
    ("sample", "header"), SAMPLE_LOGS, ids=[f"{s} in 2 processes equals 1" for s, _ in SAMPLE_LOGS]
)
def test_local_processes_give_the_single_process_result(
    tmp_path: Path, index: Index, sample: str, header: bool, by_range: bool
) -> None:
    path = repeated(tmp_path, sample, 20, header)
    spec = WorldSpec(tuple(index.objects().values()))
    assert partitioned(index, path, local_pool(spec, 2), by_range=by_range) == single(index, path)


def test_a_what_if_in_partitions_merges_to_the_single_process_diff(tmp_path: Path, index: Index) -> None:
    path = repeated(tmp_path, "hubble-observe.jsonl", 20)
    change = WorldChange.load([], ["backend/api-from-web"])
    spec = WorldSpec(tuple(index.objects().values()), change)
    text, data = partitioned(index, path, local_pool(spec, 2), change, by_range=True)
    assert (text, data) == single(index, path, change)
    assert data["what_if"]["groups"][0]["count"] == 40
    assert data["what_if"]["groups"][0]["last_seen"] == "2026-11-20T09:00:07.000Z"


@pytest.mark.parametrize("by_range", MODES)
def test_a_bad_line_in_a_later_partition_stops_after_everything_before_it(
    tmp_path: Path, index: Index, by_range: bool
) -> None:
    good = '{"src_ip": "10.244.1.12", "dst_ip": "10.244.1.20", "dst_port": 8080}\n'
    path = tmp_path / "flows.jsonl"
    path.write_text(good * 25 + "not json\n" + good * 10)
    spec = WorldSpec(tuple(index.objects().values()))
    out: list[str] = []
    with (
        read_flowlog(str(path)) as log,
        local_pool(spec, 2) as pool,
        pytest.raises(FlowLogError) as caught,
    ):
        run_partitioned(
            log,
            pool,
            write=out.append,
            whatif=None,
            explain_flow=None,
            partition_lines=7,
            partition_bytes=300,
            by_range=by_range,
        )
    assert caught.value.line == 26  # numbered right, also when a worker read the bytes itself
    assert len("".join(out).splitlines()) == 25


def test_the_cli_jobs_option_writes_what_one_process_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = repeated(tmp_path, "hubble-observe.jsonl", 5)
    outputs = []
    for extra in ([], ["--jobs", "2"]):
        assert main(["audit", path, "--source", str(CLUSTER), *extra]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 35


def test_an_fsspec_url_is_read_like_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    fsspec = pytest.importorskip("fsspec")
    url = "memory://netpol-pdp-test/hubble.jsonl"
    with fsspec.open(url, "wb") as handle:
        handle.write((SAMPLES / "hubble-observe.jsonl").read_bytes())
    try:
        assert main(["audit", url, "--source", str(CLUSTER)]) == 0
        from_url = capsys.readouterr().out
        assert main(["audit", url, "--source", str(CLUSTER), "--jobs", "2"]) == 0
        assert capsys.readouterr().out == from_url
    finally:
        fsspec.filesystem("memory").rm(url)
    assert main(["audit", str(SAMPLES / "hubble-observe.jsonl"), "--source", str(CLUSTER)]) == 0
    assert capsys.readouterr().out == from_url


@contextmanager
def occupied(port: int) -> Iterator[None]:
    """Hold ``127.0.0.1:port`` (unless someone else already does) for the duration."""
    with socket.socket() as sock:
        with suppress(OSError):
            sock.bind(("127.0.0.1", port))
            sock.listen()
        yield


def test_a_dask_local_cluster_gives_the_single_process_result(tmp_path: Path, index: Index) -> None:
    pytest.importorskip("distributed")
    path = repeated(tmp_path, "aws-vpc-custom.log", 30, header=True)
    change = WorldChange.load([str(ROOT / "examples" / "whatif" / "redis-from-debug.yaml")], [])
    spec = WorldSpec(tuple(index.objects().values()), change)
    with occupied(8787):  # Dask's default HTTP port: a second user of the machine must not matter
        result = partitioned(index, path, dask_cluster(spec, "local", 2), change, by_range=True)
    assert result == single(index, path, change)
    assert json.loads(result[0].splitlines()[0])["verdict"] == "ALLOW"


def test_jobs_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(SAMPLES / "flows.jsonl"), "--jobs", "0"]) == 2
    assert "--jobs: must be 1 or more" in capsys.readouterr().err


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="worker processes are tested on Linux")
