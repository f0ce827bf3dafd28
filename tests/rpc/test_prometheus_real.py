"""A real Prometheus scrapes ``netpol-pdp serve --metrics-listen``; promtool checks the shipped alerts.

Debian's ``prometheus`` package (``.ci/run`` installs it) provides both binaries;
without them these tests skip and say so.  The assertions go through
Prometheus's HTTP query API, so they hold for what an operator's dashboards
and alerts read, not only for the text of ``/metrics``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from envoyproc import free_port

from netpol_pdp.clients.client import DecisionClient
from netpol_pdp.index.decision import Verdict

from .conftest import CLIENT, INTRUDER, WEB, flow, wait_for
from .test_serve_process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="no promtool (Debian package prometheus)")
needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus (Debian package prometheus)")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[int], Callable[[str], float | None]]]:
    """Start a Prometheus scraping 127.0.0.1:<port> every 0.5 s; returns ``query(expr) -> value``."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> Callable[[str], float | None]:
        assert PROMETHEUS is not None
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
                    "rule_files": [str(ALERTS)],
                    "scrape_configs": [
                        {
                            "job_name": "netpol-pdp",
                            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                        }
                    ],
                }
            )
        )
        web = free_port()
        with (tmp_path / "prometheus.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        PROMETHEUS,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={tmp_path / 'data'}",
                        f"--web.listen-address=127.0.0.1:{web}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

        def query(expr: str) -> float | None:
            url = f"http://127.0.0.1:{web}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    result = json.load(response)["data"]["result"]
            except OSError:
                return None
            return float(result[0]["value"][1]) if result else None

        wait_for(lambda: query("up") == 1, 30, "Prometheus to scrape netpol-pdp")
        return query

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def send(port: int, allowed: int, denied: int) -> None:
    """Decide calls, one channel each so that the kernel spreads them over --workers."""
    for src, count, verdict in ((CLIENT, allowed, Verdict.ALLOW), (INTRUDER, denied, Verdict.DENY)):
        for _ in range(count):
            with DecisionClient(f"127.0.0.1:{port}") as client:
                client.wait_ready(10)
                assert client.decide(flow(src, WEB)).verdict is verdict


@needs_prometheus
@pytest.mark.parametrize("workers", [1, 2])
def test_prometheus_sees_the_decisions_and_latencies_sent(
    prometheus: Callable[[int], Callable[[str], float | None]], world: Path, workers: int
) -> None:
    server = ServerProcess(
        "--source", str(world), "--metrics-listen", "127.0.0.1:0", "--workers", str(workers)
    )
    try:
        started = server.wait_event("workers_started" if workers > 1 else "listening")
        for _ in range(workers):
            server.wait_event("feed_loaded")
        query = prometheus(started["metrics_port"])
        send(started["port"], allowed=12, denied=5)
        expected = {
            'sum(netpol_pdp_decisions_total{verdict="ALLOW",reason="allowed-by-policy"})': 12,
            'sum(netpol_pdp_decisions_total{verdict="DENY"})': 5,
            'sum(netpol_pdp_rpc_duration_seconds_count{method="Decide"})': 17,
            'sum(netpol_pdp_rpc_duration_seconds_bucket{method="Decide",le="+Inf"})': 17,
            "min(netpol_pdp_ready)": 1,
        }
        for expr, value in expected.items():
            wait_for(lambda expr=expr, value=value: query(expr) == value, 15, f"{expr} == {value}")
        if workers > 1:
            assert query("count(count by (worker) (netpol_pdp_ready))") == workers
        # The histogram answers quantile queries: a Decide takes well under a second.
        p99 = query("histogram_quantile(0.99, sum by (le) (netpol_pdp_rpc_duration_seconds_bucket))")
        assert p99 is not None and 0 < p99 < 1
        # Nothing is wrong, so none of the shipped alerts is pending or firing.
        assert query("count(ALERTS)") is None
    finally:
        server.stop()


@needs_promtool
def test_promtool_accepts_the_shipped_alert_rules() -> None:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


# promtool's unit-test format: series over time, and the alerts expected at given times.
ALERT_TESTS = """
rule_files: [{alerts}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'netpol_pdp_ready{{instance="a"}}'
        values: '0x5'
      - series: 'netpol_pdp_ready{{instance="b"}}'
        values: '1x5'
      - series: 'netpol_pdp_feed_stale{{instance="a"}}'
        values: '0 0 1 1 1 1'
      - series: 'netpol_pdp_feed_errors_total{{instance="a"}}'
        values: '0 0 0 1 1 1'
      - series: 'netpol_pdp_flow_errors_total{{instance="a",field="attributes.source.address"}}'
        values: '0+10x12'
    alert_rule_test:
      - {{eval_time: 1m, alertname: NetpolPdpNotServing, exp_alerts: []}}
      - eval_time: 3m
        alertname: NetpolPdpNotServing
        exp_alerts:
          - exp_labels: {{severity: critical, instance: a}}
            exp_annotations: {{summary: "netpol-pdp on a is NOT_SERVING: no index loaded"}}
      - {{eval_time: 2m, alertname: NetpolPdpFeedStale, exp_alerts: []}}
      - eval_time: 4m
        alertname: NetpolPdpFeedStale
        exp_alerts:
          - exp_labels: {{severity: warning, instance: a}}
            exp_annotations: {{summary: "netpol-pdp on a decides on a stale view of the cluster"}}
      - {{eval_time: 2m, alertname: NetpolPdpFeedReloadsFailing, exp_alerts: []}}
      - eval_time: 4m
        alertname: NetpolPdpFeedReloadsFailing
        exp_alerts:
          - exp_labels: {{severity: warning, instance: a}}
            exp_annotations: {{summary: "netpol-pdp on a could not reload its feed"}}
      - eval_time: 12m
        alertname: NetpolPdpDecisionErrors
        exp_alerts:
          - exp_labels: {{severity: warning, instance: a, field: attributes.source.address}}
            exp_annotations:
              summary: "netpol-pdp on a refuses malformed requests (attributes.source.address)"
"""


@needs_promtool
def test_each_shipped_alert_fires_on_its_condition(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    tests = tmp_path / "alerts_test.yaml"
    tests.write_text(ALERT_TESTS.format(alerts=ALERTS))
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
