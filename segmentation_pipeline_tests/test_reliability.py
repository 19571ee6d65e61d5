"""Publication is all-or-nothing: a run killed at any moment, or failing after ingest, leaves the
published files byte-identical; runs started while another holds the output folder wait for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from segmentation_pipeline import layout
from segmentation_pipeline.orchestration.instance import ensure_instance_home
from segmentation_pipeline.orchestration.locking import HOLDER_NAME, folder_lock
from segmentation_pipeline.publication import OutputFolder, file_sha256
from segmentation_pipeline_tests.conftest import write_config

FAST_CLUSTERING = {"k_max": 4, "bootstraps": 2, "autoencoder_epochs": 5}
CLI = [sys.executable, "-m", "segmentation_pipeline.cli"]
# Progress lines after which a run is killed: ingest, features, models, comparison, the report
# (publication running or about to run).
KILL_AFTER = ("raw_transactions", "rfm", "kmeans", "method_comparison", "report")


def _config(folder: Path, seed: int, **transactions) -> Path:
    transactions = transactions or {
        "source": "synthetic",
        "synthetic": {"customers": 150, "months": 2, "seed": seed, "start_month": "2025-01"},
    }
    return write_config(folder, transactions=transactions, clustering=FAST_CLUSTERING)


def _cli(command: str, config: Path, home: Path, **popen) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*CLI, command, "--config", str(config)], env=env, text=True, **popen)


def _published_checksums(output_dir: Path) -> dict[str, str]:
    """Every file readers see through the stable links, with its sha256, plus the manifest itself."""
    manifest = json.loads((output_dir / layout.MANIFEST).read_text())
    files = {path: file_sha256(output_dir / path) for path in manifest["files"]}
    files[layout.MANIFEST] = file_sha256(output_dir / layout.MANIFEST)
    return files


def _assert_complete_set(output_dir: Path) -> dict:
    """The published set is whole: every file the manifest names has the recorded checksum."""
    manifest = json.loads((output_dir / layout.MANIFEST).read_text())
    for path, info in manifest["files"].items():
        assert file_sha256(output_dir / path) == info["sha256"], path
    return manifest


def test_a_run_killed_at_any_moment_leaves_the_published_files_as_they_were(tmp_path):
    home = ensure_instance_home(tmp_path / "dagster_home")
    output_dir = tmp_path / "outputs"
    config = _config(tmp_path, seed=7)
    first = _cli("run", config, home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert first.wait(timeout=600) == 0, first.stderr.read()
    good = _published_checksums(output_dir)
    good_run = _assert_complete_set(output_dir)["run_id"]

    _config(tmp_path, seed=8)  # other data, so the killed runs' files differ from the published ones
    outcomes = {}
    for marker in KILL_AFTER:
        killed = _cli("run", config, home, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for line in killed.stdout:
            if line.split()[:1] == [marker]:
                break
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        manifest = _assert_complete_set(output_dir)
        if manifest["run_id"] == good_run:
            assert _published_checksums(output_dir) == good, marker  # byte-identical to before
            outcomes[marker] = "previous set"
        else:  # killed after its publication: the new set is complete and alone
            assert {info["run_id"] for info in manifest["files"].values()} == {manifest["run_id"]}
            outcomes[marker] = "new set"
            good, good_run = _published_checksums(output_dir), manifest["run_id"]
    assert list(outcomes.values())[:-1] == ["previous set"] * (len(KILL_AFTER) - 1), outcomes

    # Each command holds the lock, so it knows no run of this machine is alive: it marks the killed
    # run before it failed and removes its staged outputs, and nothing else.
    users_file = output_dir / ".my-notes.tmp"
    users_file.write_text("mine")
    checked = _cli("check", config, home, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = checked.communicate(timeout=600)
    assert "marked run" in out, out + err
    assert "database is locked" not in err
    assert OutputFolder(output_dir).staged_runs() == [] and users_file.read_text() == "mine"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        statuses = {run.status for run in instance.get_runs()}
    assert dg.DagsterRunStatus.STARTED not in statuses


def test_a_run_failing_after_ingest_leaves_report_personas_and_profiles_byte_identical(tmp_path):
    home = ensure_instance_home(tmp_path / "dagster_home")
    output_dir = tmp_path / "outputs"
    config = _config(tmp_path, seed=7)
    good = _cli("run", config, home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert good.wait(timeout=600) == 0, good.stderr.read()
    before = _published_checksums(output_dir)
    assert any(path.startswith(("personas/", "profiles/")) for path in before) and layout.REPORT in before

    # A readable log whose lines are all returns: ingest and cleaning succeed, RFM cannot.
    returns_only = tmp_path / "returns.csv"
    pd.DataFrame(
        {"CustomerID": ["a", "b", "c"], "InvoiceNo": ["C1", "C2", "C3"], "InvoiceDate": ["2025-01-05"] * 3,
         "Quantity": [-1, -2, -3], "UnitPrice": [2.5, 3.0, 1.0]}
    ).to_csv(returns_only, index=False)
    unmapped = {"product_id": None, "description": None, "country": None}
    _config(tmp_path, seed=7, source="file", path=str(returns_only), columns=unmapped)
    failed = _cli("run", config, home, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = failed.communicate(timeout=600)
    assert failed.returncode == 1, out + err
    assert "raw_transactions" in out and "no purchase lines" in err
    assert _published_checksums(output_dir) == before


def test_a_run_waits_while_another_holds_the_output_folder(tmp_path):
    """Two commands at once: the second says whom it waits for and starts when the first releases the lock."""
    config = _config(tmp_path, seed=7)
    home = ensure_instance_home(tmp_path / "dagster_home")
    output_dir = tmp_path / "outputs"
    holder: list[str] = []
    with folder_lock(output_dir, "run first-run", holder.append):
        waiting = _cli("check", config, home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []
        for line in waiting.stdout:
            lines.append(line)
            if line.startswith("waiting:"):
                break
        assert lines[-1].startswith(f"waiting: run first-run (pid {os.getpid()}"), lines
        time.sleep(1)
        assert waiting.poll() is None  # still waiting while the lock is held
    rest = waiting.communicate(timeout=300)[0]
    assert holder == []  # the lock was free for the holder
    assert waiting.returncode in (0, 1), rest  # it ran (nothing is published yet: that is the job's answer)
    assert "checks run" in rest and "database is locked" not in rest
    assert not (output_dir / HOLDER_NAME).exists()  # released: nobody holds it


def test_default_instance_settings_are_written_once_and_never_overwritten(tmp_path):
    home = ensure_instance_home(tmp_path / "home")
    settings = (home / "dagster.yaml").read_text()
    parsed = yaml.safe_load(settings)
    assert parsed["telemetry"] == {"enabled": False}
    assert parsed["concurrency"]["runs"]["max_concurrent_runs"] == 1
    with dg.DagsterInstance.from_config(str(home)) as instance:  # Dagster accepts the file
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
    (home / "dagster.yaml").write_text(settings + "\n# edited by the user\n")
    ensure_instance_home(home)
    assert (home / "dagster.yaml").read_text().endswith("# edited by the user\n")


@pytest.mark.parametrize("command", ["run", "check"])
def test_commands_run_from_any_directory_with_a_config_relative_to_it(tmp_path, command):
    """--config is a path relative to the current directory, like any command-line path."""
    project = tmp_path / "project"
    project.mkdir()
    config = _config(project, seed=7)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    result = subprocess.run([*CLI, command, "--config", "project/pipeline.yml"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert f"config: {config}" in result.stdout, result.stdout + result.stderr
