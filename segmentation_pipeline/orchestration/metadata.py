"""Standard metadata every asset carries, so the UI shows rows, schema and files the same way everywhere."""

from __future__ import annotations

import dagster as dg
import pandas as pd

ROW_UNIT = "row_unit"  # what a row of the asset's table is (rows, charts, personas, ...), for people


def table_metadata(df: pd.DataFrame, files: list[str], unit: str = "rows", rows: int | None = None) -> dict:
    """Row count, column schema and the files written (paths relative to the output folder); `unit`
    says what a row is when it is not a data row (a chart, a persona), so the CLI's progress line
    reads "4 charts", not "4 rows". A table written in chunks passes its schema as `df` (no rows
    needed) and its row count as `rows`."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in df.dtypes.items()])
    return {
        "dagster/row_count": dg.MetadataValue.int(len(df) if rows is None else rows),
        "dagster/column_schema": schema,
        "files": dg.MetadataValue.json(list(files)),
        ROW_UNIT: unit,
    }


def numeric_metadata(metrics: dict, prefix: str = "metric/") -> dict:
    """Numbers become individual metadata entries, so the UI plots them across runs."""
    return {
        f"{prefix}{name}": float(value)
        for name, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def check_result(
    check: str, asset: str, problems: list[str], severity=dg.AssetCheckSeverity.ERROR, **metadata
) -> dg.AssetCheckResult:
    """An asset check's result from a Dagster-free `*_problems` list: passed when it is empty, the
    first problems as the description, all of them (up to 50) in the metadata."""
    return dg.AssetCheckResult(
        check_name=check,
        asset_key=asset,
        passed=not problems,
        severity=severity,
        description="; ".join(problems[:10]) if problems else "ok",
        metadata={"problems": dg.MetadataValue.json(problems[:50]), **metadata},
    )
