"""The lead model ready to serve: leads given by their fields, prepared by the published lead bundle.

The leads domain publishes a bundle whose `transform` is a `LeadFeatureTransform`: canonical lead
fields (state, industry, job title, education, age and experience, gender, lead source, the configured
extra features) -> cleaned attributes (`leads.cleaning.lead_attributes`: placeholders and missing
values become Unknown, a numeric age or experience is binned, seniority is read from the job title)
-> the fitted `LeadEncoder` -> the fitted numeric preparation. A request is prepared by exactly those
fitted pieces of the bundle, in that order: the code path the pipeline assigned its own leads with
(`clean_leads` -> `segment_leads`), so a lead sent here lands where `bundle.predict` puts it. The
attributes are kept, which is how the answer can say what the service read: the detected seniority,
and which fields counted as Unknown (not given, a placeholder, or a value the model has no category
or level for: an unseen industry, a range label outside its bins).

At load, the published lead feature table (`lead_id` + the encoded columns, i.e. the training leads
as the encoder wrote them) goes through the fitted numeric preparation once, giving each segment its
centre; the personas give each segment its name, value tier (or SMALL SAMPLE) and conversion figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segmentation_pipeline.clustering import ModelBundle
from segmentation_pipeline.leads.cleaning import UNKNOWN, lead_attributes
from segmentation_pipeline.leads.segmentation import LeadFeatureTransform
from segmentation_pipeline.service.segmenter import Placements, Placer, Segment

SMALL_SAMPLE = "SMALL SAMPLE"  # the tier of a persona too small to be tiered (`leads.personas`)
SENIORITY_FIELD = "job_title"  # seniority, an encoded column, is read from this field
CANONICAL_FIELDS = (
    "state", "industry", "job_title", "education_level", "age_range", "years_experience", "gender", "lead_source",
)


class LeadModelError(ValueError):
    """The published lead bundle cannot serve leads given by their fields."""


@dataclass(frozen=True)
class LeadPlacements:
    """Placements of some leads and the leads as the bundle's preparation read them (same rows)."""

    placements: Placements
    attributes: pd.DataFrame  # lead_attributes: canonical fields cleaned, ranges binned, seniority
    unknown: list[list[str]]  # per lead: the fields the model read as Unknown


class LeadSegmenter(Placer):
    """The published lead bundle with its segments (personas) and centres."""

    def __init__(self, method: str, model_version: str, bundle: ModelBundle, personas: dict, table: pd.DataFrame):
        transform = bundle.transform
        if not isinstance(transform, LeadFeatureTransform):
            raise LeadModelError(
                f"the lead bundle prepares {type(transform).__name__}, not canonical lead fields "
                "(a LeadFeatureTransform); republish the leads domain"
            )
        self.method = method
        self.model_version = model_version
        self.transform = transform
        encoder = transform.encoder
        self.fields: tuple[str, ...] = tuple(transform.features)  # canonical fields, then the extras
        self.extra_fields = tuple(transform.settings.categorical_features + transform.settings.numeric_features)
        self.numeric_fields = frozenset(transform.settings.numeric_features)
        # The fields the fitted encoder reads (a field with a single value in training separates nobody).
        used = list(encoder.nominal) + list(encoder.ordinal) + list(encoder.numeric)
        self.used_fields = frozenset(SENIORITY_FIELD if name == "seniority" else name for name in used)
        prepared = transform.fitted.transform(table)  # the encoded training leads, prepared
        labels = bundle.assign(prepared).labels
        self.segments = _lead_segments(personas, labels)
        super().__init__(bundle, prepared, labels, self.segments)

    @staticmethod
    def stack(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def frame(self, leads: Sequence[Mapping[str, object]]) -> pd.DataFrame:
        """Leads (field -> value, missing fields absent or None) as the canonical frame the bundle reads."""
        return pd.DataFrame(
            {name: pd.Series([lead.get(name) for lead in leads], dtype="object") for name in self.fields}
        )

    def place(self, leads: pd.DataFrame) -> LeadPlacements:
        """Segments of the leads of `leads` (a `frame`), through the bundle's fitted preparation."""
        transform = self.transform
        attributes = lead_attributes(leads.reset_index(drop=True), transform.settings, "leads to segment")
        prepared = transform.fitted.transform(transform.encoder.frame(attributes))
        return LeadPlacements(self.place_prepared(prepared), attributes, self._unknown(attributes))

    def _unknown(self, attributes: pd.DataFrame) -> list[list[str]]:
        """Per lead, the used fields the encoder reads as Unknown or has no category / level for."""
        encoder = self.transform.encoder
        flags: dict[str, np.ndarray] = {}
        for name, known in {**encoder.nominal, **encoder.ordinal}.items():
            values = attributes[name].astype("object").to_numpy()
            known_values = set(known) - {UNKNOWN}
            flags[SENIORITY_FIELD if name == "seniority" else name] = np.array(
                [value not in known_values for value in values], dtype=bool
            )
        for name in encoder.numeric:
            flags[name] = np.isnan(attributes[name].to_numpy(dtype=float))
        order = [name for name in self.fields if name in flags]
        return [[name for name in order if flags[name][row]] for row in range(len(attributes))]


def _lead_segments(personas: dict, labels: np.ndarray) -> dict[int, Segment]:
    """Segment id -> its persona (`leads/personas.json`): name, tier, rank, size and conversion figures."""
    by_cluster = {int(p["cluster_id"]): p for p in personas["personas"]}
    present = sorted(int(label) for label in np.unique(labels[labels >= 0]))
    missing = [label for label in present if label not in by_cluster]
    if missing:
        raise LeadModelError(f"the lead personas lack segment(s) {missing}")
    segments = {}
    for label in present:
        persona = by_cluster[label]
        metrics = persona["conversion_metrics"]
        segments[label] = Segment(
            segment_id=label,
            name=str(persona["persona_name"]),
            value_tier=str(metrics.get("value_tier") or SMALL_SAMPLE),
            rank=int(persona["rank"]),
            size=int(persona["cluster_size"]),
            percentage=float(persona["cluster_percentage"]),
            stats={
                "rate": float(metrics["conversion_rate"]),
                "ci_low": float(metrics["ci_low"]),
                "ci_high": float(metrics["ci_high"]),
                "lift": None if metrics.get("lift") is None else float(metrics["lift"]),
                "conversions": int(metrics["conversions"]),
                "total": int(metrics["total_records"]),
            },
        )
    return segments
