"""`segmentation-pipeline`: run the whole pipeline, backfill months, run the checks, open the UI, or
write synthetic transactions.

Every command that touches Dagster uses the persistent instance in $DAGSTER_HOME (default
`<project>/.dagster_home`, created with a default dagster.yaml when missing), so the UI shows the
history of CLI runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from segmentation_pipeline.config import CONFIG_ENV_VAR, PipelineConfig, config_path_in_use, load_config
from segmentation_pipeline.errors import ConfigError, InputDataError
from segmentation_pipeline.paths import DEFAULT_DAGSTER_HOME, resolve

DEFINITIONS_MODULE = "segmentation_pipeline.definitions"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segmentation-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = f"pipeline YAML (default: ${CONFIG_ENV_VAR} or data/config/pipeline.yml)"

    run = commands.add_parser("run", help="materialize every asset, all month partitions, as one run")
    run.add_argument("--config", help=config_help)

    backfill = commands.add_parser(
        "backfill", help="re-ingest a range of months of raw_transactions as one run, then refresh everything downstream"
    )
    backfill.add_argument("--from", dest="first", metavar="YYYY-MM", help="first month (default: the log's first)")
    backfill.add_argument("--to", dest="last", metavar="YYYY-MM", help="last month (default: the log's last)")
    backfill.add_argument("--config", help=config_help)

    check = commands.add_parser("check", help="run every asset check on the stored tables; exit 1 if one fails")
    check.add_argument("--strict", action="store_true", help="warnings (non-blocking checks) fail too")
    check.add_argument("--config", help=config_help)

    dev = commands.add_parser(  # no -h of its own: `-h HOST` and every other option go to dagster dev
        "dev",
        add_help=False,
        help="start the Dagster UI and daemon (dagster dev) on this project's config and instance; "
        "other options (-p PORT, -h HOST, ...) go to dagster dev",
    )
    dev.add_argument("--config", help=config_help)

    generate = commands.add_parser("generate", help="write synthetic transactions to a csv or parquet file")
    generate.add_argument("--customers", type=int, default=2000)
    generate.add_argument("--months", type=int, default=12)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--start-month", default="2025-01")
    generate.add_argument("--out", required=True, help="output file; .csv or .parquet")
    generate.add_argument("--customers-out", help="optional file for the ground-truth customers table")

    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "dev":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handlers = {"run": _run, "backfill": _run, "check": _check, "generate": _generate}
    try:
        if args.command == "dev":
            return _dev(args, extra)
        return handlers[args.command](args)
    except (ConfigError, InputDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _generate(args: argparse.Namespace) -> int:
    from segmentation_pipeline.retail import synthetic

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


def _prepare(args: argparse.Namespace) -> PipelineConfig:
    """Validate the config (before Dagster loads anything) and point Dagster at it and at the instance."""
    from segmentation_pipeline.runner import ensure_instance_home
    from segmentation_pipeline.retail.transactions import inbox_files, inbox_label

    config_path = config_path_in_use(args.config)
    config = load_config(config_path)
    os.environ[CONFIG_ENV_VAR] = str(config_path)
    dagster_home = ensure_instance_home(resolve(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME))
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    inbox = inbox_files(config.automation.inbox_path())
    print(f"config: {config_path}\ninstance: {dagster_home}")
    if inbox:
        print(f"transactions: {inbox_label(inbox)}")
    return config


def _report(outcome, title: str, strict: bool = False) -> int:
    failed = outcome.failed_checks + (outcome.warnings if strict else [])
    success = outcome.success and not failed
    status = "succeeded" if success else "FAILED"
    print(
        f"\n{title} {outcome.run_id} {status} in {outcome.seconds:.1f}s: {outcome.assets} assets, "
        f"{outcome.checks_passed} checks passed, {len(failed)} failed"
    )
    for message in outcome.warnings if not strict else []:
        print(f"  warning: {message}")
    for message in failed + outcome.errors:
        print(f"  {message}", file=sys.stderr)
    return 0 if success else 1


def _run(args: argparse.Namespace) -> int:
    config = _prepare(args)
    from segmentation_pipeline.runner import run_everything

    months = (args.first, args.last) if args.command == "backfill" else (None, None)
    outcome = run_everything(months=months)
    code = _report(outcome, "run" if args.command == "run" else f"backfill {months[0] or ''}..{months[1] or ''}")
    print(f"outputs: {config.output_path()}")
    return code


def _check(args: argparse.Namespace) -> int:
    _prepare(args)
    from segmentation_pipeline.runner import run_checks

    return _report(run_checks(), "checks run", strict=args.strict)


def _webserver_url(dev_args: list[str]) -> str:
    """Where `dagster dev` will serve (its -h/--host and -p/--port, defaults 127.0.0.1:3000)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("-h", "--host", "--dagit-host", default="127.0.0.1")
    options.add_argument("-p", "--port", "--dagit-port", default="3000")
    known, _ = options.parse_known_args(dev_args)
    host = "127.0.0.1" if known.host in ("0.0.0.0", "::", "") else known.host
    return f"http://{host}:{known.port}"


def _dev(args: argparse.Namespace, extra: list[str]) -> int:
    """Replace this process with `dagster dev` on the same config and instance as the CLI runs.

    The sensors and schedules learn the webserver's address, so they can have the definitions
    reloaded when a dropped file brings months outside the loaded partitions."""
    from tools.ui_snapshot import WEBSERVER_URL_ENV

    _prepare(args)
    os.environ.setdefault(WEBSERVER_URL_ENV, _webserver_url(extra))
    print(f"webserver: {os.environ[WEBSERVER_URL_ENV]}")
    command = [sys.executable, "-m", "dagster", "dev", "-m", DEFINITIONS_MODULE, *extra]
    os.execv(sys.executable, command)
    return 0  # not reached: execv does not return


if __name__ == "__main__":
    sys.exit(main())
