"""What the command line says to a person: option errors that name the range, counts whose noun
agrees, ERRORs counted apart from failures, one wording for a YAML error, a warning for a source
with no pods, help texts without markup and with their defaults, and text that always prints."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Cli

from netpol_pdp.bench import results
from netpol_pdp.clients.cli import build_parser
from netpol_pdp.clients.render import plural, printable

WEB, API, POSTGRES = "10.244.1.12", "10.244.1.20", "10.244.2.30"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"


# --- decide: a bad option says what it must be -----------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(["--port", "-1"], "--port: must be between 1 and 65535 for TCP (got -1)", id="a negative port is out of range, not 'not an integer'"),  # noqa: E501
        pytest.param(["--port", "+80", "-p", "udp"], None, id="a signed port is a number"),
        pytest.param(["-p", "300", "--port", "80"], "--protocol: an IANA protocol number is between 0 and 255 (got 300)", id="a protocol number above 255 names the range"),  # noqa: E501
        pytest.param(["-p", "-3"], "--protocol: an IANA protocol number is between 0 and 255 (got -3)", id="a negative protocol number names the range"),  # noqa: E501
        pytest.param(["-p", "icmp", "--port", "80"], "--port: ICMP has no ports", id="a port for ICMP is refused, not dropped"),  # noqa: E501
        pytest.param(["-p", "47", "--port", "80"], "--port: 47 has no ports", id="a port for a numbered port-less protocol is refused"),  # noqa: E501
        pytest.param([], "--port: is required for TCP, UDP and SCTP", id="TCP without a port says the port is required"),  # noqa: E501
        pytest.param(["--port", "x"], "--port: must be an integer port (got 'x')", id="a word is not a port"),
    ],
)  # fmt: skip
def test_decide_names_the_option_and_what_it_must_be(cli: Cli, extra: list[str], message: str | None) -> None:
    status, _out, err = cli("decide", "--src", WEB, "--dst", API, *extra)
    if message is None:
        assert status in (0, 1) and err == ""
    else:
        assert status == 2
        assert err.startswith(f"error: {message}")


def test_icmp_without_a_port_is_decided(cli: Cli) -> None:
    status, out, _err = cli("decide", "--src", WEB, "--dst", API, "-p", "icmp")
    assert status in (0, 1) and out.startswith(("ALLOW  ICMP", "DENY  ICMP"))


# --- counts agree with their noun -------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "noun", "nouns", "text"),
    [
        pytest.param(1, "flow", None, "1 flow", id="one is singular"),
        pytest.param(0, "flow", None, "0 flows", id="zero is plural"),
        pytest.param(2, "policy", "policies", "2 policies", id="an irregular plural"),
        pytest.param(1000, "file", None, "1,000 files", id="thousands are grouped"),
    ],
)
def test_plural_agrees_with_the_count(n: int, noun: str, nouns: str | None, text: str) -> None:
    assert plural(n, noun, nouns) == text


def test_validate_of_one_object_in_one_file_says_so_in_the_singular(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text(NAMESPACE)
    status, out, _err = cli("validate", "--source", str(tmp_path))
    assert status == 0
    assert out.startswith("ok: 1 object in 1 file (1 Namespace,")


def test_validate_of_one_problem_says_so_in_the_singular(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("a: [b\n")
    status, _out, err = cli("validate", "--source", str(tmp_path))
    assert status == 1 and err == "1 problem found\n"


def test_the_audit_of_one_line_says_one_flow_and_one_line(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "one.jsonl"
    log.write_text(f'{{"src_ip": "{WEB}", "dst_ip": "{API}", "protocol": "TCP", "dst_port": 8080}}\n')
    status, _out, err = cli("audit", str(log))
    assert status == 0
    assert err.startswith("audited 1 flow (1 distinct) at generation 1")
    assert "read 1 line (jsonl)" in err


def test_a_what_if_of_one_flow_agrees_in_number(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "one.jsonl"
    log.write_text(f'{{"src_ip": "{WEB}", "dst_ip": "{API}", "protocol": "TCP", "dst_port": 8080}}\n')
    status, _out, err = cli("audit", str(log), "--without", "backend/api-from-web")
    assert status == 3
    assert "1 of 1 flow changes verdict, 1 from ALLOW to DENY" in err


# --- test: an ERROR is counted, and said to count as a failure ---------------------------------


def test_an_error_is_counted_apart_and_said_to_fail_the_run(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(
        f"- {{from: {{ip: {WEB}}}, to: {{ip: {API}}}, port: 8080, expect: allow}}\n"
        "- {from: {namespace: frontend, labels: {app: nope}}, to: {ip: 8.8.8.8}, port: 53, "
        "protocol: UDP, expect: allow}\n"
    )
    status, out, _err = cli("test", str(path))
    assert status == 1
    assert out.rstrip().endswith(
        "1 passed, 0 failed, 1 error (an expectation that could not be checked counts as failed)"
    )


# --- validate and test word a YAML error alike -------------------------------------------------


def test_validate_and_test_word_the_same_yaml_error_the_same_way(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("- name: a\n  name: b\n")
    problem = (
        f"{path}: line 2, column 3: invalid YAML: while constructing a mapping: "
        "duplicate key 'name' (first given on line 1)"
    )
    status, out, _err = cli("validate", "--source", str(path))
    assert status == 1 and out == problem + "\n"
    status, _out, err = cli("test", str(path))
    assert status == 2
    assert err == f"error: cannot load the expectations (1 problem):\n  {problem}\n"


# --- a source without pods allows everything: say so --------------------------------------------


@pytest.mark.parametrize(
    ("files", "held"),
    [
        pytest.param({}, "no objects", id="an empty folder"),
        pytest.param({"ns.yaml": NAMESPACE}, "1 object but no pods", id="objects but no pod"),
    ],
)
@pytest.mark.parametrize("command", ["decide", "audit", "test"])
def test_a_source_without_pods_is_warned_about_in_one_line(
    cli: Cli, tmp_path: Path, command: str, files: dict[str, str], held: str
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text)
    log = tmp_path / "flows.jsonl"
    log.write_text(f'{{"src_ip": "{WEB}", "dst_ip": "{POSTGRES}", "dst_port": 5432}}\n')
    expectations = tmp_path / "e.yaml"
    expectations.write_text(f"- {{from: {{ip: {WEB}}}, to: {{ip: {POSTGRES}}}, port: 5432, expect: deny}}\n")
    argv = {
        "decide": ["decide", "--src", WEB, "--dst", POSTGRES, "--port", "5432"],
        "audit": ["audit", str(log)],
        "test": ["test", str(expectations)],
    }[command]
    _status, _out, err = cli(*argv, "--source", str(source))
    warning = f"warning: the source ({source}) holds {held}: every flow will be allowed (no pod is involved)"
    assert err.splitlines()[0] == warning


@pytest.mark.parametrize("command", ["decide", "audit"])
def test_the_bundled_example_draws_no_warning(cli: Cli, tmp_path: Path, command: str) -> None:
    log = tmp_path / "flows.jsonl"
    log.write_text(f'{{"src_ip": "{WEB}", "dst_ip": "{POSTGRES}", "dst_port": 5432}}\n')
    argv = (
        ["decide", "--src", WEB, "--dst", POSTGRES, "--port", "5432"]
        if command == "decide"
        else ["audit", str(log)]
    )
    _status, _out, err = cli(*argv)
    assert "warning" not in err


# --- help texts: plain text, defaults shown -----------------------------------------------------


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the command line, by its command (``bench serve``), top level first."""
    out: list[tuple[str, argparse.ArgumentParser]] = []

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        out.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(f"{name} {sub_name}".strip(), sub)

    walk("", build_parser())
    return out


PARSERS = _parsers()


@pytest.mark.parametrize(
    ("name", "parser"), [p for p in PARSERS if p[0]], ids=[p[0] for p in PARSERS if p[0]]
)
def test_every_help_text_is_plain_and_shows_the_defaults(name: str, parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    for markup in ("``", ":mod:", ":class:", ":func:", "issue "):
        assert markup not in text, f"{name} --help shows {markup!r}"
    assert parser.description, f"{name} has no description"
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or action.dest == "help":
            continue
        assert action.help, f"{name} {action.option_strings[0]} has no help text"
        if action.default not in (None, False, [], argparse.SUPPRESS):
            expanded = action.help % {"default": action.default} if "%(" in action.help else action.help
            assert "default" in parser._get_formatter()._get_help_string(action) or "default" in expanded, (
                f"{name} {action.option_strings[0]} does not show its default"
            )


def test_serve_help_states_the_listen_default(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli("serve", "--help")
    out = capsys.readouterr().out
    assert "(default: 127.0.0.1:50051)" in " ".join(out.split())


# --- bench: results go to a named place, not under whatever the current directory is -----------


def test_bench_results_default_to_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NETPOL_PDP_BENCH_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert results.default_dir() == tmp_path / "cache" / "netpol-pdp" / "bench"
    monkeypatch.setenv("NETPOL_PDP_BENCH_DIR", str(tmp_path / "mine"))
    assert results.default_dir() == tmp_path / "mine"


def test_bench_writes_where_it_says_and_not_under_the_current_directory(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NETPOL_PDP_BENCH_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    status, out, _err = cli("bench", "audit", "--flows", "200", "--reference-sample", "20", "--repeat", "1")
    assert status == 0
    where = tmp_path / "cache" / "netpol-pdp" / "bench"
    assert f"results written to {where}/audit.json and audit.md" in out
    assert (where / "audit.json").is_file()
    assert not (tmp_path / "bench").exists()
    assert "issue" not in out.lower()


# --- any text prints, on any terminal ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("plain é 中", "plain é 中", id="printable text is kept"),
        pytest.param("a\nb", "a\nb", id="newlines are kept"),
        pytest.param("x\udcff.yaml", "x\\xff.yaml", id="an undecodable byte of a file name is shown as a byte"),  # noqa: E501
        pytest.param("\x1b[31mred", "\\x1b[31mred", id="a terminal escape is escaped"),
        pytest.param("a\u2028b\ud800", "a\\u2028b\\ud800", id="separators and lone surrogates are escaped"),
    ],
)  # fmt: skip
def test_printable_escapes_what_a_terminal_must_not_get(text: str, shown: str) -> None:
    assert printable(text) == shown
    printable(text).encode("utf-8")  # never a UnicodeEncodeError


def _run_strict(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command in a child whose stdout and stderr refuse what UTF-8 cannot encode."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    return subprocess.run(
        [sys.executable, "-m", "netpol_pdp.clients.cli", *argv],
        capture_output=True,
        text=True,
        errors="replace",
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "status", "line"),
    [
        pytest.param(NAMESPACE, 0, "ok: 1 object in 1 file", id="a good file with an undecodable name"),
        pytest.param("a: [b\n", 1, "x\\xff\\x1b.yaml: line 2, column 1: invalid YAML", id="a bad one"),
    ],
)
def test_validate_prints_an_undecodable_file_name_escaped(
    tmp_path: Path, content: str, status: int, line: str
) -> None:
    name = os.fsdecode(b"x\xff\x1b.yaml")
    (tmp_path / name).write_text(content)
    done = _run_strict("validate", "--source", name, cwd=tmp_path)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith(line)
    assert "\x1b" not in done.stdout + done.stderr


def test_an_option_value_with_control_characters_is_echoed_escaped(cli: Cli) -> None:
    status, _out, err = cli("decide", "--src", "\x1b[2J\udcff", "--dst", API, "--port", "80")
    assert status == 2 and "\x1b" not in err and "\udcff" not in err
    with pytest.raises(SystemExit):
        cli("decide", "--bogus\x1b[2J")
