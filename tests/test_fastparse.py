"""The fast readers (yaml-rs, msgspec) agree with the strict ones (PyYAML, json) or step aside.

The rule under test (index/fastparse.py): for any text, ``fastparse.yaml_documents``
returns exactly what ``documents.yaml_documents`` returns, or None (then the strict
reader reads it); it never returns documents where the strict reader refuses the
text.  Likewise ``fastparse.json_value`` and ``documents.json_document``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from netpol_pdp.bench.worlds import generate_world, write_world
from netpol_pdp.index import documents, fastparse
from netpol_pdp.index.documents import DocumentError
from netpol_pdp.index.manifests import ManifestSource

from .strategies import world_manifests

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _same(a: Any, b: Any) -> bool:
    """Equal, type for type (``True`` is not ``1``, ``1`` is not ``1.0``), NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def assert_agrees(text: str) -> list[Any] | None:
    """The fast reading of ``text`` is None or the strict one; returns the fast reading."""
    fast = fastparse.yaml_documents(text)
    if fast is None:
        return None
    try:
        strict = documents.yaml_documents(text)
    except DocumentError as err:
        raise AssertionError(f"yaml-rs read a text PyYAML refuses ({err}): {text!r} -> {fast!r}") from None
    assert _same(fast, strict), f"{text!r}: yaml-rs {fast!r}, PyYAML {strict!r}"
    return fast


# --- the spellings where YAML 1.1 and 1.2 differ ------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


#: Plain scalars PyYAML (1.1) and yaml-rs (1.2) read differently, or that come close.
SPELLINGS = [
    *_words("yes Yes YES no No NO on On ON off Off OFF y n Y N true True TRUE false FALSE"),
    *_words("null Null NULL ~ nUll"),
    *_words("0o17 017 08 0 00 -0 +0 1_000 1__0 _1 1_ 0b101 0b12 0x1F -0x1F 0x_1 0xG"),
    *_words("1:30 1:30.5 -1:30 190:20:30"),
    *_words("1e5 1E5 1.5E3 1.0e+5 1.0e5 1e+5 -1e-5 65086e0705 3435491e11 12e 1.e5"),
    *_words(".5 -.5 +.5 5. 1. 0. .0 +1 +1.5 -1.5 1.5 007.5 1.2.3 10.64.44.65"),
    *_words(".inf -.inf +.inf .Inf .INF inf Infinity infinity .nan .NaN .NAN nan NaN .Nan"),
    *_words("2024-01-01 2024-1-1 2024-13-45 2001-12-14t21:59:43.10-05:00 2024-01"),
    "9" * 18,
    "9" * 19,
    "1" * 30,
    *_words("= << ? - -- --- ... a:b a#b 500m 128Mi v1 0.0.0.0/0 fd00::1 12:00:00"),
]

_TOKEN_CHARS = "0123456789.eE+-_:xob"


#: Where a scalar stands: a value, a list item, in flow, a key, a comment, quoted, a block scalar,
#: on its own line.  ``{k}`` is the key, ``{v}`` the scalar.
_PLACES = (
    "{k}: {v}\n",
    "{k}:\n- {v}\n- x\n",
    "{k}: [{v}, {v}]\n",
    "{k}: {{a: {v}}}\n",
    "{v}: {k}\n",
    "{k}: x # {v}\n",
    '{k}: "{v}"\n',
    "{k}: |\n  {v}\n",
    "{k}:\n  {v}\n",
)


def _scalar_documents() -> st.SearchStrategy[str]:
    token = st.one_of(st.sampled_from(SPELLINGS), st.text(_TOKEN_CHARS, min_size=1, max_size=8))
    line = st.builds(
        lambda key, value, place: place.format(k=key, v=value),
        st.sampled_from(["a", "b", "c", "kind"]),
        token,
        st.sampled_from(_PLACES),
    )
    return st.lists(line, min_size=1, max_size=5).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scalar_documents())
@example("a: 65086e0705\n")
@example("a: yes\n")
@example("a: 1e5\n")
@example("yes: a\n")
def test_a_scalar_spelling_is_read_as_pyyaml_reads_it_or_left_to_pyyaml(text: str) -> None:
    assert_agrees(text)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_each_spelling_alone(spelling: str) -> None:
    for text in (f"a: {spelling}\n", f"- {spelling}\n", f"{spelling}\n", f"[{spelling}]\n"):
        assert_agrees(text)


@pytest.mark.parametrize(
    "spelling",
    ["yes", "on", "off", "no", "0o17", "017", "08", "1:30", "1e5", "65086e0705", "+.5", "-.5", "2024-01-01"],
)
def test_a_spelling_the_two_read_differently_is_left_to_pyyaml(spelling: str) -> None:
    text = f"a: {spelling}\n"
    assert not fastparse.screened(text)
    assert assert_agrees(text) == documents.yaml_documents(text)  # read by PyYAML, document by document


# --- YAML variety: styles, quoting, comments, streams, unicode --------------------------------------

_ALPHABET = " \n:-[]{},#'\"|>&*!?%.abcyesno0123456789eE+_é☺"


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(_ALPHABET, max_size=40))
@example("a: 'x'\n---\n- b\n")
@example("a: &x [1, 2]\nb: *x\n")
@example("a: 1\na: 2\n")
def test_any_text_is_read_as_pyyaml_reads_it_or_left_to_pyyaml(text: str) -> None:
    assert_agrees(text)


def _dump(docs: list[Any], style: int, explicit_start: bool, comment: bool) -> str:
    text = yaml.safe_dump_all(
        docs,
        default_flow_style=(False, True, None)[style],
        explicit_start=explicit_start,
        allow_unicode=bool(style % 2),
        sort_keys=False,
        width=(80, 30, 1000)[style],
    )
    if comment:
        text = "# exported\n" + text.replace("\n", "  # note: yes, 8080.\n", 3)
    return text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(world_manifests(), st.integers(0, 2), st.booleans(), st.booleans())
def test_generated_manifests_are_read_as_pyyaml_reads_them(
    docs: list[dict[str, Any]], style: int, explicit_start: bool, comment: bool
) -> None:
    assert_agrees(_dump(docs, style, explicit_start, comment))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "---\n",
        "---\n---\n",
        "# only a comment\n",
        "~\n---\na: 1\n",
        "- a\n- b\n",
        "---\n- a\n---\n- b\n",
        "a: 1\n---\n",
        "--- a\n--- b\n",
        "a: |\n  x\n  ---\n  y\n",
        "a: >-\n  folded\n  text\n\n  para\n",
        "a: 'it''s'\nb: \"\\u263a \\x41 \\/\"\n",
        "a: b\r\nc: d\r\n",
        "ünï: cödé ☺\n",
        "a: {b: [1, 2, {c: d}], e: []}\n",
    ],
    ids=lambda t: repr(t)[:30],
)
def test_stream_shapes(text: str) -> None:
    assert_agrees(text)


def test_a_top_level_list_is_one_document_not_a_stream() -> None:
    assert fastparse.yaml_documents("- kind: Pod\n- kind: Pod\n") == [[{"kind": "Pod"}, {"kind": "Pod"}]]


def test_a_document_yaml_rs_would_misread_is_read_by_pyyaml_alone() -> None:
    text = "a: 1\n---\nhash: 65086e0705\n---\nb: [1, 2]\n"
    assert fastparse.yaml_documents(text) == [{"a": 1}, {"hash": "65086e0705"}, {"b": [1, 2]}]


def test_an_error_in_a_document_read_by_pyyaml_alone_leaves_the_stream_to_it() -> None:
    assert fastparse.yaml_documents("a: 1\n---\nb: yes\nb: no\n") is None


def test_empty_documents_are_numbered_as_pyyaml_numbers_them() -> None:
    assert fastparse.yaml_documents("---\n---\na: 1\n") == [None, {"a": 1}]
    assert fastparse.yaml_documents("# c\n---\na: 1\n") == [{"a": 1}]


# --- what stays an error -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",
        "metadata:\n  name: x\n  name: y\n",
        "a: [1, 2\n",
        "a: b: c\n",
        "a:\tb\n",
        "a: !!float x\n",
        "a: 2024-13-45\n",
        "a: " + "9" * 5000 + "\n",
        "<<: {a: 1}\n",
        "a: {b:1}\n",
        "a: [\n  b:1]\n",
        "a:\n- :\n- x\n",
        "a: {a: :0}\n",
        "a: _6\n",
        "a: >\n",
        "a: |\nb: c\n",
        "a: [?b]\n",
        "a: &. x\n",
        "{ }: a\n",
        "[1*x:]\n",
    ],
    ids=[
        "duplicate key",
        "nested duplicate key",
        "unclosed flow",
        "mapping in a plain value",
        "tab",
        "tag",
        "no such date",
        "huge integer",
        "merge key",
        "colon in flow",
        "flow over lines",
        "empty key",
        "flow scalar from a colon",
        "underscore number",
        "empty folded scalar",
        "empty literal scalar",
        "complex key in flow",
        "anchor name with a dot",
        "flow mapping as a key",
        "colon ending a flow item",
    ],
)
def test_what_pyyaml_refuses_or_reads_its_own_way_is_left_to_it(text: str) -> None:
    # screened out (then PyYAML reads it), or refused by yaml-rs (then PyYAML reads the stream)
    assert not fastparse.screened(text) or fastparse.yaml_documents(text) is None
    assert_agrees(text)


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_left_to_pyyaml_which_refuses_it() -> None:
    text = _bomb(9)
    assert fastparse.yaml_documents(text) is None
    with pytest.raises(DocumentError, match="alias bomb"):
        documents.yaml_documents(text)


def test_aliases_within_the_limit_are_read_fast() -> None:
    text = "a: &sel {app: web}\nb: *sel\nc: [*sel, *sel]\n"
    assert assert_agrees(text) == [{"a": {"app": "web"}, "b": {"app": "web"}, "c": [{"app": "web"}] * 2}]


@pytest.mark.parametrize("levels", [4, 5, 6])
def test_aliases_near_the_limit_agree(levels: int) -> None:
    # 9**5 = 59,049 nodes is within PyYAML's 100,000; 9**6 is not
    text = _bomb(levels)
    fast = fastparse.yaml_documents(text)
    try:
        strict = documents.yaml_documents(text)
    except DocumentError:
        assert fast is None
    else:
        assert fast is None or _same(fast, strict)


# --- JSON --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
@example({"a": 1, "b": {"c": 'x":"y'}}, True)
def test_json_is_read_as_json_reads_it_or_left_to_json(value: Any, duplicate: bool) -> None:
    text = json.dumps(value)
    if duplicate and isinstance(value, dict) and value:
        key = json.dumps(next(iter(value)))
        text = "{" + key + ": 0, " + text[1:]  # the same key once more, first
    fast = fastparse.json_value(text)
    if fast is None:
        return
    strict = documents.json_document(text)  # raises on the duplicate, which must not get here
    assert _same(fast[0], strict)


@pytest.mark.parametrize(
    "text",
    ['{"a": 1, "a": 2}', '{"a": {"b": 1, "b": 1}}', '{"a": NaN}', '"\\ud800"'],
    ids=["duplicate key", "nested duplicate key", "NaN", "lone surrogate"],
)
def test_json_that_json_reads_its_own_way_is_left_to_it(text: str) -> None:
    assert fastparse.json_value(text) is None


# --- every example and generated world ----------------------------------------------------------


def _manifest_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file())


def test_every_example_file_agrees() -> None:
    files = _manifest_files(EXAMPLES)
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            fast = fastparse.json_value(text)
            assert fast is None or _same(fast[0], documents.json_document(text)), path
        else:
            assert_agrees(text)
    cluster = [p for p in _manifest_files(EXAMPLES / "cluster") if p.suffix != ".json"]
    read_fast = [p for p in cluster if fastparse.yaml_documents(p.read_text(encoding="utf-8")) is not None]
    assert read_fast == cluster, "the example cluster is read by yaml-rs, file for file"


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_generated_worlds_agree_and_are_mostly_read_fast(size: str, tmp_path: Path) -> None:
    files = write_world(generate_world(size, validate=False), tmp_path)
    fast = [assert_agrees(p.read_text(encoding="utf-8")) for p in files]
    # a pod-template-hash like 65086e0705 is a float to YAML 1.2: such files go to PyYAML
    assert sum(f is not None for f in fast) >= 0.7 * len(files)


# --- the load: a problem is located by the strict reader -----------------------------------------


def test_a_file_that_fails_validation_is_read_again_by_the_strict_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    strict = documents.yaml_documents

    def counting(text: str) -> list[Any]:
        calls.append(text)
        return strict(text)

    monkeypatch.setattr("netpol_pdp.index.manifests.yaml_documents", counting)
    good = tmp_path / "good.yaml"
    good.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n")
    assert len(ManifestSource(good).load().objects) == 1
    assert calls == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: Shop_\n")
    with pytest.raises(Exception, match=r"bad.yaml: document 1: Namespace Shop_: metadata.name"):
        ManifestSource(bad).load()
    assert len(calls) == 1


# --- the screen of a whole stream (one RE2 pass) and the numbers it quotes -------------------------

_ASCII_ALPHABET = " \n:-[]{},#'\"|>&*!?%.abcyesnoONY0123456789eE+_x\t\r\x01"


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(_ASCII_ALPHABET, max_size=40))
@example("a: 1\n---\nb: yes\n")
@example("a:\n- :\n- x\n")
@example("[1*x:]\n")
@example("a: b\n...\n")
@example("a: 1 # yes\n")
@example("a: 1e5 # c\n")
@example("a: '# x\n  yes'\n")
def test_the_stream_screen_refuses_whatever_the_document_screen_refuses(text: str) -> None:
    # the stream's screen passes (no number to quote) only where each document's would
    if fastparse._stream_verdict(text, text.encode("ascii")) == "plain":
        assert all(fastparse.screened(piece) for piece in fastparse._documents(text)), text


_NUMBER_ALPHABET = _TOKEN_CHARS + " \n[]{},:aiInNfF"


@settings(max_examples=1500, deadline=None)
@given(st.text(_NUMBER_ALPHABET, max_size=16))
@example("a 1e5")
@example("[5.,1e5]")
@example("0165264961")
@example("1:30")
def test_the_stream_screen_finds_every_number_the_document_screen_finds(text: str) -> None:
    old = fastparse._AMBIGUOUS_NUMBER.search(text) or fastparse._AMBIGUOUS_NUMBER.match("\n" + text[:64])
    if old:
        assert fastparse._NUMBER.search(text.encode("ascii")), text


#: Tokens YAML 1.2 reads as numbers and PyYAML as strings, or the other way, or alike.
_HASHES = [*_words("65086e0705 0165264961 3435491e11 09a81d3e22 7e04865eb6 0123 017 08 1e5 0x1F")]

#: Places around a number-like token where quoting it would be wrong (text, a flow, a key,
#: a plain scalar over lines) or right (``key: token`` alone on its line).
_QUOTE_PLACES = (
    "{k}: {v}\n",
    "- {k}: {v}\n",
    "{k}:\n  {k}: {v}\n  b: '{v}'\n",
    "{k}: 'x\n  {k}: {v}'\n",
    '{k}: "x\n  {k}: {v}"\n',
    "{k}: x\n  - {v}\n",
    "{k}: |\n  {k}: {v}\n",
    "{k}: >\n  {k}: {v}\n",
    "{k}: [\n  {v}]\n",
    "{k}: [{v},{v}]\n",
    "{v}: {k}\n",
    "{k}: {v} # c\n",
    "{k}'s: '{v}\n{k}: {v}\n",
    "{k}: '{v}'\n{k}x: {v}\n",
    "{k}: {v}\n{v}: x\n",
    "{k}: {v}",
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.builds(
            lambda key, value, place: place.format(k=key, v=value),
            st.sampled_from(["a", "b", "pod-template-hash", "k8s.io/x"]),
            st.one_of(st.sampled_from(_HASHES + SPELLINGS), st.text(_TOKEN_CHARS, min_size=1, max_size=8)),
            st.sampled_from(_QUOTE_PLACES),
        ),
        min_size=1,
        max_size=4,
    ).map(lambda lines: "---\n".join(lines) if len(lines) % 2 else "".join(lines))
)
@example("a: 65086e0705\n")
@example("a: 'x\n  b: 65086e0705'\n")
@example("a: x\n  - 65086e0705\n")
@example("a: foo\n  b: 65086e0705\n")
@example("a: b\nc\nd: 65086e0705\n")
@example("? a\n: b: 65086e0705\n")
@example("a:\n- b: 65086e0705\n  c: 1e5\n")
@example("a: &x\n  b: 65086e0705\nc: *x\n")
def test_a_quoted_number_is_read_as_pyyaml_reads_it_or_left_to_pyyaml(text: str) -> None:
    assert_agrees(text)


def test_a_hash_yaml_1_2_reads_as_a_number_is_quoted_not_left_to_pyyaml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-65086e0705-x\n  labels:\n"
        "    canary: 'true'\n    pod-template-hash: 65086e0705\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: db\n  labels:\n"
        "    pod-template-hash: 0165264961\n"
    )
    expected = documents.yaml_documents(text)
    assert expected[0]["metadata"]["labels"]["pod-template-hash"] == "65086e0705"

    def refuse(text: str) -> list[Any]:
        raise AssertionError("read by PyYAML")

    monkeypatch.setattr(documents, "yaml_documents", refuse)
    assert fastparse.yaml_documents(text) == expected


@pytest.mark.parametrize(
    "text",
    ["a: 1_000\n", "a: 017\n", "a: 1:30\n", "a: 2024-01-01\n", "a: 5.\n", "a: yes\n"],
    ids=["underscore", "octal", "sexagesimal", "timestamp", "float", "bool"],
)
def test_a_token_pyyaml_reads_as_no_string_is_not_quoted(text: str) -> None:
    assert fastparse._whole_stream(text) is None  # PyYAML reads that document
    assert assert_agrees(text) == documents.yaml_documents(text)


def test_the_generated_world_is_read_by_yaml_rs_stream_by_stream(tmp_path: Path) -> None:
    files = write_world(generate_world("small", validate=False), tmp_path)
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert _same(fastparse._whole_stream(text), documents.yaml_documents(text)), path


def test_the_count_of_documents_read_by_yaml_rs() -> None:
    assert fastparse.yaml_rs_count("a: 1\n---\nhash: 65086e0705\n") == 2  # the hash quoted
    assert fastparse.yaml_rs_count("a: 1\n---\nb: yes\n") == 1  # the second read by PyYAML
    assert fastparse.yaml_rs_count("") == 0
    assert fastparse.yaml_rs_count("# exported: no\na: 1 # yes, 8080.\n---\nb: 2\n") == 2  # comments aside


def test_a_comment_that_looks_like_a_token_does_not_leave_the_stream_to_pyyaml() -> None:
    text = "# no metrics here\na: 1  # port 8080.\n---\nb: 2\n"
    assert fastparse._whole_stream(text) == [{"a": 1}, {"b": 2}]
