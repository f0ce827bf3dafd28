"""The reachability matrix (index/matrix.py) and ``netpol-pdp matrix`` / ``netpol-pdp reach``.

Tables on test_semantics.py's base cluster; the property test checks every cell
against the reference evaluator deciding the pair (R42) on random worlds; the
HTML heat map is opened in headless Chromium like the audit report.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest
from conftest import Cli
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import cluster_worlds, worlds
from test_differential import examples
from test_reports import CHROMIUM, OFFLINE
from test_semantics import labels, netpol, port, world

from netpol_pdp.examples import CLUSTER
from netpol_pdp.index.engine import Index
from netpol_pdp.index.matrix import MatrixError, changes, matrix, parse_port
from netpol_pdp.index.model import LabelSelector, Object
from netpol_pdp.index.reference import ReferenceEvaluator

WEB_FROM_DB = netpol(
    "web-from-db",
    podSelector=labels(app="web"),
    ingress=[{"from": [{"podSelector": labels(app="db")}], "ports": [port(80)]}],
)


def rows(objects: list[Object], *ports: str, namespace: str | None = "prod") -> dict[str, list[str]]:
    m = matrix(Index.from_objects(objects), [parse_port(p) for p in ports], namespace)
    return {
        port_: [r["to"] for r in t["rows"]]
        for port_, t in zip(m.to_dict()["ports"], m.to_dict()["tables"], strict=True)
    }


def test_an_unisolated_namespace_is_all_dots() -> None:
    assert rows(world(), "80") == {"TCP/80": ["....", "....", "....", "...."]}


def test_an_ingress_rule_allows_its_column_only_from_its_peers() -> None:
    # pods: prod/api, prod/db, prod/front, prod/web; web admits db on TCP 80, itself by loopback
    table = rows(world(WEB_FROM_DB), "80", "81")
    assert table["TCP/80"] == ["...X", "....", "...X", "...."]
    assert table["TCP/81"] == ["...X", "...X", "...X", "...."]


def test_a_protocol_without_ports_gets_its_own_table() -> None:
    assert rows(world(WEB_FROM_DB), "icmp") == {"ICMP": ["...X", "...X", "...X", "...."]}


def test_pods_without_a_common_family_have_no_cell() -> None:
    v6_only = {
        "kind": "Pod",
        "metadata": {"name": "six", "namespace": "prod", "labels": {"app": "six"}},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running", "podIPs": [{"ip": "fd00::6"}]},
    }
    table = rows(world(v6_only), "80")["TCP/80"]
    pods = ["prod/api", "prod/db", "prod/front", "prod/six", "prod/web"]
    six = pods.index("prod/six")
    assert [r[six] for r in table] == ["?", "?", "?", ".", "."]  # prod/web is dual-stack


def test_a_selector_picks_rows_and_columns() -> None:
    m = matrix(Index.from_objects(world()), [("TCP", 80)], None, LabelSelector((("app", "web"),)))
    assert m.pods == ("dev/web", "prod/web")


def test_a_diff_lists_exactly_the_cells_that_change() -> None:
    before = matrix(Index.from_objects(world()), [("TCP", 80)], "prod")
    after = matrix(Index.from_objects(world(WEB_FROM_DB)), [("TCP", 80)], pods=list(before.pods))
    assert [(c.source, c.destination, c.before, c.after) for c in changes(before, after)] == [
        ("prod/api", "prod/web", True, False),
        ("prod/front", "prod/web", True, False),
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param("TCP", "TCP needs a port number", id="a port protocol without a number"),
        pytest.param("ICMP/3", "ICMP has no ports", id="a number on a protocol without ports"),
        pytest.param("TCP/0", "between 1 and 65535", id="port zero"),
        pytest.param("http/80", "unknown protocol", id="unknown protocol"),
    ],
)
def test_a_bad_port_is_a_clear_error(text: str, error: str) -> None:
    with pytest.raises(MatrixError, match=error):
        parse_port(text)


def test_a_matrix_over_the_cell_limit_is_refused_before_deciding() -> None:
    with pytest.raises(MatrixError, match=r"4 pods x 4 x 2 ports is 32 cells, more than the 31 allowed"):
        matrix(Index.from_objects(world()), [("TCP", 80), ("TCP", 81)], "prod", max_cells=31)
    with pytest.raises(MatrixError, match="namespace nowhere: no live pod"):
        matrix(Index.from_objects(world()), [("TCP", 80)], "nowhere")


# --- against the reference ------------------------------------------------------------------


def check_cells(objects: list[Object], data: st.DataObject) -> None:
    index = Index.from_objects(objects)
    ref = ReferenceEvaluator(objects)
    protocol = data.draw(st.sampled_from(["TCP", "UDP", "SCTP", "ICMP"]), label="protocol")
    number = (
        0 if protocol == "ICMP" else data.draw(st.sampled_from([53, 80, 81, 443, 5432, 8080]), label="port")
    )
    try:
        m = matrix(index, [(protocol, number)])
    except MatrixError:
        return  # no live pod
    for i, src in enumerate(m.pods):
        for j, dst in enumerate(m.pods):
            assert m.cells[0][i][j] == ref.matrix_cell(src, dst, protocol, number), (src, dst)


@settings(max_examples=examples(0.5), deadline=None)
@given(worlds, st.data())
def test_every_cell_is_the_reference_decision_of_its_pair(objects: list[Object], data: st.DataObject) -> None:
    check_cells(objects, data)


@settings(max_examples=examples(0.5), deadline=None)
@given(cluster_worlds, st.data())
def test_every_cell_agrees_with_the_reference_with_cluster_tiers(
    objects: list[Object], data: st.DataObject
) -> None:
    check_cells(objects, data)


# --- the command line ---------------------------------------------------------------------


def test_matrix_prints_the_truth_table(cli: Cli) -> None:
    status, out, err = cli("matrix", "-n", "backend", "--port", "8080")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("TCP/8080")
    assert lines[1].split() == ["-", "backend/api-5b7f9-4hq2c", "backend/api-5b7f9-9xk7d", "backend/orders-0",
                                "backend/payments-0"]  # fmt: skip
    assert lines[2].split() == ["backend/api-5b7f9-4hq2c", ".", "X", "X", "X"]


def test_matrix_csv_and_json_carry_the_same_cells(cli: Cli) -> None:
    _, text, _ = cli("matrix", "-n", "data", "--port", "5432", "--port", "UDP/53", "--format", "csv")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][:2] == ["port", "from"]
    _, raw, _ = cli("matrix", "-n", "data", "--port", "5432", "--port", "UDP/53", "--format", "json")
    data = json.loads(raw)
    assert data["ports"] == ["TCP/5432", "UDP/53"]
    from_json = [[t["port"], r["from"], *r["to"]] for t in data["tables"] for r in t["rows"]]
    assert from_json == table[1:]


def test_matrix_diff_names_the_changed_cells_and_exits_1(cli: Cli, tmp_path: Path) -> None:
    changed = tmp_path / "cluster"
    changed.mkdir()
    for path in CLUSTER.rglob("*.yaml"):
        target = changed / path.relative_to(CLUSTER)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text()
        if path.name == "backend.yaml" and "policies" in str(path):
            text = text.replace("    - port: http\n", "    - port: 8443\n", 1)  # api-from-web: TLS only
        target.write_text(text)
    status, out, _ = cli("matrix", "--port", "8080", "-l", "app in (web,api)", "--diff", str(changed))
    assert status == 1
    assert "TCP/8080 frontend/web-6d4cf-x2lqp -> backend/api-5b7f9-4hq2c: allowed -> denied" in out
    status, same, _ = cli("matrix", "--port", "8080", "-n", "data", "--diff", str(CLUSTER))
    assert status == 0 and "no cell changes" in same


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--port", "TCP"], "--port: 'TCP': TCP needs a port number", id="bad port"),
        pytest.param(["-l", "a=b=c"], "--selector: selector term 'a=b=c'", id="bad selector"),
        pytest.param(["-n", "nowhere"], "namespace nowhere: no live pod", id="empty namespace"),
    ],
)
def test_matrix_bad_input_is_one_line(cli: Cli, argv: list[str], message: str) -> None:
    status, out, err = cli("matrix", *argv)
    assert status == 2 and out == ""
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_reach_prints_groups_ports_and_rules(cli: Cli) -> None:
    status, out, err = cli("reach", "data/redis-0", "--direction", "ingress")
    assert status == 0, err
    assert out.startswith("who can reach data/redis-0 (data{app=redis}, ")
    assert "backend{app=api,tier=backend}  2 pods (backend/api-5b7f9-4hq2c, backend/api-5b7f9-9xk7d)" in out
    assert "TCP 6379  by data/redis-from-api ingress rule 0; backend/api-egress egress rule 1" in out


def test_reach_json_and_a_port_filter(cli: Cli) -> None:
    status, raw, _ = cli("reach", "data/redis-0", "--direction", "ingress", "--port", "6380", "--json")
    assert status == 0
    (answer,) = json.loads(raw)["answers"]
    assert answer["port"] == 6380 and answer["targets"][0]["pods_allowed"] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["data/nope"], "pod data/nope: no such live pod", id="unknown pod"),
        pytest.param([], "reach: name a pod", id="no target"),
        pytest.param(["-l", "app=x"], "reach: name a pod", id="a selector alone"),
        pytest.param(["-n", "data", "-l", "a in (b"], "--selector: ", id="bad selector"),
        pytest.param(
            ["data/redis-0", "--protocol", "tcp"], "--port: is required for TCP", id="protocol alone"
        ),
        pytest.param(
            ["data/redis-0", "--protocol", "icmp", "--port", "3"], "--port: ICMP has no ports", id="icmp port"
        ),
    ],
)
def test_reach_bad_input_is_one_line(cli: Cli, argv: list[str], message: str) -> None:
    status, out, err = cli("reach", *argv)
    assert status == 2 and out == ""
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no browser: {CHROMIUM} is absent")
def test_the_html_heat_map_renders_in_a_real_browser(cli: Cli, tmp_path: Path) -> None:
    page = tmp_path / "matrix.html"
    status, _, err = cli(
        "matrix", "-n", "backend", "--port", "8080", "--port", "UDP/53", "-f", "html", "-o", str(page)
    )
    assert status == 0, err
    html = page.read_text()
    assert 'id="matrix-0"' in html and 'id="matrix-1"' in html and "<script" not in html
    common = [CHROMIUM, *OFFLINE, f"--user-data-dir={tmp_path / 'home'}", "--window-size=1000,800"]
    shot = tmp_path / "matrix.png"
    taken = subprocess.run(
        [*common, f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=False
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<td ") == 2 * 4 * 4  # two ports, four pods by four
    assert "backend/api-5b7f9-4hq2c \u2192 backend/orders-0 TCP/8080: denied" in dom.stdout
