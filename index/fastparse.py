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

**A whole stream at once** (:func:`_whole_stream`, the common case): an ASCII
stream of at most :data:`MAX_FAST_DOCUMENT` characters is screened whole and, if
it passes, parsed by one ``yaml_rs.loads`` call.  The screen is cheap because it
does not try patterns at every separator: the rules on characters that are
everywhere in a manifest (``:``, space, digits: rules 1 and 2 on numbers, bools, a
``:`` opening a token, control characters, directives, end markers) are one pass of
RE2's automaton (:data:`_SCREEN`, a ``google-re2`` Set over the text's bytes), and
each rare feature is looked for only if a one-character ``in`` test (``memchr``)
finds its character (:func:`_rare_feature`).  Two empty documents are appended
(:data:`_SENTINELS`), so yaml-rs returns a list of the documents whatever their
number (alone, a document that is a list would look like a stream).  A number-like
token that PyYAML reads as a string but YAML 1.2 as a number (a generated
``pod-template-hash: 65086e0705`` is a float, ``0165264961`` an int) does not send
its document to PyYAML: where it stands alone on a ``key: token`` line, in a text
with no block scalar, no comment and no quoted scalar that could span lines, it is
put in single quotes for yaml-rs (:func:`_quoted_numbers`), which then reads the
string PyYAML reads; a token PyYAML reads as something else (``017``, ``1:30``,
``yes``) is not quoted.  tests/test_fastparse.py checks that the stream screen
refuses whatever the document screen refuses and finds every number it finds.

**Document by document** otherwise (a stream the stream screen refuses, non-ASCII
text, a larger stream): documents are split at their ``---`` markers, each
screened and parsed alone, by yaml-rs or by the strict loader.  Splitting is
needed because yaml-rs returns a one-document stream whose document is a list
exactly as it returns a stream of several documents, and the document numbers of
error lines and of "declared twice; first in ..." must be PyYAML's.

tests/test_fastparse.py proves the agreement: hypothesis-generated manifests and
number-like tokens in sixteen places around a ``key: token`` line (quoted text over
lines, block scalars, flows, plain scalars over lines, keys, comments) and
YAML variety (quoting, block and flow styles, anchors, comments, multi-document
streams, unicode, every number, bool and null spelling above, random text over
YAML's indicator characters) give PyYAML's documents or None, never other
documents and never documents where PyYAML refuses the text; so do every file
under ``examples/`` and the generated worlds (which give documents, not None,
for most files).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec
import re2
import yaml
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
    # in a flow PyYAML takes any ``?`` opening a token for one (``{a: ?}``, yaml-rs: {a: "?"})
    ("?", re.compile(r"[\[{][^\n]*(?<=[\s\[\]{},])\?")),
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
    if "[" not in text and "]" not in text and text.count("{") == text.count("}") == text.count("{}\n"):
        return False  # only ``{}`` ending its line (``podSelector: {}``): nothing else can be there
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


#: The screen of a whole stream, in one pass of RE2's automaton over the text's bytes (rules 1
#: and 2 for what the ``in`` tests of :func:`_rare_feature` cannot find cheaply, the characters
#: ``:``, space and digits being everywhere).  The text is ASCII here and holds no control
#: character but a line break (the first pattern), so ``\s`` of the per-document screen is
#: ``[ \n\r]``; each pattern finds at least what its counterpart there finds, none looks around.
_SEPARATORS = b" \n\r[]{},"
_SEPARATOR = r"[ \n\r\[\]{},]"
_TOKEN_START = r"(?:^|" + _SEPARATOR + ")"
_STREAM_SCREEN = (
    r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]",  # _characters_ok: a tab, a character PyYAML refuses
    r"(?:^|\n)(?:%|\.\.\.)",  # _stream_ok: a directive, a document end marker
    r"(?:^|[ \n\r\[{,?-]):",  # a ``:`` opening a token
    r":[\]},]",  # ``:`` ending a flow item
    # _ambiguous_bool
    _TOKEN_START + r"(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)(?:[ \n\r\[\]{},:]|$)",
)
#: A digit and around it what makes a number's mantissa (``1``, ``1.5``, ``.5``, ``1_0``), what
#: may follow it (an exponent, sexagesimal parts) and what ends the token (a separator, ``:``).
_MANTISSA = r"(?:[0-9_]*[0-9][0-9_]*(?:\.[0-9_]*)?|[0-9_]*\.[0-9_]*[0-9][0-9_]*)"
_TAIL = r"(?:[eE][-+]?[0-9_]*)?(?::[0-9_.]*)*"
_END = r"(?:[ \n\r\[\]{},:]|$)"
#: :data:`_AMBIGUOUS_NUMBER` as a union of what its negative look-ahead leaves, each alternative
#: a way of not being a plain ``123`` or ``1.5`` (a match may end on the separator after the
#: token, which may start the next: :func:`_quoted_numbers` looks again from there).
_NUMBER_SCREEN = _TOKEN_START + (
    r"(?:[-+]?0[0-9_][0-9_]*\.?[0-9_]*"
    + _TAIL
    + _END  # 017, 08, 0165264961
    + r"|[-+]?0(?:[xX][0-9a-fA-F_]*|[oO][0-7_]*|[bB][01_]*)"
    + _END  # 0x1F, 0o17, 0b1
    + r"|[-+]?\.(?:[iI][nN][fF]|[nN][aA][nN])"
    + _END  # .inf, .NaN
    + r"|\+"
    + _MANTISSA
    + _TAIL
    + _END  # +1
    + r"|[-+]?"
    + _MANTISSA
    + r"[eE][-+]?[0-9_]*(?::[0-9_.]*)*"
    + _END  # 1e5, 65086e0705
    + r"|[-+]?"
    + _MANTISSA
    + r"(?:[eE][-+]?[0-9_]*)?(?::[0-9_.]*)*:[0-9_.]"  # 1:30, and 0:0-
    + r"|[-+]?[0-9.]*_[0-9_.]*"
    + _TAIL
    + _END  # 1_000
    + r"|[-+]?\.[0-9_]+"
    + _TAIL
    + _END  # .5
    + r"|[-+]?[0-9_]+\."
    + _TAIL
    + _END  # 5.
    + r"|-?[0-9]{19}"  # beyond 64 bits
    + r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2})"  # a timestamp
)
_SCREEN = re2.Set.SearchSet()
#: What each pattern of :data:`_SCREEN` stands for (its index in the set).
_CHARACTERS, _TOKENS, _NUMBERS, _RARE = 0, 1, 2, 3
#: A character of one of the rare features (:data:`_RARE_FEATURES` but ``:``, block scalars,
#: flows): without one, :func:`_rare_feature` need not look (most files of Pods).
_RARE_CHARACTER = r"[!&*<=?\r\[\]{},|>]"
for _pattern in ("|".join(_STREAM_SCREEN[:2]), "|".join(_STREAM_SCREEN[2:]), _NUMBER_SCREEN, _RARE_CHARACTER):
    _SCREEN.Add(_pattern)
_SCREEN.Compile()
_NUMBER = re2.compile(_NUMBER_SCREEN)

#: A line where a number-like token may be quoted for yaml-rs: ``key: TOKEN`` (in block
#: context, maybe a list item), the token the whole rest of the line.
_QUOTABLE_LINE = re.compile(r"[ ]*(?:- )*[A-Za-z0-9][A-Za-z0-9._/-]*: ([-+._0-9A-Za-z]+)")
#: A value in single quotes as a dumper writes it (``canary: 'true'``): a text whose every
#: quote is in one of these has no quoted scalar over lines (where a line would be text).
_SIMPLE_QUOTED = re.compile(r": '[A-Za-z0-9._/-]*'\n")
#: PyYAML's own resolution of a plain scalar (types-PyYAML leaves it untyped).
_pyyaml_tag: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = yaml.resolver.Resolver().resolve
_STR_TAG = "tag:yaml.org,2002:str"
#: Two empty documents after a stream: yaml-rs then returns a list of its documents whatever
#: their number (one document alone, it returns as it is, even a list).
_SENTINELS = "--- ~\n--- ~\n"


def _rare_feature(text: str) -> bool:
    """Rule 1 for the features a one-character ``in`` test finds absent almost always."""
    for literal, pattern in _RARE_FEATURES:
        if literal != ":" and literal[0] in text and literal in text and pattern.search(text):
            return True
    if ("|" in text or ">" in text) and _odd_block_scalar(text):
        return True
    return ("[" in text or "{" in text) and _odd_flow(text)


def _quoted_numbers(text: str, data: bytes) -> str | None:
    """The text with each number-like token :data:`_NUMBER` finds in single quotes, where that
    reads it as PyYAML reads it: as the string it is to PyYAML (``65086e0705``, which YAML
    1.2 reads as a float), alone on a ``key: token`` line, in a text with no block scalar and
    no quoted scalar over lines (where the line would be text).  None if any token is not so."""
    if "|" in text or ">" in text or "#" in text:
        return None
    if '"' in text or ("'" in text and text.count("'") != 2 * len(_SIMPLE_QUOTED.findall(text))):
        return None
    pieces: list[str] = []
    done = pos = 0
    while (match := _NUMBER.search(data, pos)) is not None:
        # one alternative ends on the separator after ``5.``: the next token may start there
        pos = match.end() - (data[match.end() - 1 : match.end()] in _SEPARATORS)
        start = match.start() + (match.start() > 0 or data[:1] in _SEPARATORS)
        if start < done:
            return None  # a second token on a quoted line (it cannot be: the token ends it)
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", start)
        line = _QUOTABLE_LINE.fullmatch(text, line_start, line_end) if line_end >= 0 else None
        if line is None or line.start(1) != start:
            return None
        token = line.group(1)
        if _pyyaml_tag(yaml.ScalarNode, token, (True, False)) != _STR_TAG:
            return None
        pieces += [text[done:start], "'", token, "'"]
        done = line_end
    pieces.append(text[done:])
    return "".join(pieces)


def _stream_verdict(text: str, data: bytes) -> str:
    """What the stream screen says of an ASCII text: ``"plain"`` (yaml-rs may read it as it
    is), ``"quote"`` (once its number-like tokens are quoted) or ``"refuse"``."""
    hits = _SCREEN.Match(data) or ()
    if _CHARACTERS in hits:
        return "refuse"
    rare = _RARE in hits and _rare_feature(text)
    if _TOKENS not in hits and _NUMBERS not in hits and not rare:
        return "plain"
    if "#" in text:
        # Words in comments ("# no ...", "port 8080.", "*production") look like tokens and
        # features: look again without them (and quote nothing then).
        bare = _COMMENT.sub(r"\1", text)
        return "refuse" if _rare_feature(bare) or _SCREEN.Match(bare.encode("ascii")) else "plain"
    return "quote" if _TOKENS not in hits and not rare else "refuse"


def _whole_stream(text: str) -> list[Any] | None:
    """The documents of an ASCII stream, parsed by yaml-rs in one call, when the whole text
    passes the screen (numbers quoted by :func:`_quoted_numbers`); None: screen each document."""
    data = text.encode("ascii")
    verdict = _stream_verdict(text, data)
    if verdict == "refuse":
        return None
    if verdict == "quote":
        quoted = _quoted_numbers(text, data)
        if quoted is None:
            return None
        text = quoted
    if text and not text.endswith("\n"):
        text += "\n"
    try:
        docs = yaml_rs.loads(text + _SENTINELS, parse_datetime=False, alias_limits=_ALIAS_LIMITS)
    except Exception:  # a syntax error, a duplicate key, too deep, too many aliases in the stream
        return None
    if type(docs) is not list or len(docs) < 2 or docs[-1] is not None or docs[-2] is not None:
        return None
    del docs[-2:]
    return docs


def yaml_documents(text: str) -> list[Any] | None:
    """The documents of a YAML stream as PyYAML's strict loader gives them, or None:
    read this text with :func:`netpol_pdp.index.documents.yaml_documents`.

    Documents are independent (anchors, keys and alias counts are each document's
    own), so the screen is applied to each: a document it leaves to PyYAML is read by
    the strict loader alone, the others by yaml-rs.  Whatever goes wrong in either
    gives None, and the strict loader reads the whole stream (and says where).
    """
    if len(text) <= MAX_FAST_DOCUMENT and text.isascii():
        whole = _whole_stream(text)
        if whole is not None:
            return whole
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


def yaml_rs_count(text: str) -> int:
    """How many documents of the stream :func:`yaml_documents` reads with yaml-rs (a figure of
    ``bench/world_load.py``; the others are read by the strict loader)."""
    if len(text) <= MAX_FAST_DOCUMENT and text.isascii():
        whole = _whole_stream(text)
        if whole is not None:
            return len(whole)
    return sum(len(piece) <= MAX_FAST_DOCUMENT and screened(piece) for piece in _documents(text))


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
