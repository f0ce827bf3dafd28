"""How flow ends are named in summaries: pods by name, groups by namespace and labels.

Per-pod names answer "who exactly"; namespace + labels answer "which workload"
and keep what-if groups stable across pod restarts.  Labels that differ per
replica set or per pod (``pod-template-hash``, ...) are left out of group names
for that reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from netpol_pdp.clients.render import endpoint_key
from netpol_pdp.index.decision import Endpoint, EndpointKind
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import Kind, Object, ObjectKey, Pod

#: Labels that name a replica or revision rather than a workload.
VOLATILE_LABELS = frozenset(
    {"pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name"}
)


def endpoint_name(endpoint: Endpoint, ip: str) -> str:
    """``pod ns/name``, ``node NAME``, ``external IP``: the names every audit output uses."""
    return endpoint_key(endpoint, ip)


def endpoint_namespace(endpoint: Endpoint) -> str:
    """The namespace for the heat map: a pod's or a Service's, or ``(node)`` / ``(external)``."""
    if endpoint.kind in (EndpointKind.POD, EndpointKind.SERVICE) and endpoint.namespace:
        return endpoint.namespace
    return "(node)" if endpoint.kind is EndpointKind.NODE else "(external)"


def port_text(flow: Flow) -> str:
    return f"{flow.protocol}/{flow.dst_port}"


class PodLabels:
    """``ns/name`` -> the pod's workload labels, from a world's objects."""

    def __init__(self, objects: Mapping[ObjectKey, Object]) -> None:
        self._labels: dict[str, Mapping[str, str]] = {
            f"{obj.namespace}/{obj.name}": obj.labels
            for key, obj in objects.items()
            if key[0] is Kind.POD and isinstance(obj, Pod)
        }

    def group(self, endpoint: Endpoint, ip: str) -> str:
        """``ns app=api,tier=backend`` for a pod; as :func:`endpoint_name` otherwise."""
        if endpoint.kind is not EndpointKind.POD or endpoint.name is None:
            return endpoint_name(endpoint, ip)
        labels = self._labels.get(endpoint.name, {})
        shown = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in VOLATILE_LABELS)
        namespace = endpoint.namespace or endpoint.name.partition("/")[0]
        return f"{namespace} {shown}" if shown else f"{namespace} (no labels)"
