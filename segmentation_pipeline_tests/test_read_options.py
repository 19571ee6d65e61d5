"""`read_options` go to the pandas reader; a key it does not know is a one-line error, not a TypeError."""

from __future__ import annotations

import pandas as pd
import pytest

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.readers import read_table

TABLE = pd.DataFrame({"Customer": ["A", "B"], "Amount": [1.5, 2.0]})


@pytest.fixture
def files(tmp_path):
    csv = tmp_path / "log.csv"
    csv.write_text("Customer;Amount\nA;1.5\nB;2\n")
    xlsx, parquet = tmp_path / "log.xlsx", tmp_path / "log.parquet"
    TABLE.to_excel(xlsx, index=False)
    TABLE.to_parquet(parquet)
    return {"csv": csv, "xlsx": xlsx, "parquet": parquet}


@pytest.mark.parametrize(
    ("kind", "options", "expected"),
    [
        ("csv", {"seperator": ";"}, "read_options key 'seperator' is not an option of the delimited-text reader "
                                    "(did you mean 'sep'?)."),
        ("csv", {"encoding": "latin-1"}, "read_options key 'encoding' is not an option of the delimited-text reader "
                                         "(set transactions.encoding instead)."),
        ("xlsx", {"sheet": "Sales"}, "read_options key 'sheet' is not an option of the spreadsheet reader "
                                     "(did you mean 'sheet_name'?)."),
        ("parquet", {"bogus": 1}, "read_options key 'bogus' is not an option of the parquet reader."),
    ],
)  # fmt: skip
def test_an_unknown_key_names_the_file_and_the_key(files, kind, options, expected):
    with pytest.raises(InputDataError) as error:
        read_table(files[kind], options)
    message = str(error.value)
    assert message == f"Transaction file '{files[kind]}': {expected}"


def test_a_known_key_with_a_value_of_the_wrong_type_is_one_line(files):
    with pytest.raises(InputDataError) as error:
        read_table(files["csv"], {"sep": 5})
    assert str(error.value) == f"Transaction file '{files['csv']}': read_options separator must be text, got 5."
    with pytest.raises(InputDataError) as error:
        read_table(files["csv"], {"sep": ";", "skiprows": "many"})
    assert str(error.value).startswith(f"Transaction file '{files['csv']}' cannot be read as delimited text: ")
    assert "\n" not in str(error.value)


def test_known_keys_still_reach_the_reader(files):
    assert read_table(files["csv"], {"sep": ";"})["Amount"].tolist() == ["1.5", "2"]
    assert list(read_table(files["parquet"], {"columns": ["Amount"]}).columns) == ["Amount"]
    assert read_table(files["xlsx"], {"sheet_name": 0})["Customer"].tolist() == ["A", "B"]
