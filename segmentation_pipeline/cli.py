"""`segmentation-pipeline`: run the whole pipeline, backfill months, run the checks, open the UI, list
or roll back the published outputs, find the published persona texts closest to a description, or
write synthetic transactions or leads.

Every command that touches Dagster uses the persistent instance in $DAGSTER_HOME (default
`.dagster_home` in the current directory, created with a default dagster.yaml when missing), so the
UI shows the history of CLI runs. `--config` is a path relative to the current directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from segmentation_pipeline import layout
from segmentation_pipeline.config import (
    CONFIG_ENV_VAR,
    PipelineConfig,
    config_path_in_use,
    load_config,
)
from segmentation_pipeline.errors import ConfigError, InputDataError, StorageError
from segmentation_pipeline.paths import DEFAULT_CONFIG_PATH

DEFINITIONS_MODULE = "segmentation_pipeline.definitions"
LOCATION_NAME = "segmentation_pipeline"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segmentation-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = f"pipeline YAML (default: ${CONFIG_ENV_VAR}, else the built-in default)"

    run = commands.add_parser("run", help="materialize every asset, all month partitions, as one run")
    run.add_argument("--config", help=config_help)

    backfill = commands.add_parser(
        "backfill", help="re-ingest a range of months of raw_transactions as one run, then refresh everything downstream"
    )
    backfill.add_argument("--from", dest="first", metavar="YYYY-MM", help="first month (default: the log's first)")
    backfill.add_argument("--to", dest="last", metavar="YYYY-MM", help="last month (default: the log's last)")
    backfill.add_argument("--config", help=config_help)

    check = commands.add_parser("check", help="run every asset check on the published outputs; exit 1 if one fails")
    check.add_argument("--strict", action="store_true", help="warnings (non-blocking checks) fail too")
    check.add_argument("--config", help=config_help)

    outputs = commands.add_parser("outputs", help="list the published output sets, or roll back to an earlier one")
    outputs.add_argument("--rollback", nargs="?", const="", metavar="SET_ID",
                         help="make SET_ID (default: the set before the current one) current again")
    outputs.add_argument("--config", help=config_help)

    serve = commands.add_parser("serve", help="serve the published models as a REST API (FastAPI under uvicorn)")
    serve.add_argument("--config", help=config_help)
    serve.add_argument("--host", help="address to listen on (default: the config's service.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: the config's service.port, 5001)")
    serve.add_argument("--method", help="retail method served when a request names none "
                       "(default: the config's service.method, else the published comparison's recommendation)")

    dev = commands.add_parser(  # no -h of its own: `-h HOST` and every other option go to dagster dev
        "dev",
        add_help=False,
        help="start the Dagster UI and daemon (dagster dev) on this project's config and instance; "
        "other options (-p PORT, -h HOST, ...) go to dagster dev",
    )
    dev.add_argument("--config", help=config_help)

    commands.add_parser("config", help="print the built-in default configuration (a starting point for your own)")

    similar = commands.add_parser("similar", help="the published persona texts closest to a description")
    similar.add_argument("description", help="the persona description to match")
    similar.add_argument("--top", type=int, default=5, help="how many personas (default 5)")
    similar.add_argument("--config", help=config_help)

    generate = commands.add_parser("generate", help="write synthetic transactions to a csv or parquet file")
    generate.add_argument("--customers", type=int, default=2000)
    generate.add_argument("--months", type=int, default=12)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--start-month", default="2025-01")
    generate.add_argument("--out", required=True, help="output file; .csv or .parquet")
    generate.add_argument("--customers-out", help="optional file for the ground-truth customers table")

    generate_leads = commands.add_parser("generate-leads", help="write synthetic B2B leads to a csv or parquet file")
    generate_leads.add_argument("--leads", type=int, default=5000)
    generate_leads.add_argument("--seed", type=int, default=42)
    generate_leads.add_argument("--out", required=True, help="output file; .csv or .parquet")

    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "dev":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handlers = {
        "run": _run,
        "backfill": _run,
        "check": _check,
        "outputs": _outputs,
        "serve": _serve,
        "config": _print_default_config,
        "similar": _similar,
        "generate": _generate,
        "generate-leads": _generate_leads,
    }
    try:
        if args.command == "dev":
            return _dev(args, extra)
        return handlers[args.command](args)
    except (ConfigError, InputDataError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _print_default_config(args: argparse.Namespace) -> int:
    print(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"), end="")
    return 0


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


def _generate_leads(args: argparse.Namespace) -> int:
    from segmentation_pipeline.leads.synthetic import write_synthetic_leads

    started = time.perf_counter()
    try:
        path = write_synthetic_leads(args.out, args.leads, args.seed)
    except ValueError as exc:  # a bad suffix or count: one line, like a config error
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.leads:,} synthetic leads to {path} in {time.perf_counter() - started:.1f}s")
    return 0


def _config(args: argparse.Namespace) -> tuple[Path, PipelineConfig]:
    """The config file in force and its content, validated before Dagster loads anything."""
    path = config_path_in_use(args.config)
    return path, load_config(path)


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
    from segmentation_pipeline.orchestration.instance import instance_home
    from segmentation_pipeline.orchestration.runner import run_graph

    config_path, config = _config(args)
    print(f"config: {config_path}\ninstance: {instance_home()}")
    backfill = args.command == "backfill"
    months = (args.first, args.last) if backfill else (None, None)
    with _warnings_on_stdout():
        outcome = run_graph(config_path, months, trigger=f"cli {args.command}")
    code = _report(outcome, f"backfill {months[0] or ''}..{months[1] or ''}" if backfill else "run")
    current = _output_folder(config).current()
    published = f" (published set {current.set_id})" if current else ""
    print(f"outputs: {config.output_path()}{published}")
    return code


class _OnceOnStdout(logging.Handler):
    """`warning: <message>` on stdout, each message once (a file is read while the run is prepared
    and again by its ingest step)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.seen:
            self.seen.add(message)
            print(f"{record.levelname.lower()}: {message}")


@contextmanager
def _warnings_on_stdout() -> Iterator[None]:
    """While a run is prepared and executed, the project's own logged warnings (a file read with a
    fallback encoding) go to stdout with the run's other warnings: the first line on stderr is the
    error, if there is one."""
    logger = logging.getLogger("segmentation_pipeline")
    handler, propagate = _OnceOnStdout(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _check(args: argparse.Namespace) -> int:
    from segmentation_pipeline.orchestration.instance import instance_home
    from segmentation_pipeline.orchestration.runner import run_checks

    config_path, _ = _config(args)
    print(f"config: {config_path}\ninstance: {instance_home()}")
    return _report(run_checks(config_path), "checks run", strict=args.strict)


def _output_folder(config: PipelineConfig):
    from segmentation_pipeline.publication import OutputFolder

    return OutputFolder(config.output_path(), config.publication.keep_sets)


def _outputs(args: argparse.Namespace) -> int:
    """List the kept sets (newest first, the current one marked) or roll back."""
    from segmentation_pipeline.orchestration.locking import folder_lock

    _, config = _config(args)
    folder = _output_folder(config)
    if args.rollback is not None:
        with folder_lock(folder.root, "rollback", print):
            restored = folder.rollback(args.rollback or None)
        print(f"current outputs: set {restored.set_id} (run {restored.run_id}, published {restored.published_at})")
        return 0
    current = folder.current()
    history = folder.history()
    if not history:
        print(f"{folder.root}: nothing published yet")
        return 0
    for published in history:
        marker = "*" if current and published.set_id == current.set_id else " "
        print(f"{marker} {published.set_id}  run {published.run_id}  published {published.published_at}  "
              f"{len(published.manifest['files'])} files")
    return 0


def _similar(args: argparse.Namespace) -> int:
    """Closest personas from the published similarity index (no refit; nothing is materialized)."""
    from segmentation_pipeline.persona_texts.similarity import format_similar, similar

    _, config = _config(args)
    index = config.output_path() / layout.PERSONA_TEXTS_INDEX  # through `current`: the published set
    if not index.is_file():
        raise InputDataError(f"no persona texts published yet ({index} missing): run `segmentation-pipeline run` first")
    print(format_similar(similar(args.description, index, args.top)))
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Serve the sets published under the config's output folder until interrupted; a bad config or
    option is one line (exit 2) before anything binds."""
    from pydantic import ValidationError

    from segmentation_pipeline.service.server import serve

    try:
        config_path, config = _config(args)
    except ConfigError as exc:
        raise ConfigError("; ".join(line.strip() for line in str(exc).splitlines())) from None
    current = _output_folder(config).current()
    print(f"config: {config_path}\noutputs: {config.output_path()} "
          f"({f'published set {current.set_id}' if current else 'nothing published yet: /ready answers 503 until a run publishes'})")
    try:
        serve(config.output_path(), args.host, args.port, args.method, config.service)
    except ValidationError as exc:
        raise ConfigError("; ".join(f"--{error['loc'][0]}: {error['msg']}" for error in exc.errors())) from None
    return 0


def _dev(args: argparse.Namespace, extra: list[str]) -> int:
    """Replace this process with `dagster dev` on the same config and instance as the CLI runs.

    The log's months are registered first, so the UI offers them at once (the `transaction_months`
    sensor keeps them current afterwards). The code location gets its project's name through a
    workspace file in the instance folder, so Dagster does not warn about a name mismatch."""
    import dagster as dg
    import pandas as pd

    from segmentation_pipeline.orchestration.instance import (
        ensure_instance_home,
        instance_home,
    )
    from segmentation_pipeline.orchestration.partitions import sync_months
    from segmentation_pipeline.retail.transactions import data_months, log_in_force

    config_path, config = _config(args)
    home = ensure_instance_home(instance_home())
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            now = pd.Timestamp.now(tz="UTC")
            sync_months(instance, data_months(log_in_force(config), config.output_path() / layout.CACHE, now))
    except InputDataError as exc:
        print(f"warning: the transaction log cannot be read yet ({exc}); months appear once it can", file=sys.stderr)
    workspace = home / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n"
        f"      module_name: {DEFINITIONS_MODULE}\n      location_name: {LOCATION_NAME}\n"
        f"      working_directory: {Path.cwd()}\n",
        encoding="utf-8",
    )
    print(f"config: {config_path}\ninstance: {home}")
    os.environ.update({"DAGSTER_HOME": str(home), CONFIG_ENV_VAR: str(config_path)})  # for the process exec'd next
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), *extra]
    os.execv(sys.executable, command)
    return 0  # not reached: execv does not return


if __name__ == "__main__":
    sys.exit(main())
