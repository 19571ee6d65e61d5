"""Timestamp cells: a column mixing date formats is read cell by cell; only cells that really fail are NaT."""

from __future__ import annotations

import pandas as pd
import pytest

from segmentation_pipeline.cells import parse_timestamps
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail.sources import map_columns


def parsed(cells: list) -> tuple[list, list]:
    result, bad = parse_timestamps(pd.Series(cells, dtype=object), None, "Column 'Date'")
    return [None if pd.isna(v) else v.isoformat(sep=" ") for v in result], bad.tolist()


def test_iso_mixed_with_day_first_loses_no_row():
    iso = [f"2025-01-{day:02d} 09:00" for day in range(1, 7)]
    day_first = ["03/01/2025 12:30", "04/02/2025 08:00", "13/01/2025 10:15", "05/01/2025 16:45"]
    values, bad = parsed(iso + day_first)
    assert not any(bad)
    assert values[6:] == ["2025-01-03 12:30:00", "2025-02-04 08:00:00", "2025-01-13 10:15:00", "2025-01-05 16:45:00"]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["02/01/2025", "12/25/2025"], ["2025-02-01 00:00:00", "2025-12-25 00:00:00"]),  # month-first evidence
        (["02/01/2025", "25/12/2025"], ["2025-01-02 00:00:00", "2025-12-25 00:00:00"]),  # day-first evidence
        (["02/01/2025", "03/01/2025"], ["2025-02-01 00:00:00", "2025-03-01 00:00:00"]),  # no evidence: month-first
        (["02.01.2025", "03.01.25"], ["2025-01-02 00:00:00", "2025-01-03 00:00:00"]),  # no evidence, dots: day-first
    ],
    ids=["month-first", "day-first", "slashes-default", "dots-default"],
)
def test_day_and_month_order_comes_from_the_unambiguous_cells(cells, expected):
    assert parsed(cells) == (expected, [False, False])


def test_each_separator_has_its_own_order():
    values, bad = parsed(["12/13/2010 8:26", "01/02/2011", "13.12.2010", "01.02.2011"])
    assert values == ["2010-12-13 08:26:00", "2011-01-02 00:00:00", "2010-12-13 00:00:00", "2011-02-01 00:00:00"]
    assert not any(bad)


def test_a_column_really_mixing_both_orders_reads_only_its_unambiguous_cells():
    values, bad = parsed(["13/01/2025", "01/13/2025", "03/03/2025", "03/04/2025"])
    assert values == ["2025-01-13 00:00:00", "2025-01-13 00:00:00", "2025-03-03 00:00:00", None]
    assert bad == [False, False, False, True]


def test_month_names():
    cells = ["3 Jan 2025", "Jan 3, 2025", "January 3, 2025 2:05 PM", "03-Jan-25", "3 JAN. 2025 14:05",
             "Fri, 3 Jan 2025 10:00:00 +0100"]
    values, bad = parsed(cells)
    assert [v[:10] for v in values] == ["2025-01-03"] * len(cells) and not any(bad)
    assert values[2] == "2025-01-03 14:05:00" and values[5] == "2025-01-03 09:00:00"


def test_a_date_without_a_year_is_not_completed_with_the_current_year():
    assert parsed(["Mar 5", "3 Jan 2025"]) == ([None, "2025-01-03 00:00:00"], [True, False])


def test_year_first_with_slashes_or_dots():
    expected = ["2025-01-03 12:30:00", "2025-01-04 00:00:00"]
    assert parsed(["2025/01/03 12:30", "2025.01.04"]) == (expected, [False, False])


def test_three_formats_and_one_bad_cell_flag_only_the_bad_cell():
    cells = ["2025-01-03 12:30", "13/01/2025 08:00", "3 Jan 2025", "2025-01-04", "not a date"]
    values, bad = parsed(cells)
    assert bad == [False, False, False, False, True]
    export = pd.DataFrame({"Customer": ["a", "b", "c", "d", "e"], "Date": cells, "Amount": ["1"] * 5})
    raw = map_columns(export, {"customer_id": "Customer", "timestamp": "Date", "amount": "Amount"}, None, "f.csv")
    assert raw["parse_errors"].isna().tolist() == [True, True, True, True, False]
    assert raw["parse_errors"].iloc[4] == "timestamp='not a date'"


def test_the_wrong_type_error_cites_only_cells_that_failed():
    cells = ["2025-01-03", "13/01/2025", "3 Jan 2025", "x1", "x2", "x3", "x4"]
    export = pd.DataFrame({"Customer": list("abcdefg"), "Date": cells, "Amount": ["1"] * 7})
    with pytest.raises(InputDataError) as error:
        map_columns(export, {"customer_id": "Customer", "timestamp": "Date", "amount": "Amount"}, None, "f.csv")
    message = str(error.value)
    assert "4 of its 7 non-empty cells" in message and "'x1', 'x2', 'x3'" in message
    assert "2025" not in message


def test_numbers_and_datetimes_are_read_as_before():
    serials, _ = parse_timestamps(pd.Series([45660.5, 45661.0]), None, "c")
    assert serials.tolist() == list(pd.to_datetime(["2025-01-03 12:00", "2025-01-04"], format="ISO8601"))
    epochs, _ = parse_timestamps(pd.Series(["1735907400", "1735993800"]), None, "c")
    assert epochs.tolist() == list(pd.to_datetime(["2025-01-03 12:30", "2025-01-04 12:30"]))
