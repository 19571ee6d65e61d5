"""Persona-driven synthetic leads, so a fresh clone runs the leads flow with known ground truth.

Leads are drawn from the lead personas of `lead_personas.yml` (shipped in this package) in exact
proportions; each column comes from its persona's distribution and the outcome from its conversion
propensity times the lead source's multiplier. The table has the columns of the default leads export
(`LeadColumns` defaults) plus a `Lead ID`, with a few CRM placeholders ("Select", "N/A") so cleaning
is exercised. Everything is drawn from one seeded numpy Generator in whole-array steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
)

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.leads.settings import LeadColumns
from segmentation_pipeline.storage import atomic_path
from segmentation_pipeline.yaml_data import read_yaml_model

DEFAULT_LEAD_PERSONAS_PATH = Path(__file__).parent / "lead_personas.yml"
LEAD_ID = "Lead ID"
_COLUMNS = LeadColumns()
# persona field -> export column it is drawn for
_DRAWN_COLUMNS = {
    "states": _COLUMNS.state,
    "industries": _COLUMNS.industry,
    "titles": _COLUMNS.job_title,
    "education": _COLUMNS.education_level,
    "gender": _COLUMNS.gender,
    "sources": _COLUMNS.lead_source,
}


def _distribution(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    if not weights or abs(total - 1.0) > 1e-6:
        raise ValueError(f"weights must sum to 1, got {total:g}")
    return weights


def _ordered(pair: tuple[int, int]) -> tuple[int, int]:
    if pair[0] > pair[1]:
        raise ValueError(f"lower bound {pair[0]} exceeds upper bound {pair[1]}")
    return pair


Distribution = Annotated[dict[str, NonNegativeFloat], AfterValidator(_distribution)]
YearRange = Annotated[tuple[NonNegativeInt, NonNegativeInt], AfterValidator(_ordered)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LeadPersona(_Strict):
    weight: PositiveFloat
    description: Annotated[str, Field(min_length=1)]
    conversion: Annotated[float, Field(ge=0, le=1)]
    states: Distribution
    industries: Distribution
    titles: Distribution
    education: Distribution
    age: YearRange
    experience_years: YearRange
    gender: Distribution
    sources: Distribution


class LeadPersonaSet(_Strict):
    placeholder_share: Annotated[float, Field(ge=0, lt=1)]
    placeholders: Annotated[list[str], Field(min_length=1)]
    source_conversion_multiplier: dict[str, PositiveFloat] = {}
    age_ranges: Annotated[list[str], Field(min_length=1)]
    personas: Annotated[dict[str, LeadPersona], Field(min_length=1)]


def load_lead_personas(path: str | Path | None = None) -> LeadPersonaSet:
    """Read and validate the lead personas (default: the file shipped in this package)."""
    path = Path(path) if path is not None else DEFAULT_LEAD_PERSONAS_PATH
    persona_set = read_yaml_model(path, LeadPersonaSet)
    total = sum(persona.weight for persona in persona_set.personas.values())
    if abs(total - 1.0) > 1e-6:
        raise InputDataError(f"{path}: personas.*.weight: weights sum to {total:g}, expected 1")
    return persona_set


@dataclass(frozen=True)
class SyntheticLeads:
    leads: pd.DataFrame  # the export: Lead ID + the default leads columns, all text like a CSV
    truth: pd.DataFrame  # source_row, Lead ID, persona, conversion_probability


def generate_leads(n: int, seed: int, personas_path: str | Path | None = None) -> SyntheticLeads:
    """`n` leads drawn from the lead personas, and which persona each came from."""
    if n < 1:
        raise ValueError(f"need at least one lead, got {n}")
    persona_set = load_lead_personas(personas_path)
    names = list(persona_set.personas)
    rng = np.random.default_rng(seed)
    persona_of = _exact_assignment([persona_set.personas[name].weight for name in names], n, rng)

    columns: dict[str, np.ndarray] = {name: np.empty(n, dtype=object) for name in _DRAWN_COLUMNS.values()}
    age = np.empty(n, dtype=np.int64)
    experience = np.empty(n, dtype=np.int64)
    propensity = np.empty(n, dtype=float)
    for index, name in enumerate(names):
        persona = persona_set.personas[name]
        rows = np.flatnonzero(persona_of == index)
        for field, column in _DRAWN_COLUMNS.items():
            weights: dict[str, float] = getattr(persona, field)
            values = np.array(list(weights), dtype=object)
            columns[column][rows] = values[rng.choice(len(values), size=len(rows), p=list(weights.values()))]
        age[rows] = rng.integers(persona.age[0], persona.age[1] + 1, size=len(rows))
        experience[rows] = rng.integers(persona.experience_years[0], persona.experience_years[1] + 1, size=len(rows))
        propensity[rows] = persona.conversion

    multiplier = pd.Series(columns[_COLUMNS.lead_source]).map(persona_set.source_conversion_multiplier)
    probability = np.minimum(propensity * multiplier.fillna(1.0).to_numpy(), 0.95)
    is_sale = rng.random(n) < probability

    columns[_COLUMNS.age_range] = _age_labels(age, persona_set.age_ranges)
    columns[_COLUMNS.years_experience] = experience.astype(str).astype(object)
    for column in (*_DRAWN_COLUMNS.values(), _COLUMNS.age_range, _COLUMNS.years_experience):
        blanked = np.flatnonzero(rng.random(n) < persona_set.placeholder_share)
        placeholders = np.array(persona_set.placeholders, dtype=object)
        columns[column][blanked] = placeholders[rng.integers(0, len(placeholders), size=len(blanked))]

    lead_ids = pd.Series(np.arange(1, n + 1)).map("L{:07d}".format)
    ordered = [c for c in _COLUMNS.model_dump().values() if c != _COLUMNS.is_sale]
    leads = pd.DataFrame({LEAD_ID: lead_ids, **{c: columns[c] for c in ordered}})
    leads[_COLUMNS.is_sale] = np.where(is_sale, "TRUE", "FALSE")
    truth = pd.DataFrame(
        {
            "source_row": np.arange(n, dtype=np.int64),
            LEAD_ID: lead_ids,
            "persona": pd.Categorical.from_codes(persona_of, categories=names),
            "conversion_probability": probability,
        }
    )
    return SyntheticLeads(leads=leads, truth=truth)


def write_synthetic_leads(path: str | Path, n: int, seed: int, personas_path: str | Path | None = None) -> Path:
    """Write `n` synthetic leads as csv or parquet (by the path's suffix), atomically; return the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"write synthetic leads to a .csv or .parquet file, not {path.name!r}")
    leads = generate_leads(n, seed, personas_path).leads
    with atomic_path(path) as temp:
        if suffix == ".csv":
            leads.to_csv(temp, index=False)
        else:
            leads.to_parquet(temp, index=False)
    return path


def _exact_assignment(weights: list[float], n: int, rng: np.random.Generator) -> np.ndarray:
    """Persona index of each lead: counts proportional to the weights (largest remainders), shuffled."""
    shares = np.asarray(weights) * n
    counts = np.floor(shares).astype(np.int64)
    counts[np.argsort(counts - shares)[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(weights)), counts))


def _age_labels(age: np.ndarray, labels: list[str]) -> np.ndarray:
    """Each age as the export's range label ('25-34'); the labels' first numbers are the bin edges."""
    starts = np.array([int("".join(ch for ch in label.split("-")[0] if ch.isdigit())) for label in labels])
    position = np.clip(np.searchsorted(starts, age, side="right") - 1, 0, len(labels) - 1)
    return np.array(labels, dtype=object)[position]
