"""Request bodies -> the feature matrix a segmenter places, with the documented defaults filled in.

Both endpoints of a family share one conversion: a single manual request is a batch of one row, so
defaults, derivations and errors cannot differ between /segment/manual and /segment/batch. The work
is column-wise (one numpy array per request field), so 10,000 batch rows cost a few passes, not
10,000 dictionary merges. Defaults, in order:
- a value the request gives is used (a request field, or `features` by model column name);
- retail `avg_order_value` missing: monetary / frequency (its definition in the feature table);
- anything else missing: the feature's median over the published entities (`Segmenter.defaults`).
A feature name the model does not know, or a value the model cannot prepare, is a 422 naming it.

A lead (`lead_frame`) is no matrix: its fields go to the lead bundle's own preparation, where a missing
field is Unknown, as it was for the training leads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from fastapi.exceptions import RequestValidationError

from segmentation_pipeline.service.leads import CANONICAL_FIELDS, LeadSegmenter
from segmentation_pipeline.service.schemas import (
    FIELD_FEATURES,
    LeadRequest,
    RetailFeatures,
)
from segmentation_pipeline.service.segmenter import Segmenter

FEATURE_FIELDS = [name for name in RetailFeatures.__annotations__ if name != "features"]
FIELD_OF_FEATURE = {FIELD_FEATURES.get(name, name): name for name in FEATURE_FIELDS}


class InputError(RequestValidationError):
    """422 in FastAPI's validation error shape, for problems only the served model can see."""

    def __init__(self, loc: Sequence[str | int], message: str, value: object = None):
        super().__init__([{"loc": tuple(loc), "msg": message, "type": "value_error", "input": value}])


def retail_matrix(
    segmenter: Segmenter, rows: Sequence[RetailFeatures], row_loc: Callable[[int], tuple]
) -> tuple[np.ndarray, list[list[str]]]:
    """(rows x model features) matrix of retail requests and, per row, the features it left to defaults.

    `row_loc(i)` locates row i in the body for error messages. Every retail value is >= 0 by the
    schema, so log1p always applies: no value check is needed after the schema's."""
    n = len(rows)
    matrix = np.tile(segmenter.defaults, (n, 1))
    given = np.zeros(matrix.shape, dtype=bool)
    for field in FEATURE_FIELDS:
        column = segmenter.feature_index.get(FIELD_FEATURES.get(field, field))
        if column is None:
            continue
        values = np.fromiter((row.get(field) for row in rows), dtype=object, count=n)
        present = values != None  # noqa: E711 (element-wise comparison)
        matrix[present, column] = values[present].astype(float)
        given[present, column] = True
    for position in (i for i, row in enumerate(rows) if row.get("features")):
        for name, value in rows[position]["features"].items():
            column = _feature_column(segmenter, name, (*row_loc(position), "features", name))
            matrix[position, column] = value
            given[position, column] = True
    _derive_average_order_value(segmenter, rows, matrix, given)
    return matrix, _defaulted(segmenter, given)


def lead_frame(segmenter: LeadSegmenter, body: LeadRequest) -> tuple[pd.DataFrame, list[str]]:
    """The 1-lead frame of a lead request, and the fields it gives that the served model does not use.

    An `extra` name must be an extra feature of the served model, and a numeric extra feature a number
    (422 naming `extra.<name>` otherwise); everything else the schema has already bounded, so the
    bundle's preparation cannot fail on the frame (a micro-batch shares one call)."""
    lead = {name: getattr(body, name) for name in CANONICAL_FIELDS}
    for name, value in (body.extra or {}).items():
        loc = ("body", "extra", name)
        if name not in segmenter.extra_fields:
            extras = ", ".join(segmenter.extra_fields) or "none"
            raise InputError(loc, f"{name!r} is not an extra feature of the served lead model (its extra features: {extras})", name)
        if name in segmenter.numeric_fields and isinstance(value, str):
            raise InputError(loc, f"{name!r} is a numeric feature of the served lead model: give a number or null", value)
        lead[name] = value
    given = [name for name, value in lead.items() if value is not None]
    return segmenter.frame([lead]), [name for name in given if name not in segmenter.used_fields]


def _feature_column(segmenter: Segmenter, name: str, loc: tuple) -> int:
    column = segmenter.feature_index.get(name)
    if column is None:
        raise InputError(
            loc,
            f"{name!r} is not a feature of the served {segmenter.method} model "
            f"(its features: {', '.join(segmenter.features)})",
            name,
        )
    if name in FIELD_OF_FEATURE:
        raise InputError(loc, f"give {name!r} as the field `{FIELD_OF_FEATURE[name]}`", name)
    return column


def _derive_average_order_value(segmenter: Segmenter, rows: Sequence[RetailFeatures], matrix: np.ndarray, given: np.ndarray) -> None:
    column = segmenter.feature_index.get("avg_order_value")
    if column is None or given[:, column].all():
        return
    derive = ~given[:, column]
    monetary = np.fromiter((row["monetary"] for row in rows), dtype=float, count=len(rows))
    frequency = np.fromiter((row["frequency"] for row in rows), dtype=float, count=len(rows))
    matrix[derive, column] = monetary[derive] / frequency[derive]  # frequency >= 1 by the schema


def _defaulted(segmenter: Segmenter, given: np.ndarray) -> list[list[str]]:
    """Per row, the model features it did not give; rows with the same pattern share one list."""
    patterns: dict[bytes, list[str]] = {}
    result = []
    for mask in given:
        key = mask.tobytes()
        if key not in patterns:
            patterns[key] = [name for name, was_given in zip(segmenter.features, mask) if not was_given]
        result.append(patterns[key])
    return result
