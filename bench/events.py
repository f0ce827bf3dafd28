"""The update events the benchmarks time, each with the event that undoes it.

Why pairs: an update is timed many times on one index, so each timed event
needs an untimed inverse that puts the world back (add / delete, relabel /
restore).  Every event is chosen to be typical, not cheapest:

- ``pod add``: a new replica of an existing deployment (the common case of churn);
- ``pod relabel``: one pod's ``version`` label changes, so it leaves its
  identity for a new one (selector memberships are computed for it);
- ``pod delete``: one replica goes;
- ``namespace relabel``: a namespace's ``env`` changes, which namespace
  selectors (``env: prod``, ``env NotIn [dev]``) look at;
- ``policy add``: a new combined namespace+pod selector policy in a namespace;
- ``policy delete``: a namespace's default-deny goes (every identity of the
  namespace changes isolation).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from netpol_pdp.index.model import Delete, Event, Namespace, NetworkPolicy, Object, Pod, Upsert
from netpol_pdp.index.validation import parse_object

EVENT_NAMES = ("pod add", "pod relabel", "pod delete", "namespace relabel", "policy add", "policy delete")
#: An address outside every generated pod range and node network, for the added replica.
NEW_POD_IP = "10.250.0.7"


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """``do`` is timed; ``undo`` (untimed) restores the world the next ``do`` expects."""

    name: str
    do: tuple[Event, ...]
    undo: tuple[Event, ...]


def update_events(objects: list[Object]) -> list[TimedEvent]:
    """One :class:`TimedEvent` per name of :data:`EVENT_NAMES`, picked from ``objects``."""
    pods = [o for o in objects if isinstance(o, Pod) and o.live and not o.host_network]
    namespaces = {o.name: o for o in objects if isinstance(o, Namespace)}
    policies = [o for o in objects if isinstance(o, NetworkPolicy)]
    if not pods or not policies:
        raise ValueError("update events need at least one live pod and one network policy")
    # The busiest namespace with a default-deny, and a replica of its biggest deployment.
    per_ns = Counter(p.namespace for p in pods)
    with_deny = {p.namespace for p in policies if p.pod_selector.is_empty and not p.ingress}
    ns_name = max(per_ns, key=lambda ns: (ns in with_deny and ns in namespaces, per_ns[ns], ns))
    in_ns = [p for p in pods if p.namespace == ns_name]
    replicas = Counter(tuple(sorted(p.labels.items())) for p in in_ns)
    labels = max(replicas, key=lambda k: (replicas[k], k))
    pod = next(p for p in in_ns if tuple(sorted(p.labels.items())) == labels)

    new_pod = replace(pod, name=f"{pod.name}-bench", ips=(NEW_POD_IP,))
    relabelled = replace(pod, labels={**pod.labels, "version": "bench-canary"})
    ns = namespaces.get(ns_name, Namespace(ns_name, {"kubernetes.io/metadata.name": ns_name}))
    env = ns.labels.get("env")
    ns_relabelled = Namespace(ns.name, {**ns.labels, "env": "staging" if env == "prod" else "prod"})
    new_policy = parse_object(
        {
            "kind": "NetworkPolicy",
            "metadata": {"name": "bench-allow-team-frontends", "namespace": ns_name},
            "spec": {
                "podSelector": {"matchLabels": {"tier": "backend"}},
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {"matchLabels": {"team": "bench", "env": "prod"}},
                                "podSelector": {"matchLabels": {"tier": "frontend"}},
                            }
                        ],
                        "ports": [{"port": 8080}],
                    }
                ],
            },
        }
    )
    assert isinstance(new_policy, NetworkPolicy)
    deny = [p for p in policies if p.namespace == ns_name and p.pod_selector.is_empty and not p.ingress]
    gone = deny[0] if deny else next(p for p in policies if p.namespace == ns_name)
    return [
        TimedEvent("pod add", (Upsert(new_pod),), (Delete(new_pod.key),)),
        TimedEvent("pod relabel", (Upsert(relabelled),), (Upsert(pod),)),
        TimedEvent("pod delete", (Delete(pod.key),), (Upsert(pod),)),
        TimedEvent("namespace relabel", (Upsert(ns_relabelled),), (Upsert(ns),)),
        TimedEvent("policy add", (Upsert(new_policy),), (Delete(new_policy.key),)),
        TimedEvent("policy delete", (Delete(gone.key),), (Upsert(gone),)),
    ]
