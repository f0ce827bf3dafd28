"""The committed protobuf/gRPC stubs are what ``proto/generate.py`` makes, and the enums map totally."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from netpol_pdp.index.decision import EndpointKind, Reason, Verdict
from netpol_pdp.v1 import convert
from netpol_pdp.v1 import decision_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"


def load_generator() -> object:
    spec = importlib.util.spec_from_file_location("netpol_pdp_proto_generate", PROTO / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_committed_stubs_are_byte_for_byte_what_generate_py_makes(tmp_path: Path) -> None:
    generate = load_generator()
    written = generate.generate(tmp_path)  # type: ignore[attr-defined]
    assert {p.name for p in written} == {"decision_pb2.py", "decision_pb2.pyi", "decision_pb2_grpc.py"}
    for fresh in written:
        committed = PROTO / fresh.relative_to(tmp_path)
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{committed} is stale: run python proto/generate.py"
        )


@pytest.mark.parametrize(
    ("python_enum", "table", "back", "proto_enum"),
    [
        pytest.param(Verdict, convert.VERDICT_TO_PB, convert.VERDICT_FROM_PB, pb.Verdict, id="verdicts"),
        pytest.param(Reason, convert.REASON_TO_PB, convert.REASON_FROM_PB, pb.Reason, id="reason codes"),
        pytest.param(
            EndpointKind, convert.KIND_TO_PB, convert.KIND_FROM_PB, pb.EndpointKind, id="endpoint kinds"
        ),
    ],
)
def test_every_python_enum_member_has_one_wire_value_and_back(
    python_enum: type, table: dict[object, int], back: dict[int, object], proto_enum: object
) -> None:
    assert set(table) == set(python_enum)  # type: ignore[call-overload]
    wire_values = {v for v in proto_enum.values() if v != 0}  # type: ignore[attr-defined]
    assert set(table.values()) == wire_values  # nothing on the wire without a Python meaning
    assert all(back[table[m]] is m for m in table)


def test_every_wire_protocol_names_a_protocol_flows_accept() -> None:
    assert set(convert.PROTOCOL_FROM_PB) == {v for v in pb.Protocol.values() if v != 0}
