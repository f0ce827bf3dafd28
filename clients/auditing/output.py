"""An audit's output line: the input line's own fields with the decision's spliced in.

Each distinct flow's decision is rendered to JSON once (:class:`Rendered`); an
output line is the input line as written (our JSON Lines) with the decision's
fields spliced in before the closing brace, or -- for other formats, or when
the input already has a field the decision adds -- the kept fields and the
decision serialised together.  When the log says what the enforcer did, the
line also gets ``observed`` and ``agreement``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from netpol_pdp.clients.auditing.agreement import Agreement
from netpol_pdp.clients.flowlogs.record import DECISION_FIELDS, FlowRecord
from netpol_pdp.index.decision import Decision

__all__ = ["DECISION_FIELDS", "Rendered", "output_line"]



@dataclass(frozen=True, slots=True)
class Rendered:
    """A decision with its JSON rendered once (per distinct flow, not per line).

    Whatever the decision carries (``Decision.to_dict``: traces, a Service, an
    explanation) is rendered, so the reuse knows nothing of its fields.
    """

    decision: Decision
    value: dict[str, Any]
    fragment: str

    @classmethod
    def of(cls, decision: Decision) -> Rendered:
        value = decision.to_dict()
        return cls(decision, value, json.dumps(value)[1:-1])


def output_line(record: FlowRecord, rendered: Rendered, agreement: Agreement | None) -> tuple[str, bool]:
    """The output text for one record, and whether input fields had to be overridden."""
    extra = ""
    if record.observed is not None:
        extra = f', "observed": "{record.observed.value}", "agreement": "{agreement}"'
    clash = not DECISION_FIELDS.isdisjoint(record.fields)
    if (
        record.text is not None
        and not clash
        and "observed" not in record.fields
        and record.text.endswith("}")
    ):
        body = record.text[:-1].rstrip()
        sep = ", " if body != "{" else ""
        return f"{body}{sep}{rendered.fragment}{extra}}}", False
    if clash:
        value = {**record.fields, **rendered.value}
        if record.observed is not None:
            value["observed"] = record.observed.value
            value["agreement"] = None if agreement is None else agreement.value
        return json.dumps(value), True
    fields = record.fields
    if record.observed is not None and "observed" in fields:
        fields = {k: v for k, v in fields.items() if k != "observed"}  # normalised below
    head = json.dumps(fields)[:-1] if fields else "{"
    sep = ", " if fields else ""
    return f"{head}{sep}{rendered.fragment}{extra}}}", False
