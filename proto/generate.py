"""Regenerate the committed gRPC/protobuf stubs beside ``proto/netpol_pdp/v1/*.proto``.

Usage: ``python proto/generate.py [OUT_DIR]`` (default: ``proto/``, i.e. in place).

The stubs are committed (as OpenTelemetry and Temporal do) so that an install
needs no code generator; ``tests/test_grpc_stubs.py`` regenerates them into a
temporary folder and fails when the bytes differ.  The generator version is
pinned in the ``test`` extra (``grpcio-tools==...``) because the generated code
pins its runtime: ``GRPC_GENERATED_VERSION`` in ``*_pb2_grpc.py`` and
``ValidateProtobufRuntimeVersion`` in ``*_pb2.py`` set the lower bounds of
``grpcio`` and ``protobuf`` in ``pyproject.toml``.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PROTOS = sorted(PROTO_ROOT.glob("netpol_pdp/**/*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (from grpcio-tools) on every proto; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = str(resources.files("grpc_tools") / "_proto")
    for proto in PROTOS:
        rel = proto.relative_to(PROTO_ROOT).as_posix()
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            rel,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {rel}")
    return sorted(p for p in out_dir.rglob("*_pb2*") if p.suffix in {".py", ".pyi"})


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else PROTO_ROOT
    for path in generate(out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
