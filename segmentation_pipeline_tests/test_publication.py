"""All-or-nothing publication of staged outputs, history and rollback, without Dagster."""

import json
import os

import pytest

from segmentation_pipeline import layout
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.publication import OutputFolder, file_sha256


def _stage(folder: OutputFolder, run_id: str, files: dict[str, str], asset: str, partition: str | None = None) -> None:
    staging = folder.staging(run_id)
    for relative, text in files.items():
        staging.path(relative).write_text(text)
    staging.record(asset, list(files), len(files), partition=partition)


def _read(output_dir, relative: str) -> str:
    return (output_dir / relative).read_text()


def test_a_run_is_published_whole_with_a_manifest_of_every_file(tmp_path):
    folder = OutputFolder(tmp_path)
    assert folder.current() is None and folder.locate("report.html") is None
    _stage(folder, "run-1", {"report.html": "<p>one</p>"}, "report")
    _stage(folder, "run-1", {"tables/raw/2025-01.parquet": "jan"}, "raw", partition="2025-01")
    assert folder.locate("report.html", run_id="run-1") == folder.staging("run-1").root / "report.html"
    assert not (tmp_path / "report.html").exists()  # staged files are invisible to readers

    published = folder.publish(["run-1"], months=["2025-01"])
    assert _read(tmp_path, "report.html") == "<p>one</p>"
    manifest = json.loads(_read(tmp_path, layout.MANIFEST))
    assert manifest == published.manifest and manifest["run_id"] == "run-1"
    assert manifest["files"]["report.html"] == {
        "asset": "report", "run_id": "run-1", "sha256": file_sha256(tmp_path / "report.html"), "bytes": 10
    }
    assert manifest["assets"]["raw"]["partitions"]["2025-01"]["files"] == ["tables/raw/2025-01.parquet"]
    assert folder.staged_runs() == []  # published staging is removed


def test_records_of_one_asset_in_one_run_add_up(tmp_path):
    folder = OutputFolder(tmp_path)
    _stage(folder, "run-1", {"personas/a.json": "{}"}, "a_personas")
    _stage(folder, "run-1", {"objects/a_personas.joblib": "x"}, "a_personas")
    published = folder.publish(["run-1"])
    assert published.manifest["assets"]["a_personas"]["files"] == ["objects/a_personas.joblib", "personas/a.json"]


def test_a_partial_run_replaces_its_assets_and_keeps_the_others(tmp_path):
    folder = OutputFolder(tmp_path)
    _stage(folder, "run-1", {"report.html": "one", "extra.txt": "e"}, "report")
    _stage(folder, "run-1", {"tables/rfm.parquet": "rfm one"}, "rfm")
    first = folder.publish(["run-1"])
    _stage(folder, "run-2", {"report.html": "two"}, "report")
    second = folder.publish(["run-2"])

    assert _read(tmp_path, "report.html") == "two" and _read(tmp_path, "tables/rfm.parquet") == "rfm one"
    assert "extra.txt" not in second.manifest["files"]  # an asset's files are replaced as a whole
    assert second.manifest["files"]["tables/rfm.parquet"]["run_id"] == "run-1"
    # Carried files are hard links: no copy, and the earlier set still reads as it was.
    assert os.stat(first.file("tables/rfm.parquet")).st_ino == os.stat(second.file("tables/rfm.parquet")).st_ino
    assert first.file("report.html").read_text() == "one"


def test_months_that_left_the_data_leave_the_set_and_the_row_counts(tmp_path):
    folder = OutputFolder(tmp_path)
    for month in ("1970-01", "2025-01", "2025-02"):
        _stage(folder, "run-1", {f"tables/raw/{month}.parquet": month}, "raw", partition=month)
    folder.publish(["run-1"], months=["1970-01", "2025-01", "2025-02"])
    _stage(folder, "run-2", {"tables/raw/2025-02.parquet": "new"}, "raw", partition="2025-02")
    published = folder.publish(["run-2"], months=["2025-01", "2025-02"])

    raw = published.manifest["assets"]["raw"]
    assert sorted(raw["partitions"]) == ["2025-01", "2025-02"] and raw["row_count"] == 2
    assert raw["run_id"] == "run-2" and raw["partitions"]["2025-01"]["run_id"] == "run-1"
    assert not (tmp_path / "tables/raw/1970-01.parquet").exists()


def test_history_is_kept_for_rollback_and_pruned_beyond_the_kept_sets(tmp_path):
    folder = OutputFolder(tmp_path, keep_sets=2)
    for run in ("run-1", "run-2", "run-3"):
        _stage(folder, run, {"report.html": run}, "report")
        folder.publish([run])
    assert [s.run_id for s in folder.history()] == ["run-3", "run-2"]
    restored = folder.rollback()
    assert restored.run_id == "run-2" and _read(tmp_path, "report.html") == "run-2"
    newest = folder.history()[0]
    assert folder.rollback(newest.set_id).run_id == "run-3"
    with pytest.raises(ConfigError, match="no published set 'nope'"):
        folder.rollback("nope")


def test_an_interrupted_publication_leaves_the_current_set_untouched(tmp_path, monkeypatch):
    folder = OutputFolder(tmp_path)
    _stage(folder, "run-1", {"report.html": "good"}, "report")
    folder.publish(["run-1"])
    _stage(folder, "run-2", {"report.html": "new"}, "report")

    def killed(*args):
        raise KeyboardInterrupt("killed while swapping")

    monkeypatch.setattr(folder, "_make_current", killed)
    with pytest.raises(KeyboardInterrupt):
        folder.publish(["run-2"])
    monkeypatch.undo()
    assert _read(tmp_path, "report.html") == "good"
    assert folder.current().run_id == "run-1"
    assert [s.run_id for s in folder.history()] == ["run-1"]  # the set that never became current is not offered
    folder.clean()
    assert [path.name for path in (tmp_path / layout.SETS).iterdir() if path.is_dir()] == [folder.current().set_id]


def test_cleanup_removes_only_the_projects_own_leftovers(tmp_path):
    folder = OutputFolder(tmp_path)
    _stage(folder, "dead-run", {"report.html": "half"}, "report")
    _stage(folder, "live-run", {"report.html": "busy"}, "report")
    (tmp_path / layout.SETS / f"x{'.partial'}").mkdir(parents=True)
    own_temp = tmp_path / f".manifest.json.abc{layout.TEMP_SUFFIX}"
    own_temp.write_text("")
    users_file = tmp_path / ".notes.tmp"
    users_file.write_text("mine")
    removed = folder.clean(live_runs={"live-run"})
    assert folder.staged_runs() == ["live-run"]
    assert not own_temp.exists() and users_file.read_text() == "mine"
    assert f"{layout.STAGING}/dead-run" in removed and not (tmp_path / layout.SETS / "x.partial").exists()


def test_files_of_the_layout_before_sets_are_moved_aside_not_deleted(tmp_path):
    (tmp_path / "report.html").write_text("old layout")
    folder = OutputFolder(tmp_path)
    _stage(folder, "run-1", {"report.html": "new"}, "report")
    folder.publish(["run-1"])
    assert _read(tmp_path, "report.html") == "new"
    aside = list((tmp_path / "legacy").iterdir())
    assert [path.read_text() for path in aside] == ["old layout"]
