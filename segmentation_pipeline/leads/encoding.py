"""Clean lead attributes -> a numeric matrix on which distances mean something.

Label codes (Banking = 0, Healthcare = 1, Retail = 2) would make Retail "twice as far" from Banking as
Healthcare is, and standard scaling of one-hot columns would blow rare categories up until they dominate
every distance. So each column is encoded for what it is, on one deliberate scale where any single
column can move two leads apart by at most 1 (squared distance):

- nominal columns (state, industry, education, gender, lead source, extra categorical features):
  one-hot of the most frequent `max_categories` values (rarer values share the all-zero row). A
  category at the column's uniform share (1/K of K categories) weighs 1/sqrt(2), so two such categories
  are exactly 1 apart; a commoner one weighs less and a rarer one more, by sqrt(uniform share / share),
  at most twice as much. This is the chi-square distance of correspondence analysis, bounded: without
  it a near 50/50 column (gender) is the cheapest way for k-means to cut the leads in two, whatever
  the real segments are, and without the bound a handful of rare values would dominate;
- ordinal columns (age range, years of experience, seniority): the level's position scaled to [0, 1];
  Unknown takes the middle position plus its own indicator (1/sqrt(2)) when the training leads have it;
- extra numeric features: the empirical percentile in [0, 1] (skewed balances and counts do not
  stretch the space); missing values sit at the median.

The fitted encoder travels inside the model bundle, so a new lead is encoded exactly like the
training leads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from segmentation_pipeline.leads.cleaning import UNKNOWN
from segmentation_pipeline.leads.seniority import SENIORITY_LEVELS
from segmentation_pipeline.leads.settings import LeadsSettings

NOMINAL_COLUMNS = ("state", "industry", "education_level", "gender", "lead_source")
ORDINAL_COLUMNS = ("age_range", "years_experience", "seniority")
CATEGORY_WEIGHT = 1 / np.sqrt(2)  # one-hot rows of two different categories are then 1 apart
RARE_SHARE_FLOOR = 0.25  # of the uniform share: a rarer category weighs at most 2x CATEGORY_WEIGHT
PERCENTILES = np.linspace(0.0, 1.0, 101)
MIDDLE = 0.5


@dataclass(frozen=True)
class LeadEncoder:
    nominal: dict[str, tuple[str, ...]]  # column -> encoded categories, most frequent first
    nominal_weights: dict[str, np.ndarray]  # column -> weight of each encoded category
    ordinal: dict[str, tuple[str, ...]]  # column -> known levels, lowest first
    unknown_indicators: tuple[str, ...]  # ordinal columns with an Unknown indicator column
    numeric: dict[str, np.ndarray]  # column -> its training percentiles (101 values)

    @classmethod
    def fit(cls, clean: pd.DataFrame, settings: LeadsSettings) -> LeadEncoder:
        """Learn the categories, levels and percentiles from the clean leads. A column with a single
        value (e.g. an unmapped column, all Unknown) separates nobody and is left out."""
        nominal, weights = {}, {}
        for name in NOMINAL_COLUMNS + settings.categorical_features:
            counts = clean[name].value_counts(sort=True)
            counts = counts[counts > 0]
            if len(counts) > 1:
                kept = counts.iloc[: settings.max_categories]
                nominal[name] = tuple(str(c) for c in kept.index)
                uniform = 1.0 / len(kept)
                share = np.maximum(kept.to_numpy() / len(clean), RARE_SHARE_FLOOR * uniform)
                weights[name] = CATEGORY_WEIGHT * np.sqrt(uniform / share)
        ordinal, indicators = {}, []
        for name in ORDINAL_COLUMNS:
            present = set(clean[name].astype("object").unique())
            order = SENIORITY_LEVELS if name == "seniority" else tuple(clean[name].cat.categories)
            levels = tuple(level for level in order if level in present and level != UNKNOWN)
            if len(levels) + (UNKNOWN in present) > 1:
                ordinal[name] = levels
                if UNKNOWN in present:
                    indicators.append(name)
        numeric = {}
        for name in settings.numeric_features:
            values = clean[name].dropna().to_numpy(dtype=float)
            if len(np.unique(values)) > 1:
                numeric[name] = np.quantile(values, PERCENTILES)
        return cls(nominal, weights, ordinal, tuple(indicators), numeric)

    @property
    def columns(self) -> list[str]:
        """Names of the encoded columns, e.g. 'industry=Banking', 'seniority', 'seniority=Unknown'."""
        names = [f"{column}={category}" for column, categories in self.nominal.items() for category in categories]
        names += list(self.ordinal)
        names += [f"{column}={UNKNOWN}" for column in self.unknown_indicators]
        return names + list(self.numeric)

    @property
    def source_columns(self) -> list[str]:
        """The clean columns the encoding reads."""
        return list(self.nominal) + list(self.ordinal) + list(self.numeric)

    def encode(self, attributes: pd.DataFrame) -> np.ndarray:
        """The encoded matrix (float32: half the memory, ample precision for values in [0, 2]) of clean
        lead attributes, one row per lead."""
        matrix = np.zeros((len(attributes), len(self.columns)), dtype=np.float32)
        offset = 0
        for column, categories in self.nominal.items():
            position = _positions(attributes[column], categories)
            rows = np.flatnonzero(position >= 0)
            matrix[rows, offset + position[rows]] = self.nominal_weights[column][position[rows]]
            offset += len(categories)
        for column, levels in self.ordinal.items():
            position = _positions(attributes[column], levels).astype(float)
            scale = max(len(levels) - 1, 1)
            matrix[:, offset] = np.where(position >= 0, position / scale, MIDDLE)
            offset += 1
        for column in self.unknown_indicators:
            matrix[:, offset] = np.where(_positions(attributes[column], self.ordinal[column]) < 0, CATEGORY_WEIGHT, 0.0)
            offset += 1
        for column, percentiles in self.numeric.items():
            values = pd.to_numeric(attributes[column], errors="coerce").to_numpy(dtype=float)
            # mid-rank among the percentiles, so a value repeated across many of them sits in its middle
            rank = (np.searchsorted(percentiles, values, "left") + np.searchsorted(percentiles, values, "right")) / 2
            matrix[:, offset] = np.where(np.isnan(values), MIDDLE, rank / len(percentiles))
            offset += 1
        return matrix

    def frame(self, attributes: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.encode(attributes), columns=self.columns, index=attributes.index, copy=False)

    def describe(self) -> dict:
        return {
            "nominal": {column: list(categories) for column, categories in self.nominal.items()},
            "ordinal": {column: list(levels) for column, levels in self.ordinal.items()},
            "unknown_indicators": list(self.unknown_indicators),
            "numeric_percentiles": list(self.numeric),
            "nominal_weights": {c: [round(float(w), 4) for w in ws] for c, ws in self.nominal_weights.items()},
        }


def _positions(values: pd.Series, known: tuple[str, ...]) -> np.ndarray:
    """Index of each value in `known`, -1 for any other value; looked up once per distinct value."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, distinct = values.cat.codes.to_numpy(), values.cat.categories
    else:
        codes, distinct = pd.factorize(values, use_na_sentinel=True)
    lookup = pd.Index(known, dtype="object").get_indexer(pd.Index(distinct, dtype="object").astype(str))
    return np.append(lookup, -1)[codes]  # code -1 (a missing value) picks the appended -1
