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
    """None when the log carries no policy verdict; otherwise whether (and how) they differ."""
    if observed is None:
        return None
    if direction is Direction.EGRESS:
        policy_allows = decision.reason not in EGRESS_DENIED
    elif direction is Direction.INGRESS and observed is Verdict.DENY:
        policy_allows = decision.reason not in INGRESS_DENIED
    else:
        policy_allows = decision.allowed
    if (observed is Verdict.ALLOW) == policy_allows:
        return Agreement.AGREES
    return Agreement.FORWARDED_BUT_DENIED if observed is Verdict.ALLOW else Agreement.DROPPED_BUT_ALLOWED
