"""The documentation a newcomer follows is true: docs/cli.md names every option of every command,
and the README's Python snippets and offline command examples run as written and print what
their comments say."""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
import shlex
from pathlib import Path

import pytest
from conftest import Cli

from netpol_pdp.clients.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
CLI_MD = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLIENT_GROUP = "server connection"


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    out: list[tuple[str, argparse.ArgumentParser]] = []

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if name and not (subs and name == "bench"):
            out.append((name, parser))
        for action in subs:
            for sub_name, sub in action.choices.items():
                walk(f"{name} {sub_name}".strip(), sub)
        if name == "bench":
            out.append((name, parser))

    walk("", build_parser())
    return out


COMMANDS = _commands()


def section(markdown: str, title: str) -> str:
    """The text under the heading ``title`` (any level), up to the next heading of that level or above."""
    match = re.search(rf"^(#+) {re.escape(title)}\s*$", markdown, re.M)
    assert match, f"docs/cli.md has no section {title!r}"
    level = len(match.group(1))
    rest = markdown[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def _options(parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """(the command's own option strings, its server-connection option strings); hidden ones left out."""
    own: list[str] = []
    client: list[str] = []
    titles = {id(a): g.title for g in parser._action_groups for a in g._group_actions}
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(
            action, argparse._HelpAction | argparse._SubParsersAction
        ):
            continue
        names = action.option_strings or [action.metavar or action.dest]
        (client if titles.get(id(action)) == CLIENT_GROUP else own).extend(names)
    return own, client


@pytest.mark.parametrize(("name", "parser"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_docs_cli_md_documents_every_option_of_every_command(
    name: str, parser: argparse.ArgumentParser
) -> None:
    text = section(CLI_MD, f"`netpol-pdp {name}`")
    own, client = _options(parser)
    missing = [o for o in own if not re.search(rf"`{re.escape(o)}[` ]", text)]
    assert not missing, f"docs/cli.md, section netpol-pdp {name}, lacks {', '.join(missing)}"
    if client:
        shared = section(CLI_MD, "Server connection options (`decide`, `audit`, `status`)")
        missing = [o for o in client if not re.search(rf"`{re.escape(o)}[` ]", shared)]
        assert not missing, f"docs/cli.md, server connection options, lacks {', '.join(missing)}"


def test_docs_cli_md_lists_every_command_in_its_table() -> None:
    table = CLI_MD.split("## Exit statuses")[0]
    for name, _parser in COMMANDS:
        if " " not in name:
            assert f"[`{name}`]" in table, f"docs/cli.md's command table lacks {name}"


def test_the_walk_sees_every_command_and_bench_subcommand() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"decide", "audit", "validate", "test", "serve", "status", "bench", "bench serve"} <= names


# --- the README's Python snippets --------------------------------------------------------------


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, re.M | re.S)


def expected_prints(code: str) -> list[str]:
    """What the ``# ...`` comment after each ``print(...)`` line says it prints (``a / b``: two lines)."""
    out: list[str] = []
    lines = code.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("print(") or re.search(r"\bprint\(", line.split("#")[0]):
            comment = line.split("#", 1)[1].strip() if "#" in line else lines[i + 1].lstrip("# ").strip()
            out.extend(part.strip() for part in comment.split(" / "))
    return out


def run_snippet(code: str) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    return buffer.getvalue()


def test_the_readme_library_snippet_runs_from_any_directory_and_prints_what_it_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (code,) = [b for b in python_blocks(README) if "Index.from_objects" in b]
    monkeypatch.chdir(tmp_path)  # not a checkout: the packaged example must be found
    printed = run_snippet(code).splitlines()
    assert printed == expected_prints(code)


def test_the_readme_client_snippet_runs_against_a_server_and_prints_what_it_says() -> None:
    from netpol_pdp.examples import CLUSTER
    from netpol_pdp.server.serve import ServeOptions, Service

    (code,) = [b for b in python_blocks(README) if "DecisionClient(" in b]
    service = Service(ServeOptions(sources=[CLUSTER], listen="127.0.0.1:0", grace=0.5))
    try:
        assert service.state.wait_ready(10)
        printed = run_snippet(code.replace("127.0.0.1:50051", service.address)).splitlines()
    finally:
        service.close(grace=0.2)
    assert printed == expected_prints(code)


# --- the README's offline command examples -------------------------------------------------------


def commented_commands(markdown: str) -> list[tuple[str, str]]:
    """``netpol-pdp ...`` lines of ``sh`` blocks followed by a ``# what it prints`` line."""
    found = []
    for block in re.findall(r"^\s*```sh\n(.*?)^\s*```", markdown, re.M | re.S):
        lines = [line.strip() for line in block.splitlines()]
        for line, after in itertools.pairwise(lines):
            if line.startswith("netpol-pdp ") and after.startswith("# "):
                found.append((line, after[2:]))
    return found


@pytest.mark.parametrize(("command", "says"), commented_commands(README) + commented_commands(CLI_MD))
def test_each_commented_command_example_prints_what_its_comment_says(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, command: str, says: str
) -> None:
    monkeypatch.chdir(ROOT)  # the examples name files of the checkout, as a reader runs them
    argv = shlex.split(command)[1:]
    _status, out, err = cli(*argv)
    assert says in out + err


def test_the_readme_has_its_newcomer_sections() -> None:
    for title in ("With your own cluster", "What is not modelled yet", "Documentation"):
        assert re.search(rf"^## {title}$", README, re.M), title
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{doc.name})" in section(README, "Documentation"), f"the docs index lacks {doc.name}"
    steps = section(README, "With your own cluster")
    for step in (
        "kubectl get",
        "netpol-pdp validate",
        "netpol-pdp decide",
        "hubble observe -o json",
        "| netpol-pdp audit -",
        "netpol-pdp test",
    ):
        assert step in steps, step


# --- statements of the docs that the code must keep true -----------------------------------------


def _serve_default(dest: str) -> object:
    (serve,) = [p for name, p in COMMANDS if name == "serve"]
    return serve.get_default(dest)


def test_envoy_docs_name_serves_default_server_mode_as_it_is() -> None:
    default = _serve_default("server_mode")
    envoy_md = " ".join((ROOT / "docs" / "envoy.md").read_text(encoding="utf-8").split())
    envoy_check = " ".join((ROOT / "bench" / "envoy_check.py").read_text(encoding="utf-8").split())
    assert f"`serve`'s default is the thread-pool `{default}` server" in envoy_md
    assert f"``serve``'s default is the thread-pool ``{default}`` server" in envoy_check
    for text in (envoy_md, envoy_check):
        assert "as `serve` does by default" not in text and "runs it by default (``grpc.aio``)" not in text


def test_the_flowlogs_doc_cites_the_summary_line_audit_prints(cli: Cli) -> None:
    flowlogs_md = " ".join((ROOT / "docs" / "flowlogs.md").read_text(encoding="utf-8").split())
    (cited,) = re.findall(r"The summary's first line, `([^`]*)`", flowlogs_md)
    pattern = re.escape(cited).replace("M", r"[\d,]+").replace("N", r"[\d,]+").replace("G", r"[\d, ]+")
    _status, _out, err = cli("audit", str(ROOT / "examples" / "flows.jsonl"))
    assert re.match(pattern, err.splitlines()[0]), (cited, err.splitlines()[0])


def test_the_kubernetes_doc_shows_the_error_serve_prints_for_a_missing_kubeconfig(
    cli: Cli, tmp_path: Path
) -> None:
    kubernetes_md = (ROOT / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    (shown,) = re.findall(r"for\s+example\s+`(error: kubernetes configuration \([^`]*)`", kubernetes_md)
    missing = tmp_path / "cfg"
    status, _out, err = cli("serve", "--kube", "--kubeconfig", str(missing))
    assert status == 2
    assert err.strip() == shown.replace("/home/me/cfg", str(missing))
