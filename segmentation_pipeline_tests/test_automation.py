"""Schedules, the inbox sensor, automation conditions, CLI backfills and the checks-only job, evaluated
against real Dagster instances and the real definitions."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from segmentation_pipeline.retail import synthetic
from segmentation_pipeline.config import CONFIG_ENV_VAR
from segmentation_pipeline.storage import TableStore, read_manifest
from segmentation_pipeline_tests.conftest import load_definitions, send_json, write_config

# Small and quick: every method still finds clusters on 200 customers.
FAST_CLUSTERING = {"k_max": 5, "bootstraps": 3, "autoencoder_epochs": 10}
ONLINE_RETAIL_NAMES = {
    "invoice_id": "InvoiceNo",
    "product_id": "StockCode",
    "description": "Description",
    "quantity": "Quantity",
    "timestamp": "InvoiceDate",
    "unit_price": "UnitPrice",
    "customer_id": "CustomerID",
    "country": "Country",
}


def online_retail_export(path: Path, start_month: str, months: int = 2, seed: int = 3) -> pd.DataFrame:
    """A small export laid out like the Online Retail workbook (the default column mapping)."""
    data = synthetic.generate(customers=200, months=months, seed=seed, start_month=start_month)
    export = data.transactions.rename(columns=ONLINE_RETAIL_NAMES)[list(ONLINE_RETAIL_NAMES.values())]
    export.to_csv(path, index=False)
    return export


def settled(path: Path) -> Path:
    """Pretend the copy finished a minute ago (the sensor waits for files still being written)."""
    stamp = time.time() - 60
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def automation_config(tmp_path, monkeypatch) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = write_config(
        tmp_path,
        transactions={"source": "synthetic", "synthetic": {"customers": 200, "months": 2, "seed": 7, "start_month": "2025-01"}},
        clustering=FAST_CLUSTERING,
        automation={"inbox_dir": str(inbox), "monthly_cron": "15 1 3 * *", "weekly_cron": "30 2 * * 1", "timezone": "Europe/Paris"},
    )
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    return path


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = sensor.evaluate_tick(context)
    return result, context.cursor


def test_schedules_and_sensors_start_stopped_with_the_configured_crons(automation_config, tmp_path, monkeypatch):
    definitions = load_definitions()
    monthly = definitions.resolve_schedule_def("monthly_newest_month")
    weekly = definitions.resolve_schedule_def("weekly_full_refresh")
    assert (monthly.cron_schedule, weekly.cron_schedule) == ("15 1 3 * *", "30 2 * * 1")
    assert monthly.execution_timezone == weekly.execution_timezone == "Europe/Paris"
    assert monthly.job_name == "newest_month_refresh" and weekly.job_name == "full_refresh"
    inbox, automation = definitions.resolve_sensor_def("inbox_sensor"), definitions.resolve_sensor_def("refresh_downstream")
    assert isinstance(automation, dg.AutomationConditionSensorDefinition)
    for definition in (monthly, weekly):
        assert definition.default_status == dg.DefaultScheduleStatus.STOPPED
    for definition in (inbox, automation):
        assert definition.default_status == dg.DefaultSensorStatus.STOPPED
    assert inbox.minimum_interval_seconds == 30

    (tmp_path / "running").mkdir()
    running = write_config(
        tmp_path / "running",
        automation={"schedules_running": True, "inbox_sensor_running": True, "automation_sensor_running": True,
                    "inbox_poll_seconds": 10},
    )
    monkeypatch.setenv(CONFIG_ENV_VAR, str(running))
    definitions = load_definitions()
    assert definitions.resolve_schedule_def("monthly_newest_month").default_status == dg.DefaultScheduleStatus.RUNNING
    assert definitions.resolve_schedule_def("weekly_full_refresh").default_status == dg.DefaultScheduleStatus.RUNNING
    assert definitions.resolve_sensor_def("inbox_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert definitions.resolve_sensor_def("inbox_sensor").minimum_interval_seconds == 10
    assert definitions.resolve_sensor_def("refresh_downstream").default_status == dg.DefaultSensorStatus.RUNNING


def test_jobs_select_the_newest_month_chain_and_the_checks_only(automation_config):
    definitions = load_definitions()
    graph = definitions.resolve_asset_graph()
    raw = dg.AssetKey("raw_transactions")
    chain = {raw} | {key for key in graph.get_all_asset_keys() if raw in graph.upstream_key_iterator(key)}
    newest = definitions.resolve_job_def("newest_month_refresh")
    assert newest.asset_layer.executable_asset_keys == chain | {dg.AssetKey("ground_truth_customers")}
    assert len(chain) > 10
    checks_only = definitions.resolve_job_def("asset_checks")
    assert set(checks_only.asset_layer.asset_graph.asset_check_keys) == set(graph.asset_check_keys)
    assert not checks_only.asset_layer.executable_asset_keys


def test_downstream_assets_refresh_when_upstream_changes(automation_config):
    """raw_transactions and ground truth are driven by runs; everything else by its automation condition
    (every changed month for the monthly tables, not only the newest, so backfills flow downstream)."""
    graph = load_definitions().resolve_asset_graph()
    from segmentation_pipeline.defs.sensors import REFRESH_CHANGED_MONTHS, REFRESH_WHEN_UPSTREAM_CHANGES

    roots = {dg.AssetKey("raw_transactions"), dg.AssetKey("ground_truth_customers")}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        expected = None if key in roots else REFRESH_CHANGED_MONTHS if node.is_partitioned else REFRESH_WHEN_UPSTREAM_CHANGES
        assert node.automation_condition == expected, key.to_user_string()


def test_schedules_request_the_newest_month_and_the_full_range(automation_config, tmp_path):
    definitions = load_definitions()
    instance = dg.DagsterInstance.ephemeral()
    monthly = definitions.resolve_schedule_def("monthly_newest_month")
    weekly = definitions.resolve_schedule_def("weekly_full_refresh")
    when = datetime(2026, 3, 3, 1, 15, tzinfo=timezone.utc)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when)

    # Nothing stored yet: the newest month comes with every earlier month, so downstream can read all.
    [request] = monthly.evaluate_tick(context).run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2025-01-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2025-02-01"
    store = TableStore(tmp_path / "outputs")
    store.write("cleaned_transactions", pd.DataFrame({"x": [1]}), partition="2025-01")
    [request] = monthly.evaluate_tick(context).run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2025-02-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2025-02-01"

    [request] = weekly.evaluate_tick(context).run_requests
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        "2025-01-01",
        "2025-02-01",
    )


def test_inbox_sensor_reacts_to_new_changed_and_removed_files_by_content(automation_config, tmp_path):
    sensor = load_definitions().resolve_sensor_def("inbox_sensor")
    instance = dg.DagsterInstance.ephemeral()
    inbox = tmp_path / "inbox"

    result, cursor = _tick(sensor, instance, None)
    assert not result.run_requests and "no new" in result.skip_message

    export = inbox / "online_retail.csv"
    online_retail_export(export, "2011-03")
    (inbox / ".online_retail.csv.part").write_text("half a copy")  # partial downloads are ignored
    result, _ = _tick(sensor, instance, cursor)
    assert not result.run_requests and "finish copying" in result.skip_message

    # The export's months lie outside the months the definitions were loaded with (the configured
    # synthetic source): Dagster would refuse the run, so the tick asks for a reload and keeps its cursor.
    settled(export)
    result, after_skip = _tick(sensor, instance, cursor)
    assert not result.run_requests and "reload them" in result.skip_message
    assert after_skip == cursor

    sensor = load_definitions().resolve_sensor_def("inbox_sensor")  # what a reload does
    result, cursor = _tick(sensor, instance, cursor)
    [request] = result.run_requests
    assert request.job_name in (None, "full_refresh")
    assert request.tags["dagster/asset_partition_range_start"] == "2011-03-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2011-04-01"
    assert request.tags["segmentation_pipeline/inbox_changes"] == "new: online_retail.csv"
    first_key = request.run_key

    result, cursor = _tick(sensor, instance, cursor)
    assert not result.run_requests

    touched = time.time() - 30
    os.utime(export, (touched, touched))  # same content, new mtime: not a change
    result, cursor = _tick(sensor, instance, cursor)
    assert not result.run_requests
    assert json.loads(cursor)["files"]["online_retail.csv"]["mtime_ns"] == os.stat(export).st_mtime_ns

    online_retail_export(export, "2011-03", seed=4)  # new content, same months
    settled(export)
    result, cursor = _tick(sensor, instance, cursor)
    [request] = result.run_requests
    assert request.tags["segmentation_pipeline/inbox_changes"] == "changed: online_retail.csv"
    assert request.run_key != first_key

    export.unlink()  # back to the configured source: its months need a reload again
    result, _ = _tick(sensor, instance, cursor)
    assert not result.run_requests and "removed: online_retail.csv" in result.skip_message
    result, cursor = _tick(load_definitions().resolve_sensor_def("inbox_sensor"), instance, cursor)
    [request] = result.run_requests
    assert request.tags["segmentation_pipeline/inbox_changes"] == "removed: online_retail.csv"
    assert request.tags["dagster/asset_partition_range_start"] == "2025-01-01"


class _RecordingGraphQL(BaseHTTPRequestHandler):
    """Stands in for the webserver: answers the workspace query and records reload requests."""

    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append(body)
        data = {"workspaceOrError": {"locationEntries": [{"name": "segmentation_pipeline.definitions"}]}}
        if "reloadRepositoryLocation" in body["query"]:
            data = {"reloadRepositoryLocation": {"__typename": "WorkspaceLocationEntry"}}
        send_json(self, {"data": data})

    def log_message(self, *args):
        pass


def test_new_months_make_the_sensor_reload_the_definitions_through_the_webserver(automation_config, tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingGraphQL)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("SEGMENTATION_WEBSERVER_URL", f"http://127.0.0.1:{server.server_port}")
        sensor = load_definitions().resolve_sensor_def("inbox_sensor")
        online_retail_export(tmp_path / "inbox" / "export.csv", "2011-03")
        settled(tmp_path / "inbox" / "export.csv")
        result, _ = _tick(sensor, dg.DagsterInstance.ephemeral(), None)
        assert "reloading them" in result.skip_message
        deadline = time.monotonic() + 10
        while len(_RecordingGraphQL.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        reload = _RecordingGraphQL.received[-1]
        assert "reloadRepositoryLocation" in reload["query"]
        assert reload["variables"] == {"name": "segmentation_pipeline.definitions"}
    finally:
        server.shutdown()


def _materializations(instance: dg.DagsterInstance, run_id: str) -> dict[str, set]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    found: dict[str, set] = {}
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        found.setdefault(materialization.asset_key.to_user_string(), set()).add(materialization.partition)
    return found


def _requested(evaluation, graph) -> dict[str, set]:
    return {
        key.to_user_string(): evaluation.get_requested_partitions(key)
        for key in graph.get_all_asset_keys()
        if evaluation.get_num_requested(key)
    }


def test_dropped_export_flows_downstream_then_backfill_and_checks(automation_config, tmp_path, monkeypatch, capsys):
    """The upload path end to end on one persistent instance: inbox run, a CLI backfill of one month,
    a raw-only backfill that the automation conditions carry downstream, then the checks-only job."""
    from segmentation_pipeline import cli

    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    export = online_retail_export(tmp_path / "inbox" / "export.csv", "2011-03")
    settled(tmp_path / "inbox" / "export.csv")

    # 1. The sensor's run request, executed as the daemon would (definitions loaded afresh).
    definitions = load_definitions()
    [request] = definitions.resolve_sensor_def("inbox_sensor").evaluate_tick(
        dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral())
    ).run_requests
    from segmentation_pipeline.runner import ensure_instance_home

    ensure_instance_home(home)
    with dg.DagsterInstance.get() as instance:
        inbox_run = definitions.resolve_job_def("full_refresh").execute_in_process(
            instance=instance, tags=request.tags, raise_on_error=False
        )
        assert inbox_run.success
        graph = definitions.resolve_asset_graph()
        everything = {key.to_user_string() for key in graph.get_all_asset_keys()}
        materialized = _materializations(instance, inbox_run.run_id)
        assert set(materialized) == everything
        assert materialized["raw_transactions"] == {"2011-03-01", "2011-04-01"}
    store = TableStore(tmp_path / "outputs")
    raw = store.read("raw_transactions", ["2011-03", "2011-04"])
    assert len(raw) == len(export) and set(raw["source_file"]) == {"export.csv"}
    rfm = store.read("rfm")
    assert set(rfm["customer_id"]) <= set(export["CustomerID"].astype(str))
    assert len(store.read("ground_truth_customers")) == 0  # a real export has no ground truth

    # 2. The CLI backfill: one month re-ingested, everything downstream refreshed, in one run.
    before = read_manifest(tmp_path / "outputs")["assets"]
    assert cli.main(["backfill", "--from", "2011-04", "--to", "2011-04", "--config", str(automation_config)]) == 0
    assert "backfill 2011-04..2011-04" in capsys.readouterr().out
    after = read_manifest(tmp_path / "outputs")["assets"]
    raw_parts = after["raw_transactions"]["partitions"]
    assert raw_parts["2011-03"]["run_id"] == before["raw_transactions"]["partitions"]["2011-03"]["run_id"]
    assert raw_parts["2011-04"]["run_id"] != before["raw_transactions"]["partitions"]["2011-04"]["run_id"]
    assert after["report"]["run_id"] == raw_parts["2011-04"]["run_id"]
    assert cli.main(["backfill", "--from", "2010-01", "--config", str(automation_config)]) == 2

    with dg.DagsterInstance.get() as instance:
        backfill_run = instance.get_runs(limit=1)[0]
        assert backfill_run.tags["dagster/asset_partition_range_start"] == "2011-04-01"
        assert _materializations(instance, backfill_run.run_id)["raw_transactions"] == {"2011-04-01"}

        # 3. A backfill of raw_transactions alone (as launched from the UI): the automation sensor then
        # requests the changed month of the monthly tables and, once they are stored, every table below.
        definitions = load_definitions()
        job = definitions.resolve_job_def("full_refresh")
        march = {"dagster/asset_partition_range_start": "2011-03-01", "dagster/asset_partition_range_end": "2011-03-01"}
        evaluation = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
        assert job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("raw_transactions")], tags=march).success
        evaluation = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=evaluation.cursor)
        assert _requested(evaluation, graph) == {"cleaned_transactions": {"2011-03-01"}, "rejected_transactions": {"2011-03-01"}}
        monthly = [dg.AssetKey("cleaned_transactions"), dg.AssetKey("rejected_transactions")]
        assert job.execute_in_process(instance=instance, asset_selection=monthly, tags=march).success
        evaluation = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=evaluation.cursor)
        assert set(_requested(evaluation, graph)) == everything - {"raw_transactions", "ground_truth_customers", *[k.path[0] for k in monthly]}
        evaluation = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=evaluation.cursor)
        assert _requested(evaluation, graph) == {}  # requested once, not again on every tick

    # 4. The checks-only job, for other CI: every check on the stored tables, nothing materialized;
    # a broken table makes `segmentation-pipeline check` fail.
    assert cli.main(["check", "--config", str(automation_config)]) == 0
    with dg.DagsterInstance.get() as instance:
        checks_run = instance.get_runs(limit=1)[0]
        assert checks_run.job_name == "asset_checks"
        evaluations = instance.get_records_for_run(checks_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
        assert len(evaluations) == len(graph.asset_check_keys)
        assert not _materializations(instance, checks_run.run_id)
    duplicated = pd.concat([rfm, rfm.head(3)], ignore_index=True)
    store.write("rfm", duplicated)
    assert cli.main(["check", "--config", str(automation_config)]) == 1
    assert "rfm" in capsys.readouterr().err
