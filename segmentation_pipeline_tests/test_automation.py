"""Schedules, the months and inbox sensors, automation conditions, CLI backfills and the checks-only job,
evaluated against real Dagster instances and the definitions built for one config file.

Months are dynamic partitions registered when a run is prepared: the sensors return the requests (the
daemon applies them before it launches the sensor's runs, `_apply` below does the same), the schedules
and the CLI register them directly. No reload of the code location is involved anywhere.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from segmentation_pipeline import layout
from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.orchestration.conventions import (
    INBOX_TAG,
    PUBLICATION_ASSET,
    REFRESH_CHANGED_MONTHS,
    REFRESH_WHEN_UPSTREAM_CHANGES,
    TRIGGER_TAG,
)
from segmentation_pipeline.orchestration.instance import ensure_instance_home
from segmentation_pipeline.orchestration.partitions import (
    PARTITION_RANGE_END,
    PARTITION_RANGE_START,
    month_requests,
    transaction_months,
)
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline.retail import synthetic
from segmentation_pipeline.storage import write_parquet
from segmentation_pipeline_tests.conftest import write_config

# Small and quick: every method still finds clusters on 200 customers.
FAST_CLUSTERING = {"k_max": 5, "bootstraps": 3, "autoencoder_epochs": 10}
SYNTHETIC = {"customers": 200, "months": 2, "seed": 7, "start_month": "2025-01"}
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
AUTOMATION = {"monthly_cron": "15 1 3 * *", "weekly_cron": "30 2 * * 1", "timezone": "Europe/Paris"}


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


def _write(folder: Path, synthetic_settings: dict | None = None) -> Path:
    """The test's config (rewritten in place when a test changes the log); the inbox folder exists."""
    (folder / "inbox").mkdir(exist_ok=True)
    return write_config(
        folder,
        transactions={"source": "synthetic", "synthetic": {**SYNTHETIC, **(synthetic_settings or {})}},
        clustering=FAST_CLUSTERING,
        automation={"inbox_dir": str(folder / "inbox"), **AUTOMATION},
    )


@pytest.fixture
def automation_config(tmp_path) -> Path:
    return _write(tmp_path)


@pytest.fixture
def instance():
    """Persistent (a temp folder): schedule contexts with resources need an instance reference."""
    with dg.instance_for_test() as instance:
        yield instance


def _settings(definitions: dg.Definitions) -> dict:
    return {"settings": definitions.resources["settings"]}


def _tick(sensor: dg.SensorDefinition, definitions: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    """One evaluation, as the daemon makes it; returns the tick's data and the cursor it leaves."""
    # As a context manager: its resources and instance are released even when the evaluation raises
    # (a context left open keeps Dagster state that breaks later definitions loads in this process).
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=_settings(definitions)) as context:
        result = sensor.evaluate_tick(context)
    return result, result.cursor


def _schedule_tick(schedule: dg.ScheduleDefinition, definitions: dg.Definitions, instance: dg.DagsterInstance,
                   when: datetime = datetime(2026, 3, 3, 1, 15, tzinfo=timezone.utc)):
    """One tick of `schedule`, its context closed afterwards (see `_tick`)."""
    with dg.build_schedule_context(instance=instance, resources=_settings(definitions), scheduled_execution_time=when) as context:
        return schedule.evaluate_tick(context)


def _apply(instance: dg.DagsterInstance, requests) -> None:
    """What the sensor daemon does with a tick's dynamic partitions requests, before its runs start."""
    for request in requests:
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                if instance.has_dynamic_partition(request.partitions_def_name, key):
                    instance.delete_dynamic_partition(request.partitions_def_name, key)
        else:
            new = [k for k in request.partition_keys if not instance.has_dynamic_partition(request.partitions_def_name, k)]
            instance.add_dynamic_partitions(request.partitions_def_name, new)


def _months(instance: dg.DagsterInstance) -> list[str]:
    return instance.get_dynamic_partitions(transaction_months.name)


def _range(request: dg.RunRequest | dg.DagsterRun) -> tuple[str, str]:
    return request.tags[PARTITION_RANGE_START], request.tags[PARTITION_RANGE_END]


# ------------------------------------------------------------------------------ definitions


def test_schedules_and_sensors_start_stopped_with_the_configured_crons(automation_config, tmp_path):
    definitions = build_definitions(automation_config)
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
    # Registering months launches nothing, so it always runs: the UI offers the data's months.
    months = definitions.resolve_sensor_def("transaction_months")
    assert months.default_status == dg.DefaultSensorStatus.RUNNING and not months.targets

    (tmp_path / "running").mkdir()
    running = write_config(
        tmp_path / "running",
        automation={"schedules_running": True, "inbox_sensor_running": True, "automation_sensor_running": True,
                    "inbox_poll_seconds": 10},
    )
    definitions = build_definitions(running)  # another config, same process: nothing is cached by import
    assert definitions.resolve_schedule_def("monthly_newest_month").default_status == dg.DefaultScheduleStatus.RUNNING
    assert definitions.resolve_schedule_def("weekly_full_refresh").default_status == dg.DefaultScheduleStatus.RUNNING
    assert definitions.resolve_sensor_def("inbox_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert definitions.resolve_sensor_def("inbox_sensor").minimum_interval_seconds == 10
    assert definitions.resolve_sensor_def("refresh_downstream").default_status == dg.DefaultSensorStatus.RUNNING
    assert build_definitions(automation_config).resolve_schedule_def("weekly_full_refresh").cron_schedule == "30 2 * * 1"


def test_jobs_select_the_newest_month_chain_and_the_checks_only(automation_config):
    definitions = build_definitions(automation_config)
    graph = definitions.resolve_asset_graph()
    raw = dg.AssetKey("raw_transactions")
    chain = {raw} | {key for key in graph.get_all_asset_keys() if raw in graph.upstream_key_iterator(key)}
    newest = definitions.resolve_job_def("newest_month_refresh")
    assert newest.asset_layer.executable_asset_keys == chain | {dg.AssetKey("ground_truth_customers")}
    assert len(chain) > 10 and dg.AssetKey(PUBLICATION_ASSET) in chain  # every job ends by publishing
    full = definitions.resolve_job_def("full_refresh")
    assert full.asset_layer.executable_asset_keys == set(graph.get_all_asset_keys())
    checks_only = definitions.resolve_job_def("asset_checks")
    assert set(checks_only.asset_layer.asset_graph.asset_check_keys) == set(graph.asset_check_keys)
    assert not checks_only.asset_layer.executable_asset_keys


def test_downstream_assets_refresh_when_upstream_changes(automation_config):
    """raw_transactions and ground truth are driven by runs; everything else by its automation condition
    (every changed month for the monthly tables, not only the newest, so backfills flow downstream)."""
    graph = build_definitions(automation_config).resolve_asset_graph()
    roots = {dg.AssetKey("raw_transactions"), dg.AssetKey("ground_truth_customers")}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        expected = None if key in roots else REFRESH_CHANGED_MONTHS if node.is_partitioned else REFRESH_WHEN_UPSTREAM_CHANGES
        assert node.automation_condition == expected, key.to_user_string()
        if node.is_partitioned:
            assert node.partitions_def == transaction_months, key.to_user_string()


def test_definitions_build_without_reading_the_data_and_ticks_say_why_they_skip(tmp_path, instance):
    """A configured file that does not exist yet: the definitions still build (they read no data); the
    months sensor and the schedules skip with the reason, registering nothing."""
    missing = tmp_path / "not_yet_exported.csv"
    config = write_config(tmp_path, {"source": "file", "path": str(missing)})
    definitions = build_definitions(config)
    result, cursor = _tick(definitions.resolve_sensor_def("transaction_months"), definitions, instance, None)
    assert not result.dynamic_partitions_requests and "not_yet_exported.csv" in result.skip_message
    assert cursor is None  # retried on the next tick
    for name in ("monthly_newest_month", "weekly_full_refresh"):
        data = _schedule_tick(definitions.resolve_schedule_def(name), definitions, instance)
        assert not data.run_requests and "cannot be read" in data.skip_message and "not_yet_exported.csv" in data.skip_message
    assert _months(instance) == []


# ------------------------------------------------------------------------------ months as partitions


def test_month_requests_keep_the_registered_months_sorted():
    assert month_requests(["2025-01", "2025-02"], ["2025-02", "2025-01"]) == []
    [add] = month_requests(["2025-01"], ["2025-01", "2025-02", "2025-03"])  # appended: one add request
    assert isinstance(add, dg.AddDynamicPartitionsRequest) and list(add.partition_keys) == ["2025-02", "2025-03"]
    delete, add = month_requests(["2025-01", "2025-02"], ["2025-02", "2025-03"])
    assert list(delete.partition_keys) == ["2025-01"] and list(add.partition_keys) == ["2025-03"]
    # An earlier month cannot be appended: every key is re-added in order, so ranges stay chronological.
    delete, add = month_requests(["2025-02", "2025-03"], ["2025-01", "2025-02", "2025-03"])
    assert list(delete.partition_keys) == ["2025-02", "2025-03"]
    assert list(add.partition_keys) == ["2025-01", "2025-02", "2025-03"]


def test_transaction_months_sensor_adds_and_removes_months_as_the_log_changes(automation_config, tmp_path, instance):
    """No reload anywhere: the same definitions, the log changes under them."""
    definitions = build_definitions(automation_config)
    sensor = definitions.resolve_sensor_def("transaction_months")

    result, cursor = _tick(sensor, definitions, instance, None)
    assert not result.run_requests
    _apply(instance, result.dynamic_partitions_requests)
    assert _months(instance) == ["2025-01", "2025-02"]
    result, same = _tick(sensor, definitions, instance, cursor)
    assert not result.dynamic_partitions_requests and "not changed" in result.skip_message and same == cursor

    # A longer generator window: one month added at the end.
    _write(tmp_path, {"months": 3})
    result, cursor = _tick(sensor, definitions, instance, cursor)
    [add] = result.dynamic_partitions_requests
    assert isinstance(add, dg.AddDynamicPartitionsRequest) and list(add.partition_keys) == ["2025-03"]
    _apply(instance, result.dynamic_partitions_requests)
    assert _months(instance) == ["2025-01", "2025-02", "2025-03"]

    # An export dropped in the inbox is the log now: its months replace the generator's.
    export = tmp_path / "inbox" / "export.csv"
    online_retail_export(export, "2011-03")
    result, cursor = _tick(sensor, definitions, instance, cursor)
    assert not result.run_requests
    _apply(instance, result.dynamic_partitions_requests)
    assert _months(instance) == ["2011-03", "2011-04"]

    # An unreadable log registers nothing and keeps the cursor: the tick after the fix registers.
    export.write_text("CustomerID,InvoiceDate\n")
    result, after = _tick(sensor, definitions, instance, cursor)
    assert "cannot be read" in result.skip_message and after == cursor
    assert _months(instance) == ["2011-03", "2011-04"]

    # The export removed: back to the configured source, the export's months leave.
    export.unlink()
    result, cursor = _tick(sensor, definitions, instance, cursor)
    _apply(instance, result.dynamic_partitions_requests)
    assert _months(instance) == ["2025-01", "2025-02", "2025-03"]


def test_transaction_months_sensor_registers_an_earlier_month_in_order(automation_config, tmp_path, instance):
    """The generator window starts a month earlier: the new first month must come first in the
    registered keys (partition ranges follow their order)."""
    definitions = build_definitions(automation_config)
    sensor = definitions.resolve_sensor_def("transaction_months")
    result, cursor = _tick(sensor, definitions, instance, None)
    _apply(instance, result.dynamic_partitions_requests)
    _write(tmp_path, {"months": 3, "start_month": "2024-12"})
    result, cursor = _tick(sensor, definitions, instance, cursor)
    _apply(instance, result.dynamic_partitions_requests)
    assert _months(instance) == ["2024-12", "2025-01", "2025-02"]


def test_inbox_sensor_registers_an_export_of_earlier_months_in_order(automation_config, tmp_path, instance):
    """An older export dropped beside a newer one: the run covers every month, in calendar order."""
    definitions = build_definitions(automation_config)
    sensor = definitions.resolve_sensor_def("inbox_sensor")
    online_retail_export(tmp_path / "inbox" / "march.csv", "2011-03")
    settled(tmp_path / "inbox" / "march.csv")
    result, cursor = _tick(sensor, definitions, instance, None)
    _apply(instance, result.dynamic_partitions_requests)
    assert _months(instance) == ["2011-03", "2011-04"]
    online_retail_export(tmp_path / "inbox" / "january.csv", "2011-01", seed=5)
    settled(tmp_path / "inbox" / "january.csv")
    result, cursor = _tick(sensor, definitions, instance, cursor)
    [request] = result.run_requests
    assert _range(request) == ("2011-01", "2011-04")
    _apply(instance, result.dynamic_partitions_requests)
    assert _months(instance) == ["2011-01", "2011-02", "2011-03", "2011-04"]


def _publish_month(output_dir: Path, asset: str, month: str) -> None:
    """A published set holding one month of `asset` (what an earlier run would have left)."""
    folder = OutputFolder(output_dir)
    staging = folder.staging("earlier-run")
    relative = layout.month_table(asset, month)
    write_parquet(pd.DataFrame({"x": [1]}), staging.path(relative))
    staging.record(asset, [relative], 1, partition=month)
    folder.publish(["earlier-run"])


def test_schedules_register_the_months_and_request_the_newest_month_and_the_full_range(automation_config, tmp_path, instance):
    definitions = build_definitions(automation_config)
    monthly = definitions.resolve_schedule_def("monthly_newest_month")
    weekly = definitions.resolve_schedule_def("weekly_full_refresh")

    # Nothing published yet: the newest month comes with every earlier month, so downstream can read all.
    assert _months(instance) == []
    [request] = _schedule_tick(monthly, definitions, instance).run_requests
    assert _months(instance) == ["2025-01", "2025-02"]  # the tick registered the log's months
    assert _range(request) == ("2025-01", "2025-02")
    assert request.tags[TRIGGER_TAG] == "monthly schedule"
    _publish_month(tmp_path / "outputs", "cleaned_transactions", "2025-01")
    [request] = _schedule_tick(monthly, definitions, instance).run_requests
    assert _range(request) == ("2025-02", "2025-02")

    [request] = _schedule_tick(weekly, definitions, instance).run_requests
    assert _range(request) == ("2025-01", "2025-02") and request.tags[TRIGGER_TAG] == "weekly schedule"

    # A month appears in the data: the next tick registers it and asks for it (no reload).
    _write(tmp_path, {"months": 3})
    [request] = _schedule_tick(monthly, definitions, instance).run_requests
    assert _months(instance) == ["2025-01", "2025-02", "2025-03"]
    assert _range(request) == ("2025-02", "2025-03")
    [request] = _schedule_tick(weekly, definitions, instance).run_requests
    assert _range(request) == ("2025-01", "2025-03")


# ------------------------------------------------------------------------------ the inbox


def test_inbox_sensor_reacts_to_new_changed_and_removed_files_by_content(automation_config, tmp_path, instance):
    definitions = build_definitions(automation_config)
    sensor = definitions.resolve_sensor_def("inbox_sensor")
    inbox = tmp_path / "inbox"

    result, cursor = _tick(sensor, definitions, instance, None)
    assert not result.run_requests and "no new" in result.skip_message

    export = inbox / "online_retail.csv"
    online_retail_export(export, "2011-03")
    (inbox / ".online_retail.csv.part").write_text("half a copy")  # partial downloads are ignored
    result, after_skip = _tick(sensor, definitions, instance, cursor)
    assert not result.run_requests and "finish copying" in result.skip_message and after_skip == cursor

    # The export's months are not partitions yet: the tick returns them with its run request (the
    # daemon adds them before it launches the run), with the same definitions - nothing is reloaded.
    settled(export)
    result, cursor = _tick(sensor, definitions, instance, cursor)
    [request] = result.run_requests
    assert request.job_name in (None, "full_refresh")
    assert _range(request) == ("2011-03", "2011-04")
    assert request.tags[INBOX_TAG] == "new: online_retail.csv"
    assert request.tags[TRIGGER_TAG] == "inbox sensor"
    [add] = result.dynamic_partitions_requests
    assert isinstance(add, dg.AddDynamicPartitionsRequest) and add.partitions_def_name == transaction_months.name
    assert list(add.partition_keys) == ["2011-03", "2011-04"]
    _apply(instance, result.dynamic_partitions_requests)
    assert _months(instance) == ["2011-03", "2011-04"]
    first_key = request.run_key

    result, cursor = _tick(sensor, definitions, instance, cursor)
    assert not result.run_requests and not result.dynamic_partitions_requests

    touched = time.time() - 30
    os.utime(export, (touched, touched))  # same content, new mtime: not a change
    result, cursor = _tick(sensor, definitions, instance, cursor)
    assert not result.run_requests
    assert json.loads(cursor)["files"]["online_retail.csv"]["mtime_ns"] == os.stat(export).st_mtime_ns

    online_retail_export(export, "2011-03", seed=4)  # new content, same months: no partition change
    settled(export)
    result, cursor = _tick(sensor, definitions, instance, cursor)
    [request] = result.run_requests
    assert request.tags[INBOX_TAG] == "changed: online_retail.csv"
    assert request.run_key != first_key
    assert result.dynamic_partitions_requests == []

    # A second export with a later month: that month is added, the run covers all of them.
    online_retail_export(inbox / "may.csv", "2011-05", months=1, seed=5)
    settled(inbox / "may.csv")
    result, cursor = _tick(sensor, definitions, instance, cursor)
    [request] = result.run_requests
    assert request.tags[INBOX_TAG] == "new: may.csv"
    assert _range(request) == ("2011-03", "2011-05")
    [add] = result.dynamic_partitions_requests
    assert list(add.partition_keys) == ["2011-05"]
    _apply(instance, result.dynamic_partitions_requests)

    # A broken file: no run, no partition change, the cursor stays so the corrected file is picked up.
    (inbox / "broken.csv").write_text("CustomerID,InvoiceDate\n")
    settled(inbox / "broken.csv")
    result, after_broken = _tick(sensor, definitions, instance, cursor)
    assert not result.run_requests and "cannot be read" in result.skip_message and after_broken == cursor
    (inbox / "broken.csv").unlink()

    # Every export removed: back to the configured source, whose months replace the exports'.
    export.unlink()
    (inbox / "may.csv").unlink()
    result, cursor = _tick(sensor, definitions, instance, cursor)
    [request] = result.run_requests
    assert request.tags[INBOX_TAG] == "removed: may.csv, online_retail.csv"
    assert _range(request) == ("2025-01", "2025-02")
    _apply(instance, result.dynamic_partitions_requests)
    assert _months(instance) == ["2025-01", "2025-02"]


# ------------------------------------------------------------------------------ end to end


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


def _published_table(published, name: str) -> pd.DataFrame:
    files = published.manifest["assets"][name]["files"]
    return pd.concat([pd.read_parquet(published.file(f)) for f in files], ignore_index=True)


def test_dropped_export_flows_downstream_then_backfill_and_checks(automation_config, tmp_path, monkeypatch, capsys):
    """The upload path end to end on one persistent instance: inbox run, a CLI backfill of one month,
    a raw-only backfill that the automation conditions carry downstream, then the checks-only job."""
    from segmentation_pipeline import cli

    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    export = online_retail_export(tmp_path / "inbox" / "export.csv", "2011-03")
    settled(tmp_path / "inbox" / "export.csv")
    outputs = OutputFolder(tmp_path / "outputs")

    # 1. The sensor's tick as the daemon makes it: partitions added, then the run launched.
    definitions = build_definitions(automation_config)
    graph = definitions.resolve_asset_graph()
    everything = {key.to_user_string() for key in graph.get_all_asset_keys()}
    ensure_instance_home(home)
    with dg.DagsterInstance.get() as instance:
        tick, _ = _tick(definitions.resolve_sensor_def("inbox_sensor"), definitions, instance, None)
        [request] = tick.run_requests
        _apply(instance, tick.dynamic_partitions_requests)
        inbox_run = definitions.resolve_job_def("full_refresh").execute_in_process(
            instance=instance, tags=request.tags, raise_on_error=False
        )
        assert inbox_run.success
        materialized = _materializations(instance, inbox_run.run_id)
        assert set(materialized) == everything
        assert materialized["raw_transactions"] == {"2011-03", "2011-04"}
    published = outputs.current()
    assert published.run_id == inbox_run.run_id
    raw = _published_table(published, "raw_transactions")
    assert len(raw) == len(export) and set(raw["source_file"]) == {"export.csv"}
    rfm = pd.read_parquet(tmp_path / "outputs" / layout.table("rfm"))  # the stable path
    assert set(rfm["customer_id"]) <= set(export["CustomerID"].astype(str))
    assert len(_published_table(published, "ground_truth_customers")) == 0  # a real export has no ground truth

    # 2. The CLI backfill: one month re-ingested, everything downstream refreshed, in one run.
    before = published.manifest["assets"]
    assert cli.main(["backfill", "--from", "2011-04", "--to", "2011-04", "--config", str(automation_config)]) == 0
    assert "backfill 2011-04..2011-04" in capsys.readouterr().out
    after = outputs.current().manifest["assets"]
    raw_parts = after["raw_transactions"]["partitions"]
    assert raw_parts["2011-03"]["run_id"] == before["raw_transactions"]["partitions"]["2011-03"]["run_id"]
    assert raw_parts["2011-04"]["run_id"] != before["raw_transactions"]["partitions"]["2011-04"]["run_id"]
    assert after["report"]["run_id"] == raw_parts["2011-04"]["run_id"] == outputs.current().run_id
    assert cli.main(["backfill", "--from", "2010-01", "--config", str(automation_config)]) == 2
    assert "--from 2010-01" in capsys.readouterr().err

    with dg.DagsterInstance.get() as instance:
        backfill_run = instance.get_runs(limit=1)[0]
        assert _range(backfill_run) == ("2011-04", "2011-04")
        assert _materializations(instance, backfill_run.run_id)["raw_transactions"] == {"2011-04"}

        # 3. A backfill of raw_transactions alone (as launched from the UI): the automation sensor then
        # requests the changed month of the monthly tables and, once they are stored, every table below.
        job = definitions.resolve_job_def("full_refresh")
        march = {PARTITION_RANGE_START: "2011-03", PARTITION_RANGE_END: "2011-03"}
        evaluation = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
        raw_only = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("raw_transactions")], tags=march)
        assert raw_only.success
        assert outputs.current().run_id != raw_only.run_id  # not published: the run did not include publication
        evaluation = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=evaluation.cursor)
        assert _requested(evaluation, graph) == {
            "cleaned_transactions": {"2011-03"},
            "rejected_transactions": {"2011-03"},
            PUBLICATION_ASSET: {None},  # a partial run is published too (launched after the tables it waits for)
        }
        monthly = [dg.AssetKey("cleaned_transactions"), dg.AssetKey("rejected_transactions")]
        monthly_run = job.execute_in_process(instance=instance, asset_selection=monthly, tags=march)
        assert monthly_run.success
        evaluation = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=evaluation.cursor)
        # Every table the transaction log feeds (other domains' assets have their own roots).
        raw = dg.AssetKey("raw_transactions")
        fed = {key.to_user_string() for key in graph.get_all_asset_keys() if raw in graph.upstream_key_iterator(key)}
        below = fed - {"ground_truth_customers", PUBLICATION_ASSET, *[k.path[0] for k in monthly]}  # ground truth: run-driven
        assert set(_requested(evaluation, graph)) == below
        evaluation = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=evaluation.cursor)
        assert _requested(evaluation, graph) == {}  # requested once, not again on every tick

        # The tables below refreshed (a run without publication), the sensor then asks for publication,
        # which publishes every earlier successful run that was not published, oldest first.
        tables = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(n) for n in below])
        assert tables.success
        assert outputs.current().run_id == backfill_run.run_id  # nothing published meanwhile
        evaluation = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=evaluation.cursor)
        assert _requested(evaluation, graph) == {PUBLICATION_ASSET: {None}}
        publication = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(PUBLICATION_ASSET)])
        assert publication.success
        current = outputs.current()
        assert current.manifest["runs"] == [raw_only.run_id, monthly_run.run_id, tables.run_id]  # it wrote nothing itself
        parts = current.manifest["assets"]["raw_transactions"]["partitions"]
        assert (parts["2011-03"]["run_id"], parts["2011-04"]["run_id"]) == (raw_only.run_id, backfill_run.run_id)
        assert current.manifest["assets"]["report"]["run_id"] == tables.run_id
        assert not outputs.staged_runs()  # published runs leave no staging behind

    # 4. The checks-only job, for other CI: every check on the published tables, nothing materialized;
    # a broken published table makes `segmentation-pipeline check` fail.
    assert cli.main(["check", "--config", str(automation_config)]) == 0
    with dg.DagsterInstance.get() as instance:
        checks_run = instance.get_runs(limit=1)[0]
        assert checks_run.job_name == "asset_checks"
        evaluations = instance.get_records_for_run(checks_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
        assert len(evaluations) == len(graph.asset_check_keys)
        assert not _materializations(instance, checks_run.run_id)
    broken = outputs.staging("broken-run")
    duplicated = pd.concat([rfm, rfm.head(3)], ignore_index=True)
    write_parquet(duplicated, broken.path(layout.table("rfm")))
    broken.record("rfm", [layout.table("rfm")], len(duplicated))
    outputs.publish(["broken-run"])
    capsys.readouterr()
    assert cli.main(["check", "--config", str(automation_config)]) == 1
    assert "rfm" in capsys.readouterr().err
