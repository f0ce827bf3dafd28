"""Fuzzing the manifest loader with mutated bundled examples: it answers with located problems, never raises.

Each example is a file of ``examples/cluster`` with one mutation: a scalar replaced
by a hostile value (a timestamp-shaped string that is no date, a huge integer, a
tagged value its constructor cannot read, an alias bomb, random text), random
bytes written over it, or the file cut short.  Whatever the result, ``load()``
returns objects or raises :class:`SourceError` whose every problem names the file
and stays within :data:`MAX_PROBLEM` characters.

The budget is small by default (``NETPOL_PDP_FUZZ_EXAMPLES``, default 40 per test);
set it higher for a long run: ``NETPOL_PDP_FUZZ_EXAMPLES=5000 pytest tests/test_manifest_fuzz.py``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from netpol_pdp.index.errors import MAX_PROBLEM, SourceError
from netpol_pdp.index.manifests import ManifestSource

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "cluster").rglob("*.yaml"))
BUDGET = settings(max_examples=int(os.environ.get("NETPOL_PDP_FUZZ_EXAMPLES", "40")), deadline=None)

#: a scalar after ``key: `` or ``- `` on a line (what a mutation replaces)
SCALAR = re.compile(r"(?m)(?<=: )[^\s{}\[\],][^\n{}\[\],]*$|(?<=- )[^\s{}\[\],:][^\n{}\[\],:]*$")

timestamps = st.builds(
    "{:04d}-{:02d}-{:02d}{}".format,
    st.integers(0, 9999),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["", "T25:61:61Z", " 10:00:00", "t1:2:3.4+99:99"]),
)
huge_ints = st.builds(
    lambda n, p: p + "9" * n, st.integers(4000, 6000), st.sampled_from(["", "-", "0x", "0o", "+"])
)
tagged = st.builds(
    "{} {}".format,
    st.sampled_from(["!!float", "!!int", "!!timestamp", "!!bool", "!!binary", "!!null", "!!set", "!!omap"]),
    st.text("abcxyz0123456789.:-_=", min_size=1, max_size=12),
)
aliases = st.sampled_from(["*nope", "&a [*a]", "&a x", "<<: *a"])
words = st.text(min_size=1, max_size=40)
values = st.one_of(timestamps, huge_ints, tagged, aliases, words, st.integers().map(str))


def bomb(levels: int) -> str:
    anchors = [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(
        ["x-bomb:", '  a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]', *anchors]
    )


def load_problems(name: str, data: bytes) -> list[str]:
    """Load ``data`` as a file named ``name``: the problems (empty when it loads)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            ManifestSource(path).load()
        except SourceError as err:
            assert err.problems
            for problem in err.problems:
                assert problem.startswith(f"{path}: "), problem
                assert len(problem) <= MAX_PROBLEM, problem[:200]
            return err.problems
    return []


@BUDGET
@given(example=st.sampled_from(EXAMPLES), data=st.data())
def test_a_hostile_value_in_an_example_is_a_located_problem_or_loads(
    example: Path, data: st.DataObject
) -> None:
    text = example.read_text()
    spots = list(SCALAR.finditer(text))
    spot = data.draw(st.sampled_from(spots), label="scalar")
    value = data.draw(values, label="value")
    load_problems(
        example.name, (text[: spot.start()] + value + text[spot.end() :]).encode("utf-8", "surrogatepass")
    )


@BUDGET
@given(example=st.sampled_from(EXAMPLES), data=st.data())
def test_random_bytes_or_a_cut_in_an_example_are_a_located_problem_or_load(
    example: Path, data: st.DataObject
) -> None:
    raw = example.read_bytes()
    at = data.draw(st.integers(0, len(raw)), label="offset")
    if data.draw(st.booleans(), label="cut"):
        mutated = raw[:at]
    else:
        noise = data.draw(st.binary(min_size=1, max_size=16), label="bytes")
        mutated = raw[:at] + noise + raw[at + len(noise) :]
    load_problems(example.name, mutated)


@BUDGET
@given(example=st.sampled_from(EXAMPLES), levels=st.integers(5, 9))
def test_an_alias_bomb_added_to_an_example_is_refused(example: Path, levels: int) -> None:
    text = example.read_text()
    first_doc_end = text.find("\n---")
    head, tail = (text, "") if first_doc_end < 0 else (text[:first_doc_end], text[first_doc_end:])
    problems = load_problems(example.name, f"{head}\n{bomb(levels)}{tail}".encode())
    assert any("aliases expand to more than" in p for p in problems)
