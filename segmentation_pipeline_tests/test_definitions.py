"""Loading the definitions reads no data, and the package runs from a non-editable install anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from segmentation_pipeline.config import CONFIG_ENV_VAR
from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.orchestration.partitions import transaction_months
from segmentation_pipeline.retail import synthetic
from segmentation_pipeline_tests.conftest import write_config

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _missing_file_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, transactions={"source": "file", "path": str(tmp_path / "not-there.csv")})


def test_definitions_load_without_reading_any_data(tmp_path, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("the definitions read data while loading")

    monkeypatch.setattr("segmentation_pipeline.readers.read_table", no_data)
    monkeypatch.setattr(synthetic, "generate", no_data)
    for config in (_missing_file_config(tmp_path), write_config(tmp_path / "synthetic")):
        definitions = build_definitions(config)
        graph = definitions.resolve_asset_graph()
        assert graph.get(graph.get_all_asset_keys().pop()).key  # the graph resolves
        assert definitions.resolve_assets_def("raw_transactions").partitions_def == transaction_months


@pytest.mark.parametrize(
    "command",
    [[str(BIN / "dagster"), "definitions", "validate"], [str(BIN / "dg"), "check", "defs"]],
    ids=["dagster definitions validate", "dg check defs"],
)
def test_definitions_validate_with_the_transaction_file_missing(tmp_path, command):
    env = {**os.environ, CONFIG_ENV_VAR: str(_missing_file_config(tmp_path)), "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_non_editable_install_from_a_fresh_clone_runs_from_another_directory(tmp_path):
    """`pip install .` (not editable) of a clone: the package brings its defaults and runs anywhere."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True, timeout=120)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # The dependencies come from this environment (no download); the package itself is installed
    # from the clone into the new environment's own site-packages, as a copy.
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", str(clone)],
        check=True, timeout=300, capture_output=True,
    )
    installed = subprocess.run([str(venv / "bin" / "python"), "-c", "import segmentation_pipeline; print(segmentation_pipeline.__file__)"],
                               check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert installed.startswith(str(site)), installed

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = write_config(elsewhere, transactions={"source": "synthetic", "synthetic": {"customers": 150, "months": 2, "seed": 3, "start_month": "2025-01"}},
                          clustering={"k_max": 4, "bootstraps": 2, "autoencoder_epochs": 5})
    env = {key: value for key, value in os.environ.items() if key not in ("DAGSTER_HOME", CONFIG_ENV_VAR)}
    result = subprocess.run([str(venv / "bin" / "segmentation-pipeline"), "run", "--config", config.name],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (elsewhere / "outputs" / "report.html").is_file()
    assert (elsewhere / ".dagster_home" / "dagster.yaml").is_file()  # history kept beside the command

    printed = subprocess.run([str(venv / "bin" / "segmentation-pipeline"), "config"], cwd=elsewhere,
                             capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0 and "transactions:" in printed.stdout
    shutil.rmtree(clone)
