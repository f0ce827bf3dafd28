"""Audit reports: JSON for machines, a self-contained HTML page for people (checked in a real browser)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from netpol_pdp.clients.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "examples" / "cluster"
HUBBLE = ROOT / "examples" / "flowlogs" / "hubble-observe.jsonl"
CHROMIUM = "/usr/bin/chromium"


def audit_with_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log: Path = HUBBLE
) -> tuple[int, dict, str]:
    status = main(
        [
            "audit",
            str(log),
            "--source",
            str(CLUSTER),
            "--without",
            "backend/api-from-web",
            "--report",
            str(tmp_path / "report.json"),
            "--report",
            str(tmp_path / "report.html"),
        ]
    )
    capsys.readouterr()
    return status, json.loads((tmp_path / "report.json").read_text()), (tmp_path / "report.html").read_text()


def test_the_json_report_has_the_totals_heat_map_disagreements_and_what_if(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, data, _ = audit_with_reports(tmp_path, capsys)
    assert status == 3
    assert (data["total"], data["allowed"], data["denied"]) == (7, 4, 3)
    assert data["read"]["skipped"] == {"non-l4": 1, "not-a-flow": 1, "reply": 1}
    cell = next(
        c for c in data["heat_map"] if (c["src_namespace"], c["dst_namespace"]) == ("default", "data")
    )
    assert (cell["allowed"], cell["denied"], cell["disagreeing"]) == (0, 1, 1)
    assert data["top_denied"][0]["isolating_policies"] == [
        "data/allow-metrics-scrape",
        "data/default-deny-ingress",
        "data/redis-from-api",
    ]
    assert data["what_if"]["allowed_to_denied"] == 2
    assert data["what_if"]["groups"][0]["responsible"] == ["backend/api-from-web"]


def test_the_html_report_is_self_contained_and_shows_the_same_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, data, html = audit_with_reports(tmp_path, capsys)
    assert "<script" not in html and "<link" not in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    assert f'id="total-flows">{data["total"]}<' in html
    assert f'id="total-denied">{data["denied"]}<' in html
    for namespace in ("frontend", "backend", "data", "monitoring", "kube-system"):
        assert f"<th>{namespace}</th>" in html
    assert "What-if: remove NetworkPolicy backend/api-from-web" in html
    assert "forwarded-but-policy-denies (1)" in html


def test_the_html_report_escapes_what_it_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "<b>odd&.jsonl"
    log.write_bytes(HUBBLE.read_bytes())
    _, _, html = audit_with_reports(tmp_path, capsys, log)
    assert "<b>odd" not in html
    assert "&lt;b&gt;odd&amp;.jsonl" in html


def test_an_unknown_report_suffix_is_refused_before_the_audit_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["audit", str(HUBBLE), "--source", str(CLUSTER), "--report", "report.pdf"])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert "--report report.pdf: must end in .json or .html" in err


#: Keep headless Chromium off every network: no DNS, a dead loopback proxy, no background services.
OFFLINE = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
]


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no browser: {CHROMIUM} is absent (Debian: apt-get install -y chromium)",
)
def test_the_html_report_renders_in_a_real_browser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, data, _ = audit_with_reports(tmp_path, capsys)
    page = (tmp_path / "report.html").as_uri()
    home = tmp_path / "chromium-home"
    shot = tmp_path / "report.png"
    common = [CHROMIUM, *OFFLINE, f"--user-data-dir={home}", "--window-size=1280,1400"]
    taken = subprocess.run(
        [*common, f"--screenshot={shot}", page], capture_output=True, text=True, timeout=120, check=False
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a real, non-blank page
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, 1400)
    dom = subprocess.run(
        [*common, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=False
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'id="total-flows">{data["total"]}<' in dom.stdout  # the page loaded and shows the totals
    assert 'id="heat-map"' in dom.stdout
    keep = ROOT / ".pytest-artifacts"
    if keep.is_dir():  # for a person to look at: mkdir .pytest-artifacts before the run
        shutil.copy(shot, keep / "report.png")
