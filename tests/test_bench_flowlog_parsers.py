"""``bench/flowlog_parsers.py`` runs on a tiny world and log and reports every figure it promises.

Nothing about speed is asserted (figures are only reported); what is checked is
that each row and ratio is printed, that the Hubble log it writes holds the
same flows, and that the whole-process audit ran (its peak RSS is reported).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from netpol_pdp.bench import flowlog_parsers
from netpol_pdp.clients.cli import main as cli_main
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import ManifestSource


def test_the_parser_benchmark_reports_each_figure_on_a_tiny_world(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = tmp_path / "world"
    assert cli_main(["bench", "world", "--size", "tiny", "-o", str(world), "--flows", "400"]) == 0
    log = tmp_path / "flows.jsonl"
    (world / "flows.jsonl").rename(log)
    capsys.readouterr()
    argv = ["flowlog_parsers", str(log), "--source", str(world), "--repeat", "1", "--hubble"]
    monkeypatch.setattr(sys, "argv", argv)
    assert flowlog_parsers.main() == 0
    out = capsys.readouterr().out
    for row in (
        "msgspec bare parse",
        "orjson parse+dump",
        "world load (in process)",
        "audit pass (after load)",
        "netpol-pdp audit (process)",
        "hubble: audit pass",
        "audit pass speed / orjson parse+dump speed",
        "hubble audit pass speed / orjson bare parse speed",
        "peak RSS of netpol-pdp audit over 400 lines",
        "peak RSS of netpol-pdp audit over 200 lines",
    ):
        assert row in out


def test_the_hubble_log_holds_the_same_flows_one_request_line_each(tmp_path: Path) -> None:
    world = tmp_path / "world"
    assert cli_main(["bench", "world", "--size", "tiny", "-o", str(world), "--flows", "50"]) == 0
    log = tmp_path / "flows.jsonl"
    (world / "flows.jsonl").rename(log)
    index = Index.from_objects(ManifestSource(world).load().objects.values())
    hubble = tmp_path / "hubble.jsonl"
    assert flowlog_parsers.write_hubble(log, index, hubble) == 50
    flows = [json.loads(line) for line in log.read_text().splitlines()]
    for row, line in zip(flows, hubble.read_text().splitlines(), strict=True):
        flow = json.loads(line)["flow"]
        assert (flow["IP"]["source"], flow["IP"]["destination"]) == (row["src_ip"], row["dst_ip"])
        assert flow["l4"][row["protocol"]]["destination_port"] == row["dst_port"]
        assert flow["is_reply"] is False
