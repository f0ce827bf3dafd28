"""`audit --server`: every flow-log format, decided by a server, prints what the local audit prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Cli

from netpol_pdp.server.serve import Service

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flowlogs"


def untimed(result: tuple[int, str, str]) -> tuple[int, str, str]:
    """The command's result with the summary's timing taken out (it differs run to run)."""
    status, out, err = result
    return status, out, re.sub(r" in [\d.]+ s( \([\d,]+ flows/s\))?", "", err)


SAMPLE_FILES = ["hubble-observe.jsonl", "aws-vpc-custom.log", "gcp-vpc.jsonl", "flows.csv"]


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=[f"{s} decided by a server" for s in SAMPLE_FILES])
def test_each_format_audited_by_a_server_matches_the_local_audit(
    example: Service, cli: Cli, sample: str
) -> None:
    local = untimed(cli("audit", str(SAMPLES / sample)))
    remote = untimed(cli("audit", str(SAMPLES / sample), "--server", example.address))
    assert remote == local  # output lines, observed-vs-policy, isolating policies of the top denied


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--without", "backend/api-from-web"], "--with/--without build the changed world here"),
        (["--jobs", "2"], "--jobs/--dask decide in local workers"),
    ],
    ids=["a what-if needs the world itself", "workers need the world itself"],
)
def test_options_that_need_the_world_are_refused_with_a_server(
    example: Service, cli: Cli, extra: list[str], message: str
) -> None:
    status, out, err = cli("audit", str(SAMPLES / "flows.jsonl"), "--server", example.address, *extra)
    assert (status, out) == (2, "")
    assert message in err
