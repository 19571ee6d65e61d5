"""The leads benchmark runs end to end at a tiny size and reports what the harness needs."""

from benchmarks.leads_workload import format_results, leads_file, measure_leads


def test_leads_benchmark_measures_the_whole_core(tmp_path):
    results = measure_leads(sizes=[2_000], runs=1, cache_dir=tmp_path)
    entry = results["sizes"]["2k"]
    assert entry["leads"] == 2_000 and entry["samples"][0]["leads"] == 2_000
    assert entry["median"]["seconds"] > 0 and entry["median"]["peak_rss_mb"] > 0
    assert {"read", "clean", "segment", "score", "personas", "write_outputs"} <= set(entry["median_steps"])
    assert "2k" in format_results(results)
    assert leads_file(2_000, tmp_path) == leads_file(2_000, tmp_path)  # generated once, then reused
