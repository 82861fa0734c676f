"""Numbers as exports write them (issue 16): float leftovers, several numbers in a cell,
address-book column names.

The promise under test: a number is never sent changed from what its cell says. A
cell written by a program that held the number as a float (pandas, Excel, a
spreadsheet's numeric cell) is read as its integer digits, or it is
``Client.InvalidPhone``; never a different number.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import phonenumbers
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enrich.errors import InputError
from enrich.frames import cell_texts, read_table
from enrich.phones import (
    CellReading,
    Normalized,
    find_phone_column,
    find_phone_columns,
    normalize_cell,
    normalize_phone,
    split_numbers,
)

DATA = Path(__file__).parent / "data" / "inputs"
INVALID = Normalized(None, "Client.InvalidPhone")


def ok(number: str) -> Normalized:
    return Normalized(number, None)


# ---------------------------------------------------------------- float leftovers


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        # pandas' to_csv of a phone column with blanks: today 86138001380000 was sent
        ("8613800138000.0", None, ok("8613800138000")),
        ("447946095800.0", None, ok("447946095800")),
        ("447946095800.00", "GB", ok("447946095800")),
        ("+8613800138000.0", None, ok("8613800138000")),
        (" 14155550100.0 ", None, ok("14155550100")),
        # the national reading still applies to the integer digits
        ("7946095800.0", "GB", ok("447946095800")),
        # scientific notation: only when every integer digit is written
        ("8.613800138000e+12", None, ok("8613800138000")),
        ("8.6138001380000E+12", None, ok("8613800138000")),
        ("8.613800138e+12", None, INVALID),  # 10 digits written of 13: some may be lost
        ("8.6138E+12", None, INVALID),  # Excel's narrow column: digits lost
        ("8.6138E+12", "GB", INVALID),
        ("8.6138001380001e+12", None, INVALID),  # not an integer
        # a dot that is not a float leftover stays a separator
        ("86.138.0013.8000", None, ok("8613800138000")),
    ],
)
def test_float_leftovers_are_their_integer_digits(
    raw: str, region: str | None, expected: Normalized
) -> None:
    assert normalize_phone(raw, default_region=region) == expected


def _same_number(got: str | None, digits: str, region: str | None) -> None:
    """``got`` is what the integer ``digits`` normalise to: the float spelling changed
    nothing. And that is the cell's own number or nothing: the national significant
    number sent is the cell's last digits, after its country code (read as
    international) or as a national number of ``region``. Only a prefix written after
    the country code may be dropped, as in "+44 (0)20 7946 0958"; no digit is changed."""
    want = normalize_phone(digits, default_region=region).number
    assert got == want
    if got is None:
        return
    cc = str(phonenumbers.parse("+" + got).country_code)
    assert digits.endswith(got[len(cc) :]), (got, digits, region)
    national = region is not None and cc == str(phonenumbers.country_code_for_region(region))
    assert digits.startswith(cc) or national, (got, digits, region)


def _pandas_like(value: float) -> str:
    """How pandas (numpy's shortest repr) writes a float64 cell to CSV."""
    return repr(value)


numbers = st.integers(min_value=10**5, max_value=10**15 - 1)
regions = st.sampled_from([None, "GB", "US", "CN", "DE", "RU", "ID"])


@settings(max_examples=400, deadline=None)
@given(n=numbers, region=regions, zeros=st.integers(min_value=1, max_value=3))
def test_a_float_string_is_never_another_number(n: int, region: str | None, zeros: int) -> None:
    digits = str(n)
    for text in (f"{digits}.{'0' * zeros}", _pandas_like(float(n)), f"{float(n):.{zeros}f}"):
        _same_number(normalize_phone(text, default_region=region).number, digits, region)
        _same_number(normalize_cell(text, default_region=region).number, digits, region)


@settings(max_examples=300, deadline=None)
@given(n=numbers, region=regions, shown=st.integers(min_value=1, max_value=16))
def test_scientific_notation_is_the_number_or_invalid(n: int, region: str | None, shown: int
                                                      ) -> None:
    text = f"{float(n):.{shown - 1}e}"  # as a program shows it with `shown` digits
    got = normalize_phone(text, default_region=region).number
    if shown >= len(str(n)):
        _same_number(got, str(n), region)
    else:
        assert got is None  # digits may be lost: never guessed


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(numbers.map(float), st.none()), min_size=1, max_size=8),
       region=regions)
def test_numeric_cells_and_float_columns_read_as_their_digits(
    values: list[float | None], region: str | None
) -> None:
    # a Parquet/XLSX numeric column, as polars holds it: Float64 with nulls
    texts = cell_texts(pl.Series("phone", values, dtype=pl.Float64)).to_list()
    for value, text in zip(values, texts, strict=True):
        if value is None:
            assert text is None
            continue
        digits = str(int(value))
        assert text == digits
        _same_number(normalize_cell(text, default_region=region).number, digits, region)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(numbers, st.none()), min_size=2, max_size=6), region=regions)
def test_pandas_exports_of_columns_with_blanks(values: list[int | None], region: str | None
                                               ) -> None:
    pd = pytest.importorskip("pandas")
    if all(v is None for v in values):
        values = [*values, 8613800138000]
    text = pd.DataFrame({"phone": [float("nan") if v is None else v for v in values]}).to_csv(
        index=False
    )
    rows = list(csv.reader(io.StringIO(text)))[1:]
    for value, (cell,) in zip(values, rows, strict=True):
        if value is None:
            assert cell == ""
            continue
        _same_number(normalize_cell(cell, default_region=region).number, str(value), region)


def test_the_checked_in_pandas_export(tmp_path: Path) -> None:
    """``tests/data/inputs/pandas_blanks.csv`` is what pandas wrote (make_inputs.py)."""
    table = read_table(DATA / "pandas_blanks.csv")
    cells = table.df["phone"].to_list()
    assert cells == ["8613800138000.0", None, "447946095800.0", "14155550100.0",
                     "8613800138001.0"]
    got = [normalize_cell(c).number for c in cells]
    assert got == ["8613800138000", None, "447946095800", "14155550100", "8613800138001"]


def test_excel_numeric_cells_from_openpyxl(tmp_path: Path) -> None:
    """A workbook as an Excel user saves it: numbers typed into cells, some as floats."""
    path = tmp_path / "typed.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["name", "phone"])
    for name, value in [("a", 8613800138000), ("b", 447946095800.0), ("c", "+1 415 555 0100"),
                        ("d", 14155550100)]:
        ws.append([name, value])
    wb.save(path)
    cells = cell_texts(read_table(path).df["phone"]).to_list()
    numbers_sent = [normalize_cell(c).number for c in cells]
    assert numbers_sent == ["8613800138000", "447946095800", "14155550100", "14155550100"]


# ---------------------------------------------------------------- several numbers in a cell


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+44 7700 900001 ::: +44 7700 900002", CellReading("447700900001", None, several=True)),
        ("12 ::: +1 415 555 0100", CellReading("14155550100", None, several=True)),
        ("abc ::: 12", CellReading(None, "Client.InvalidPhone", several=True)),
        ("+44 7700 900001 ::: ", CellReading("447700900001", None)),  # one number after all
        (" ::: ", CellReading(None, "Client.MissingPhone")),
        ("+8613800138000; +8613800138001", CellReading("8613800138000", None, several=True)),
        ("+8613800138000, +44 20 7946 0958", CellReading("8613800138000", None, several=True)),
        ("+8613800138000 / +14155550100", CellReading("8613800138000", None, several=True)),
        # a separator inside one number never splits it
        ("+44 (0)20 7946 0958", CellReading("442079460958", None)),
        ("+49 30/901820", CellReading("4930901820", None)),
        ("+86 138 0013 8000, ext 12", normalize_cell("+86 138 0013 8000, ext 12")),
        ("8613800138000.0", CellReading("8613800138000", None)),
        (None, CellReading(None, "Client.MissingPhone")),
    ],
)
def test_cells_with_several_numbers(raw: str | None, expected: CellReading) -> None:
    assert normalize_cell(raw) == expected


def test_split_needs_every_piece_to_be_a_number() -> None:
    assert split_numbers("030/901820", default_region="DE") is None
    assert split_numbers("030 901820 / 030 901821", default_region="DE") == [
        "030 901820", "030 901821"]
    assert split_numbers("+8613800138000;") is None  # an empty piece: one value
    assert split_numbers("a ::: b") == ["a", "b"]


@settings(max_examples=200, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=4), st.sampled_from([" ::: ", "; ", ", ", " / "]))
def test_the_number_used_is_one_the_cell_holds(values: list[int], sep: str) -> None:
    cell = sep.join(f"+{v}" for v in values)
    got = normalize_cell(cell)
    held = {normalize_phone(f"+{v}").number for v in values} - {None}
    if got.number is not None:
        assert got.number in held
        first = next(n for v in values if (n := normalize_phone(f"+{v}").number))
        assert got.number == first


# ---------------------------------------------------------------- address-book columns


GOOGLE = ["First Name", "Last Name", "Labels", "E-mail 1 - Label", "E-mail 1 - Value",
          "Phone 1 - Label", "Phone 1 - Value", "Phone 2 - Label", "Phone 2 - Value"]
GOOGLE_LEGACY = ["Name", "Given Name", "Group Membership", "E-mail 1 - Type",
                 "E-mail 1 - Value", "Phone 1 - Type", "Phone 1 - Value", "Phone 2 - Type",
                 "Phone 2 - Value"]


@pytest.mark.parametrize("columns", [GOOGLE, GOOGLE_LEGACY, list(reversed(GOOGLE))])
def test_google_contacts_phone_1_value(columns: list[str]) -> None:
    assert find_phone_column(columns) == "Phone 1 - Value"


def test_exact_names_come_before_numbered_values() -> None:
    assert find_phone_column(["Phone 1 - Value", "Mobile"]) == "Mobile"
    assert find_phone_column(["Phone 2 - Value", "Phone 3 - Value"]) == "Phone 2 - Value"


@pytest.mark.parametrize("columns", [["Phone 1 - Label", "Phone 1 - Type", "name"],
                                     ["Phone Type", "Phone Label"],
                                     ["E-mail 1 - Value", "Address 1 - Value"]])
def test_labels_and_types_are_never_the_phone_column(columns: list[str]) -> None:
    with pytest.raises(InputError, match="no phone column found"):
        find_phone_column(columns)


def test_the_checked_in_google_export() -> None:
    table = read_table(DATA / "google_contacts.csv")
    assert find_phone_column(table.df.columns) == "Phone 1 - Value"
    assert table.df["Phone 1 - Value"][0] == "+44 7700 900001 ::: +44 7700 900002"


def test_several_explicit_columns() -> None:
    assert find_phone_columns(["a", "b", "c"], explicit=["c", "a", "c"]) == ["c", "a"]
    with pytest.raises(InputError) as err:
        find_phone_columns(["a", "Phone 2"], explicit=["a", "phone 2"], source="x.csv")
    assert str(err.value) == (
        "column 'phone 2' not found in x.csv (did you mean 'Phone 2'?); columns: a, Phone 2"
    )


def test_no_phone_column_names_the_other_sheets() -> None:
    with pytest.raises(InputError) as err:
        find_phone_column(["Q1 leads"], source="book.xlsx",
                          other_sheets={"Leads": ["Name", "Phone"], "Notes": ["x"]})
    assert str(err.value) == (
        "no phone column found in book.xlsx; name it with --phone-column NAME "
        "(columns: Q1 leads); sheet 'Leads' has a phone column 'Phone': add --sheet Leads"
    )
    with pytest.raises(InputError) as err:
        find_phone_column(["Q1 leads"], source="book.xlsx",
                          other_sheets={"My leads": ["Title", "__UNNAMED__1"], "Notes": []})
    assert str(err.value).endswith(
        "(columns: Q1 leads); other sheets: My leads, Notes (choose one with --sheet NAME)"
    )
