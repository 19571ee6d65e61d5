"""`segmentation-pipeline`: run the whole pipeline in one go, or write synthetic transactions."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from segmentation_pipeline.config import CONFIG_ENV_VAR, config_path_in_use, load_config
from segmentation_pipeline.errors import ConfigError, InputDataError
from segmentation_pipeline.paths import DEFAULT_DAGSTER_HOME, resolve



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segmentation-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize every asset, all month partitions, in this process")
    run.add_argument("--config", help=f"pipeline YAML (default: ${CONFIG_ENV_VAR} or data/config/pipeline.yml)")

    generate = commands.add_parser("generate", help="write synthetic transactions to a csv or parquet file")
    generate.add_argument("--customers", type=int, default=2000)
    generate.add_argument("--months", type=int, default=12)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--start-month", default="2025-01")
    generate.add_argument("--out", required=True, help="output file; .csv or .parquet")
    generate.add_argument("--customers-out", help="optional file for the ground-truth customers table")

    args = parser.parse_args(argv)
    try:
        return _run(args) if args.command == "run" else _generate(args)
    except (ConfigError, InputDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _generate(args: argparse.Namespace) -> int:
    from segmentation_pipeline import synthetic

    started = time.perf_counter()
    data = synthetic.generate(
        customers=args.customers, months=args.months, seed=args.seed, start_month=args.start_month
    )
    synthetic.write_transactions(data.transactions, Path(args.out))
    if args.customers_out:
        synthetic.write_transactions(data.customers, Path(args.customers_out))
    print(
        f"wrote {len(data.transactions):,} transactions of {len(data.customers):,} customers to {args.out} "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    config_path = config_path_in_use(args.config)
    config = load_config(config_path)  # fail fast, before Dagster loads anything
    os.environ[CONFIG_ENV_VAR] = str(config_path)
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME)))
    dagster_home = resolve(dagster_home)
    dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(dagster_home)

    from segmentation_pipeline.runner import run_everything

    print(f"config: {config_path}\ninstance: {dagster_home}")
    outcome = run_everything()
    output_dir = config.output_path()
    status = "succeeded" if outcome.success else "FAILED"
    print(
        f"\nrun {outcome.run_id} {status} in {outcome.seconds:.1f}s: {outcome.assets} assets, "
        f"{outcome.checks_passed} checks passed, {len(outcome.failed_checks)} failed\noutputs: {output_dir}"
    )
    for message in outcome.warnings:
        print(f"  warning: {message}")
    for message in outcome.failed_checks + outcome.errors:
        print(f"  {message}", file=sys.stderr)
    return 0 if outcome.success else 1


if __name__ == "__main__":
    sys.exit(main())
