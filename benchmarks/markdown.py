"""The README's Performance section, written from a results file so the two never disagree."""

from __future__ import annotations

import re

from benchmarks.domains import markdown_domains

TITLES = {
    "lifetimes": "lifetimes `summary_data_from_transaction_data`",
    "pandas_groupby": "pandas groupby + `qcut` scores",
    "project": "`rfm.compute_rfm`",
}


def performance_section(results: dict) -> str:
    parts = ["## Performance", "", _machine(results)]
    if results.get("pipeline"):
        parts += ["", _pipeline(results["pipeline"])]
    if results.get("pipeline_growth"):
        parts += ["", _growth(results["pipeline_growth"])]
    if results.get("stages"):
        parts += ["", _stages(results["stages"], results["sizes"])]
    if results.get("rfm"):
        parts += ["", _rfm(results["rfm"], results["sizes"])]
    if results.get("domains"):
        parts += ["", markdown_domains(results["domains"])]
    if results.get("targets"):
        parts += ["", _targets(results["targets"])]
    earlier_runs = results.get("merged_from", [])
    for earlier in earlier_runs:
        parts += ["", (
            f"{', '.join(earlier['parts'])} measured earlier: {str(earlier.get('created'))[:10]} at commit "
            f"`{earlier.get('git_commit')}` by `{_command(earlier.get('command') or '')}`, load average "
            f"{earlier.get('load_average')} at its start and end."
        )]
    commands = [_command(e["command"]) for e in reversed(earlier_runs) if e.get("command")] + [_command(results["command"])]
    parts += ["", "Reproduce with `pip install -e '.[bench]'` then " + " and ".join(f"`{c}`" for c in commands) + "."]
    return "\n".join(parts) + "\n"


def _command(command: str) -> str:
    """The command line without the options that only name local files or merge them."""
    return re.sub(r" --(output|cache-dir) \S+| --merge\b", "", command)


def _machine(results: dict) -> str:
    m = results["machine"]
    packages = ", ".join(f"{name} {version}" for name, version in m["packages"].items() if version)
    return (
        f"Measured {results['created'][:10]} at commit `{m['git_commit']}` on {m['cpu']} ({m['usable_cpus']} cores, "
        f"{m['memory_gb']} GB RAM), {m['platform']}, Python {m['python']}, {packages}. Each number is the median "
        f"of {results['runs']} run{'s' if results['runs'] > 1 else ''}; load average {m['load_average_at_start']} at the start, "
        f"{m.get('load_average_at_end')} at the end."
    )


def _seconds_and_memory(entry: dict | None) -> str:
    median = (entry or {}).get("median", {})
    if median.get("seconds") is None:
        return "failed" if entry else ""
    return f"{median['seconds']:.2f} s / {median['peak_rss_mb']:,.0f} MB"


def _pipeline(pipeline: dict) -> str:
    lines = [
        "`segmentation-pipeline run` as a process, fresh output folder and Dagster instance (the shipped "
        "default generates its synthetic data in the run; for the sizes the log is generated beforehand, in "
        "blocks of customers, and the run reads it like an export):",
        "",
        "| config | transactions | customers | assets | runs | wall | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    # The shipped default first, then the sizes from small to large, whichever order runs were merged in.
    for label, entry in sorted(pipeline.items(), key=lambda item: (item[0] != "default", item[1].get("rows") or 0)):
        name = "shipped default" if label == "default" else f"{label} transactions"
        median = entry["median"]
        if median.get("seconds") is None:
            lines.append(f"| {name} | | | | {len(entry.get('samples', []))} | failed | |")
            continue
        lines.append(
            f"| {name} | {entry.get('rows') or 0:,} | {entry.get('customers') or 0:,} | {entry.get('assets') or 0} "
            f"| {len(entry.get('samples', []))} | {median['seconds']:.1f} s | {median['peak_rss_mb']:,.0f} MB |"
        )
    return "\n".join(lines)


def _growth(steps: list[dict]) -> str:
    lines = [
        "How the full graph grows with the log (factors from one size to the next; time growing like the rows "
        "is linear):",
        "",
        "| from | to | rows | wall time | peak RSS |",
        "|---|---|---:|---:|---:|",
    ]
    for step in steps:
        lines.append(
            f"| {step['from']} | {step['to']} | x{step['rows_factor']:g} | x{step['seconds_factor']:g} "
            f"| x{step['peak_rss_factor']:g} |"
        )
    return "\n".join(lines)


def _stages(by_size: dict, sizes: dict) -> str:
    labels = list(by_size)
    names = list(dict.fromkeys(name for label in labels for name in by_size[label]))
    facts = [sizes.get(label, {}) for label in labels]
    header = " | ".join(
        f"{f.get('rows', 0):,} transactions, {f.get('customers_in_log', 0):,} customers" for f in facts
    )
    lines = [
        "Each stage in a fresh process on cached inputs: wall seconds of the stage's own work / peak RSS "
        "while it runs (its inputs included):",
        "",
        f"| stage | {header} |",
        "|---|" + "---:|" * len(labels),
    ]
    for name in names:
        cells = " | ".join(_seconds_and_memory(by_size[label].get(name)) for label in labels)
        lines.append(f"| {name} | {cells} |")
    feature_sets = next((entry["feature_sets"] for label in labels for entry in by_size[label].values()
                         if entry.get("feature_sets")), None)
    if feature_sets:
        lines += ["", (
            "A `cluster:` stage is `comparison.method_runs`, as the pipeline's model asset runs it: the "
            f"method fitted on every configured feature set ({', '.join(feature_sets)}), each with its k "
            "selection and bootstraps, and its preferred run chosen."
        )]
    return "\n".join(lines)


def _rfm(comparison: dict, sizes: dict) -> str:
    facts = sizes.get(comparison["size"], {})
    lines = [
        f"RFM on the same cleaned log ({facts.get('cleaned_rows', 0):,} lines, "
        f"{facts.get('customers_in_log', 0):,} customers), measured in the same run:",
        "",
        "| implementation | wall / peak RSS | time relative to the project |",
        "|---|---:|---:|",
    ]
    for contender, entry in comparison["contenders"].items():
        ratio = comparison.get(f"{contender}_over_project")
        lines.append(f"| {TITLES[contender]} | {_seconds_and_memory(entry)} | {f'{ratio:.1f}x' if ratio else ''} |")
    return "\n".join(lines)


def _targets(checks: list[dict]) -> str:
    lines = ["| target | limit | measured | |", "|---|---:|---:|---|"]
    for check in checks:
        if check.get("failed"):
            lines.append(f"| {check['target']} | {check['limit']} | no measurement | failed |")
            continue
        lines.append(f"| {check['target']} | {check['limit']} | {check['value']} | {'met' if check['met'] else 'not met'} |")
    return "\n".join(lines)
