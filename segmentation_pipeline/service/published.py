"""Where the service finds the published outputs, and reading them safely.

Every path string the service uses and the manifest reading live here, in one module, so they can be
replaced by the shared `segmentation_pipeline.layout` / `segmentation_pipeline.publication` modules
when those land. The contract:

- `<output_dir>/current` is a symlink to an immutable set folder `<output_dir>/sets/<set_id>/`; a new
  good run publishes a new set and swaps the symlink atomically. The service resolves `current` once
  per load and reads everything from that folder, so a swap in the middle of a load cannot mix sets.
- `<set>/manifest.json` lists every file (path relative to the set) with its sha256 and size. A file
  is only ever deserialised after its bytes have been hashed and matched against that entry
  (`verified_bytes`): a truncated, replaced or tampered file is refused before pickle sees it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

CURRENT_LINK = "current"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "segmentation_pipeline.manifest"
MANIFEST_FORMAT_VERSION = 1


class PublishedSetError(Exception):
    """The published set cannot be used: missing, malformed or a file that fails verification."""


@dataclass(frozen=True)
class Family:
    """Where one model family's files live inside a set.

    A family is a kind of entity segmented by its own bundles (retail customers, B2B leads): one
    bundle and one personas file per clustering method, the method comparison naming the recommended
    method, and the entity feature table the bundles were trained on (id column + every feature).
    `stat_columns` are the columns whose per-segment mean/median/min/max the service reports.
    """

    name: str
    bundle: str  # "{method}" is replaced by the method name
    personas: str
    comparison: str
    table: str
    id_column: str
    stat_columns: tuple[str, ...]


RETAIL = Family(
    name="retail",
    bundle="models/{method}_bundle.joblib",
    personas="personas/{method}_personas.json",
    comparison="profiles/method_comparison.json",
    table="tables/customer_features_basic.parquet",
    id_column="customer_id",
    stat_columns=("recency_days", "frequency", "monetary"),
)

# Provisional: the leads domain publishes under `leads/`, mirroring the retail layout; its exact file
# names come with the shared layout module. Its stats are every feature of its bundle (empty here).
LEADS = Family(
    name="leads",
    bundle="leads/models/{method}_bundle.joblib",
    personas="leads/personas/{method}_personas.json",
    comparison="leads/profiles/method_comparison.json",
    table="leads/tables/lead_features.parquet",
    id_column="lead_id",
    stat_columns=(),
)


def bundle_path(family: Family, method: str) -> str:
    return family.bundle.format(method=method)


def personas_path(family: Family, method: str) -> str:
    return family.personas.format(method=method)


def comparison_path(family: Family) -> str:
    return family.comparison


def features_path(family: Family) -> str:
    return family.table


def published_methods(family: Family, manifest: dict) -> list[str]:
    """Methods whose bundle the manifest lists for `family`, in manifest order."""
    prefix, suffix = family.bundle.split("{method}")
    return [
        path[len(prefix) : len(path) - len(suffix)]
        for path in manifest["files"]
        if path.startswith(prefix) and path.endswith(suffix) and "/" not in path[len(prefix) : len(path) - len(suffix)]
    ]


def current_set(output_dir: str | Path) -> Path:
    """The set folder `current` points at, resolved once (raises if nothing is published)."""
    link = Path(output_dir) / CURRENT_LINK
    if not link.exists():
        raise PublishedSetError(f"{link}: nothing published yet (no `{CURRENT_LINK}` set)")
    return link.resolve()


def read_manifest(set_dir: Path) -> dict:
    """The set's manifest, checked for format and shape."""
    path = Path(set_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublishedSetError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise PublishedSetError(f"{path}: not a {MANIFEST_FORMAT} file")
    if manifest.get("format_version") != MANIFEST_FORMAT_VERSION:
        raise PublishedSetError(
            f"{path}: manifest format version {manifest.get('format_version')!r} "
            f"(this service reads {MANIFEST_FORMAT_VERSION})"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get("sha256"), str) for entry in files.values()
    ):
        raise PublishedSetError(f"{path}: `files` must map each path to an entry with its sha256")
    for key in ("set_id", "run_id"):
        if not isinstance(manifest.get(key), str):
            raise PublishedSetError(f"{path}: `{key}` is missing")
    return manifest


def verified_bytes(set_dir: Path, manifest: dict, relative: str) -> bytes:
    """The file's bytes, only if the manifest lists it and its sha256 matches (else PublishedSetError)."""
    entry = manifest["files"].get(relative)
    if entry is None:
        raise PublishedSetError(f"{relative}: not listed in the manifest of set {manifest['set_id']}")
    path = Path(set_dir) / relative
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PublishedSetError(f"{path}: unreadable ({exc.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise PublishedSetError(
            f"{path}: sha256 {digest} does not match the manifest's {entry['sha256']} "
            f"({len(data)} bytes, manifest says {entry.get('bytes')}); refusing to load it"
        )
    return data
