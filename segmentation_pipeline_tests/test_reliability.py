"""A run killed mid-way leaves the previous outputs readable and the manifest consistent; runs started
while another holds the output folder wait for it instead of interleaving their writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import yaml

from segmentation_pipeline.config import CONFIG_ENV_VAR
from segmentation_pipeline.runner import LOCK_NAME, _folder_lock, ensure_instance_home, run_everything
from segmentation_pipeline_tests.conftest import write_config

FAST_CLUSTERING = {"k_max": 5, "bootstraps": 3, "autoencoder_epochs": 10}
CLI = [sys.executable, "-m", "segmentation_pipeline.cli"]


def _config(folder: Path, seed: int) -> Path:
    transactions = {"source": "synthetic", "synthetic": {"customers": 200, "months": 2, "seed": seed, "start_month": "2025-01"}}
    return write_config(folder, transactions=transactions, clustering=FAST_CLUSTERING)


def _env(config: Path, home: Path) -> dict[str, str]:
    return {**os.environ, CONFIG_ENV_VAR: str(config), "DAGSTER_HOME": str(home)}


def _assert_manifest_files_readable(output_dir: Path) -> dict:
    """The manifest parses and every file it lists exists; parquet tables open and have their rows."""
    manifest = json.loads((output_dir / "manifest.json").read_text())["assets"]
    for name, entry in manifest.items():
        assert entry["files"], name
        for file in entry["files"]:
            path = output_dir / file
            assert path.is_file(), (name, file)
            if path.suffix == ".parquet":
                pq.read_table(path)
    return manifest


def test_killed_run_leaves_previous_outputs_readable_and_the_next_run_cleans_up(tmp_path, monkeypatch):
    home = ensure_instance_home(tmp_path / "dagster_home")
    config = _config(tmp_path, seed=7)
    monkeypatch.setenv(CONFIG_ENV_VAR, str(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    output_dir = tmp_path / "outputs"
    with dg.DagsterInstance.get() as instance:
        first = run_everything(instance=instance, emit=lambda line: None)
    assert first.success
    before = _assert_manifest_files_readable(output_dir)

    # Different data (another seed), so replaced tables are told apart from the first run's.
    _config(tmp_path, seed=8)
    killed = subprocess.Popen([*CLI, "run"], env=_env(config, home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    done: list[str] = []
    for line in killed.stdout:
        if line.startswith("  ") and not line.strip().startswith(("!", "x")):
            done.append(line.split()[0])
        if "rfm" in done:  # half-way: the features exist, models and everything after do not yet
            break
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL

    after = _assert_manifest_files_readable(output_dir)
    assert set(after) == set(before)
    rewritten = {name for name, entry in after.items() if entry["run_id"] != first.run_id}
    assert set(done) <= rewritten and "report" not in rewritten  # killed before the end
    for name in done:
        entry = after[name]
        if "partitions" in entry:
            for month, part in entry["partitions"].items():
                assert pq.ParquetFile(output_dir / part["files"][0]).metadata.num_rows == part["row_count"], (name, month)
        else:
            assert pq.ParquetFile(output_dir / entry["files"][0]).metadata.num_rows == entry["row_count"], name
    assert after["report"] == before["report"]  # untouched outputs still the previous run's

    with dg.DagsterInstance.get() as instance:
        [abandoned] = [run for run in instance.get_runs() if run.run_id != first.run_id]
        assert abandoned.status == dg.DagsterRunStatus.STARTED  # the killed process could not say otherwise

    # The next command to take the lock knows no run of this machine is alive: it marks the abandoned
    # run failed and removes temporary files of interrupted writes.
    stale = output_dir / "tables" / ".rfm.parquet.interrupted.tmp"
    stale.write_bytes(b"half a table")
    checked = subprocess.run([*CLI, "check"], env=_env(config, home), capture_output=True, text=True, timeout=300)
    assert f"marked run {abandoned.run_id} failed" in checked.stdout, checked.stdout + checked.stderr
    assert "database is locked" not in checked.stderr
    assert not stale.exists() and not list(output_dir.rglob("*.tmp"))
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(abandoned.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_run_waits_while_another_holds_the_output_folder(tmp_path):
    """Two runs at once: the second says whom it waits for and starts when the first releases the lock."""
    config = _config(tmp_path, seed=7)
    home = ensure_instance_home(tmp_path / "dagster_home")
    output_dir = tmp_path / "outputs"
    holder: list[str] = []
    with _folder_lock(output_dir, "first-run", holder.append):
        waiting = subprocess.Popen([*CLI, "check"], env=_env(config, home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    assert waiting.returncode in (0, 1), rest  # it ran (the checks find no tables: that is the job's answer)
    assert "checks run" in rest and "database is locked" not in rest
    assert (output_dir / LOCK_NAME).read_text() == ""  # released: nobody holds it


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
