"""Loading one published set into memory, all or nothing, and keeping the good one in service.

`load_set` reads one set folder: for each model family it finds in the manifest (retail always;
leads once that domain publishes), every bundle, personas file, the comparison and the entity table,
each verified against the manifest before it is parsed or unpickled. Any failure refuses the whole
set, so the service never mixes methods of two runs or serves half a set.

`PublishedModels` owns the set in service. `refresh()` resolves `current` once; when it points at a
set not seen before it loads it and swaps the reference in one assignment. A request reads that
reference once and works on that immutable object, so requests in flight during a swap finish on
the set they started with. A set that fails is logged and remembered (not retried until `current`
moves again), and the previous good set keeps serving.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segmentation_pipeline.clustering import ModelBundle
from segmentation_pipeline.service import published
from segmentation_pipeline.service.leads import LeadSegmenter
from segmentation_pipeline.service.published import Family, PublishedSetError
from segmentation_pipeline.service.segmenter import Segmenter

log = logging.getLogger("segmentation_pipeline.service")

FAMILIES = (published.RETAIL, published.LEADS)


@dataclass(frozen=True)
class FamilyModels:
    family: Family
    segmenters: dict[str, Segmenter | LeadSegmenter]  # method -> segmenter
    recommended: str  # the comparison's recommendation
    default_method: str  # served when a request names no method


@dataclass(frozen=True)
class ServedSet:
    set_dir: Path
    set_id: str
    run_id: str
    published_at: str | None
    families: dict[str, FamilyModels]  # family name -> models; absent when not published


def load_set(set_dir: Path, families: Sequence[Family] = FAMILIES, default_methods: dict[str, str] | None = None) -> ServedSet:
    """Every published family of the set in `set_dir` (already resolved); raises on any problem."""
    manifest = published.read_manifest(set_dir)
    loaded = {}
    for family in families:
        methods = published.published_methods(family, manifest)
        if methods:
            loaded[family.name] = _load_family(set_dir, manifest, family, methods, (default_methods or {}).get(family.name))
    if published.RETAIL.name in {f.name for f in families} and published.RETAIL.name not in loaded:
        raise PublishedSetError(f"set {manifest['set_id']}: the manifest lists no retail model bundle")
    return ServedSet(set_dir, manifest["set_id"], manifest["run_id"], manifest.get("published_at"), loaded)


def _load_family(set_dir: Path, manifest: dict, family: Family, methods: list[str], preferred: str | None) -> FamilyModels:
    def read(relative: str) -> bytes:
        return published.verified_bytes(set_dir, manifest, relative)

    table = pd.read_parquet(io.BytesIO(read(published.features_path(family))))
    comparison_file = published.comparison_path(family)
    comparison = json.loads(read(comparison_file)) if comparison_file else {"recommended": methods[0]}
    segmenters = {}
    for method in methods:
        bundle_file = published.bundle_path(family, method)
        # The verified bytes are unpickled, never the file again: it could change in between.
        bundle = ModelBundle.from_bytes(read(bundle_file), set_dir / bundle_file)
        if bundle.method != method:
            raise PublishedSetError(f"{set_dir / bundle_file}: holds a {bundle.method!r} bundle, not {method!r}")
        personas = json.loads(read(published.personas_path(family, method)))
        version = manifest["files"][bundle_file].get("run_id") or manifest["run_id"]
        segmenters[method] = family.segmenter(family, method, version, bundle, personas, table)
    recommended = comparison.get("recommended")
    if recommended not in segmenters:
        raise PublishedSetError(
            f"set {manifest['set_id']}: {family.name} comparison recommends {recommended!r}, "
            f"which is not among the published bundles {methods}"
        )
    if preferred is not None and preferred not in segmenters:
        raise PublishedSetError(
            f"set {manifest['set_id']}: the configured {family.name} method {preferred!r} is not published "
            f"(published: {', '.join(methods)})"
        )
    return FamilyModels(family, segmenters, recommended, preferred or recommended)


class PublishedModels:
    """The set in service, replaced when `current` points at a new good set."""

    def __init__(self, output_dir: Path, families: Sequence[Family] = FAMILIES, default_methods: dict[str, str] | None = None):
        self.output_dir = Path(output_dir)
        self.families = tuple(families)
        self.default_methods = dict(default_methods or {})
        self.served: ServedSet | None = None
        self.problem: str | None = None  # why the latest published set is not the one served
        self._seen: Path | None = None  # the last set folder tried, good or not

    def refresh(self) -> bool:
        """Load the published set if it is new; True when a new set went into service."""
        try:
            set_dir = published.current_set(self.output_dir)
        except PublishedSetError as exc:
            self.problem = str(exc)
            return False
        if set_dir == self._seen:
            return False
        self._seen = set_dir
        try:
            candidate = load_set(set_dir, self.families, self.default_methods)
        except Exception as exc:  # anything a broken set raises, so the good set keeps serving
            previous = f"still serving set {self.served.set_id}" if self.served else "no set in service"
            self.problem = f"refused published set {set_dir.name}: {type(exc).__name__}: {exc}"
            log.error("%s; %s", self.problem, previous)
            return False
        self.served = candidate
        self.problem = None
        log.info(
            "serving set %s (run %s): %s",
            candidate.set_id,
            candidate.run_id,
            "; ".join(f"{name}: {', '.join(models.segmenters)} (default {models.default_method})"
                      for name, models in candidate.families.items()),
        )
        return True
