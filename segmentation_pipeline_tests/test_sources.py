"""Reading transaction exports as users produce them, and mapping them to the canonical raw table."""

from __future__ import annotations

import datetime as dt

import numpy as np
import openpyxl
import pandas as pd
import pytest

from segmentation_pipeline import readers
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.cells import month_of
from segmentation_pipeline.readers import READ_INFO_ATTR, read_table
from segmentation_pipeline.retail.sources import map_columns

HEADER = ["InvoiceNo", "CustomerID", "InvoiceDate", "Quantity", "UnitPrice", "Country"]
ROWS = [
    ["536365", "17850", "12/1/2010 8:26", "6", "2.55", "United Kingdom"],
    ["536366", "13047", "12/13/2010 9:02", "2", "3.39", "France"],
    ["C536379", "12583", "12/14/2010 10:00", "-1", "27.50", "Spain"],
]
RETAIL_MAPPING = {
    "invoice_id": "InvoiceNo",
    "customer_id": "CustomerID",
    "timestamp": "InvoiceDate",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "country": "Country",
}


def write_text(tmp_path, name, rows, delimiter=",", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes("\n".join(delimiter.join(row) for row in rows).encode(encoding) + b"\n")
    return path


def frame(**columns):
    """A small export with three customers, overridable column by column."""
    base = {
        "CustomerID": [17850.0, 13047.0, 12583.0],
        "InvoiceDate": pd.to_datetime(["2010-12-01 08:26", "2010-12-13 09:02", "2010-12-14 10:00"]),
        "Quantity": [6, 2, -1],
        "UnitPrice": [2.55, 3.39, 27.5],
    }
    return pd.DataFrame({**base, **columns})


MAPPING = {"customer_id": "CustomerID", "timestamp": "InvoiceDate", "quantity": "Quantity", "unit_price": "UnitPrice"}


# ------------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_text_delimiter_is_detected(tmp_path, delimiter):
    path = write_text(tmp_path, "export.csv", [HEADER] + ROWS, delimiter)
    table = read_table(path)
    assert list(table.columns) == HEADER
    assert table["InvoiceNo"].tolist() == ["536365", "536366", "C536379"]
    assert table.attrs[READ_INFO_ATTR]["delimiter"] == delimiter


def test_delimiter_inside_quoted_text_does_not_fool_detection(tmp_path):
    rows = [["id", "CustomerID", "Description"], ["1", "17850", '"WHITE, HANGING; HEART"'], ["2", "13047", "MUG"]]
    table = read_table(write_text(tmp_path, "export.txt", rows, ";"))
    assert table["Description"].tolist() == ["WHITE, HANGING; HEART", "MUG"]


def test_whitespace_aligned_text_is_detected_and_can_be_forced(tmp_path):
    lines = ["CustomerID   Quantity  Price", "17850        6         2.55", "13047        12        3.39"]
    path = tmp_path / "report.txt"
    path.write_text("\n".join(lines) + "\n")
    detected = read_table(path)
    forced = read_table(path, read_options={"sep": r"\s+"})
    assert list(detected.columns) == ["CustomerID", "Quantity", "Price"]
    assert detected["Quantity"].tolist() == ["6", "12"]
    pd.testing.assert_frame_equal(detected, forced)


def test_text_cells_are_kept_as_written(tmp_path):
    rows = [["CustomerID", "Code"], ["00123", "007"], ["", "1.50"]]
    table = read_table(write_text(tmp_path, "ids.csv", rows))
    assert table["CustomerID"].iloc[0] == "00123"
    assert table["Code"].tolist() == ["007", "1.50"]
    assert pd.isna(table["CustomerID"].iloc[1])


def test_non_utf8_text_falls_back_and_says_which_encoding(tmp_path):
    rows = [["CustomerID", "Description"], ["17850", "Crème brûlée £5"], ["13047", "Café"]]
    path = write_text(tmp_path, "latin.csv", rows, encoding="cp1252")
    table = read_table(path)
    info = table.attrs[READ_INFO_ATTR]
    assert table["Description"].tolist() == ["Crème brûlée £5", "Café"]
    assert info["encoding"] == "cp1252"
    assert "latin.csv" in info["encoding_note"] and "utf-8" in info["encoding_note"]
    explicit = read_table(path, encoding="cp1252")
    assert explicit.attrs[READ_INFO_ATTR]["encoding_note"] is None
    assert read_table(write_text(tmp_path, "utf8.csv", rows)).attrs[READ_INFO_ATTR]["encoding"] == "utf-8"


def test_utf8_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfCustomerID,Quantity\n17850,6\n")
    assert list(read_table(path).columns) == ["CustomerID", "Quantity"]


def test_utf16_text_is_read(tmp_path):
    path = tmp_path / "unicode.txt"
    path.write_text("CustomerID\tQuantity\n17850\t6\n", encoding="utf-16")
    table = read_table(path)
    assert table.to_dict("list") == {"CustomerID": ["17850"], "Quantity": ["6"]}


def test_wrong_explicit_encoding_is_an_error_naming_file_and_encoding(tmp_path):
    path = write_text(tmp_path, "latin.csv", [["CustomerID", "Country"], ["1", "España"]], encoding="cp1252")
    with pytest.raises(InputDataError, match=r"latin\.csv.*utf-8"):
        read_table(path, encoding="utf-8")
    with pytest.raises(InputDataError, match=r"'klingon'.*latin\.csv"):
        read_table(path, encoding="klingon")


def test_parquet_is_read_with_its_types(tmp_path):
    original = frame(Country=["United Kingdom", "France", "Spain"])
    path = tmp_path / "export.parquet"
    original.to_parquet(path)
    table = read_table(path)
    pd.testing.assert_frame_equal(table, original, check_dtype=False)
    assert table.attrs[READ_INFO_ATTR]["format"] == "parquet"


def write_workbook(path, rows):
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


WORKBOOK_ROWS = [
    ["InvoiceNo", "CustomerID", "InvoiceDate", "Quantity", "UnitPrice"],
    [536365, 17850, dt.datetime(2010, 12, 1, 8, 26), 6, 2.55],
    ["C536379", 13047, dt.datetime(2010, 12, 14, 10, 0), -1, 27.5],
    [536366, None, dt.datetime(2010, 12, 13, 9, 2), 2, 3.39],
]


def test_xlsx_is_read_and_mixed_cells_become_text(tmp_path):
    table = read_table(write_workbook(tmp_path / "export.xlsx", WORKBOOK_ROWS))
    assert list(table.columns) == WORKBOOK_ROWS[0]
    assert table["InvoiceNo"].tolist() == ["536365", "C536379", "536366"]  # numbers and text in one column
    assert table["InvoiceDate"].iloc[0] == pd.Timestamp("2010-12-01 08:26")
    assert table["Quantity"].tolist() == [6, -1, 2]


def test_spreadsheet_cache_hits_only_for_the_same_bytes_and_options(tmp_path, monkeypatch):
    parses = []
    parse = readers._parse_spreadsheet
    monkeypatch.setattr(readers, "_parse_spreadsheet", lambda *args: parses.append(args) or parse(*args))
    path = write_workbook(tmp_path / "export.xlsx", WORKBOOK_ROWS)
    cache = tmp_path / "cache"

    first = read_table(path, cache_dir=cache)
    second = read_table(path, cache_dir=cache)
    assert [first.attrs[READ_INFO_ATTR]["cache"], second.attrs[READ_INFO_ATTR]["cache"]] == ["miss", "hit"]
    assert len(parses) == 1
    pd.testing.assert_frame_equal(first, second)

    read_table(path, read_options={"nrows": 2}, cache_dir=cache)
    assert len(parses) == 2  # other options, other table

    write_workbook(path, WORKBOOK_ROWS[:3])
    changed = read_table(path, cache_dir=cache)
    assert changed.attrs[READ_INFO_ATTR]["cache"] == "miss" and len(changed) == 2
    assert len(parses) == 3


# ---------------------------------------------------------------------------------- reading errors


def test_missing_file(tmp_path):
    with pytest.raises(InputDataError, match=r"nowhere\.csv' does not exist"):
        read_table(tmp_path / "nowhere.csv")


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "export.json"
    path.write_text("{}")
    with pytest.raises(InputDataError, match=r"export\.json' has the unsupported type '\.json'.*\.csv"):
        read_table(path)


@pytest.mark.parametrize("name", ["empty.csv", "empty.xlsx", "empty.parquet"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(InputDataError, match=rf"{name}' is empty"):
        read_table(tmp_path / name)


def test_header_only_files_have_no_data_rows(tmp_path):
    with pytest.raises(InputDataError, match=r"header\.csv' has no data rows"):
        read_table(write_text(tmp_path, "header.csv", [HEADER]))
    with pytest.raises(InputDataError, match=r"header\.xlsx' has no data rows"):
        read_table(write_workbook(tmp_path / "header.xlsx", WORKBOOK_ROWS[:1]))
    frame().head(0).to_parquet(tmp_path / "header.parquet")
    with pytest.raises(InputDataError, match=r"header\.parquet' has no data rows"):
        read_table(tmp_path / "header.parquet")


def test_binary_garbage_is_not_text(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputDataError, match=r"garbage\.csv' is binary"):
        read_table(path)


def test_truncated_or_corrupt_spreadsheet_and_parquet(tmp_path):
    workbook = write_workbook(tmp_path / "good.xlsx", WORKBOOK_ROWS).read_bytes()
    (tmp_path / "cut.xlsx").write_bytes(workbook[: len(workbook) // 2])
    with pytest.raises(InputDataError, match=r"cut\.xlsx' cannot be read as a spreadsheet"):
        read_table(tmp_path / "cut.xlsx")
    (tmp_path / "noise.xlsx").write_bytes(b"not a workbook at all")
    with pytest.raises(InputDataError, match=r"noise\.xlsx' cannot be read as a spreadsheet"):
        read_table(tmp_path / "noise.xlsx")
    frame().to_parquet(tmp_path / "good.parquet")
    data = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match=r"cut\.parquet' cannot be read as parquet"):
        read_table(tmp_path / "cut.parquet")


# ------------------------------------------------------------------------------------------ mapping


def test_csv_maps_to_the_canonical_raw_table(tmp_path):
    table = read_table(write_text(tmp_path, "export.csv", [HEADER + ["Note"]] + [r + ["x"] for r in ROWS]))
    raw = map_columns(table, RETAIL_MAPPING, None, source="export.csv")
    assert list(raw.columns) == [
        "source_row", "customer_id", "invoice_id", "timestamp", "quantity", "unit_price", "country",
        "parse_errors", "Note",
    ]  # fmt: skip
    assert raw["source_row"].tolist() == [0, 1, 2]
    assert raw["timestamp"].dtype == "datetime64[ns]"
    assert raw["timestamp"].tolist() == [pd.Timestamp(row[2]) for row in ROWS]
    assert raw["quantity"].tolist() == [6.0, 2.0, -1.0]
    assert raw["unit_price"].dtype == np.float64
    assert raw["customer_id"].tolist() == ["17850", "13047", "12583"]
    assert raw["parse_errors"].isna().all()
    assert raw["Note"].tolist() == ["x", "x", "x"]


def test_customer_ids_are_normalised():
    numeric = map_columns(frame(CustomerID=[17850.0, np.nan, 12583.0]), MAPPING, None, "f.xlsx")
    assert numeric["customer_id"].tolist()[::2] == ["17850", "12583"]
    assert pd.isna(numeric["customer_id"].iloc[1])
    text = map_columns(frame(CustomerID=["17850.0", "  ", " 00123 "]), MAPPING, None, "f.csv")
    assert text["customer_id"].iloc[0] == "17850" and text["customer_id"].iloc[2] == "00123"
    assert pd.isna(text["customer_id"].iloc[1])


def test_text_columns_are_categorical_with_one_category_per_cleaned_value():
    export = frame(
        CustomerID=[" 17850", "17850.0", "12583"], Invoice=["9", "10", None], Country=["UK", " ", "France "]
    )
    raw = map_columns(export, {**MAPPING, "invoice_id": "Invoice", "country": "Country"}, None, "f.csv")
    for column in ("customer_id", "invoice_id", "country"):
        assert isinstance(raw[column].dtype, pd.CategoricalDtype) and raw[column].cat.categories.dtype == "str"
    assert raw["customer_id"].tolist() == ["17850", "17850", "12583"]
    assert raw["customer_id"].cat.categories.tolist() == ["12583", "17850"]  # sorted: code order is id order
    assert raw["invoice_id"].cat.categories.tolist() == ["9", "10"]  # invoices keep file order
    assert raw["country"].cat.categories.tolist() == ["France", "UK"]
    assert pd.isna(raw["country"].iloc[1]) and pd.isna(raw["invoice_id"].iloc[2])


def test_unparseable_cells_become_missing_and_are_described():
    table = frame(
        InvoiceDate=["2010-12-01 08:26", "2011-13-45", "2010-12-14 10:00"],
        Quantity=["6", "abc", "1,200"],
        UnitPrice=["2.55", "3.39", "£27.50"],
    )
    raw = map_columns(table, MAPPING, None, "f.csv")
    assert pd.isna(raw["timestamp"].iloc[1]) and np.isnan(raw["quantity"].iloc[1])
    assert raw["quantity"].iloc[2] == 1200.0 and raw["unit_price"].iloc[2] == 27.5
    assert raw["parse_errors"].iloc[1] == "timestamp='2011-13-45'; quantity='abc'"
    assert raw["parse_errors"].iloc[[0, 2]].isna().all()


def test_blank_cells_are_missing_not_errors():
    raw = map_columns(frame(Quantity=["6", "", None], UnitPrice=["2.55", " ", "1"]), MAPPING, None, "f.csv")
    assert np.isnan(raw["quantity"].iloc[1]) and np.isnan(raw["unit_price"].iloc[1])
    assert raw["parse_errors"].isna().all()


def test_decimal_comma_is_used_only_when_the_column_is_unambiguous():
    european = map_columns(frame(UnitPrice=["1.234,50", "2,55", "3"]), MAPPING, None, "f.csv")
    assert european["unit_price"].tolist() == [1234.5, 2.55, 3.0]
    mixed = map_columns(frame(UnitPrice=["1,234.50", "2.55", "3,5"]), MAPPING, None, "f.csv")
    assert mixed["unit_price"].tolist()[:2] == [1234.5, 2.55]
    assert mixed["parse_errors"].iloc[2] == "unit_price='3,5'"


EXPECTED_TIMES = ["2010-12-01 08:26", "2010-12-13", "2011-01-02 12:00"]


@pytest.mark.parametrize(
    ("cells", "timestamp_format"),
    [
        (["12/1/2010 8:26", "12/13/2010 00:00:00", "1/2/2011 12:00 PM"], None),
        (["01/12/2010 08:26", "13/12/2010", "02.01.2011 12:00"], None),
        (["2010-12-01T08:26:00", "2010-12-13", "2011-01-02 13:00:00+01:00"], None),
        ([40513.35138888889, 40525.0, 40545.5], None),
        ([1291191960, 1292198400, 1293969600], None),
        (["01122010 0826", "13122010 0000", "02012011 1200"], "%d%m%Y %H%M"),
    ],
    ids=["month-first", "day-first", "iso", "excel-serial", "epoch-seconds", "explicit-format"],
)
def test_timestamps_are_inferred_or_read_with_the_given_format(cells, timestamp_format):
    raw = map_columns(frame(InvoiceDate=cells), MAPPING, timestamp_format, "f.csv")
    assert raw["timestamp"].tolist() == list(pd.to_datetime(EXPECTED_TIMES, format="ISO8601"))
    assert raw["parse_errors"].isna().all()


def test_unmapped_column_named_like_a_canonical_one_is_kept_under_another_name():
    raw = map_columns(frame(amount=["n/a"] * 3, is_return=["no"] * 3), MAPPING, None, "f.csv")
    assert "amount" not in raw.columns and "is_return" not in raw.columns
    assert raw["file:amount"].tolist() == ["n/a"] * 3 and raw["file:is_return"].tolist() == ["no"] * 3


def test_month_labels():
    stamps = pd.Series(pd.to_datetime(["2010-12-31 23:59", None, "2011-01-01", "2010-12-01"], format="ISO8601"))
    labels = month_of(stamps)
    assert labels.iloc[[0, 2, 3]].tolist() == ["2010-12", "2011-01", "2010-12"]
    assert pd.isna(labels.iloc[1])


# ----------------------------------------------------------------------------------- mapping errors


def test_mapped_column_missing_from_the_file_lists_the_columns_it_has():
    with pytest.raises(InputDataError) as error:
        map_columns(frame(), {**MAPPING, "customer_id": "customerid"}, None, "export.csv")
    message = str(error.value)
    assert "'customerid' (mapped to customer_id) is not in 'export.csv' (did you mean 'CustomerID'?)" in message
    assert "CustomerID, InvoiceDate, Quantity, UnitPrice" in message


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({**MAPPING, "customer_id": None}, r"No column of 'export\.csv' is mapped to customer_id"),
        ({k: v for k, v in MAPPING.items() if k != "timestamp"}, r"No column of 'export\.csv' is mapped to timestamp"),
        ({**MAPPING, "unit_price": None}, r"'export\.csv' is mapped to amount, nor to both quantity and unit_price"),
        ({**MAPPING, "revenue": "Quantity"}, r"'export\.csv' names unknown canonical columns revenue"),
    ],
)
def test_incomplete_or_wrong_mapping(mapping, expected):
    with pytest.raises(InputDataError, match=expected):
        map_columns(frame(), mapping, None, "export.csv")


def test_no_data_rows():
    with pytest.raises(InputDataError, match=r"'export\.csv' has no data rows"):
        map_columns(frame().head(0), MAPPING, None, "export.csv")


def test_mostly_unparseable_column_is_the_wrong_type():
    table = frame(Quantity=["six", "two", "1"])
    with pytest.raises(InputDataError) as error:
        map_columns(table, MAPPING, None, "export.csv")
    message = str(error.value)
    assert "Column 'Quantity' (mapped to quantity) in 'export.csv' does not hold numbers" in message
    assert "2 of its 3 non-empty cells" in message and "'six', 'two'" in message
    with pytest.raises(InputDataError, match=r"'Country' \(mapped to timestamp\) in 'export\.csv' does not hold dates"):
        map_columns(frame(Country=["UK", "France", "Spain"]), {**MAPPING, "timestamp": "Country"}, None, "export.csv")


def test_a_few_bad_cells_are_not_a_wrong_type():
    raw = map_columns(frame(Quantity=["six", "2", "1"]), MAPPING, None, "export.csv")
    assert raw["parse_errors"].iloc[0] == "quantity='six'"


def test_empty_required_column():
    with pytest.raises(InputDataError, match=r"'CustomerID' \(mapped to customer_id\) in 'export\.csv' is empty"):
        map_columns(frame(CustomerID=[np.nan] * 3), MAPPING, None, "export.csv")


def test_single_customer_is_refused_with_the_count():
    with pytest.raises(InputDataError) as error:
        map_columns(frame(CustomerID=[17850.0, 17850.0, np.nan]), MAPPING, None, "export.csv")
    message = str(error.value)
    assert "'CustomerID' (mapped to customer_id) in 'export.csv' has 1 distinct customer ('17850')" in message
    assert "at least 2" in message


def test_invalid_timestamp_format():
    with pytest.raises(InputDataError, match=r"'InvoiceDate' \(mapped to timestamp\) in 'export\.csv'.*'%Q'"):
        map_columns(frame(InvoiceDate=["2010", "2011", "2012"]), MAPPING, "%Q", "export.csv")
