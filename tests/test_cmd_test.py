"""`netpol-pdp test`: expected connections checked offline, a readable failure table, JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from netpol_pdp.clients.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "examples" / "cluster"
EXAMPLES = ROOT / "examples" / "expectations"


def run_test(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str, str]:
    status = main(["test", str(path), "--source", str(CLUSTER), *extra])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_passing_example_passes_every_expectation(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_test(capsys, EXAMPLES / "passing.yaml")
    assert status == 0
    assert out.rstrip().endswith("9 passed, 0 failed")
    assert "PASS   production web reaches the api on its http port  (4 flows)" in out


def test_the_failing_example_explains_each_wrong_verdict_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    junit = tmp_path / "report.xml"
    status, out, _ = run_test(capsys, EXAMPLES / "failing.yaml", "--junit", str(junit))
    assert status == 1
    assert out.rstrip().endswith("1 passed, 2 failed")
    assert (
        "frontend/web-6d4cf-x2lqp -> data/postgres-0 (TCP 10.244.1.12 -> 10.244.2.30:5432): "
        "DENY (denied-on-ingress), expected ALLOW"
    ) in out
    assert "allowed by backend/api-egress rule 2" in out

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    failure = cases["the api is kept away from payments"].find("failure")
    assert failure is not None and failure.get("message") == "2 of 2 flows not DENY"
    assert cases["the web tier answers on its http port"].find("failure") is None


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "expect.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(
            "- {from: {labels: {app: web}}, to: {ip: 10.0.0.1}, port: 80, expect: allow}",
            "expectations[0].from.namespace: is required",
            id="a pod end needs its namespace",
        ),
        pytest.param(
            "- {from: {ip: 10.0.0.1, namespace: x}, to: {ip: 10.0.0.2}, port: 80, expect: allow}",
            "expectations[0].from: `ip` or `cidr` stands alone",
            id="an address end stands alone",
        ),
        pytest.param(
            "- {from: {ip: 10.0.0.1}, to: {ip: 10.0.0.2}, port: 80, expect: maybe}",
            "expectations[0].expect: must be allow or deny (got 'maybe')",
            id="expect is allow or deny",
        ),
        pytest.param(
            "- {from: {ip: 10.0.0.1}, to: {ip: 10.0.0.2}, port: http, expect: allow}",
            "expectations[0].port: a named port needs a pod destination",
            id="a named port needs a pod to resolve on",
        ),
        pytest.param(
            "- {from: {ip: 10.0.0.1}, to: {ip: 10.0.0.2}, ports: 80, expect: allow}",
            "expectations[0]: unknown field(s) ports",
            id="a misspelt field is an error, not ignored",
        ),
        pytest.param("[]", "must be a non-empty list of expectations", id="an empty file checks nothing"),
        pytest.param(
            "- {from: [", "line 1, column 11: invalid YAML:", id="broken YAML names its line as validate does"
        ),
    ],
)
def test_a_malformed_expectation_is_named_by_its_path_and_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    status, _, err = run_test(capsys, path)
    assert status == 2
    assert f"{path}: {problem}" in err
    assert "Traceback" not in err


def test_an_end_that_selects_no_pod_fails_instead_of_passing_vacuously(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "- {from: {namespace: frontend, labels: {app: wbe}}, to: {ip: 8.8.8.8}, port: 53, "
        "protocol: UDP, expect: allow}\n",
    )
    junit = tmp_path / "r.xml"
    status, out, _ = run_test(capsys, path, "--junit", str(junit))
    assert status == 1
    assert "ERROR" in out and "`from` (frontend app=wbe) selects no live pod" in out
    assert ET.parse(junit).getroot().find("testsuite/testcase/error") is not None


def test_a_destination_without_the_named_port_is_a_failure_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "- {from: {ip: 203.0.113.9}, to: {namespace: data, pod: redis-0}, port: http, expect: deny}\n",
    )
    status, out, _ = run_test(capsys, path)
    assert status == 1
    assert "data/redis-0 has no TCP container port named 'http'" in out


NAMED = """\
- {name: by name, from: staging/web-staging-6f8d9-r5t2w, to: backend/api-5b7f9-4hq2c, port: http,
   expect: deny}
- {name: by address, from: 10.244.1.12, to: backend/api-5b7f9-4hq2c, port: 8080, expect: allow}
- {name: pod mapping, from: {namespace: frontend, pod: web-6d4cf-x2lqp}, to: backend/api-5b7f9-4hq2c,
   port: 8080, expect: allow}
- {name: unknown pod, from: staging/nope, to: backend/api-5b7f9-4hq2c, port: 80, expect: deny}
"""


def test_ends_may_be_names_and_an_unknown_name_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, _ = run_test(capsys, write(tmp_path, NAMED))
    assert status == 1
    lines = out.splitlines()
    assert lines[:4] == [
        "PASS   by name  (1 flow)",
        "PASS   by address  (1 flow)",
        "PASS   pod mapping  (1 flow)",
        "ERROR  unknown pod  (0 flows)",
    ]
    assert "`from`: pod staging/nope is not known" in out


SERVICES = """\
- {name: api reaches postgres by its headless name, from: backend/api-5b7f9-4hq2c,
   to: svc/data/postgres-headless, port: postgres, expect: allow}
- {name: web does not, from: frontend/web-6d4cf-x2lqp, to: svc/data/postgres-headless, port: 5432,
   expect: deny}
- {name: web reaches the api Service by its port name, from: frontend/web-6d4cf-x2lqp, to: svc/backend/api,
   port: http, expect: allow}
- {name: no such Service port, from: frontend/web-6d4cf-x2lqp, to: svc/data/postgres-headless, port: pg,
   expect: deny}
"""


def test_services_by_name_are_decided_through_the_service_headless_ones_on_their_endpoints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, _ = run_test(capsys, write(tmp_path, SERVICES))
    assert status == 1
    assert "PASS   api reaches postgres by its headless name  (1 flow)" in out
    assert "PASS   web does not  (1 flow)" in out
    assert "PASS   web reaches the api Service by its port name  (1 flow)" in out
    assert "ERROR  no such Service port" in out
    assert "port: Service data/postgres-headless has no port 'pg' for TCP" in out
    assert out.rstrip().endswith(
        "3 passed, 0 failed, 1 error (an expectation that could not be checked counts as failed)"
    )
