"""ipBlock matching with radix tries: one lookup yields every rule the address satisfies.

Shape: one pytricia trie per IP family whose prefixes are every ``cidr`` and
every ``except`` of the rules of one compiled direction.  The value stored at a
prefix P is the set of rule ids that allow an address whose *longest* match in
the trie is P.  It is computed root to leaf:

    allowed(P) = allowed(parent(P)) + {blocks whose cidr is P} - {blocks with an except equal to P}

which is exact because every prefix that contains an address is in the trie and
an ``except`` is always strictly inside its own ``cidr`` (validation rule 2).
Blocks are tracked individually (a rule with two ipBlock peers is allowed by
either), then reduced to rule ids.  Not indexed: addresses outside every cidr
(the lookup returns nothing).

Why a trie and not a scan: a lookup costs the same whatever the number of
blocks (~0.1 µs measured), where a scan of ``ipaddress`` networks costs ~1 µs
per block.
"""

from __future__ import annotations

from collections import defaultdict

import pytricia

from netpol_pdp.index.model import IPBlock, IPNetwork

_NOTHING: frozenset[int] = frozenset()


class IPBlockMatcher:
    """Immutable after construction; maps an address to the rule ids whose ipBlocks contain it."""

    __slots__ = ("_v4", "_v6")

    def __init__(self, blocks: list[tuple[int, IPBlock]]) -> None:
        """``blocks`` is ``(rule id, IPBlock)`` for every ipBlock peer of the direction's rules."""
        self._v4 = self._build(32, [(r, b) for r, b in blocks if b.cidr.version == 4])
        self._v6 = self._build(128, [(r, b) for r, b in blocks if b.cidr.version == 6])

    @staticmethod
    def _build(bits: int, blocks: list[tuple[int, IPBlock]]) -> pytricia.PyTricia | None:
        if not blocks:
            return None
        adds: dict[IPNetwork, set[int]] = defaultdict(set)  # prefix -> block numbers starting there
        removes: dict[IPNetwork, set[int]] = defaultdict(set)  # prefix -> block numbers excepted there
        rule_of: list[int] = []
        for n, (rule_id, block) in enumerate(blocks):
            rule_of.append(rule_id)
            adds[block.cidr].add(n)
            for exc in block.except_:
                removes[exc].add(n)
        trie = pytricia.PyTricia(bits)
        prefixes = sorted(set(adds) | set(removes), key=lambda p: p.prefixlen)
        for p in prefixes:
            trie[str(p)] = None
        live: dict[str, frozenset[int]] = {}
        for p in prefixes:  # parents come before children: sorted by prefix length
            text = str(p)
            parent = trie.parent(text)
            inherited = live[parent] if parent is not None else _NOTHING
            live[text] = (inherited | adds.get(p, set())) - removes.get(p, set())
        for text, block_ids in live.items():
            trie[text] = frozenset(rule_of[b] for b in block_ids)
        return trie

    def prefixes(self) -> list[str]:
        """Every ``cidr`` and ``except`` prefix of the direction, both families (reach queries
        cut the address space at them: inside one region the matching rules are constant)."""
        return [p for trie in (self._v4, self._v6) if trie is not None for p in trie]

    def rules_for(self, ip: str) -> frozenset[int]:
        """Rule ids whose ipBlocks contain ``ip`` (a normalised address, or a prefix: then the
        rules of its longest containing prefix)."""
        trie = self._v6 if ":" in ip else self._v4
        if trie is None:
            return _NOTHING
        found = trie.get(ip)
        return found if found is not None else _NOTHING
