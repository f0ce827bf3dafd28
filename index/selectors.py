"""Label selectors for the index: matching, canonical peer-selector keys, anchors.

Rules (SEMANTICS.md "Selectors"), mirrored by tests/test_semantics.py:

1. ``matchLabels``: every pair must be present with an equal value.
2. ``In``: the key is present and its value is listed.
3. ``NotIn``: the key is absent, or its value is not listed.
4. ``Exists`` / ``DoesNotExist``: the key is present / absent.
5. An empty selector matches everything.

A *peer selector* is what one ``from``/``to`` element with selectors means,
reduced to a canonical :class:`PeerKey` so that equal peers across policies share
one cached membership (Cilium's selector cache does the same):

- ``podSelector`` alone  -> ``PeerKey(namespace=<policy ns>, ns_selector=None, pod_selector=S)``
- ``namespaceSelector`` alone -> ``PeerKey(None, NS, EMPTY)``
- both -> ``PeerKey(None, NS, S)``

An *anchor* is one ``(side, key, value)`` that every match must carry; it lets a
new identity find the few selectors that could match it through an inverted
index instead of testing every selector in the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from netpol_pdp.index.model import LabelSelector, Operator, Requirement

EMPTY = LabelSelector()


def matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy ``selector`` (rules 1-5 of this module)."""
    for key, value in selector.match_labels:
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        op = req.operator
        if op is Operator.IN:
            if labels.get(req.key) not in req.values:
                return False
        elif op is Operator.NOT_IN:
            if req.key in labels and labels[req.key] in req.values:
                return False
        elif op is Operator.EXISTS:
            if req.key not in labels:
                return False
        elif req.key in labels:  # DoesNotExist
            return False
    return True


class PeerKey(NamedTuple):
    """Canonical form of one selector peer (see module docstring)."""

    namespace: str | None
    ns_selector: LabelSelector | None
    pod_selector: LabelSelector

    def matches(self, namespace: str, labels: Mapping[str, str], ns_labels: Mapping[str, str]) -> bool:
        if self.namespace is not None:
            if namespace != self.namespace:
                return False
        elif self.ns_selector is not None and not matches(self.ns_selector, ns_labels):
            return False
        return matches(self.pod_selector, labels)

    @property
    def is_any_pod(self) -> bool:
        """True for ``namespaceSelector: {}`` alone: every pod of every namespace."""
        return self.namespace is None and self.ns_selector == EMPTY and self.pod_selector == EMPTY


def peer_key(
    policy_namespace: str, pod_selector: LabelSelector | None, ns_selector: LabelSelector | None
) -> PeerKey:
    if ns_selector is None:
        return PeerKey(policy_namespace, None, pod_selector or EMPTY)
    return PeerKey(None, ns_selector, pod_selector or EMPTY)


#: ("pod" | "ns", key, value): a label pair every identity matched by a selector carries.
Anchor = tuple[str, str, str]


def _selector_anchor(selector: LabelSelector) -> tuple[str, str] | None:
    if selector.match_labels:
        return selector.match_labels[0]
    for req in selector.match_expressions:
        if req.operator is Operator.IN and len(req.values) == 1:
            return (req.key, next(iter(req.values)))
    return None


def anchor_of(key: PeerKey) -> Anchor | None:
    """The anchor used to bucket ``key`` in the selector index (None: no cheap anchor).

    Namespace-bound keys are bucketed by their namespace instead (see
    :class:`netpol_pdp.index.engine.Index`), so they are only anchored by pod labels.
    """
    pod = _selector_anchor(key.pod_selector)
    if pod is not None:
        return ("pod", *pod)
    if key.ns_selector is not None:
        ns = _selector_anchor(key.ns_selector)
        if ns is not None:
            return ("ns", *ns)
    return None


def parse_selector_text(text: str) -> LabelSelector:
    """A label selector written as ``kubectl -l`` takes it: ``app=web,tier!=db,env in (a,b),
    role notin (x),debug,!canary`` (``=`` and ``==`` alike; an empty text selects everything).

    Raises ValueError naming the term that is not one of those forms.
    """
    labels: dict[str, str] = {}
    exprs: list[Requirement] = []
    terms: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    for raw in terms:
        term = raw.strip()
        if not term:
            if text.strip():
                raise ValueError(f"selector {text!r}: an empty term")
            continue
        m = _SET_TERM.fullmatch(term)
        if m is not None:
            values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
            op = Operator.IN if m["op"] == "in" else Operator.NOT_IN
            exprs.append(Requirement(m["key"], op, values))
        elif "!=" in term:
            key, value = (p.strip() for p in term.split("!=", 1))
            exprs.append(Requirement(_key(key, term), Operator.NOT_IN, frozenset({value})))
        elif "=" in term:
            key, value = (p.strip() for p in term.replace("==", "=", 1).split("=", 1))
            if "=" in value:
                raise ValueError(f"selector term {term!r}: one = (or ==) between key and value")
            labels[_key(key, term)] = value
        elif term.startswith("!"):
            exprs.append(Requirement(_key(term[1:].strip(), term), Operator.DOES_NOT_EXIST))
        else:
            exprs.append(Requirement(_key(term, term), Operator.EXISTS))
    return LabelSelector(tuple(sorted(labels.items())), tuple(exprs))


_SET_TERM = re.compile(r"(?P<key>[A-Za-z0-9._/-]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)")
_KEY = re.compile(r"([A-Za-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def _key(key: str, term: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError(f"selector term {term!r}: {key!r} is not a label key")
    return key
