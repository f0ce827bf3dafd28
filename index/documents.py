"""Reading YAML and JSON text strictly: what a user's file says, or an error naming its line.

Shared by the manifest feed (:mod:`netpol_pdp.index.manifests`) and the
expectations of ``netpol-pdp test``, so both refuse the same things:

- a **duplicate key** in one mapping (``spec:`` twice): PyYAML and :mod:`json`
  silently keep the last one, so half of what the user wrote would be ignored
  without a word; ``kubectl`` refuses such a file, and so do we;
- nesting deeper than the parsers can follow: the pure-Python parsers raise
  :class:`RecursionError`, which would otherwise escape as a traceback;
- a scalar that resolves to a type whose constructor fails (a timestamp-shaped
  ``2024-13-45`` or ``2026-02-30``, an integer of more than 4,300 digits,
  ``!!float x``): PyYAML lets the ``ValueError`` out unlocated; here it is an
  error at the value's line and column;
- **alias expansion** beyond :data:`MAX_ALIAS_NODES` nodes in one document (a
  "billion laughs" bomb): PyYAML shares the aliased objects, but whoever walks
  or prints the result (validation, an error message) expands them.

Both functions raise :class:`DocumentError`, whose :meth:`DocumentError.located`
reads ``file: line L, column C: invalid YAML: ...``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

#: libyaml's loader is about ten times faster than the pure-Python one, when PyYAML has it.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MERGE_TAG = "tag:yaml.org,2002:merge"

#: Most nodes that the aliases (``*name``) of one document may stand for, counting each
#: alias as the whole subtree it repeats.  Anchors in hand-written manifests repeat a
#: few labels or ports; the go-yaml parser behind ``kubectl`` refuses "excessive
#: aliasing" likewise.  A bomb of nine nested nine-fold aliases stands for 387 million.
MAX_ALIAS_NODES = 100_000

#: Longest error text quoted from a failing constructor (its message may quote the value).
_MAX_CAUSE = 200


class DocumentError(ValueError):
    """Text that is not a well-formed YAML/JSON document: the problem and, when known, where."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def located(self, path: str) -> str:
        """``path: line L, column C: message`` (as much of the place as is known)."""
        if self.line is None:
            return f"{path}: {self.message}"
        if self.column is None:
            return f"{path}: line {self.line}: {self.message}"
        return f"{path}: line {self.line}, column {self.column}: {self.message}"


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for with every alias below it expanded (memoised by id)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a node that contains itself counts once more, not forever
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = total
    return total


def _unreadable(node: yaml.Node, err: Exception) -> yaml.constructor.ConstructorError:
    cause = str(err)
    if len(cause) > _MAX_CAUSE:
        cause = cause[:_MAX_CAUSE] + "..."
    kind = node.tag.rpartition(":")[2] or "this"
    message = f"cannot read {kind} value: {cause}"
    return yaml.constructor.ConstructorError(None, None, message, node.start_mark)


class _NoDuplicateKeys:
    """Loader mixin: a key given twice in one mapping is an error (merge keys ``<<`` aside);
    so is a scalar that its constructor cannot read (located at that scalar)."""

    def construct_document(self, node: yaml.Node) -> Any:
        try:
            return super().construct_document(node)  # type: ignore[misc]
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as err:  # int('9' * 5000), date(2024, 13, 45), float('x'), ...
            # A node stays in ``recursive_objects`` from the start of its construction to
            # its end: the last one left is the innermost, the value that failed.  Found
            # here rather than by wrapping every construct_object call, which costs 10%.
            in_progress: dict[yaml.Node, None] = self.recursive_objects  # type: ignore[attr-defined]
            raise _unreadable(next(reversed(in_progress), node), err) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        values = [key_node.value for key_node, _value in node.value]
        if len(set(map(str, values))) < len(values):  # rare: only then look closer (tags, merge keys)
            self._check_duplicates(node)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep)  # type: ignore[misc]
        return mapping

    @staticmethod
    def _check_duplicates(node: yaml.MappingNode) -> None:
        seen: dict[tuple[str, str], yaml.Mark] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = (key_node.tag, key_node.value)
            first = seen.setdefault(key, key_node.start_mark)
            if first is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key_node.value!r} (first given on line {first.line + 1})",
                    key_node.start_mark,
                )


class _BoundedAliases:
    """Loader mixin: aliases of one document may stand for at most :data:`MAX_ALIAS_NODES` nodes."""

    _alias_nodes = 0
    _alias_sizes: dict[int, int]

    def construct_document(self, node: yaml.Node) -> Any:
        self._alias_nodes = 0
        self._alias_sizes = {}
        try:
            return super().construct_document(node)  # type: ignore[misc]
        finally:
            self._alias_sizes = {}

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.constructed_objects:  # type: ignore[attr-defined]
            # constructed before: an alias (or a merge key's copy) of that node
            self._alias_nodes += _expanded_size(node, self._alias_sizes)
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes (an alias bomb?)",
                    node.start_mark,
                )
        return super().construct_object(node, deep)  # type: ignore[misc]


class StrictLoader(_NoDuplicateKeys, _BaseLoader):  # type: ignore[misc]
    """The fast (libyaml) safe loader, refusing duplicate keys: for manifests, read on every reload.

    It does not bound aliases: :func:`yaml_documents` uses it only for text without ``*``."""


class _StrictAliasLoader(_BoundedAliases, StrictLoader):
    """:class:`StrictLoader` counting what aliases expand to (an extra call per node: 10% slower)."""


class StrictPyLoader(_BoundedAliases, _NoDuplicateKeys, yaml.SafeLoader):
    """The pure-Python safe loader, refusing duplicate keys: for small hand-written files, whose
    errors it places on the line the user wrote (libyaml marks an unclosed bracket on the next)."""


def _yaml_error(err: yaml.YAMLError) -> DocumentError:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    message = f"invalid YAML: {context}: {problem}" if context else f"invalid YAML: {problem}"
    if mark is None:
        return DocumentError(message)
    return DocumentError(message, mark.line + 1, mark.column + 1)


class _Chunks:
    """``text`` as a stream that libyaml reads piece by piece, through a Python-level ``read``.

    Given a whole string, libyaml scans it without letting go of the interpreter: a
    20 MB scalar held every other thread (the server's) for 85 ms.  Each call of this
    ``read`` runs Python code, where the interpreter can switch threads: 15 ms then,
    at no cost in throughput (figures in docs/manifest-feed.md).
    """

    __slots__ = ("_pos", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0

    def read(self, size: int = -1) -> str:
        start = self._pos
        self._pos = end = len(self._text) if size < 0 else start + size
        return self._text[start:end]


def yaml_documents(text: str) -> list[Any]:
    """Every document of a YAML stream (``---`` separated; empty ones are None), read fast."""
    try:
        # An alias is written ``*name``: text without ``*`` has none to count.
        loader = _StrictAliasLoader if "*" in text else StrictLoader
        return list(yaml.load_all(_Chunks(text), Loader=loader))
    except yaml.YAMLError as err:
        raise _yaml_error(err) from None
    except RecursionError:
        raise DocumentError("invalid YAML: nested too deeply") from None


def yaml_document(text: str) -> Any:
    """The one document of a small YAML file (None when empty); a second document is an error."""
    try:
        return yaml.load(text, Loader=StrictPyLoader)
    except yaml.YAMLError as err:
        raise _yaml_error(err) from None
    except RecursionError:
        raise DocumentError("invalid YAML: nested too deeply") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def json_document(text: str) -> Any:
    """The JSON value of ``text``; duplicate keys and excessive nesting are errors."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as err:
        raise DocumentError(f"invalid JSON: {err.msg}", err.lineno, err.colno) from None
    except RecursionError:
        raise DocumentError("invalid JSON: nested too deeply") from None
    except _DuplicateKey as dup:
        # json does not say where; the second time the key is written is the best guess.
        spelled = [m.start() for m in re.finditer(re.escape(json.dumps(dup.key)) + r"\s*:", text)]
        line = text.count("\n", 0, spelled[1]) + 1 if len(spelled) > 1 else None
        raise DocumentError(f"invalid JSON: duplicate key {dup.key!r}", line) from None
