"""Persona-texts speed: the whole analysis on N generated personas, and similarity queries on a stored index.

`measure_persona_texts(sizes, repeats)` is what the benchmark harness calls: for each size it generates
the corpus once (the input, not timed), then times `analyse_corpus` (embed, select k, cluster, themes,
classification, quality, matrix, HTML) and `write_outputs` (every file, the dissimilarity CSV included)
`repeats` times, and reports medians with the per-step timings of the median run. The query part
stores a similarity index of the largest size and times `similar()` (index already loaded, as in a
long-running process) and a load-then-query (as the CLI does).

    python -m benchmarks.persona_texts_workload 1000 10000

`measure_persona_texts_fresh(sizes, runs, query_size)` is the harness's variant (`python -m
benchmarks.run --domains persona_texts`): every run of every size, and the query measurement, in a fresh
process (`--measure-size N --result FILE`, `--measure-queries N --result FILE`), medians over the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import measure
from benchmarks.measure import machine_info, peak_rss_mb, reset_peak_rss
from benchmarks.workload import human_count
from segmentation_pipeline.persona_texts.analysis import analyse_corpus, load_corpus, write_outputs
from segmentation_pipeline.persona_texts.settings import PersonaTextsSettings
from segmentation_pipeline.persona_texts.similarity import load_similarity_index, similar

TARGET_SECONDS = {1_000: 10.0, 10_000: 60.0}
QUERY_TARGET_SECONDS = 0.050
QUERIES = (
    "a junior data analyst in a bank who builds dashboards",
    "penetration tester hardening firewalls for a hospital",
    "recruiter onboarding new employees at a university",
    "marketing manager planning social media campaigns",
    "procurement specialist negotiating with suppliers",
)


def measure_size(count: int, repeats: int = 3, seed: int = 42) -> dict:
    settings = PersonaTextsSettings(embedded_count=count, seed=seed)
    loaded = load_corpus(settings)
    runs = []
    for _ in range(repeats):
        reset_peak_rss()
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            analysis = analyse_corpus(loaded, settings)
            analysed = time.perf_counter()
            write_outputs(analysis, folder)
            written = time.perf_counter()
        runs.append({
            "analyse_seconds": analysed - started,
            "write_seconds": written - analysed,
            "seconds": written - started,
            "steps": analysis.timings,
            "peak_rss_mb": peak_rss_mb(),
        })
    median = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    return {
        "personas": count,
        "repeats": repeats,
        "seconds": round(statistics.median(r["seconds"] for r in runs), 3),
        "analyse_seconds": round(statistics.median(r["analyse_seconds"] for r in runs), 3),
        "write_seconds": round(statistics.median(r["write_seconds"] for r in runs), 3),
        "all_seconds": [round(r["seconds"], 3) for r in runs],
        "steps_of_median_run": median["steps"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "target_seconds": TARGET_SECONDS.get(count),
        "clusters": analysis.clusters.n_clusters,
        "ari_vs_families": (analysis.quality["truth"] or {}).get("ari"),
    }


def measure_queries(count: int = 10_000, repeats: int = 3, seed: int = 42) -> dict:
    settings = PersonaTextsSettings(embedded_count=count, seed=seed)
    analysis = analyse_corpus(load_corpus(settings), settings)
    with tempfile.TemporaryDirectory() as folder:
        path = write_outputs(analysis, folder)["index"]
        index = load_similarity_index(path)
        in_process = []
        for _ in range(repeats):
            for query in QUERIES:
                started = time.perf_counter()
                index.similar(query, top=5)
                in_process.append(time.perf_counter() - started)
        cold = []
        for query in QUERIES[:repeats]:
            started = time.perf_counter()
            similar(query, path, top=5)
            cold.append(time.perf_counter() - started)
    return {
        "personas": count,
        "query_seconds_median": round(statistics.median(in_process), 5),
        "query_seconds_max": round(max(in_process), 5),
        "load_and_query_seconds_median": round(statistics.median(cold), 4),
        "target_seconds": QUERY_TARGET_SECONDS,
    }


def measure_persona_texts(sizes=(1_000, 10_000), repeats: int = 3) -> dict:
    """Everything above, with the machine facts (load average included) the figures depend on."""
    return {
        "machine": machine_info(),
        "analysis": {str(count): measure_size(count, repeats) for count in sizes},
        "similarity_query": measure_queries(max(sizes), repeats),
    }


SIZE_KEYS = ("seconds", "analyse_seconds", "write_seconds", "peak_rss_mb", "process_peak_rss_mb")


def _child(option: str, count: int, timeout: float | None) -> dict:
    """One worker process (`--measure-size` or `--measure-queries`): its JSON, or {"error"}."""
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        child = measure.run_child([sys.executable, "-m", "benchmarks.persona_texts_workload", option, str(count),
                                   "--result", str(result)], timeout=timeout)
        if child.returncode != 0 or not result.exists():
            return {"error": (child.stderr or f"exit code {child.returncode}")[-4000:]}
        return {**json.loads(result.read_text()), "process_peak_rss_mb": child.peak_rss_mb}


def measure_persona_texts_fresh(sizes=(1_000, 10_000), runs: int = 3, query_size: int | None = 10_000,
                                timeout: float | None = 900.0) -> dict:
    """The whole analysis per size, each run in a fresh process (corpus generation before the clock),
    medians over the runs; then similarity queries against `query_size` personas in one more process."""
    results: dict = {"machine": machine_info(), "runs": runs, "sizes": {}, "similarity_query": {}}
    for count in sizes:
        samples = [_child("--measure-size", count, timeout) for _ in range(runs)]
        good = [s for s in samples if "error" not in s]
        entry = {"personas": count, "samples": samples, "median": measure.medians(good, SIZE_KEYS),
                 "target_seconds": TARGET_SECONDS.get(count)}
        if good:
            median_run = sorted(good, key=lambda s: s["seconds"])[len(good) // 2]
            entry.update(steps_of_median_run=median_run["steps_of_median_run"], clusters=median_run["clusters"],
                         ari_vs_families=median_run["ari_vs_families"])
        if len(good) < len(samples):
            entry["failed_runs"] = len(samples) - len(good)
        results["sizes"][human_count(count)] = entry
    if query_size:
        results["similarity_query"][human_count(query_size)] = _child("--measure-queries", query_size, timeout)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("counts", nargs="*", type=int, help="numbers of personas (default 1000 10000)")
    parser.add_argument("--measure-size", type=int, help=argparse.SUPPRESS)  # a worker: one run of one size
    parser.add_argument("--measure-queries", type=int, help=argparse.SUPPRESS)  # a worker: the query timings
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_size:
        args.result.write_text(json.dumps(measure_size(args.measure_size, repeats=1)))
        return 0
    if args.measure_queries:
        args.result.write_text(json.dumps(measure_queries(args.measure_queries, repeats=5)))
        return 0
    print(json.dumps(measure_persona_texts(tuple(args.counts) or (1_000, 10_000)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
