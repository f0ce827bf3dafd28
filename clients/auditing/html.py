"""The HTML report: one self-contained page rendered with Jinja2 (autoescaped).

The template does layout only; the numbers are the JSON report's, and the
heat-map colours are computed here so the page needs no script: a cell's hue
goes from green (all allowed) to red (all denied), its strength grows with the
log volume of that namespace pair, and a disagreeing pair gets an amber frame.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

if TYPE_CHECKING:
    from netpol_pdp.clients.auditing.audit import AuditRun

TEMPLATES = Path(__file__).resolve().parent / "templates"


def template(name: str) -> jinja2.Template:
    """One of the pages' templates (the audit report, the matrix heat map): autoescaped, strict."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(name)


def cell_style(allowed: int, denied: int, disagreeing: int, biggest: int) -> str:
    total = allowed + denied
    if total == 0:
        return ""
    hue = 120 * allowed / total  # 120 green .. 0 red
    strength = 0.25 + 0.65 * math.log1p(total) / math.log1p(max(biggest, 1))
    border = "outline: 3px solid #d98b00; outline-offset: -3px;" if disagreeing else ""
    return f"background: hsla({hue:.0f}, 70%, 45%, {strength:.2f}); {border}"


def heat_map(data: dict[str, Any], namespaces: list[str]) -> list[dict[str, Any]]:
    """Rows of the namespace x namespace grid, each cell with its counts and style."""
    cells = {(c["src_namespace"], c["dst_namespace"]): c for c in data["heat_map"]}
    biggest = max((c["allowed"] + c["denied"] for c in data["heat_map"]), default=0)
    rows = []
    for src in namespaces:
        row: list[dict[str, Any] | None] = []
        for dst in namespaces:
            c = cells.get((src, dst))
            if c is None:
                row.append(None)
                continue
            style = cell_style(c["allowed"], c["denied"], c["disagreeing"], biggest)
            row.append({**c, "style": style})
        rows.append({"namespace": src, "cells": row})
    return rows


def render_html(data: dict[str, Any], run: AuditRun) -> str:
    namespaces = run.summary.namespaces()
    return template("report.html.j2").render(
        data=data, namespaces=namespaces, heat=heat_map(data, namespaces)
    )
