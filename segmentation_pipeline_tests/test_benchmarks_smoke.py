"""The benchmark harness runs end to end on a tiny log and writes results of the documented shape.

Timings are never asserted: only that every measurement exists and is a plausible number. The domain
workloads (leads, persona texts, service) run once at tiny sizes through the harness's own command
line; the targets' logic (which ones are judged, met / not met / failed) is checked on made-up numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from benchmarks import domains, run, stages
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
    assert results["targets"] == []  # nothing at 1M / 10M, no pipeline run, no domains


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


def test_clustering_stages_fit_what_the_pipeline_fits():
    """A `cluster:` stage is `comparison.method_runs` (every configured feature set), and the stages after
    it take the method's runs, as the pipeline's assets do."""
    import inspect

    assert "method_runs" in inspect.getsource(stages.cluster)
    assert "fitted" in stages.STAGES["comparison"].inputs and "results" not in stages.INPUT_RECIPES


# ------------------------------------------------------------------------------------ domain workloads

TINY_DOMAINS = [
    "--domains", "leads,persona_texts,service", "--runs", "1", "--leads-sizes", "500", "--persona-sizes", "40",
    "--query-size", "40", "--service-requests", "60", "--service-concurrency", "4", "--service-rate", "100",
    "--service-batch-rows", "20", "--service-batch-calls", "2", "--service-seconds", "3", "--service-customers", "300",
    "--domain-timeout", "240",
]


@pytest.fixture(scope="module")
def domain_run(tmp_path_factory):
    """The three domains at tiny sizes through the harness's command line, merged into an existing results file."""
    folder = tmp_path_factory.mktemp("domains")
    output = folder / "latest.json"
    output.write_text(json.dumps({
        "created": "2026-01-01T00:00:00+00:00", "command": "python -m benchmarks.run --parts rfm", "runs": 1,
        "machine": {"git_commit": "abc1234", "load_average_at_start": [1, 1, 1], "load_average_at_end": [1, 1, 1]},
        "sizes": {"2k": {"rows": 2000}}, "rfm": {"size": "2k", "contenders": {}, "missing": {}, "median_seconds": {}},
    }))
    argv = [*TINY_DOMAINS, "--merge", "--cache-dir", str(folder / "cache"), "--output", str(output)]
    assert run.main(argv) == 0
    return json.loads(output.read_text())


def test_domains_alone_run_only_the_domain_part():
    args = run._parse_args(["--domains", "leads"])
    assert args.parts == ["domains"] and args.domains == ["leads"]
    full = run._parse_args([])
    assert full.parts == list(run.PARTS) and full.domains == list(domains.DOMAINS)
    assert full.leads_sizes == [10_000, 100_000, 1_000_000] and full.persona_sizes == [1_000, 10_000]
    with pytest.raises(SystemExit):
        run._parse_args(["--domains", "leeds"])


def test_leads_runs_are_measured_in_fresh_processes(domain_run):
    leads = domain_run["domains"]["leads"]
    assert "error" not in leads, leads.get("error")
    size = leads["sizes"]["500"]
    assert len(size["samples"]) == 1
    assert size["median"]["seconds"] > 0 and size["median"]["process_peak_rss_mb"] >= size["median"]["peak_rss_mb"] > 0
    assert size["median_steps"]
    assert leads["requested"] == {"sizes": [500]}


def test_persona_texts_sizes_and_query_are_measured(domain_run):
    texts = domain_run["domains"]["persona_texts"]
    assert "error" not in texts, texts.get("error")
    size = texts["sizes"]["40"]
    assert "failed_runs" not in size, size["samples"]
    assert size["median"]["seconds"] > 0 and size["median"]["peak_rss_mb"] > 0 and size["clusters"] >= 1
    query = texts["similarity_query"]["40"]
    assert "error" not in query, query.get("error")
    assert 0 < query["query_seconds_median"] <= query["query_seconds_max"]


def test_service_phases_are_bounded_and_error_free(domain_run):
    service = domain_run["domains"]["service"]
    assert "error" not in service, service.get("error")
    for phase in ("manual_1", "manual_4", "manual_4_paced"):
        assert 0 < service[phase]["requests"] <= 60, phase
        assert service[phase]["errors"] == 0 and service[phase]["p99_ms"] >= service[phase]["p50_ms"] > 0
    assert service["batch"]["calls"] == 2 and service["batch"]["errors"] == 0 and service["batch"]["rows"] == 20
    assert "closed loop" in service["how"] and "paced" in service["how"]


def test_domain_targets_are_not_judged_at_other_sizes(domain_run):
    # tiny sizes, 4 clients, 100 requests/s, 20 batch rows: none of the stated targets applies
    assert domain_run["targets"] == []


def test_merge_keeps_what_this_run_did_not_measure(domain_run):
    assert domain_run["rfm"]["size"] == "2k" and "2k" in domain_run["sizes"]
    (earlier,) = domain_run["merged_from"]
    assert earlier["parts"] == ["rfm"] and earlier["git_commit"] == "abc1234"
    section = performance_section({**domain_run, "rfm": None})
    assert "rfm measured earlier" in section and "python -m benchmarks.run --parts rfm" in section
    assert "--merge" not in section


def test_domain_tables_are_in_the_text_and_the_readme_section(domain_run):
    text = run.format_results(domain_run)
    assert "leads flow" in text and "persona texts" in text and "POST /segment/batch" in text
    section = performance_section({**domain_run, "rfm": None})
    assert "| 500 |" in section and "| 40 |" in section and "Similarity query against 40 personas" in section
    assert "| 4 connections paced at 100 req/s (open loop) |" in section


def _fake_domains(**values) -> dict:
    """Domain results at the targets' sizes and settings with the given numbers."""
    leads = {"sizes": {"100k": {"median": {"seconds": values["leads_s"], "process_peak_rss_mb": values["leads_mb"]}}},
             "requested": {"sizes": [10_000, 100_000]}}
    texts = {"sizes": {"1k": {"median": {"seconds": values["texts_1k"]}}, "10k": {"median": {"seconds": None}}},
             "similarity_query": {"10k": {"query_seconds_median": values["query_s"]}},
             "requested": {"sizes": [1_000, 10_000], "query_size": 10_000}}
    service = {"manual_50": {"requests_per_second": values["rps"]}, "manual_50_paced": {"p99_ms": values["p99"]},
               "batch": {"median_ms": values["batch_ms"]},
               "requested": {"concurrency": 50, "rate": 1000.0, "batch_rows": 10_000}}
    return {"leads": leads, "persona_texts": texts, "service": service}


def test_domain_targets_say_met_not_met_or_failed_with_the_number():
    checks = domains.evaluate_domain_targets(
        _fake_domains(leads_s=4.2, leads_mb=1500.0, texts_1k=3.0, query_s=0.004, rps=1800.0, p99=12.5, batch_ms=90.0)
    )
    by_target = {check["target"]: check for check in checks}
    assert len(checks) == len(domains.DOMAIN_TARGETS)
    verdicts = [(c["value"], c["met"], c.get("failed", False)) for c in checks]
    assert verdicts == [
        (4.2, True, False), (1500.0, False, False),  # leads wall, leads memory
        (3.0, True, False), (None, False, True),  # 1k met, 10k requested but failed
        (4.0, True, False),  # the query in ms
        (12.5, False, False), (1800.0, True, False), (90.0, True, False),  # paced p99, closed-loop rate, batch
    ]
    assert all(check["limit"] for check in by_target.values())
    section = performance_section({
        "created": "2026-01-01", "command": "python -m benchmarks.run", "runs": 3,
        "machine": {"cpu": "cpu", "usable_cpus": 2, "memory_gb": 1, "platform": "p", "python": "3", "packages": {},
                    "git_commit": "x", "load_average_at_start": [0, 0, 0]},
        "targets": checks,
    })
    assert "| 1500.0 | not met |" in section and "| no measurement | failed |" in section and "| 4.2 | met |" in section


def test_service_targets_need_their_stated_settings():
    fake = _fake_domains(leads_s=1, leads_mb=1, texts_1k=1, query_s=0.001, rps=5000.0, p99=1.0, batch_ms=1.0)
    fake["service"]["requested"]["rate"] = 100.0  # a lighter paced load says nothing about p99 at 1,000 req/s
    judged = {check["target"] for check in domains.evaluate_domain_targets(fake)}
    assert not any("paced" in target for target in judged)
    assert any("closed loop" in target for target in judged)


def test_a_child_over_its_time_limit_is_killed():
    from benchmarks import measure

    child = measure.run_child([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert child.returncode != 0 and child.seconds < 10 and "time limit" in child.stderr
