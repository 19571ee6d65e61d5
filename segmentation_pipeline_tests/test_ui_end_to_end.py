"""End to end through the UI: two `segmentation-pipeline run`s started at once into a temp DAGSTER_HOME,
then `dagster-webserver` on 127.0.0.1 shows the lineage, the history, the months registered as
partitions and the check executions over GraphQL, and the screenshot script captures the pages with
headless Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from segmentation_pipeline.config import CONFIG_ENV_VAR
from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.orchestration.conventions import PUBLICATION_ASSET
from segmentation_pipeline.orchestration.partitions import sync_months
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline_tests.conftest import write_config
from tools.ui_snapshot import find_chromium, free_port, graphql, start_webserver, stop_webserver, wait_until_ready

CLUSTERING = {"k_max": 5, "bootstraps": 3, "autoencoder_epochs": 10}
TRANSACTIONS = {"source": "synthetic", "synthetic": {"customers": 200, "months": 2, "seed": 7, "start_month": "2025-01"}}


@dataclass
class Served:
    base_url: str
    home: Path
    config: Path
    runs: list[subprocess.CompletedProcess]
    graph: object  # the asset graph of the definitions, for the expected lineage
    server: subprocess.Popen


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("ui")
    config = write_config(folder, transactions=TRANSACTIONS, clustering=CLUSTERING)
    home = folder / "dagster_home"
    env = {key: value for key, value in os.environ.items() if key != CONFIG_ENV_VAR}
    env["DAGSTER_HOME"] = str(home)
    command = [sys.executable, "-m", "segmentation_pipeline.cli", "run", "--config", str(config)]
    started = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    runs = [subprocess.CompletedProcess(p.args, p.wait(timeout=600), *p.communicate()) for p in started]
    graph = build_definitions(config).resolve_asset_graph()

    port = free_port()
    server = start_webserver(home, config, port, folder / "webserver.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, server)
        yield Served(base_url, home, config, runs, graph, server)
    finally:
        stop_webserver(server)


def test_two_runs_started_at_once_both_succeed_one_after_the_other(served):
    for run in served.runs:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "database is locked" not in run.stdout + run.stderr
    assert sum("waiting: run" in run.stdout for run in served.runs) == 1  # the later one waited
    with dg.DagsterInstance.from_config(str(served.home)) as instance:
        records = sorted(instance.get_run_records(), key=lambda r: r.start_time)
        assert [r.dagster_run.status for r in records] == [dg.DagsterRunStatus.SUCCESS] * 2
        assert records[0].end_time <= records[1].start_time  # serialized, not interleaved
    # Each run published its own complete set; the later one is current, the earlier one kept.
    outputs = OutputFolder(served.config.parent / "outputs")
    assert [s.run_id for s in outputs.history()] == [r.dagster_run.run_id for r in reversed(records)]
    assert outputs.current().run_id == records[1].dagster_run.run_id


def test_the_months_are_served_as_partitions_and_a_new_month_appears_without_a_reload(served):
    query = '{ assetNodeOrError(assetKey: {path: ["raw_transactions"]}) { ... on AssetNode { partitionKeys } } }'
    assert graphql(served.base_url, query)["assetNodeOrError"]["partitionKeys"] == ["2025-01", "2025-02"]
    with dg.DagsterInstance.from_config(str(served.home)) as instance:
        sync_months(instance, ["2025-01", "2025-02", "2025-03"])  # what the months sensor does for a new month
        try:
            served_keys = graphql(served.base_url, query)["assetNodeOrError"]["partitionKeys"]
        finally:
            sync_months(instance, ["2025-01", "2025-02"])
    assert served_keys == ["2025-01", "2025-02", "2025-03"]


def test_every_asset_is_served_with_its_dependency_edges(served):
    nodes = graphql(served.base_url, "{ assetNodes { assetKey { path } dependencyKeys { path } } }")["assetNodes"]
    served_edges = {"/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]} for n in nodes}
    graph = served.graph
    expected = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys} for key in graph.get_all_asset_keys()}
    assert served_edges == expected
    assert served_edges["rfm"] == {"cleaned_transactions"}
    assert "raw_transactions" in served_edges["cleaned_transactions"]
    assert served_edges[PUBLICATION_ASSET] == set(served_edges) - {PUBLICATION_ASSET}  # it runs last


def test_every_asset_has_a_history_of_both_runs(served):
    query = "{ assetsOrError { ... on AssetConnection { nodes { key { path } assetMaterializations(limit: 500) { runId } } } } }"
    nodes = graphql(served.base_url, query)["assetsOrError"]["nodes"]
    history = {"/".join(n["key"]["path"]): {m["runId"] for m in n["assetMaterializations"]} for n in nodes}
    assert set(history) == {key.to_user_string() for key in served.graph.get_all_asset_keys()}
    runs = set.union(*history.values())
    assert len(runs) == 2
    assert all(runs_of_asset == runs for runs_of_asset in history.values()), history


def test_asset_check_executions_are_recorded(served):
    query = """query($key: AssetKeyInput!, $check: String!) {
      assetCheckExecutions(assetKey: $key, checkName: $check, limit: 10) { runId status evaluation { success } } }"""
    for check in served.graph.asset_check_keys:
        variables = {"key": {"path": list(check.asset_key.path)}, "check": check.name}
        executions = graphql(served.base_url, query, variables)["assetCheckExecutions"]
        assert len({e["runId"] for e in executions}) == 2, check
        assert all(e["status"] in ("SUCCEEDED", "FAILED") and e["evaluation"] is not None for e in executions), check


def test_screenshot_script_captures_lineage_and_history(served, tmp_path):
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (Debian package: chromium)")
    from matplotlib import image

    command = [sys.executable, "-m", "tools.ui_snapshot", "--url", served.base_url, "--out", str(tmp_path), "--asset", "rfm"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, (width, height) in {"lineage.png": (1600, 1000), "lineage_assets.png": (2200, 1400), "rfm_history.png": (1600, 1000)}.items():
        pixels = image.imread(tmp_path / name)
        assert pixels.shape[:2] == (height, width), name
        assert pixels.std() > 0.05, f"{name} is blank"


def test_the_server_stops_by_its_pid(served):
    stop_webserver(served.server)
    assert served.server.poll() is not None
    port = int(served.base_url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
