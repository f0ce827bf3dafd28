"""Reading YAML and JSON text strictly: what a user's file says, or an error naming its line.

Shared by the manifest feed (:mod:`netpol_pdp.index.manifests`) and the
expectations of ``netpol-pdp test``, so both refuse the same things:

- a **duplicate key** in one mapping (``spec:`` twice): PyYAML and :mod:`json`
  silently keep the last one, so half of what the user wrote would be ignored
  without a word; ``kubectl`` refuses such a file, and so do we;
- nesting deeper than the parsers can follow: the pure-Python parsers raise
  :class:`RecursionError`, which would otherwise escape as a traceback.

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


class _NoDuplicateKeys:
    """Loader mixin: a key given twice in one mapping is an error (merge keys ``<<`` aside)."""

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


class StrictLoader(_NoDuplicateKeys, _BaseLoader):  # type: ignore[misc]
    """The fast (libyaml) safe loader, refusing duplicate keys: for manifests, read on every reload."""


class StrictPyLoader(_NoDuplicateKeys, yaml.SafeLoader):
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


def yaml_documents(text: str) -> list[Any]:
    """Every document of a YAML stream (``---`` separated; empty ones are None), read fast."""
    try:
        return list(yaml.load_all(text, Loader=StrictLoader))
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
