"""Start-up: a run imports only the command it names, and answers exactly as the whole parser would."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Sequence

import pytest

from netpol_pdp.clients.cli import COMMANDS, build_parser, command_named
from netpol_pdp.examples import CLUSTER, FLOWS

ARGVS = [
    pytest.param(["--version"], id="the version"),
    pytest.param([], id="no command at all"),
    pytest.param(["--bogus"], id="an unknown top-level option"),
    pytest.param(["bogus"], id="an unknown command lists every command"),
    pytest.param(["-h"], id="the top-level help lists every command"),
    pytest.param(["--version", "audit"], id="the version before a command"),
    pytest.param(["audit"], id="a command without its arguments"),
    pytest.param(["audit", "-h"], id="a command's help"),
    pytest.param(["audit", "log.jsonl", "--top", "x"], id="a command's bad option value"),
    pytest.param(["audit", "log.jsonl", "--bogus"], id="a command's unknown option"),
    pytest.param(["--", "audit"], id="a double dash before the command"),
    pytest.param(["--ver"], id="an abbreviated --version"),
    pytest.param(["decide", "--help"], id="another command's help"),
    pytest.param(["bench", "world", "--size", "huge"], id="a nested command's bad choice"),
]


def parse(parser_only: str | None, argv: Sequence[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = build_parser(parser_only).parse_args(argv)
            result: object = sorted((k, str(v)) for k, v in vars(args).items() if k != "run")
        except SystemExit as exit_:
            result = exit_.code
    return result, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", ARGVS)
def test_the_parser_of_one_run_answers_as_the_whole_parser(argv: list[str]) -> None:
    assert parse(command_named(argv), argv) == parse(None, argv)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_named_command_needs_only_its_own_module(command: str) -> None:
    assert command_named([command, "--whatever"]) == command
    assert command_named(["--version"]) == ""
    assert command_named(["-h", command]) is None
    assert command_named(["not-a-command"]) is None


def test_an_audit_imports_neither_the_other_commands_nor_what_only_they_need() -> None:
    code = (
        "import sys, json\n"
        "from netpol_pdp.clients.cli import main\n"
        f"status = main(['audit', {str(FLOWS)!r}, '--source', {str(CLUSTER)!r}, '-o', '/dev/null'])\n"
        "print(json.dumps([status, sorted(sys.modules)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    status, modules = json.loads(done.stdout.splitlines()[-1])
    assert status == 0
    loaded = set(modules)
    assert "netpol_pdp.clients.cmd_audit" in loaded
    for other in COMMANDS:
        if other != "audit":
            assert f"netpol_pdp.clients.cmd_{other}" not in loaded
    for heavy in ("grpc", "jinja2", "tqdm", "importlib.metadata", "netpol_pdp.clients.auditing.parallel"):
        assert heavy not in loaded, heavy
