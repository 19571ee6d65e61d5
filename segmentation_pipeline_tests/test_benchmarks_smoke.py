"""The benchmark harness runs end to end on a tiny log and writes results of the documented shape.

Timings are never asserted: only that every measurement exists and is a plausible number.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from benchmarks import run, stages
from benchmarks.markdown import performance_section
from benchmarks.workload import SizeSpec, Workload, human_count, parse_count
REPO_ROOT = Path(__file__).resolve().parents[1]

TINY_ROWS = 2000
FEATURE_STAGES = ["ingest", "clean", "rfm", "basic_features"]


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """One in-process harness run on a tiny log: (results JSON, cache folder)."""
    folder = tmp_path_factory.mktemp("bench")
    output = folder / "latest.json"
    argv = [
        "--sizes", str(TINY_ROWS), "--runs", "1", "--compare-size", str(TINY_ROWS), "--parts", "stages,rfm",
        "--stages", ",".join(FEATURE_STAGES), "--in-process", "--cache-dir", str(folder / "cache"), "--output", str(output),
    ]
    assert run.main(argv) == 0
    return json.loads(output.read_text()), folder / "cache"


def test_results_describe_the_machine_and_the_generated_log(harness):
    results, _ = harness
    machine = results["machine"]
    assert machine["logical_cpus"] >= 1 and machine["memory_gb"] > 0
    assert machine["packages"]["pandas"]
    label = human_count(TINY_ROWS)
    size = results["sizes"][label]
    assert size["rows"] > 0 and 0 < size["customers_in_log"] <= size["customers_generated"]
    assert 0 < size["cleaned_rows"] <= size["rows"]


def test_every_selected_stage_has_a_median_time_and_peak_memory(harness):
    results, _ = harness
    measured = results["stages"][human_count(TINY_ROWS)]
    assert list(measured) == FEATURE_STAGES
    for name, entry in measured.items():
        assert "failed_runs" not in entry, entry["samples"]
        assert entry["median"]["seconds"] >= 0, name
        assert entry["median"]["peak_rss_mb"] > 0, name
        assert len(entry["samples"]) == 1


def test_rfm_comparison_reports_ratios_against_the_project(harness):
    results, _ = harness
    comparison = results["rfm"]
    assert comparison["size"] == human_count(TINY_ROWS)
    assert set(comparison["contenders"]) | set(comparison["missing"]) == set(stages.RFM_CONTENDERS)
    assert comparison["median_seconds"]["project"] > 0
    assert comparison["pandas_groupby_over_project"] > 0
    if "lifetimes" in comparison["contenders"]:
        assert comparison["lifetimes_over_project"] > 0


def test_targets_are_only_checked_where_measured(harness):
    results, _ = harness
    assert results["targets"] == []  # nothing at 1M / 10M, no pipeline run


def test_readme_section_is_written_from_the_results(harness):
    results, _ = harness
    section = performance_section(results)
    assert section.startswith("## Performance\n")
    assert results["machine"]["cpu"] in section
    for name in FEATURE_STAGES:
        assert f"| {name} | " in section
    assert "--output" not in section and "--cache-dir" not in section


def test_worker_process_measures_one_stage(harness, tmp_path):
    """The default mode: a fresh interpreter loads the cached inputs and times the stage alone."""
    _, cache = harness
    spec = SizeSpec.for_rows(TINY_ROWS)
    workload = Workload.current(spec, cache)
    result = tmp_path / "sample.json"
    command = [
        sys.executable, "-m", "benchmarks.stages", "measure", "rfm", "--spec", spec.to_json(),
        "--data-dir", str(workload.data_dir), "--inputs-dir", str(workload.inputs_dir), "--result", str(result),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run(command, check=True, cwd=REPO_ROOT, env=env, capture_output=True, timeout=120)
    sample = json.loads(result.read_text())
    assert sample["seconds"] >= 0 and sample["peak_rss_mb"] > 0


def test_cli_output_is_parsed_into_rows_assets_and_step_times():
    stdout = (
        "config: pipeline.yml\n"
        "  raw_transactions                       54,772 rows    0.86s\n"
        "  customer_features_basic                 1,997 rows    0.24s\n"
        "  pipeline_charts                                       2.79s\n"
        "\nrun 1234 succeeded in 36.5s: 30 assets, 44 checks passed, 0 failed\n"
    )
    facts = run.parse_cli_output(stdout)
    assert facts["rows"] == 54_772 and facts["customers"] == 1_997
    assert facts["assets"] == 30 and facts["run_seconds"] == 36.5
    assert facts["asset_seconds"] == {"raw_transactions": 0.86, "customer_features_basic": 0.24, "pipeline_charts": 2.79}


@pytest.mark.parametrize(("text", "expected"), [("1000000", 1_000_000), ("1_000", 1_000), ("1M", 1_000_000), ("2.5k", 2_500)])
def test_sizes_are_read_with_suffixes(text, expected):
    assert parse_count(text) == expected
    assert SizeSpec.for_rows(expected).rows == expected


def test_a_million_transactions_means_fifty_thousand_customers():
    assert SizeSpec.for_rows(1_000_000).customers == 50_000
    assert human_count(1_000_000) == "1M" and human_count(100_000) == "100k"
