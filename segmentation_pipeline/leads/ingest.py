"""The raw leads table: the export exactly as the user gave it (or the embedded synthetic leads).

Raw keeps every column and row of the file under the file's own names, so the clustered-leads CSV can
hand the same rows back with a cluster added. The mapping is checked here, before anything runs, so a
misspelt column stops the flow with one message naming the file and the column.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.leads.settings import LeadsSettings
from segmentation_pipeline.leads.synthetic import generate_leads
from segmentation_pipeline.readers import read_table

SYNTHETIC_SOURCE = "synthetic leads"


@dataclass(frozen=True)
class LeadsInput:
    raw: pd.DataFrame  # every row and column of the source, as read
    truth: pd.DataFrame | None  # the synthetic leads' true persona per row; None for a real file
    source: str  # the file path, or "synthetic leads"


def read_leads(settings: LeadsSettings, cache_dir: str | Path | None = None) -> LeadsInput:
    """Read the configured leads file (any delimiter/encoding, xlsx, parquet) or generate the synthetic
    leads; raises InputDataError when a mapped or feature column is missing."""
    if settings.source == "file":
        path = settings.source_path()
        raw = read_table(path, settings.read_options, settings.encoding, cache_dir, kind="Leads file")
        truth, source = None, str(path)
    else:
        synthetic = generate_leads(settings.synthetic.leads, settings.synthetic.seed, settings.synthetic.personas_path)
        raw, truth, source = synthetic.leads, synthetic.truth, SYNTHETIC_SOURCE
    require_lead_columns(raw, settings, source)
    return LeadsInput(raw=raw, truth=truth, source=source)


def require_lead_columns(raw: pd.DataFrame, settings: LeadsSettings, source: str) -> None:
    """Every mapped column and every feature column is in the table, or one InputDataError naming them."""
    wanted = [(f"mapped to {name}", column) for name, column in settings.columns.mapped().items()]
    wanted += [("categorical feature", name) for name in settings.categorical_features]
    wanted += [("numeric feature", name) for name in settings.numeric_features]
    available = [str(column) for column in raw.columns]
    missing = [(role, column) for role, column in wanted if column not in available]
    if not missing:
        return
    described = ", ".join(f"'{column}' ({role})" for role, column in missing)
    hints = [match[0] for _, column in missing if (match := difflib.get_close_matches(column, available, n=1))]
    did_you_mean = f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""
    raise InputDataError(
        f"Leads file '{source}': column {described} is not in the file{did_you_mean}; "
        f"its columns are: {', '.join(available) or '(none)'}."
    )
