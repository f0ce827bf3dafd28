"""JUnit XML for ``netpol-pdp test``: the report format CI systems (GitLab, Jenkins, GitHub actions) read.

One ``<testcase>`` per expectation, a ``<failure>`` with every wrong flow and
its explanation; ``<error>`` when an expectation could not be checked at all.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from netpol_pdp.clients.expectations import Result
from netpol_pdp.clients.render import explanation_lines, flow_text, plural


def failure_text(result: Result) -> str:
    lines: list[str] = []
    for checked in result.wrong:
        if checked.decision is None:
            lines.append(f"{checked.src} -> {checked.dst}: {checked.problem}")
            continue
        lines.append(
            f"{checked.src} -> {checked.dst} ({flow_text(checked.flow)}): "
            f"{checked.decision.verdict.value} ({checked.decision.reason.value}), "
            f"expected {result.expectation.expect.value}"
        )
        lines.extend(f"  {line}" for line in explanation_lines(checked.decision))
    return "\n".join(lines)


def write_junit(path: str, suite: str, results: Sequence[Result], seconds: float) -> None:
    failures = sum(1 for r in results if r.problem is None and not r.passed)
    errors = sum(1 for r in results if r.problem is not None)
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failures), errors=str(errors))
    node = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        time=f"{seconds:.3f}",
    )
    for result in results:
        case = ET.SubElement(node, "testcase", classname=suite, name=result.expectation.name)
        if result.problem is not None:
            ET.SubElement(case, "error", message=result.problem).text = result.problem
        elif not result.passed:
            wrong = result.wrong
            message = (
                f"{len(wrong)} of {plural(len(result.checked), 'flow')} not {result.expectation.expect.value}"
            )
            ET.SubElement(case, "failure", message=message).text = failure_text(result)
    ET.indent(root)
    Path(path).write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")
