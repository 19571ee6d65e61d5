"""The deploy/ configuration for more than one machine: a Dagster instance on a real PostgreSQL server
(deploy/dagster.yaml), and the k8s / celery / multiprocess executors selected by config alone."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.orchestration.partitions import transaction_months
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline_tests.conftest import write_config
from tools.ui_snapshot import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]

DEPLOY = REPO_ROOT / "deploy"
FAST = {
    "transactions": {"source": "synthetic", "synthetic": {"customers": 200, "months": 2, "seed": 7, "start_month": "2025-01"}},
    "clustering": {"k_max": 5, "bootstraps": 3, "autoencoder_epochs": 10},
}


def _postgres_bin() -> Path | None:
    """Debian installs the server outside PATH, under /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL server on 127.0.0.1 with its data in a temp folder; stopped afterwards."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed (Debian package: postgresql)")
    run_as = {}
    root = Path(tempfile.mkdtemp(prefix="segmentation-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root: use the account the Debian package creates
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid}
    data, password_file = root / "data", root / "password"
    password_file.write_text("segmentation-test\n")
    if run_as:
        os.chown(password_file, run_as["user"], run_as["group"])
    port = free_port()

    def pg(*args: str) -> None:
        subprocess.run([str(bin_dir / args[0]), *args[1:]], check=True, capture_output=True, timeout=120, cwd=root, **run_as)

    pg("initdb", "-D", str(data), "-U", "dagster", f"--pwfile={password_file}", "--auth-local=trust",
       "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8")
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    pg("pg_ctl", "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w", "-t", "60", "start")
    try:
        pg("createdb", "-h", str(root), "-p", str(port), "-U", "dagster", "dagster")
        yield {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(port),
            "DAGSTER_PG_DB": "dagster",
            "DAGSTER_PG_USERNAME": "dagster",
            "DAGSTER_PG_PASSWORD": "segmentation-test",
        }
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_instance_on_postgres_records_runs_materializations_and_checks(postgres, tmp_path, monkeypatch):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    from segmentation_pipeline.orchestration.runner import run_graph

    for name, value in postgres.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    config = write_config(tmp_path, **FAST)
    graph = build_definitions(config).resolve_asset_graph()

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        outcome = run_graph(config, emit=lambda line: None, instance=instance)
    assert outcome.success, outcome.errors + outcome.failed_checks
    assert OutputFolder(tmp_path / "outputs").current().run_id == outcome.run_id

    # A fresh instance (as the webserver or another machine would open it) reads the history back.
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        assert run.run_id == outcome.run_id and run.status == dg.DagsterRunStatus.SUCCESS
        for key in graph.get_all_asset_keys():
            event = instance.get_latest_materialization_event(key)
            assert event is not None and event.run_id == run.run_id, key
        # The months the run registered are dynamic partitions kept in PostgreSQL too.
        assert instance.get_dynamic_partitions(transaction_months.name) == ["2025-01", "2025-02"]
        assert instance.get_materialized_partitions(dg.AssetKey("raw_transactions")) == {"2025-01", "2025-02"}
        for check_key in graph.asset_check_keys:
            [execution] = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=5)
            assert execution.run_id == run.run_id and execution.event is not None, check_key
        assert instance.all_instigator_state() == []  # the schedule/sensor tables exist and answer


def _definitions_with_executor(tmp_path: Path, executor: dict) -> dg.Definitions:
    return build_definitions(write_config(tmp_path, executor=executor, **FAST))


@pytest.mark.parametrize("example, executor_name", [("executor-k8s.yml", "k8s"), ("executor-celery.yml", "celery")])
def test_deploy_executor_examples_select_their_executor(example, executor_name, tmp_path):
    """dagster-k8s and dagster-celery come with the `deploy` extra of the test command."""
    executor = yaml.safe_load((DEPLOY / example).read_text())["executor"]
    definitions = _definitions_with_executor(tmp_path, executor)
    for job in ("full_refresh", "newest_month_refresh", "asset_checks"):
        assert definitions.resolve_job_def(job).executor_def.name == executor_name


def test_executor_defaults_to_in_process_and_multiprocess_is_one_setting(tmp_path):
    assert _definitions_with_executor(tmp_path, {}).resolve_job_def("full_refresh").executor_def.name == "in_process"
    definitions = _definitions_with_executor(tmp_path, {"type": "multiprocess", "max_concurrent": 3})
    assert definitions.resolve_job_def("full_refresh").executor_def.name == "multiprocess"
    with pytest.raises(Exception) as raised:  # a typo fails when the definitions load, not mid-run
        _definitions_with_executor(tmp_path, {"type": "multiprocess", "config": {"max_concurent": 2}})
    error = raised.value
    while not isinstance(error, ConfigError) and error.__cause__ is not None:
        error = error.__cause__
    assert isinstance(error, ConfigError) and "max_concurent" in str(error)
