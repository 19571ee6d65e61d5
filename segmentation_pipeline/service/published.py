"""Where the service finds the published outputs, and reading them safely.

Every path comes from the shared `segmentation_pipeline.layout` and the manifest contract from
`segmentation_pipeline.publication` (the module that writes it); this module only says which of those
files make up one model family, and refuses anything that does not match the manifest:

- `<output_dir>/current` (`layout.CURRENT`) is a symlink to an immutable set folder; a new good run
  publishes a new set and swaps the symlink atomically. The service resolves `current` once per load
  and reads everything from that folder, so a swap in the middle of a load cannot mix sets.
- `<set>/manifest.json` (`layout.MANIFEST`) lists every file (path relative to the set) with its
  sha256 and size. A file is only ever deserialised after its bytes have been hashed and matched
  against that entry (`publication.verified_bytes`): a truncated, replaced or tampered file is refused
  before pickle sees it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segmentation_pipeline import layout, publication
from segmentation_pipeline.clustering import ModelBundle
from segmentation_pipeline.service.leads import LeadSegmenter
from segmentation_pipeline.service.segmenter import Segmenter


class PublishedSetError(Exception):
    """The published set cannot be used: missing, malformed or a file that fails verification."""


@dataclass(frozen=True)
class Family:
    """Which files of a set make up one model family (paths are `layout` entries), and how they are served.

    A family is a kind of entity segmented by its own bundles (retail customers, B2B leads): one
    bundle and one personas file per clustering method, the method comparison naming the recommended
    method, and the entity feature table the bundles were trained on (id column + every feature).
    `stat_columns` are the columns whose per-segment mean/median/min/max the service reports.

    A family with a single model (leads) names its `methods` instead of having its bundles found by
    path pattern, and has no comparison (its one method is the recommended one). `segmenter` turns a
    verified bundle, its personas document and the feature table into what the service places
    requests with: a retail `Segmenter` on numeric features, or a `LeadSegmenter` on lead fields.
    """

    name: str
    bundle: Callable[[str], str]  # method -> the bundle's path in the set
    personas: Callable[[str], str]  # method -> the personas file's path in the set
    comparison: str | None
    table: str
    id_column: str
    stat_columns: tuple[str, ...]
    segmenter: Callable[..., Segmenter | LeadSegmenter]  # (family, method, version, bundle, personas, table)
    methods: tuple[str, ...] | None = None  # fixed methods; None = every bundle the manifest lists


def _numeric_segmenter(family: Family, method: str, version: str, bundle: ModelBundle, personas: dict,
                       table: pd.DataFrame) -> Segmenter:
    return Segmenter(method, version, bundle, personas, table, family.id_column, family.stat_columns)


def _lead_segmenter(family: Family, method: str, version: str, bundle: ModelBundle, personas: dict,
                    table: pd.DataFrame) -> LeadSegmenter:
    return LeadSegmenter(method, version, bundle, personas, table)


RETAIL = Family(
    name="retail",
    bundle=layout.model_bundle,
    personas=layout.personas_json,
    comparison=layout.METHOD_COMPARISON_JSON,
    table=layout.table("customer_features_basic"),
    id_column="customer_id",
    stat_columns=("recency_days", "frequency", "monetary"),
    segmenter=_numeric_segmenter,
)

LEAD_METHOD = "kmeans"  # the leads domain fits one k-means model (k fixed, or chosen by silhouette)

# One model: the bundle (it prepares canonical lead fields itself), the personas (name, tier and
# conversion figures per segment), and the encoded training leads (`lead_id` = the input row), from
# which each segment's centre is computed. Its stats are the personas' conversion figures.
LEADS = Family(
    name="leads",
    bundle=lambda method: layout.LEADS_BUNDLE,
    personas=lambda method: layout.LEADS_PERSONAS,
    comparison=None,
    table=layout.LEAD_FEATURES,
    id_column="lead_id",
    stat_columns=(),
    segmenter=_lead_segmenter,
    methods=(LEAD_METHOD,),
)


def bundle_path(family: Family, method: str) -> str:
    return family.bundle(method)


def personas_path(family: Family, method: str) -> str:
    return family.personas(method)


def comparison_path(family: Family) -> str | None:
    """The method comparison's path, None for a single-model family."""
    return family.comparison


def features_path(family: Family) -> str:
    return family.table


_METHOD = "{method}"  # stands for the method in a bundle path, to recognise bundle files


def published_methods(family: Family, manifest: dict) -> list[str]:
    """Methods whose bundle the manifest lists for `family`, in manifest order."""
    if family.methods is not None:
        return [method for method in family.methods if family.bundle(method) in manifest["files"]]
    prefix, suffix = family.bundle(_METHOD).split(_METHOD)
    return [
        path[len(prefix) : len(path) - len(suffix)]
        for path in manifest["files"]
        if path.startswith(prefix) and path.endswith(suffix) and "/" not in path[len(prefix) : len(path) - len(suffix)]
    ]


def current_set(output_dir: str | Path) -> Path:
    """The set folder `current` points at, resolved once (raises if nothing is published).

    Only the link is resolved (not `publication.OutputFolder.current()`, which also parses the
    manifest): the service polls this often and reads the manifest, validated, only for a new set."""
    link = Path(output_dir) / layout.CURRENT
    if not link.exists():
        raise PublishedSetError(f"{link}: nothing published yet (no `{layout.CURRENT}` set)")
    return link.resolve()


def read_manifest(set_dir: Path) -> dict:
    """The set's manifest, checked for format and shape."""
    path = Path(set_dir) / layout.MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublishedSetError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != publication.MANIFEST_FORMAT:
        raise PublishedSetError(f"{path}: not a {publication.MANIFEST_FORMAT} file")
    if manifest.get("format_version") != publication.MANIFEST_FORMAT_VERSION:
        raise PublishedSetError(
            f"{path}: manifest format version {manifest.get('format_version')!r} "
            f"(this service reads {publication.MANIFEST_FORMAT_VERSION})"
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
    try:
        return publication.verified_bytes(set_dir, manifest, relative)
    except publication.UnverifiedFileError as exc:
        raise PublishedSetError(str(exc)) from None
