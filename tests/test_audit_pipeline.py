"""The audit pass's fast paths answer exactly what the plain code would.

- lines parse through msgspec, with ``json.loads`` (and its messages) for
  everything msgspec refuses; where msgspec answers it answers as ``json.loads``
  (property test over generated JSON, numbers of every size included);
- deciding goes batch by batch, each distinct flow once, also when the memo of
  distinct flows overflows in the middle of a batch;
- the pass runs with fewer cycle collections and gives the thresholds back.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netpol_pdp.clients.auditing.audit import fewer_collections
from netpol_pdp.clients.auditing.deciding import DedupStats, decide_batches, decide_records
from netpol_pdp.clients.flowlogs.base import json_object
from netpol_pdp.clients.flowlogs.errors import LineError
from netpol_pdp.clients.flowlogs.record import FlowRecord
from netpol_pdp.index.flows import Flow


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 80}', id="a flow"),
        pytest.param('  {"a": [1, 2.5, null, true], "b": {"c": "\\u00e9"}}  ', id="nested, padded"),
        pytest.param("{}", id="an empty object"),
        pytest.param('{"a": 1, "a": 2}', id="a repeated key: the last wins"),
        pytest.param('{"n": 1e400, "m": -0}', id="numbers as json reads them"),
    ],
)
def test_a_well_formed_line_parses_as_json_loads_parses_it(text: str) -> None:
    assert json_object(text) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('{"a": 1', "not valid JSON: Expecting ',' delimiter (column 8)", id="unterminated"),
        pytest.param('{"a": 1} x', "not valid JSON: Extra data (column 10)", id="text after the object"),
        pytest.param('{"a": 1}{}', "not valid JSON: Extra data (column 9)", id="two objects"),
        pytest.param('{"a": NaNx}', "not valid JSON: Expecting ',' delimiter (column 10)", id="bad value"),
        pytest.param("", "not valid JSON: Expecting value (column 1)", id="empty"),
        pytest.param("[1, 2]", "must be an object (got list)", id="an array"),
        pytest.param('"{}"', "must be an object (got str)", id="a string"),
    ],
)
def test_a_malformed_line_gets_json_loads_message(text: str, message: str) -> None:
    with pytest.raises(LineError) as caught:
        json_object(text)
    assert caught.value.message == message


#: JSON values of every kind json.loads reads: big and tiny numbers, NaN/Infinity,
#: escapes and lone surrogates, nesting.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
NUMBER_TEXT = st.sampled_from(["1e400", "-1e400", "1" + "0" * 30, "-0", "-0.0", "5e-324", "2.4e-320", "1E5"])


def same_answer(text: str) -> None:
    """``json_object`` gives what ``json.loads`` gives (compared by repr: NaN), or the same error."""
    try:
        expected: object = json.loads(text.strip())
    except (ValueError, RecursionError):
        expected = LineError
    else:
        if not isinstance(expected, dict):
            expected = LineError
    try:
        got: object = json_object(text)
    except LineError:
        got = LineError
    assert repr(got) == repr(expected)


@given(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=6), st.booleans())
def test_json_object_reads_every_object_as_json_loads_does(value: dict[str, object], compact: bool) -> None:
    same_answer(json.dumps(value, separators=(",", ":") if compact else None, ensure_ascii=compact))


@given(st.lists(NUMBER_TEXT | st.integers().map(str), min_size=1, max_size=4), st.integers(0, 3))
def test_numbers_written_in_every_way_read_as_json_loads_reads_them(numbers: list[str], cut: int) -> None:
    text = "{" + ", ".join(f'"k{i}": {n}' for i, n in enumerate(numbers)) + "}"
    same_answer(text[: len(text) - cut])


def _record(n: int, flow: Flow) -> FlowRecord:
    return FlowRecord(n, flow, {})


def test_records_come_back_in_order_each_distinct_flow_decided_once() -> None:
    flows = [Flow("10.0.0.1", f"10.0.0.{k % 3 + 2}", "TCP", 80) for k in range(10)]
    asked: list[Flow] = []

    def decide(batch: Sequence[Flow]) -> list[str]:
        asked.extend(batch)
        return [f.dst_ip for f in batch]

    stats = DedupStats()
    out = list(decide_records([_record(i, f) for i, f in enumerate(flows)], decide, stats, batch_size=4))
    assert [(r.line, a) for r, a in out] == [(i, f.dst_ip) for i, f in enumerate(flows)]
    assert sorted(asked) == sorted(set(flows))
    assert (stats.flows, stats.decided) == (10, 3)


def test_a_memo_overflowing_in_the_middle_of_a_batch_still_answers_every_record() -> None:
    """Batch 2 repeats a flow of batch 1 and brings new ones that overflow the memo."""
    a, b, c, d = (Flow("10.0.0.1", f"10.0.0.{k}", "TCP", 80) for k in range(2, 6))
    records = [_record(i, f) for i, f in enumerate([a, b, a, c, d])]
    answered = list(decide_batches(records, lambda fs: [f.dst_ip for f in fs], batch_size=2, memo_size=2))
    assert [answers for _, answers in answered] == [
        ["10.0.0.2", "10.0.0.3"],
        ["10.0.0.2", "10.0.0.4"],
        ["10.0.0.5"],
    ]


def test_the_pass_collects_less_often_and_restores_the_thresholds() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] >= 50_000
    assert gc.get_threshold() == before
