"""Observed vs policy: does the enforcer's verdict in the log agree with the policy's?

The comparison respects where the enforcer looked.  A verdict observed at the
source's egress speaks only for egress policy (the packet may still be dropped
at the destination); one observed at the destination's ingress has passed
egress already, so *forwarded* there means the whole path was allowed, and
*dropped* there means ingress policy denied it.  Without a direction the
verdicts are compared end to end.

Two kinds of disagreement, each pointing at a different problem:

- ``dropped-but-policy-allows``: the enforcer is stricter than the policy
  (its policy state or our feed is out of date, a node-local exemption, a
  CNI-specific default deny, ...);
- ``forwarded-but-policy-denies``: the policy is not enforced (a CNI without
  NetworkPolicy support, host-network traffic, a policy the CNI does not
  implement, ...).
"""

from __future__ import annotations

from enum import StrEnum

from netpol_pdp.clients.flowlogs.record import Direction
from netpol_pdp.index.decision import Decision, Reason, Verdict

EGRESS_DENIED = frozenset({Reason.DENIED_EGRESS, Reason.DENIED_BOTH})
INGRESS_DENIED = frozenset({Reason.DENIED_INGRESS, Reason.DENIED_BOTH})


class Agreement(StrEnum):
    AGREES = "agrees"
    DROPPED_BUT_ALLOWED = "dropped-but-policy-allows"
    FORWARDED_BUT_DENIED = "forwarded-but-policy-denies"


def compare(observed: Verdict | None, direction: Direction | None, decision: Decision) -> Agreement | None:
    """None when the log carries no policy verdict; otherwise whether (and how) they differ.

    A flow addressed to a Service went to ONE endpoint, the one kube-proxy picked,
    and the enforcer judged that one.  So the verdict agrees when it is the
    verdict of some endpoint the Service translates to: a
    ``service-partially-allowed`` DENY agrees with both a forward (an allowing
    endpoint was picked) and a drop (a denying one was); where every endpoint
    decides alike, that one verdict is compared as for any flow.  A Service with
    no endpoint to send to (no ready endpoint, no such port) is compared as the
    DENY it is, wherever the enforcer looked.
    """
    if observed is None:
        return None
    service = decision.service
    if service is not None:
        if not service.endpoints:  # nowhere to send it: a DENY whichever side looked
            return _compare(observed, None, decision)
        seen = {_compare(observed, direction, e.decision) for e in service.endpoints}
        return Agreement.AGREES if Agreement.AGREES in seen else seen.pop()
    return _compare(observed, direction, decision)


def _compare(observed: Verdict, direction: Direction | None, decision: Decision) -> Agreement:
    if direction is Direction.EGRESS:
        policy_allows = decision.reason not in EGRESS_DENIED
    elif direction is Direction.INGRESS and observed is Verdict.DENY:
        policy_allows = decision.reason not in INGRESS_DENIED
    else:
        policy_allows = decision.allowed
    if (observed is Verdict.ALLOW) == policy_allows:
        return Agreement.AGREES
    return Agreement.FORWARDED_BUT_DENIED if observed is Verdict.ALLOW else Agreement.DROPPED_BUT_ALLOWED
