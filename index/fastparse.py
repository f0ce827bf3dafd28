"""The fast path of reading manifests: yaml-rs and msgspec, used only where they agree with
the strict readers of :mod:`netpol_pdp.index.documents`.

The strict readers (PyYAML with a Python-level constructor, :mod:`json` with a pairs
hook) are the contract: what they accept, refuse and say is what a load accepts,
refuses and says.  They are also slow: on the 10,000-pod benchmark world PyYAML
takes 2.1 s where yaml-rs takes 0.36 s.  Each function here returns what the
strict reader would return for the same text, or **None**, meaning "read this text
with the strict reader" (which then also locates any error).  None is returned:

1. when the text uses a feature this path leaves to PyYAML (:data:`_RARE_FEATURES`
   and the checks beside it): tags, merge keys ``<<``, the value key ``=``, complex
   keys ``?``, directives ``%YAML``, document end markers ``...``, anchors and aliases
   other than ``&name``/``*name`` as dumpers write them, a ``:`` that opens a token
   (an empty key), a flow collection that spans lines or holds a ``:`` before a
   non-space (PyYAML's ``{a:1}`` is ``{a: 1}``, YAML 1.2's ``{"a:1": null}``), a
   block scalar that may be empty (1.2 reads it as a line break), tabs, a byte
   order mark, the line breaks YAML 1.1 has and 1.2 has not (NEL, LS, PS), lone
   CRs, and the characters PyYAML refuses;
2. when a plain scalar may resolve to another type or value under YAML 1.2
   (yaml-rs) than under YAML 1.1 (PyYAML) (:data:`_AMBIGUOUS_NUMBER`,
   :func:`_ambiguous_bool`): ``yes``/``no``/``on``/``off``, timestamps, ``1e5``,
   ``0o17``, ``017``, ``08``, ``1:30``, ``+.5``, ``_6``, ``.NaN``, integers of 19
   digits or more, and any other number not spelled as a plain decimal integer or
   a ``digits.digits`` float.  The screen reads the text, not the parse, so a
   quoted ``"yes"`` sends its file to PyYAML too (slower, never wrong); words in
   comments are set aside before a second look (:data:`_COMMENT`);
3. when yaml-rs refuses the text (a syntax error, a duplicate key, nesting deeper
   than it follows, aliases that expand to more parser events than
   :data:`~netpol_pdp.index.documents.MAX_ALIAS_NODES`: an alias bomb is then
   counted, and refused with its line, by PyYAML), or msgspec refuses JSON (also
   ``NaN``), or a JSON text it reads cannot be written back (lone surrogates), or
   a JSON text repeats a key in one object;
4. when one YAML document is larger than :data:`MAX_FAST_DOCUMENT` characters: a
   large document is read by PyYAML in chunks, which lets other threads (the
   server's) run meanwhile (docs/manifest-feed.md).

Documents are split at their ``---`` markers here, each parsed alone: yaml-rs
returns a one-document stream whose document is a list exactly as it returns a
stream of several documents, and the document numbers of error lines and of
"declared twice; first in ..." must be PyYAML's.

tests/test_fastparse.py proves the agreement: hypothesis-generated manifests and
YAML variety (quoting, block and flow styles, anchors, comments, multi-document
streams, unicode, every number, bool and null spelling above, random text over
YAML's indicator characters) give PyYAML's documents or None, never other
documents and never documents where PyYAML refuses the text; so do every file
under ``examples/`` and the generated worlds (which give documents, not None,
for most files).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import yaml_rs

from netpol_pdp.index import documents
from netpol_pdp.index.documents import MAX_ALIAS_NODES, DocumentError

#: Largest YAML document (in characters) parsed by yaml-rs, which holds the interpreter
#: while it parses; PyYAML reads a larger one in chunks and lets other threads run.
MAX_FAST_DOCUMENT = 1 << 18

#: Text features this path leaves to PyYAML (rule 1 of the module docstring), each first
#: looked for by a cheap ``in`` test; the regular expressions confirm the rare hits.
_RARE_FEATURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Each pattern starts with its literal (which the regex engine finds fast), then looks
    # back: ``(?<!X!)`` is "the ``!`` does not follow a character X", X being none of a
    # token's separators (so it opens a token).
    ("!", re.compile(r"!(?<![^\s\[\]{},]!)")),  # a tag
    # an anchor or alias other than ``&name`` before a space or a line's end, ``*name`` before a
    # space or a flow indicator (PyYAML refuses some of the others, yaml-rs reads them)
    ("&", re.compile(r"&(?<![^\s\[\]{},]&)(?![A-Za-z0-9_-]+(?:[ ]+[^\s:#]|[ ]*(?:\n|$)))")),
    ("*", re.compile(r"\*(?<![^\s\[\]{},]\*)(?![A-Za-z0-9_-]+(?:[\s,\]}]|$))")),
    ("<<", re.compile(r"<<(?<![^\s\[\]{},]<<)")),  # a merge key
    ("=", re.compile(r"=(?<![^\s\[\]{},]=)(?![^\s\[\]{},:])")),  # the value key
    ("?", re.compile(r"\?(?<![^\s\[\]{},]\?)(?![^\s])")),  # a complex key
    ("\r", re.compile(r"\r(?!\n)")),  # a lone CR
    ("[", re.compile(r"\[[ ]*[:?|>]")),  # an indicator opening a flow scalar
    ("{", re.compile(r"\{[ ]*[:?|>]")),
    (",", re.compile(r",[ ]*[:?|>]")),
    # a collection as a key; ``:`` ending a flow item
    ("]", re.compile(r"\][ ]*:(?![^\s\[\]{},])")),
    ("}", re.compile(r"\}[ ]*:(?![^\s\[\]{},])")),
    (":", re.compile(r":[\]},]")),
    (":", re.compile(r":(?<![^\s\[{,?-]:)")),  # ``:`` opening a token: an empty key, ``:0``, ``::1``
)
#: What starts a line only in a stream this path leaves to PyYAML: a directive, an end marker.
_STREAM = ("%", "...")
#: Characters left to PyYAML wherever they are: tab, BOM, YAML 1.1's line breaks (NEL, LS, PS).
_RARE_CHARACTERS = ("\t", "\ufeff", "\x85", "\u2028", "\u2029")
#: Characters PyYAML refuses ("special characters are not allowed"), ASCII ones first.
_ASCII_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_REFUSED = re.compile(r"[^\x0a\x0d\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: YAML 1.1's bool words besides true/false (which 1.2 reads alike), as a token: searched for
#: in the lower-cased text, each literal first (fast), then its boundaries.
_BOOL_WORDS = tuple(
    re.compile(word + r"(?<![^\s\[\]{},]" + word + r")(?![^\s\[\]{},:])")
    for word in ("yes", "no", "on", "off")
)
#: The spellings of those words that YAML 1.1 reads as bools (``yES`` is a string in both).
_BOOL_SPELLINGS = frozenset(
    spelled for word in ("yes", "no", "on", "off") for spelled in (word, word.capitalize(), word.upper())
)

#: A plain-scalar token (after a space or a flow indicator) that starts like a
#: timestamp, or looks like a number and is not spelled as a plain decimal integer of at
#: most 18 digits or a ``digits.digits`` float, the two number spellings 1.1 and 1.2 read alike.
_AMBIGUOUS_NUMBER = re.compile(
    r"[\s\[\]{},](?=[-+._0-9])"
    r"(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"|(?!(?:-?(?:0|[1-9][0-9]{0,17})|-?[0-9]+\.[0-9]+)(?![^\s\[\]{},:]|:[0-9_.]))"
    r"(?:[-+]?0(?:[xX][0-9a-fA-F_]*|[oO][0-7_]*|[bB][01_]*)"
    r"|[-+]?(?=[._]*[0-9])[0-9_]*\.?[0-9_]*(?:[eE][-+]?[0-9_]*)?(?::[0-9_.]*)*"
    r"|[-+]?\.(?:[iI][nN][fF]|[nN][aA][nN]))"
    r"(?![^\s\[\]{},:]))"
)

#: A comment that surely is one, or else block-scalar text (a string in both): the first
#: ``#`` of a line, after a space or at the line's start, with no quote before or after it
#: on that line (a quote could end a multi-line quoted scalar and go on with plain tokens).
_COMMENT = re.compile(r"^((?:[^'\"\n#]*\s)?)#[^'\"\n]*$", re.M)

#: A ``---`` document start marker (at the start of a line, then a space or the line's end).
_DOCUMENT_START = re.compile(r"^---(?![^\s])", re.M)

#: Only comments and blank lines: the text before a stream's first ``---`` holds no document.
_BLANK = re.compile(r"(?:[ \r\n]|#[^\n]*)*")

#: A JSON string (its escapes included): removed, the colons left are the keys' (rule 3).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)

_JSON_DECODER = msgspec.json.Decoder()
_JSON_ENCODER = msgspec.json.Encoder()

#: What yaml-rs may expand aliases to, in parser events: at least one per node they stand
#: for, so a stream within it is within PyYAML's bound of :data:`MAX_ALIAS_NODES` nodes.
_ALIAS_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=MAX_ALIAS_NODES)


def _ambiguous_bool(text: str) -> bool:
    lowered = text.lower()
    for pattern in _BOOL_WORDS:
        for match in pattern.finditer(lowered):
            if text[match.start() : match.end()] in _BOOL_SPELLINGS:
                return True
    return False


#: A block scalar's header (``|``, ``>-``, ...) at the end of its line.
_BLOCK_HEADER = re.compile(r"(?<![^\s])[|>][-+0-9]*[ ]*(?:#[^\n]*)?\n")
_INDENT = re.compile(r"[ ]*")


def _odd_block_scalar(text: str) -> bool:
    """Whether a block scalar may be empty: YAML 1.2 reads an empty ``|`` as a line break,
    PyYAML as nothing.  Conservatively: its next non-blank line is not indented more than
    the header's line (a top-level one at column 0 is left to PyYAML too)."""
    if not text.endswith("\n"):
        return _BLOCK_HEADER.search(text + "\n") is not None  # its last line would end it
    for header in _BLOCK_HEADER.finditer(text):
        line_start = text.rfind("\n", 0, header.start()) + 1
        indent = _INDENT.match(text, line_start).end() - line_start  # type: ignore[union-attr]
        pos = header.end()
        while True:
            line_end = text.find("\n", pos)
            line = text[pos:] if line_end < 0 else text[pos:line_end]
            if line.strip(" "):
                break
            if line_end < 0:
                return True  # nothing after the header
            pos = line_end + 1
        if len(line) - len(line.lstrip(" ")) <= indent:
            return True
    return False


_FLOW_OPEN = re.compile(r"[\[{]")
_QUOTED = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'")
#: In a flow collection PyYAML takes any ``:`` for a value indicator (``{a:1}`` is {a: 1}),
#: YAML 1.2 only one before a space or after a quoted key (``{a:1}`` is {"a:1": null}).
_FLOW_COLON = re.compile(r"(?<![\"']):[^\s,\[\]{}\"']")


def _odd_flow(text: str) -> bool:
    """Whether a flow collection may be read differently: one that spans lines, or holds a
    ``:`` that PyYAML and YAML 1.2 take differently (quoted text set aside, line by line)."""
    pos = 0
    while (found := _FLOW_OPEN.search(text, pos)) is not None:
        end = text.find("\n", found.start())
        end = len(text) if end < 0 else end
        start = text.rfind("\n", 0, found.start()) + 1
        line = _QUOTED.sub('""', text[start:end])
        first = _FLOW_OPEN.search(line)
        if first is not None:
            part = line[first.start() :]
            if part.count("[") != part.count("]") or part.count("{") != part.count("}"):
                return True
            if _FLOW_COLON.search(part):
                return True
        pos = end + 1
    return False


def _ambiguous_token(text: str) -> bool:
    # the text's first token has no separator before it: lead it with one
    if _AMBIGUOUS_NUMBER.search(text) or _AMBIGUOUS_NUMBER.match("\n" + text[:64]):
        return True
    return _ambiguous_bool(text)


def _plain(text: str) -> bool:
    """No rare feature, no block scalar that may be empty, no ambiguous token."""
    for literal, pattern in _RARE_FEATURES:
        if literal in text and pattern.search(text):
            return False
    if ("|" in text or ">" in text) and _odd_block_scalar(text):
        return False
    if ("[" in text or "{" in text) and _odd_flow(text):
        return False
    return not _ambiguous_token(text)


def _stream_ok(text: str) -> bool:
    """What holds for a whole stream or not at all: no line starts with ``%`` (a directive,
    ``%YAML 1.1``, ``%TAG``) or ``...`` (a document end marker)."""
    return not any(text.startswith(mark) or f"\n{mark}" in text for mark in _STREAM)


def _characters_ok(text: str) -> bool:
    """None of the characters left to PyYAML wherever they are, nor any PyYAML refuses."""
    if text.isascii():  # the common case: of the rare characters only a tab can be there
        return "\t" not in text and _ASCII_REFUSED.search(text) is None
    if any(c in text for c in _RARE_CHARACTERS):
        return False
    return _REFUSED.search(text) is None


def screened(text: str) -> bool:
    """Whether the text may be read by yaml-rs: it has none of the features and no plain
    scalar of the spellings that this path leaves to PyYAML (rules 1 and 2)."""
    if not (_stream_ok(text) and _characters_ok(text)):
        return False
    if _plain(text):
        return True
    # Words in comments ("# no ...", "port 8080.", "*production") look like tokens and
    # features: look again without them.
    return "#" in text and _plain(_COMMENT.sub(r"\1", text))


def _documents(text: str) -> list[str]:
    """The text of each document of a stream: from one ``---`` marker to the next (the
    text before the first marker when it holds more than comments).

    Found with ``str.find`` rather than one regular expression over the whole text, so
    that the interpreter may switch threads between markers (a long scan in C holds the
    other threads, the server's, as long as it runs)."""
    starts: list[int] = [0] if _DOCUMENT_START.match(text) else []
    pos = 0
    while (found := text.find("\n---", pos)) >= 0:
        pos = found + 4
        if _DOCUMENT_START.match(text, found + 1):
            starts.append(found + 1)
    pieces: list[str] = []
    head = text[: starts[0]] if starts else text
    if _BLANK.fullmatch(head) is None:
        pieces.append(head)
    ends = [*starts[1:], len(text)] if starts else []
    pieces.extend(text[a:b] for a, b in zip(starts, ends, strict=True))
    return pieces


def yaml_documents(text: str) -> list[Any] | None:
    """The documents of a YAML stream as PyYAML's strict loader gives them, or None:
    read this text with :func:`netpol_pdp.index.documents.yaml_documents`.

    Documents are independent (anchors, keys and alias counts are each document's
    own), so the screen is applied to each: a document it leaves to PyYAML is read by
    the strict loader alone, the others by yaml-rs.  Whatever goes wrong in either
    gives None, and the strict loader reads the whole stream (and says where).
    """
    if not _stream_ok(text):
        return None
    docs: list[Any] = []
    for piece in _documents(text):
        if len(piece) > MAX_FAST_DOCUMENT:
            pass  # read by PyYAML in chunks, letting other threads run
        elif not _characters_ok(piece):
            return None
        elif _plain(piece) or ("#" in piece and _plain(_COMMENT.sub(r"\1", piece))):
            try:
                docs.append(yaml_rs.loads(piece, parse_datetime=False, alias_limits=_ALIAS_LIMITS))
            except Exception:  # a syntax error, a duplicate key, too deep, too many aliases
                return None
            continue
        try:
            strict = documents.yaml_documents(piece)
        except DocumentError:
            return None  # its line is counted from the stream's start: read it whole
        if len(strict) != 1:
            return None
        docs.append(strict[0])
    return docs


def json_value(text: str) -> tuple[Any] | None:
    """``(value,)``, the value :mod:`json` would read from ``text``, or None: read it with
    :func:`netpol_pdp.index.documents.json_document` (which also says what is wrong).

    msgspec keeps the last of two equal keys without a word; a repeated key is found by
    counting: the colons outside strings are the keys the text writes, and msgspec's
    compact encoding of the value writes the keys it kept the same way.
    """
    try:
        value = _JSON_DECODER.decode(text)
        kept = _JSON_ENCODER.encode(value).decode()
    except (msgspec.DecodeError, msgspec.EncodeError, UnicodeError, RecursionError):
        return None
    if _JSON_STRING.sub("", text).count(":") != _JSON_STRING.sub("", kept).count(":"):
        return None  # a duplicate key: the strict reader names it
    return (value,)
