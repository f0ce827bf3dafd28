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
from json.encoder import encode_basestring_ascii  # what json.dumps uses for a string
from typing import Any

from netpol_pdp.clients.auditing.agreement import Agreement
from netpol_pdp.clients.flowlogs.record import DECISION_FIELDS, FlowRecord
from netpol_pdp.index.decision import Decision, Endpoint, Reason, Verdict

__all__ = ["DECISION_FIELDS", "Rendered", "Renderer", "output_line"]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A decision with its JSON rendered once (per distinct flow, not per line).

    Whatever the decision carries (``Decision.to_dict``: traces, a Service, an
    explanation) is rendered, so the reuse knows nothing of its fields.
    ``fragment`` is ``json.dumps(decision.to_dict())`` without its braces.
    """

    decision: Decision
    fragment: str

    @classmethod
    def of(cls, decision: Decision) -> Rendered:
        return cls(decision, json.dumps(decision.to_dict())[1:-1])

    @property
    def value(self) -> dict[str, Any]:
        """The decision's fields (for the rare line whose own fields they override)."""
        return self.decision.to_dict()


#: JSON text of a verdict's and a reason's value, as json.dumps writes them
_QUOTED: dict[str, str] = {
    str(member): encode_basestring_ascii(str(member)) for member in (*Verdict, *Reason)
}


def _end_json(endpoint: Endpoint) -> str:
    """``json.dumps(endpoint.to_dict())``, written directly for an end without host-network pods."""
    if endpoint.host_network_pods or type(endpoint) is not Endpoint:
        return json.dumps(endpoint.to_dict())
    text = '{"kind": ' + encode_basestring_ascii(str(endpoint.kind))
    if endpoint.name is not None:
        text += ', "name": ' + encode_basestring_ascii(endpoint.name)
    if endpoint.namespace is not None:
        text += ', "namespace": ' + encode_basestring_ascii(endpoint.namespace)
    return text + "}"


class Renderer:
    """One pass's renderings: each distinct end (pod, node, external) written to JSON once.

    A plain decision (no notes, no Service, not explained: nearly every line of
    an audit) is put together from its verdict, reason, generation and its two
    ends' cached JSON, which is the text ``json.dumps(decision.to_dict())``
    makes (tests/test_audit_render.py checks the two agree); any other is
    rendered whole by :meth:`Rendered.of`.  The ends are keyed by identity (a
    generation holds one :class:`Endpoint` per address) and kept alive with
    their text; the cache is emptied past :data:`ENDS`, so it stays bounded
    when decisions come from a server (a new end object per decision).
    """

    ENDS = 100_000

    def __init__(self) -> None:
        self._ends: dict[int, tuple[Endpoint, str]] = {}

    def _end(self, endpoint: Endpoint) -> str:
        known = self._ends.get(id(endpoint))
        if known is not None:
            return known[1]
        ends = self._ends
        if len(ends) >= self.ENDS:
            ends.clear()
        text = _end_json(endpoint)
        ends[id(endpoint)] = (endpoint, text)
        return text

    def of(self, decision: Decision) -> Rendered:
        """The decision with its JSON fragment, as :meth:`Rendered.of` makes it."""
        if decision.notes or decision.service is not None or decision.explained:
            return Rendered.of(decision)
        verdict, reason = _QUOTED.get(str(decision.verdict)), _QUOTED.get(str(decision.reason))
        if verdict is None or reason is None or type(decision.generation) is not int:
            return Rendered.of(decision)
        fragment = (
            f'"verdict": {verdict}, "reason": {reason}, "generation": {int.__repr__(decision.generation)}, '
            f'"src": {self._end(decision.src)}, "dst": {self._end(decision.dst)}'
        )
        return Rendered(decision, fragment)


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
