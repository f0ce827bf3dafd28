"""Audit reports: ``--report FILE.json`` for machines, ``--report FILE.html`` for people.

Both carry the same numbers (the summary's :meth:`to_dict`, the what-if diff
when there is one).  The HTML page is rendered with Jinja2 from
``templates/report.html.j2`` into a single self-contained file: inline CSS, no
script, no fetch, so it opens from a CI artifact store or an e-mail as is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from netpol_pdp.clients.auditing.audit import AuditRun
from netpol_pdp.index.errors import NetpolPdpError

SUFFIXES = (".json", ".html", ".htm")


class ReportError(NetpolPdpError):
    """A report that cannot be written (unknown suffix, unwritable path)."""


def report_data(run: AuditRun, source: str) -> dict[str, Any]:
    data: dict[str, Any] = {"log": source, "generations": sorted(run.generations), **run.summary.to_dict()}
    if run.whatif is not None:
        data["what_if"] = run.whatif.to_dict()
    return data


def check_report_path(path: str) -> None:
    """Refuse an unknown suffix before the audit runs, not after."""
    if Path(path).suffix.lower() not in SUFFIXES:
        raise ReportError(f"--report {path}: must end in .json or .html")


def write_report(path: str, run: AuditRun, source: str) -> None:
    check_report_path(path)
    data = report_data(run, source)
    if Path(path).suffix.lower() == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        from netpol_pdp.clients.auditing.html import render_html  # noqa: PLC0415 - Jinja2 only when asked

        text = render_html(data, run)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as err:
        raise ReportError(f"--report {path}: {err.strerror or err}") from None
