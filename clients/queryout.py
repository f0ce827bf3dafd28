"""What ``netpol-pdp reach`` and ``netpol-pdp matrix`` print: text, CSV, JSON and the HTML heat map.

Free of I/O like ``render.py``: each function returns the text to write.  The
matrix text is the upstream conformance tests' truth table (kubernetes
test/e2e/network/netpol/truthtable.go ``PrettyPrint``): a ``-`` corner, the
destinations across, one row per source, ``.`` allowed, ``X`` denied, ``?`` no
value; columns are aligned with spaces where upstream uses tabs (which the
command line escapes, as every control character).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from netpol_pdp.clients.auditing.html import template
from netpol_pdp.clients.render import plural
from netpol_pdp.index.matrix import ALLOWED, CellChange, Matrix, port_text
from netpol_pdp.index.reach import ReachAnswer, TargetReach, identity_text

_LISTED = 5  # pod names shown per group in text; the JSON lists up to 50


# ---------------------------------------------------------------- reach


def _target_lines(direction: str, t: TargetReach, port: str) -> list[str]:
    who = ", ".join(t.pods[:_LISTED]) + (
        f" and {len(t.pods) - _LISTED} more" if len(t.pods) > _LISTED else ""
    )
    ident = identity_text(t.namespace, t.labels)
    if direction == "ingress":
        head = f"who can reach {who} ({ident}, {t.address}){port}:"
    else:
        head = f"what {who} ({ident}, {t.address}) can reach{port}:"
    lines = [head]
    lines.append("  pods:" if t.pod_peers else "  pods: none")
    for g in t.pod_peers:
        names = ", ".join(g.pods[:_LISTED]) + (
            f", ... ({g.count - _LISTED} more)" if g.count > _LISTED else ""
        )
        lines.append(f"    {identity_text(g.namespace, g.labels)}  {plural(g.count, 'pod')} ({names})")
        lines.append(f"      {g.ports.text()}  by {'; '.join(g.rules)}")
    lines.append("  nodes:" if t.node_peers else "  nodes: none")
    for n in t.node_peers:
        lines.append(f"    {n.node or '(no Node object)'} {', '.join(n.addresses)}  {n.ports.text()}")
        lines.append(f"      by {'; '.join(n.rules)}")
    lines.append(
        "  ip ranges outside the cluster:" if t.range_peers else "  ip ranges outside the cluster: none"
    )
    for r in t.range_peers:
        lines.append(f"    {', '.join(r.cidrs)}  {r.ports.text()}")
        lines.append(f"      by {'; '.join(r.rules)}")
    own = "".join(f", node {n}" for n in t.own_nodes)
    lines.append(f"  always (exemptions): the pod itself{own}")
    return lines


def reach_text(answers: list[ReachAnswer]) -> str:
    """The answers as people read them, one block per direction and target class."""
    lines: list[str] = []
    for answer in answers:
        port = ""
        if answer.protocol is not None:
            port = f" on {port_text((answer.protocol, answer.port or 0))}"
        for t in answer.targets:
            if lines:
                lines.append("")
            lines.extend(_target_lines(answer.direction, t, port))
    if answers:
        lines.append(f"(generation {answers[0].generation})")
    return "\n".join(lines) + "\n"


def reach_json(answers: list[ReachAnswer]) -> str:
    return json.dumps({"answers": [a.to_dict() for a in answers]}, indent=2) + "\n"


# ---------------------------------------------------------------- matrix


def truth_table(m: Matrix, k: int, marks: Any = None) -> list[str]:
    """One port's table in the upstream layout (``marks(i, j)``: another mark per cell)."""
    n = len(m.pods)
    mark = marks or (lambda i, j: m.mark(k, i, j))
    first = max(len(p) for p in ("-", *m.pods))
    widths = [len(p) for p in m.pods]
    lines = [" ".join(["-".ljust(first), *m.pods]).rstrip()]
    for i, src in enumerate(m.pods):
        lines.append(" ".join([src.ljust(first), *(mark(i, j).ljust(widths[j]) for j in range(n))]).rstrip())
    return lines


def matrix_text(m: Matrix) -> str:
    lines: list[str] = []
    for k, port in enumerate(m.ports):
        if lines:
            lines.append("")
        lines.append(f"{port_text(port)}  (rows: from, columns: to; . allowed, X denied, ? no common family)")
        lines.extend(truth_table(m, k))
    lines.append(f"(generation {m.generation})")
    return "\n".join(lines) + "\n"


def matrix_csv(m: Matrix) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["port", "from", *m.pods])
    for k, port in enumerate(m.ports):
        for i, src in enumerate(m.pods):
            w.writerow([port_text(port), src, *(m.mark(k, i, j) for j in range(len(m.pods)))])
    return out.getvalue()


def matrix_json(m: Matrix) -> str:
    return json.dumps(m.to_dict(), indent=2) + "\n"


def _state(value: bool | None) -> str:
    return "no value" if value is None else "allowed" if value else "denied"


def diff_text(before: Matrix, after: Matrix, changed: list[CellChange]) -> str:
    """Per port, the upstream comparison table (``.`` same, ``X`` differs), then each changed cell."""
    lines: list[str] = []
    moved = {(c.port, c.source, c.destination) for c in changed}
    for k, port in enumerate(before.ports):
        if lines:
            lines.append("")
        lines.append(f"{port_text(port)}  (. unchanged, X changed)")

        def mark(i: int, j: int, port: tuple[str, int] = port) -> str:
            return "X" if (port, before.pods[i], before.pods[j]) in moved else ALLOWED

        lines.extend(truth_table(before, k, mark))
    lines.append("")
    if not changed:
        lines.append("no cell changes")
    else:
        lines.append(f"{plural(len(changed), 'cell')} change:")
        for c in changed:
            change = f"{_state(c.before)} -> {_state(c.after)}"
            lines.append(f"  {port_text(c.port)} {c.source} -> {c.destination}: {change}")
    return "\n".join(lines) + "\n"


def diff_csv(changed: list[CellChange]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["port", "from", "to", "before", "after"])
    for c in changed:
        w.writerow([port_text(c.port), c.source, c.destination, _state(c.before), _state(c.after)])
    return out.getvalue()


def diff_json(before: Matrix, after: Matrix, changed: list[CellChange]) -> str:
    data = {"before": before.to_dict(), "after": after.to_dict(), "changes": [c.to_dict() for c in changed]}
    return json.dumps(data, indent=2) + "\n"


_STYLE = {
    ".": "background: hsla(120, 70%, 45%, 0.60);",
    "X": "background: hsla(0, 70%, 45%, 0.60);",
    "?": "background: #eceff3;",
}
_CHANGED = " outline: 3px solid #d98b00; outline-offset: -3px;"


def matrix_html(m: Matrix, title: str, after: Matrix | None = None) -> str:
    """The heat map: one table per port, green allowed, red denied, the audit report's look;
    with ``after`` (``--diff``) the cells show the new value and changed ones an amber frame."""
    shown = after or m
    tables = []
    for k, port in enumerate(m.ports):
        rows = []
        for i, src in enumerate(m.pods):
            cells = []
            for j, dst in enumerate(m.pods):
                new = shown.mark(k, i, j)
                old = m.mark(k, i, j)
                changed = after is not None and new != old
                cells.append(
                    {
                        "mark": f"{old}\u2192{new}" if changed else new,
                        "style": _STYLE[new] + (_CHANGED if changed else ""),
                        "title": f"{src} \u2192 {dst} {port_text(port)}: "
                        + (f"{_mark_word(old)} \u2192 {_mark_word(new)}" if changed else _mark_word(new)),
                    }
                )
            rows.append({"pod": src, "cells": cells})
        tables.append({"port": port_text(port), "rows": rows})
    return template("matrix.html.j2").render(
        title=title, pods=m.pods, tables=tables, generation=shown.generation, diff=after is not None
    )


def _mark_word(mark: str) -> str:
    return {".": "allowed", "X": "denied"}.get(mark, "no common address family")
