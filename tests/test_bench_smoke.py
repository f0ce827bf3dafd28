"""Every benchmark command runs, at a tiny size, in seconds (no figure is asserted).

CI runs these so that the benchmarks cannot rot between the times someone
measures with them.  What they check is that each command completes, writes
its results, and that what it measured is self-consistent (counts add up, the
index and the reference agree); speed itself is only ever reported.
"""

from __future__ import annotations

import json

import pytest

from netpol_pdp.bench import manifest_reload, parser_speed, reload_stall, world_load
from netpol_pdp.bench.worlds import SIZES
from netpol_pdp.clients.cli import main
from netpol_pdp.index.manifests import ManifestSource


def test_bench_world_writes_a_loadable_cluster_and_a_flow_log(tmp_path, capsys):
    assert (
        main(["bench", "world", "--size", "tiny", "--seed", "5", "-o", str(tmp_path), "--flows", "300"]) == 0
    )
    spec = SIZES["tiny"]
    loaded = ManifestSource(tmp_path).load()
    assert loaded.counts() == {
        "Namespace": spec.namespaces,
        "Pod": spec.pods,
        "Node": spec.nodes,
        "NetworkPolicy": spec.policies,
    }
    lines = (tmp_path / "flows.jsonl").read_text().splitlines()
    assert len(lines) == 300
    assert set(json.loads(lines[0])) == {"src_ip", "dst_ip", "protocol", "dst_port"}
    assert "120 pods" in capsys.readouterr().out


def test_bench_world_refuses_a_file_as_its_output_folder(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("")
    assert main(["bench", "world", "--size", "tiny", "-o", str(target)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_bench_audit_over_the_example_counts_hits_and_misses_and_agrees_with_the_reference(tmp_path):
    assert main(["bench", "audit", "--flows", "5000", "--reference-sample", "100", "-o", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "audit.json").read_text())
    assert figures["log"]["hits"] + figures["log"]["misses"] == 5000
    assert figures["misses"]["count"] == figures["distinct_flows"] == figures["log"]["misses"]
    assert figures["reference"]["disagreements"] == 0
    assert figures["machine"]["cpus"] >= 1
    assert "cache hits only" in (tmp_path / "audit.md").read_text()


def test_bench_audit_names_a_missing_source(tmp_path, capsys):
    assert main(["bench", "audit", "--source", str(tmp_path / "nowhere"), "--flows", "10"]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_bench_scaling_measures_a_size_in_its_own_process(tmp_path):
    assert main(["bench", "scaling", "--sizes", "tiny", "-o", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "scaling.json").read_text())["sizes"]
    assert [f["size"] for f in figures] == ["tiny"]
    assert figures[0]["counts"]["Pod"] == SIZES["tiny"].pods
    assert set(figures[0]["updates"]) >= {"pod add", "policy delete"}
    assert figures[0]["peak_rss_mib"] > 0
    assert "## Targets" in (tmp_path / "scaling.md").read_text()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "scaling.png").stat().st_size > 0


def test_bench_scaling_rejects_an_unknown_size(capsys):
    assert main(["bench", "scaling", "--sizes", "tiny,huge"]) == 2
    assert "unknown size huge" in capsys.readouterr().err


def test_bench_serve_drives_the_service_echo_and_reference_servers_over_loopback(tmp_path):
    args = ["bench", "serve", "--duration", "0.2", "--batch", "50", "--window", "2", "-o", str(tmp_path)]
    assert main(args) == 0
    figures = json.loads((tmp_path / "serve.json").read_text())
    assert set(figures["runs"]) == {"decision", "echo", "reference"}
    for shapes in figures["runs"].values():
        assert set(shapes) == {"unary", "batch", "stream"}
        assert all(run["flows"] >= run["calls"] > 0 for run in shapes.values())
        assert shapes["batch"]["flows"] == 50 * shapes["batch"]["calls"]
    assert set(figures["ratios"]) == {"decision/echo", "decision/reference"}
    assert "p99.9" in (tmp_path / "serve.md").read_text()


def test_bench_serve_rejects_a_non_positive_duration(capsys):
    assert main(["bench", "serve", "--duration", "0"]) == 2
    assert "--duration must be positive" in capsys.readouterr().err


def test_bench_micro_runs_the_pytest_benchmarks_and_writes_their_table(tmp_path):
    assert main(["bench", "micro", "--sizes", "tiny", "--max-time", "0.01", "-o", str(tmp_path)]) == 0
    names = {b["name"] for b in json.loads((tmp_path / "micro.json").read_text())["benchmarks"]}
    assert {
        "test_decide_cache_hit[tiny]",
        "test_index_build[tiny]",
        "test_apply_one_event[tiny-pod add]",
    } <= names
    assert "decide_cache_miss[tiny]" in (tmp_path / "micro.md").read_text()


def test_bench_manifest_reload_measures_cached_and_uncached_reloads(tmp_path, capsys):
    out = tmp_path / "reload.json"
    assert manifest_reload.main(["--size", "tiny", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    spec = SIZES["tiny"]
    assert figures["objects"] == spec.namespaces + spec.pods + spec.nodes + spec.policies
    assert figures["files"] > 1
    for key in (
        "first_load_s",
        "reload_unchanged_s",
        "reload_one_file_restored_s",
        "reload_one_file_uncached_s",
    ):
        assert figures[key] > 0
    assert "when every file is parsed again" in capsys.readouterr().out


def test_bench_reload_stall_loads_the_file_whole_and_reports_the_worst_gap(tmp_path, capsys):
    out = tmp_path / "stall.json"
    assert reload_stall.main(["--shape", "multi", "--mb", "0.05", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["objects"] > 50 and figures["load_worst_gap_ms"] > 0


def test_world_load_measures_every_step_of_a_tiny_world(capsys):
    assert world_load.main(["--size", "tiny", "--repeat", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["objects"] == sum(
        getattr(SIZES["tiny"], k) for k in ("namespaces", "pods", "nodes", "policies")
    )
    assert figures["documents"] == figures["objects"]
    assert 0 < figures["yaml_rs_documents"] <= figures["documents"]
    for step in (
        "yaml_rs_parse",
        "fast_parse",
        "validate",
        "validate_strict",
        "world_load",
        "validate_process",
    ):
        assert figures[step] > 0


def test_parser_speed_reports_the_log_and_the_world_in_one_run_saying_which_parser(capsys):
    assert parser_speed.main(["--size", "tiny", "--flows", "300", "--repeat", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in figures["rows"]}
    assert list(rows) == [
        "log: orjson parse+dump",
        "log: audit pass (after load)",
        "log: netpol-pdp audit (process)",
        "tiny: yaml-rs bare parse",
        "tiny: world load, in process",
        "tiny: netpol-pdp validate (process)",
    ]
    for row in rows.values():
        assert row["seconds"] > 0 and row["parser"]
    assert {row["lines"] for name, row in rows.items() if name.startswith("log: ")} == {300}
    assert rows["tiny: yaml-rs bare parse"]["parser"].startswith("yaml-rs ")
    assert "in 13 of 13 files" in rows["tiny: netpol-pdp validate (process)"]["parser"]
    assert set(figures["ratios"]) == {
        "audit pass speed / orjson parse+dump speed (target >= 0.5)",
        "tiny: world load / yaml-rs bare parse (target <= 2)",
        "tiny: validate process / yaml-rs bare parse",
    }


def test_parser_speed_refuses_a_world_without_a_flow_log(tmp_path):
    assert main(["bench", "world", "--size", "tiny", "-o", str(tmp_path)]) == 0
    with pytest.raises(SystemExit, match="no flow log"):
        parser_speed.main(["--world", str(tmp_path), "--repeat", "1"])
