"""How fast the leads core runs: the whole flow on N synthetic leads, file in, every output written.

    python -m benchmarks.leads_workload --sizes 10k,100k,1M --runs 3

For each size a synthetic leads CSV is generated once (cached under benchmarks/cache/leads/, keyed by
size, seed and the lead personas file). Each run is a fresh process that reads that CSV and does
everything the leads assets do: clean, encode and cluster (k = 4 with 10 bootstraps), conversion per
cluster, the calibrated score (3 folds), personas, both charts and the clustered-leads table, then
writes personas.json, clustered_leads.csv, the two PNGs and the model bundle to a temporary folder.
A run reports the wall seconds of that work (interpreter start and imports excluded), each step's
seconds, and the peak RSS while it ran (reset after imports where Linux allows; the process's whole
peak otherwise, and always as `process_peak_rss_mb`). The numbers are medians over the runs.

`measure_leads(sizes, runs, cache_dir)` is the function the benchmark harness calls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import measure
from benchmarks.workload import DEFAULT_CACHE_DIR, human_count, parse_count

SIZES = (10_000, 100_000, 1_000_000)
SEED = 42
TARGET = {"leads": 100_000, "seconds": 5.0, "peak_rss_mb": 1024.0}  # the limits at 100k leads
RUN_KEYS = ("seconds", "cpu_seconds", "peak_rss_mb", "process_peak_rss_mb", "start_rss_mb")


def leads_file(n: int, cache_dir: Path = DEFAULT_CACHE_DIR, seed: int = SEED) -> Path:
    """The synthetic leads CSV of size n, generated once per size, seed and personas file."""
    from segmentation_pipeline.leads.synthetic import DEFAULT_LEAD_PERSONAS_PATH, write_synthetic_leads

    digest = hashlib.sha256(DEFAULT_LEAD_PERSONAS_PATH.read_bytes()).hexdigest()[:10]
    path = Path(cache_dir) / "leads" / f"leads_{n}_s{seed}_{digest}.csv"
    if not path.is_file():
        write_synthetic_leads(path, n, seed)
    return path


def measure_once(path: Path) -> dict:
    """One run of the whole leads core on the leads file, in this process: seconds, steps, peak RSS."""
    from segmentation_pipeline.charts import save_png
    from segmentation_pipeline.leads.pipeline import run_leads
    from segmentation_pipeline.leads.settings import LeadsSettings
    from segmentation_pipeline.storage import atomic_write_text, write_csv

    settings = LeadsSettings(source="file", path=str(path))
    start_rss = measure.reset_peak_rss()
    started, cpu_started = time.perf_counter(), time.process_time()
    run = run_leads(settings)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        write_started = time.perf_counter()
        atomic_write_text(out / "personas.json", json.dumps(run.personas, indent=2))
        write_csv(run.clustered, out / "clustered_leads.csv")
        save_png(run.dashboard_png, out / "leads_dashboard.png")
        save_png(run.pca_png, out / "leads_pca.png")
        run.segmentation.bundle.save(out / "leads_model.joblib")
        write_seconds = time.perf_counter() - write_started
    return {
        "leads": len(run.input.raw),
        "seconds": round(time.perf_counter() - started, 3),
        # CPU seconds of this process (all its threads): on a machine shared with other work, close
        # to what the wall time would be on an idle one, since the core runs its math on one thread
        "cpu_seconds": round(time.process_time() - cpu_started, 3),
        "steps": {**run.seconds, "write_outputs": round(write_seconds, 4)},
        "peak_rss_mb": measure.peak_rss_mb(),
        "start_rss_mb": start_rss,
    }


def measure_leads(sizes=SIZES, runs: int = 3, cache_dir: Path = DEFAULT_CACHE_DIR, timeout: float | None = None) -> dict:
    """Median seconds and peak RSS of the whole leads core per size, each run in a fresh process."""
    results = {"machine": measure.machine_info(), "runs": runs, "target": TARGET, "sizes": {}}
    for n in sizes:
        path = leads_file(n, Path(cache_dir))
        samples = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as folder:
                result_path = Path(folder) / "run.json"
                child = measure.run_child(
                    [sys.executable, "-m", "benchmarks.leads_workload", "--measure", str(path), "--result", str(result_path)],
                    timeout=timeout,
                )
                if child.returncode != 0:
                    raise RuntimeError(f"leads benchmark at {human_count(n)} failed:\n{child.stderr[-2000:]}")
                samples.append({**json.loads(result_path.read_text()), "process_peak_rss_mb": child.peak_rss_mb})
        step_names = list(samples[0]["steps"])
        results["sizes"][human_count(n)] = {
            "leads": n,
            "samples": samples,
            "median": measure.medians(samples, RUN_KEYS),
            "median_steps": measure.medians([s["steps"] for s in samples], tuple(step_names)),
        }
    at_target = results["sizes"].get(human_count(TARGET["leads"]))
    if at_target:
        median = at_target["median"]
        results["target_met"] = median["seconds"] <= TARGET["seconds"] and median["peak_rss_mb"] <= TARGET["peak_rss_mb"]
    return results


def format_results(results: dict) -> str:
    lines = [f"leads core, median of {results['runs']} runs (load at start {results['machine']['load_average_at_start']})",
             f"{'leads':>6} {'seconds':>8} {'cpu s':>8} {'peak MB':>8} {'process MB':>10}  slowest steps"]
    for label, entry in results["sizes"].items():
        median, steps = entry["median"], entry["median_steps"]
        slowest = ", ".join(f"{name} {value:.2f}" for name, value in sorted(steps.items(), key=lambda kv: -kv[1])[:4])
        lines.append(f"{label:>6} {median['seconds']:>8.2f} {median['cpu_seconds']:>8.2f} {median['peak_rss_mb']:>8.0f} "
                     f"{median['process_peak_rss_mb']:>10.0f}  {slowest}")
    if "target_met" in results:
        lines.append(f"target (100k leads <= 5 s, <= 1 GB): {'met' if results['target_met'] else 'NOT met'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="numbers of leads, e.g. 10k,100k,1M")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # a worker: one run on this file
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        args.result.write_text(json.dumps(measure_once(args.measure)))
        return 0
    results = measure_leads([parse_count(size) for size in args.sizes.split(",")], args.runs, args.cache_dir)
    print(format_results(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
