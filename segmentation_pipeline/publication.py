"""All-or-nothing publication of a run's outputs, the history of published sets, and rollback.

Readers of the output folder (people, the report's links, the REST service) must never see files of
two runs mixed, nor half of a run. So a run writes only into its own staging folder
(`.staging/<run_id>/`, with a ledger of what each asset wrote). When the run has passed every asset
and blocking check, `publish` builds a new *set*: the run's files plus the unchanged files of the
current set (hard links, so nothing is copied), in a fresh folder, with a `manifest.json` naming
every file with its asset, run and sha256. One atomic rename of the `current` symlink then makes the
new set visible as a whole. A run that fails or is killed never reaches that rename: the published
files stay byte-identical, and its staging folder is removed by the next run.

Sets are immutable and the last few are kept, so `rollback` is another symlink swap.
Dagster-free: the publication asset and the CLI call it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from segmentation_pipeline import layout
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.storage import atomic_write_text

MANIFEST_FORMAT = "segmentation_pipeline.manifest"
MANIFEST_FORMAT_VERSION = 1
PARTIAL_SUFFIX = ".partial"  # a set folder still being built; never current, removed by cleanup
PUBLISHED_LOG = "published.json"  # in sets/: the sets that were made current, so a set built by a
# publication that was killed before its swap is never offered for rollback
LEGACY = "legacy"  # where files of the pre-sets layout are moved aside, never deleted


@dataclass(frozen=True)
class PublishedSet:
    set_id: str
    path: Path  # the immutable set folder
    manifest: dict

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    @property
    def published_at(self) -> str:
        return self.manifest["published_at"]

    def file(self, relative: str) -> Path:
        return self.path / relative


class RunStaging:
    """What one run has written so far: files under its folder, and a ledger entry per asset."""

    def __init__(self, output_dir: Path, run_id: str):
        self.run_id = run_id
        self.root = Path(output_dir) / layout.STAGING / run_id

    def path(self, relative: str) -> Path:
        """Where the run writes `relative` (folders created)."""
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def record(self, asset: str, files: list[str], row_count: int | None, partition: str | None = None) -> None:
        """Say that `asset` (one month of it, for monthly tables) wrote these files. Only recorded
        files are published; records of one asset in one run add up (its body writes some files,
        its IO manager the stored result)."""
        name = asset.replace("/", "__") + (f"@{partition}" if partition else "")
        path = self.path(f"{layout.LEDGER}/{name}.json")
        entry = json.loads(path.read_text()) if path.exists() else {"asset": asset, "partition": partition, "files": []}
        entry["files"] = sorted(set(entry["files"]) | set(files))
        entry["row_count"] = row_count if row_count is not None else entry.get("row_count")
        atomic_write_text(path, json.dumps(entry, sort_keys=True))

    def entries(self) -> list[dict]:
        ledger = self.root / layout.LEDGER
        return [json.loads(path.read_text()) for path in sorted(ledger.glob("*.json"))] if ledger.is_dir() else []


class OutputFolder:
    """The output folder: the published set, runs' staging, the set history."""

    def __init__(self, output_dir: Path, keep_sets: int = 3):
        self.root = Path(output_dir)
        self.keep_sets = keep_sets

    # --- reading ----------------------------------------------------------------------------------

    def current(self) -> PublishedSet | None:
        link = self.root / layout.CURRENT
        if not link.is_symlink():
            return None
        return self._read_set(link.resolve())

    def history(self) -> list[PublishedSet]:
        """Sets that were published (made current) and are still kept, newest first."""
        folder = self.root / layout.SETS
        current = self.current()
        published = set(self._published_log()) | ({current.set_id} if current else set())
        sets = [self._read_set(folder / set_id) for set_id in published]
        return sorted((s for s in sets if s is not None), key=lambda s: s.set_id, reverse=True)

    def staging(self, run_id: str) -> RunStaging:
        return RunStaging(self.root, run_id)

    def staged_runs(self) -> list[str]:
        folder = self.root / layout.STAGING
        return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []

    def locate(self, relative: str, run_id: str | None = None) -> Path | None:
        """The file a step should read: written by this run if it did, else the published one."""
        if run_id is not None:
            staged = self.staging(run_id).root / relative
            if staged.exists():
                return staged
        current = self.current()
        if current is not None and current.file(relative).exists():
            return current.file(relative)
        return None

    # --- publishing -------------------------------------------------------------------------------

    def publish(self, run_ids: list[str], months: list[str] | None = None) -> PublishedSet:
        """A new current set: the current set with every asset (or asset month) that the staged runs
        recorded replaced by theirs, later runs winning. With `months`, monthly tables keep only those
        months (a month that left the data leaves the set). Returns the new set."""
        previous = self.current()
        assets = json.loads(json.dumps(previous.manifest["assets"])) if previous else {}
        sources = {rel: (previous.file(rel), info) for rel, info in previous.manifest["files"].items()} if previous else {}
        for run_id in run_ids:
            staging = self.staging(run_id)
            for entry in staging.entries():
                part = {"run_id": run_id, "row_count": entry["row_count"], "files": entry["files"]}
                if entry["partition"] is None:
                    assets[entry["asset"]] = part
                else:
                    monthly = assets.setdefault(entry["asset"], {"partitions": {}})
                    monthly.setdefault("partitions", {})[entry["partition"]] = part
                    monthly["run_id"] = run_id
                for rel in entry["files"]:
                    sources[rel] = (staging.root / rel, {"asset": entry["asset"], "run_id": run_id})
        for asset, entry in assets.items():
            if "partitions" in entry:
                assets[asset] = _monthly_entry(entry["run_id"], entry["partitions"], months)

        set_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}-{(run_ids or ['manual'])[-1][:8]}"
        building = self.root / layout.SETS / f"{set_id}{PARTIAL_SUFFIX}"
        files = {}
        for asset, entry in sorted(assets.items()):
            for rel in entry["files"]:
                source, info = sources[rel]
                _link_or_copy(source, building / rel)
                digest = info.get("sha256") or file_sha256(source)
                files[rel] = {"asset": asset, "run_id": info["run_id"], "sha256": digest, "bytes": source.stat().st_size}
        manifest = {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_FORMAT_VERSION,
            "set_id": set_id,
            "run_id": (run_ids or [previous.run_id if previous else ""])[-1],
            "runs": list(run_ids),
            "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": dict(sorted(files.items())),
            "assets": dict(sorted(assets.items())),
        }
        building.mkdir(parents=True, exist_ok=True)
        atomic_write_text(building / layout.MANIFEST, json.dumps(manifest, indent=2))
        final = building.with_name(set_id)
        os.replace(building, final)  # the set is complete before anything points at it
        published = PublishedSet(set_id, final, manifest)
        self._make_current(published)
        for run_id in run_ids:
            self.discard(run_id)
        self._prune()
        return published

    def rollback(self, set_id: str | None = None) -> PublishedSet:
        """Make an earlier set current again (default: the one published before the current one)."""
        history = self.history()
        current = self.current()
        if set_id is None:
            older = [s for s in history if current is None or s.set_id < current.set_id]
            if not older:
                raise ConfigError(f"{self.root}: there is no earlier published set to roll back to")
            target = older[0]
        else:
            target = next((s for s in history if s.set_id == set_id), None)
            if target is None:
                known = ", ".join(s.set_id for s in history) or "none"
                raise ConfigError(f"{self.root}: no published set {set_id!r} (kept sets: {known})")
        self._make_current(target)
        return target

    # --- cleaning up ------------------------------------------------------------------------------

    def discard(self, run_id: str) -> None:
        shutil.rmtree(self.staging(run_id).root, ignore_errors=True)

    def clean(self, live_runs: set[str] = frozenset()) -> list[str]:
        """Remove what no live run or kept set needs: staging of runs that are not live, sets left
        half-built or beyond the kept history, and the project's own temporary files at the top of
        the folder and in the cache. Returns what was removed (relative paths)."""
        removed = []
        for run_id in self.staged_runs():
            if run_id not in live_runs:
                self.discard(run_id)
                removed.append(f"{layout.STAGING}/{run_id}")
        removed += self._prune()
        for folder in (self.root, self.root / layout.CACHE):
            if folder.is_dir():
                for temp in folder.glob(f".*{layout.TEMP_SUFFIX}"):
                    temp.unlink(missing_ok=True)
                    removed.append(str(temp.relative_to(self.root)))
        return removed

    # --- internals --------------------------------------------------------------------------------

    def _read_set(self, path: Path) -> PublishedSet | None:
        manifest_path = path / layout.MANIFEST
        if not manifest_path.is_file():
            return None
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        return PublishedSet(manifest["set_id"], path, manifest)

    def _make_current(self, published: PublishedSet) -> None:
        """One atomic rename publishes the whole set; the stable top-level links point through
        `current`, so they never need to change once they exist."""
        temp = self.root / f".{layout.CURRENT}.{uuid.uuid4().hex}{layout.TEMP_SUFFIX}"
        os.symlink(Path(layout.SETS) / published.set_id, temp)
        os.replace(temp, self.root / layout.CURRENT)
        log = self._published_log()
        if published.set_id not in log:
            atomic_write_text(self.root / layout.SETS / PUBLISHED_LOG, json.dumps(sorted([*log, published.set_id])))
        for entry in sorted(published.path.iterdir()):
            self._stable_link(entry.name)

    def _published_log(self) -> list[str]:
        log = self.root / layout.SETS / PUBLISHED_LOG
        return json.loads(log.read_text()) if log.is_file() else []

    def _stable_link(self, name: str) -> None:
        link = self.root / name
        target = Path(layout.CURRENT) / name
        if link.is_symlink() and Path(os.readlink(link)) == target:
            return
        if link.exists() or link.is_symlink():  # a file of the layout before sets: kept, moved aside
            aside = self.root / LEGACY / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{name}"
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(link, aside)
        temp = self.root / f".{name}.{uuid.uuid4().hex}{layout.TEMP_SUFFIX}"
        os.symlink(target, temp)
        os.replace(temp, link)

    def _prune(self) -> list[str]:
        """Keep the newest `keep_sets` complete sets and the current one; drop the rest and any
        half-built set (no run is publishing: callers hold the output folder)."""
        folder = self.root / layout.SETS
        if not folder.is_dir():
            return []
        current = self.current()
        kept = {s.set_id for s in self.history()[: self.keep_sets]} | ({current.set_id} if current else set())
        removed = []
        for path in folder.iterdir():
            if path.is_dir() and path.name not in kept:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(f"{layout.SETS}/{path.name}")
        if removed:
            atomic_write_text(folder / PUBLISHED_LOG, json.dumps(sorted(set(self._published_log()) & kept)))
        return removed


def _monthly_entry(run_id: str, partitions: dict[str, dict], months: list[str] | None) -> dict:
    """A monthly table's manifest entry: its months (those still in the data), totals over them;
    `run_id` is the last run that wrote any month."""
    if months is not None:
        partitions = {month: part for month, part in partitions.items() if month in set(months)}
    ordered = dict(sorted(partitions.items()))
    return {
        "run_id": run_id,
        "row_count": sum(part["row_count"] or 0 for part in ordered.values()),
        "files": [rel for part in ordered.values() for rel in part["files"]],
        "partitions": ordered,
    }


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard link (same inode, no copy: files are never modified in place, only replaced), or a copy
    where the file system cannot link."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def file_sha256(path: Path) -> str:
    """The digest the manifest records for a file (readers verify it before they load the file)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class UnverifiedFileError(Exception):
    """A file asked of a published set is not in its manifest, is unreadable, or is not the bytes
    the manifest's sha256 names."""


def verified_bytes(set_path: Path, manifest: dict, relative: str) -> bytes:
    """The bytes of the set's file `relative`, read once and returned only if the manifest lists it
    and they hash to its sha256. Readers deserialise these bytes, never the file again (it could
    change in between), so a truncated, replaced or tampered file is refused before pickle sees it."""
    entry = manifest["files"].get(relative)
    if entry is None:
        raise UnverifiedFileError(f"{relative}: not listed in the manifest of set {manifest.get('set_id')}")
    path = Path(set_path) / relative
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnverifiedFileError(f"{path}: unreadable ({exc.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise UnverifiedFileError(
            f"{path}: sha256 {digest} does not match the manifest's {entry['sha256']} "
            f"({len(data)} bytes, manifest says {entry.get('bytes')}); refusing to load it"
        )
    return data
