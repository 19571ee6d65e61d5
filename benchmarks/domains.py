"""The leads, persona-texts and service workloads as parts of the harness, with the stated targets.

    python -m benchmarks.run --domains leads,persona_texts,service

Each domain runs its own workload module, every measured run in a fresh process with a time limit:

- leads (`benchmarks/leads_workload.py`): the whole leads flow (read the CSV, clean, encode, k = 4 with
  bootstraps, conversion, calibrated score, personas, both charts, CSV/JSON/model written) on N
  synthetic leads; wall seconds of that work (imports excluded), its peak RSS, and the process's peak;
- persona_texts (`benchmarks/persona_texts_workload.py`): embed, select k, cluster, themes,
  classification, quality, matrix, HTML and every file written, on N generated personas (generation
  before the clock); then similarity queries against a stored index of `query_size` personas;
- service (`benchmarks/service_workload.py`): `serve()` in its own process on a loopback port, on a
  set published from the synthetic generator, driven by an asyncio HTTP/1.1 client in another process
  on the same machine; every phase bounded in requests and seconds (see SERVICE_HOW).
"""

from __future__ import annotations

import json
import operator
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import measure

DOMAINS = ("leads", "persona_texts", "service")
ERROR_TAIL = 6000

SERVICE_HOW = (
    "`POST /segment/manual` is measured three ways, over loopback with keep-alive connections, against one "
    "uvicorn worker (what `segmentation-pipeline serve` runs), the load generator (an asyncio HTTP/1.1 client) "
    "being a separate process on the same machine: with 1 client sending one request at a time (closed loop: "
    "the latency floor); with {c} clients each sending its next request as soon as the last is answered "
    "(closed loop: the throughput; its latency is queueing by construction, mean ≈ {c} / throughput, so it "
    "is reported but not judged); and with {c} connections offering {rate:,.0f} requests/s in total, each on "
    "a fixed schedule (open loop, paced), latency counted from the scheduled send time so a server falling "
    "behind shows up — the p99 goal is judged there. `/segment/batch` is {rows:,} rows per call, sent one "
    "call after the other, wall time as the client sees it (answer decoded). Each `/segment/manual` phase is "
    "bounded to {requests:,} requests (a third of that for the single client) and {seconds:g} s, the batch "
    "phase to {batch_seconds:g} s."
)


@dataclass(frozen=True)
class DomainOptions:
    """What to measure in the domain parts (the harness's --leads-sizes, --persona-sizes, --service-* options)."""

    leads_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    persona_sizes: tuple[int, ...] = (1_000, 10_000)
    query_size: int = 10_000  # 0: no similarity query
    service_requests: int = 3000
    service_concurrency: int = 50
    service_rate: float = 1000.0
    service_batch_rows: int = 10_000
    service_batch_calls: int = 7
    service_phase_seconds: float = 20.0
    service_customers: int = 2000
    service_methods: tuple[str, ...] = ("kmeans", "gmm", "fuzzy_cmeans", "autoencoder_kmeans", "hdbscan")
    timeout: float = 1800.0  # seconds per child process

    def requested(self, domain: str) -> dict:
        """The settings a domain's results are judged by, stored with them (also when it failed)."""
        if domain == "leads":
            return {"sizes": list(self.leads_sizes)}
        if domain == "persona_texts":
            return {"sizes": list(self.persona_sizes), "query_size": self.query_size}
        return {"requests": self.service_requests, "concurrency": self.service_concurrency, "rate": self.service_rate,
                "batch_rows": self.service_batch_rows, "batch_calls": self.service_batch_calls,
                "phase_seconds": self.service_phase_seconds, "customers": self.service_customers,
                "methods": list(self.service_methods)}


def measure_domains(names: list[str], options: DomainOptions, runs: int, cache_dir: Path) -> dict:
    """{domain: results}; a domain that fails records {"error"} and the others still run."""
    measured = {}
    for name in names:
        _progress(f"[{name}] measuring: {options.requested(name)}")
        started = time.perf_counter()
        try:
            entry = MEASURERS[name](options, runs, Path(cache_dir))
        except Exception:  # noqa: BLE001 - a failed domain is reported and the others still run
            entry = {"error": traceback.format_exc()[-ERROR_TAIL:]}
        entry["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        entry["requested"] = options.requested(name)
        entry["harness_seconds"] = round(time.perf_counter() - started, 1)
        _progress(f"[{name}] done in {entry['harness_seconds']:.0f} s" + (" (FAILED)" if "error" in entry else ""))
        measured[name] = entry
    return measured


def _leads(options: DomainOptions, runs: int, cache_dir: Path) -> dict:
    from benchmarks.leads_workload import measure_leads

    return measure_leads(options.leads_sizes, runs, cache_dir, timeout=options.timeout)


def _persona_texts(options: DomainOptions, runs: int, cache_dir: Path) -> dict:
    from benchmarks.persona_texts_workload import measure_persona_texts_fresh

    return measure_persona_texts_fresh(options.persona_sizes, runs, options.query_size or None, timeout=options.timeout)


def _service(options: DomainOptions, runs: int, cache_dir: Path) -> dict:
    """One measurement (the phases are many requests each; --runs does not repeat it)."""
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "service.json"
        command = [
            sys.executable, "-m", "benchmarks.service_workload", "--json", str(result),
            "--customers", str(options.service_customers), "--methods", ",".join(options.service_methods),
            "--requests", str(options.service_requests), "--concurrency", str(options.service_concurrency),
            "--rate", str(options.service_rate), "--batch-rows", str(options.service_batch_rows),
            "--batch-calls", str(options.service_batch_calls), "--phase-seconds", str(options.service_phase_seconds),
        ]
        child = measure.run_child(command, timeout=options.timeout)
        if child.returncode != 0 or not result.exists():
            return {"error": (child.stderr or f"exit code {child.returncode}")[-ERROR_TAIL:]}
        measured = json.loads(result.read_text())
    measured["machine"] = {"load_average_at_start": measured["settings"].get("load_average")}
    measured["how"] = SERVICE_HOW.format(
        c=options.service_concurrency, rate=options.service_rate, rows=options.service_batch_rows,
        requests=options.service_requests, seconds=options.service_phase_seconds,
        batch_seconds=3 * options.service_phase_seconds,
    )
    return measured


MEASURERS = {"leads": _leads, "persona_texts": _persona_texts, "service": _service}


# ------------------------------------------------------------------------------------------ targets


@dataclass(frozen=True)
class DomainTarget:
    """A stated limit, judged when its measurement was requested with the settings it is about."""

    description: str
    domain: str
    path: tuple[str, ...]  # inside results["domains"][domain]
    comparison: str
    limit: float
    requires: tuple[tuple[str, object], ...] = ()  # requested settings that must hold, e.g. ("concurrency", 50)
    scale: float = 1.0  # measured value x scale is compared (seconds -> ms)

    def requested(self, requested: dict) -> bool:
        for key, value in self.requires:
            have = requested.get(key)
            if isinstance(have, list) and value not in have or not isinstance(have, list) and have != value:
                return False
        return True


COMPARISONS = {"<": operator.lt, "<=": operator.le, ">=": operator.ge}
DOMAIN_TARGETS = (
    DomainTarget("leads flow on 100k leads (ingest -> personas, charts, CSV), fresh process: wall s", "leads",
                 ("sizes", "100k", "median", "seconds"), "<=", 5, (("sizes", 100_000),)),
    DomainTarget("leads flow on 100k leads: peak RSS MB of the whole process", "leads",
                 ("sizes", "100k", "median", "process_peak_rss_mb"), "<=", 1024, (("sizes", 100_000),)),
    DomainTarget("persona texts end to end, 1,000 personas: wall s", "persona_texts",
                 ("sizes", "1k", "median", "seconds"), "<=", 10, (("sizes", 1_000),)),
    DomainTarget("persona texts end to end, 10,000 personas: wall s", "persona_texts",
                 ("sizes", "10k", "median", "seconds"), "<=", 60, (("sizes", 10_000),)),
    DomainTarget("similarity query against 10,000 personas (index loaded): median ms", "persona_texts",
                 ("similarity_query", "10k", "query_seconds_median"), "<=", 50, (("query_size", 10_000),), 1000.0),
    DomainTarget("service POST /segment/manual, 50 connections paced at 1,000 req/s (open loop): p99 ms", "service",
                 ("manual_50_paced", "p99_ms"), "<=", 10, (("concurrency", 50), ("rate", 1000.0))),
    DomainTarget("service POST /segment/manual, 50 clients closed loop: requests/s", "service",
                 ("manual_50", "requests_per_second"), ">=", 1000, (("concurrency", 50),)),
    DomainTarget("service POST /segment/batch with 10,000 rows: median ms per call", "service",
                 ("batch", "median_ms"), "<=", 200, (("batch_rows", 10_000),)),
)


def evaluate_domain_targets(domains: dict) -> list[dict]:
    """Rows like the harness's other targets; a requested measurement that failed is a row saying so."""
    checks = []
    for target in DOMAIN_TARGETS:
        entry = domains.get(target.domain)
        if not entry or not target.requested(entry.get("requested", {})):
            continue
        value = entry
        for key in target.path:
            value = value.get(key) if isinstance(value, dict) else None
        row = {"target": target.description, "limit": f"{target.comparison} {target.limit:g}"}
        if not isinstance(value, (int, float)):
            checks.append({**row, "value": None, "met": False, "failed": True})
            continue
        value = value * target.scale
        checks.append({**row, "value": round(value, 2), "met": bool(COMPARISONS[target.comparison](value, target.limit))})
    return checks


# ---------------------------------------------------------------------------------------- reporting


def format_domains(domains: dict) -> str:
    """Plain-text tables for the terminal."""
    lines = []
    for name, entry in domains.items():
        lines.append("")
        if "error" in entry:
            lines.append(f"{name}: FAILED: {_error_line(entry['error'])}")
            continue
        lines += TEXT_TABLES[name](entry)
    return "\n".join(lines).lstrip("\n")


def _text_leads(entry: dict) -> list[str]:
    lines = [f"leads flow, fresh process per run (load at start {entry['machine']['load_average_at_start']})",
             f"{'leads':>8}{'wall s':>9}{'cpu s':>9}{'flow MB':>9}{'process MB':>12}  slowest steps"]
    for label, size in entry["sizes"].items():
        median, steps = size["median"], size.get("median_steps", {})
        slowest = ", ".join(f"{n} {v:.2f}" for n, v in sorted(steps.items(), key=lambda kv: -(kv[1] or 0))[:4])
        lines.append(f"{label:>8}{median['seconds']:>9.2f}{median['cpu_seconds']:>9.2f}{median['peak_rss_mb']:>9,.0f}"
                     f"{median['process_peak_rss_mb']:>12,.0f}  {slowest}")
    return lines


def _text_persona_texts(entry: dict) -> list[str]:
    lines = [f"persona texts end to end, fresh process per run (load at start {entry['machine']['load_average_at_start']})",
             f"{'personas':>8}{'wall s':>9}{'analyse':>9}{'write':>8}{'peak MB':>9}{'clusters':>9}{'ARI':>7}"]
    for label, size in entry["sizes"].items():
        median = size["median"]
        if median.get("seconds") is None:
            lines.append(f"{label:>8}  failed: {_error_line(size['samples'][-1].get('error', ''))}")
            continue
        ari = size.get("ari_vs_families")
        lines.append(f"{label:>8}{median['seconds']:>9.2f}{median['analyse_seconds']:>9.2f}{median['write_seconds']:>8.2f}"
                     f"{median['peak_rss_mb']:>9,.0f}{size.get('clusters') or 0:>9}{'' if ari is None else f'{ari:.2f}':>7}")
    for label, query in entry.get("similarity_query", {}).items():
        if "error" in query:
            lines.append(f"similarity query against {label}: failed: {_error_line(query['error'])}")
        else:
            lines.append(f"similarity query against {label}: median {query['query_seconds_median'] * 1000:.1f} ms, "
                         f"max {query['query_seconds_max'] * 1000:.1f} ms (index loaded); load + query "
                         f"{query['load_and_query_seconds_median'] * 1000:.0f} ms")
    return lines


def _service_phases(entry: dict) -> list[tuple[str, str, dict]]:
    c = entry["settings"]["concurrency"]
    rate = entry["settings"]["rate"]
    return [
        ("manual_1", "POST /segment/manual, 1 client, closed loop", entry.get("manual_1", {})),
        (f"manual_{c}", f"POST /segment/manual, {c} clients, closed loop (throughput)", entry.get(f"manual_{c}", {})),
        (f"manual_{c}_paced", f"POST /segment/manual, {c} connections paced at {rate:,.0f} req/s (open loop)",
         entry.get(f"manual_{c}_paced", {})),
    ]


def _text_service(entry: dict) -> list[str]:
    lines = [f"service over loopback (load at end {[round(x, 2) for x in entry['settings']['load_average']]})",
             f"{'phase':<70}{'requests':>9}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}{'cpu ms/req':>11}"]
    for _, title, phase in _service_phases(entry):
        lines.append(f"{title:<70}{phase.get('requests', 0):>9,}{phase.get('requests_per_second', 0):>9,.0f}"
                     f"{phase.get('p50_ms', 0):>8.2f}{phase.get('p99_ms', 0):>8.2f}{phase.get('errors', 0):>7}"
                     f"{phase.get('server_cpu_ms_per_request', 0):>11.2f}")
    batch = entry.get("batch", {})
    lines.append(f"POST /segment/batch, {batch.get('rows', 0):,} rows: median {batch.get('median_ms')} ms, "
                 f"max {batch.get('max_ms')} ms over {batch.get('calls')} calls, {batch.get('errors')} errors")
    return lines


TEXT_TABLES = {"leads": _text_leads, "persona_texts": _text_persona_texts, "service": _text_service}


def markdown_domains(domains: dict) -> str:
    """The README's tables for the domains measured."""
    parts = []
    for name, entry in domains.items():
        if "error" in entry:
            parts.append(f"{MARKDOWN_TITLES[name]}: failed ({_error_line(entry['error'])}).")
            continue
        parts.append(MARKDOWN_TABLES[name](entry))
    return "\n\n".join(parts)


MARKDOWN_TITLES = {"leads": "Leads flow", "persona_texts": "Persona texts", "service": "Prediction service"}


def _md_leads(entry: dict) -> str:
    lines = [
        (
            "Leads flow (synthetic leads CSV in; clean, encode, k = 4 with bootstraps, conversion, calibrated score, "
            "personas, both charts, `personas.json`, `clustered_leads.csv` and the model written), each run in a fresh "
            "process: wall seconds of that work (imports excluded), CPU seconds, peak RSS of the work and of the "
            f"whole process (load average {entry['machine']['load_average_at_start']} at its start):"
        ),
        "",
        "| leads | wall | CPU | peak RSS (work) | peak RSS (process) | slowest steps |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for size in entry["sizes"].values():
        median, steps = size["median"], size.get("median_steps", {})
        slowest = ", ".join(f"{n} {v:.2f} s" for n, v in sorted(steps.items(), key=lambda kv: -(kv[1] or 0))[:3])
        lines.append(f"| {size['leads']:,} | {median['seconds']:.2f} s | {median['cpu_seconds']:.2f} s | "
                     f"{median['peak_rss_mb']:,.0f} MB | {median['process_peak_rss_mb']:,.0f} MB | {slowest} |")
    return "\n".join(lines)


def _md_persona_texts(entry: dict) -> str:
    lines = [
        (
            "Persona texts end to end (embed, select k, cluster, themes, classification, quality, dissimilarity "
            "matrix, HTML, every file written; corpus generated before the clock), each run in a fresh process "
            f"(load average {entry['machine']['load_average_at_start']} at its start):"
        ),
        "",
        "| personas | end to end | analyse | write files | peak RSS | clusters | ARI vs families |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in entry["sizes"].values():
        median = size["median"]
        if median.get("seconds") is None:
            lines.append(f"| {size['personas']:,} | failed | | | | | |")
            continue
        ari = size.get("ari_vs_families")
        lines.append(f"| {size['personas']:,} | {median['seconds']:.2f} s | {median['analyse_seconds']:.2f} s | "
                     f"{median['write_seconds']:.2f} s | {median['peak_rss_mb']:,.0f} MB | {size.get('clusters')} | "
                     f"{'' if ari is None else f'{ari:.2f}'} |")
    for label, query in entry.get("similarity_query", {}).items():
        if "error" in query:
            lines += ["", f"Similarity query against {label} personas: failed."]
            continue
        lines += ["", (
            f"Similarity query against {query['personas']:,} personas: median "
            f"{query['query_seconds_median'] * 1000:.1f} ms, slowest {query['query_seconds_max'] * 1000:.1f} ms "
            "with the stored index loaded (a long-running process); loading the index then querying, as "
            f"`segmentation-pipeline similar` does: {query['load_and_query_seconds_median'] * 1000:.0f} ms."
        )]
    return "\n".join(lines)


def _md_service(entry: dict) -> str:
    published = entry.get("published_set") or {}
    lines = [
        (
            f"Prediction service on a set published from the synthetic generator ({published.get('customers') or '?'} "
            f"customers, {len(published.get('methods') or [])} methods; load average "
            f"{[round(x, 2) for x in entry['settings']['load_average']]} at the end). {entry['how']}"
        ),
        "",
        "| `POST /segment/manual` | requests | requests/s | p50 | p99 | errors | server CPU per request |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for _, title, phase in _service_phases(entry):
        lines.append(f"| {title.removeprefix('POST /segment/manual, ')} | {phase.get('requests', 0):,} | "
                     f"{phase.get('requests_per_second', 0):,.0f} | {phase.get('p50_ms', 0):.2f} ms | "
                     f"{phase.get('p99_ms', 0):.2f} ms | {phase.get('errors', 0)} | "
                     f"{phase.get('server_cpu_ms_per_request', 0):.2f} ms |")
    batch = entry.get("batch", {})
    lines += ["", (
        f"`POST /segment/batch` with {batch.get('rows', 0):,} rows: median {batch.get('median_ms')} ms, "
        f"slowest {batch.get('max_ms')} ms over {batch.get('calls')} calls, {batch.get('errors')} errors."
    )]
    return "\n".join(lines)


MARKDOWN_TABLES = {"leads": _md_leads, "persona_texts": _md_persona_texts, "service": _md_service}


def _error_line(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line or "Exception" in line or "killed after" in line]
    return (named or lines or ["no output"])[-1]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
