"""Plain JSON values from numpy/pandas ones, so every JSON and YAML output round-trips to the same data."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

FLOAT_DECIMALS = 4


def json_ready(value: Any) -> Any:
    """Convert numpy/pandas values to plain JSON types so JSON and YAML round-trip to the same data.

    Floats are rounded to FLOAT_DECIMALS places (FLOAT_DECIMALS significant digits below 1, so small
    shares and variances keep their information); NaN, infinity and missing values become None;
    mapping keys become strings; unknown objects are rendered with str().
    """
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Series, pd.Index)):
        return [json_ready(item) for item in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _round_float(float(value))
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, dt.date):  # also datetime and pd.Timestamp
        return value.isoformat()
    return str(value)


def _round_float(value: float) -> float | None:
    if not math.isfinite(value):
        return None
    if value == 0 or abs(value) >= 1:
        return round(value, FLOAT_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    return float(f"{value:.{FLOAT_DECIMALS}g}")
