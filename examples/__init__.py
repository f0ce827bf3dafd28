"""The bundled example cluster and flow logs, installed with the package.

``CLUSTER`` is the manifest folder ``netpol-pdp`` serves when no source is given.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
CLUSTER = HERE / "cluster"
FLOWS = HERE / "flows.jsonl"

__all__ = ["CLUSTER", "FLOWS", "HERE"]
