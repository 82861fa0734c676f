"""Regenerate the demo inputs beside this script, byte for byte the same each time.

    python sample_data/make_samples.py

Writes ``contacts.csv`` (every cell text, as exports come), ``contacts.parquet``
(the same rows with typed columns) and ``contacts.xlsx`` (a workbook as data
teams receive it: numeric and text phone cells, date cells, a ``Notes`` sheet).
Names and companies are made up; the numbers are in reserved or fictional
ranges where countries have them, and possible numbers otherwise. The local
emulator (``enrich run sample_data/contacts.csv --mock``) answers for any of them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import xlsxwriter

HERE = Path(__file__).resolve().parent

# name, company, phone (as written), joined, amount (as written), note
ROWS: list[tuple[str, str, str, str, str, str]] = [
    ("Ada Example", "Example Bakery Ltd", "+86 138 0013 8000", "2024-01-02", "007", ""),
    ("Bo Sample", "Sample Trading Co.", "008613800138001", "2024-01-05", "120.50", ""),
    ("Chen Demo", "Demo Noodles", "8613800138002", "2024-01-09", "0042", "digits only"),
    ("Dana Placeholder", "Placeholder Florist", "+1 (415) 555-0100", "2024-01-12", "15", ""),
    ("Eli Fictitious", "Fictitious Books", "+44 20 7946 0958", "2024-01-15", "099.90", ""),
    ("Fay Mock", "Mock Motors GmbH", "+49 30 901820", "2024-01-19", "1000", ""),
    ("Gus Dummy", "Dummy Café", "+55 11 91234-5678", "2024-01-23", "007", "São Paulo"),
    ("Hana Contoh", "Contoh Kopi", "+62 812-3456-7890", "2024-01-26", "25", ""),
    ("Ivo Test", "Test Tiles S.L.", "+34 612 34 56 78", "2024-02-01", "3", ""),
    ("Jun Example", "Example Electronics", "+65 9123 4567", "2024-02-04", "0005", ""),
    ("Kai Sample", "Sample Spices", "+91 98765 43210", "2024-02-08", "77", ""),
    ("Lia Demo", "Demo Tacos", "+52 55 1234 5678", "2024-02-11", "18.00", ""),
    ("Mo Placeholder", "Placeholder Fabrics", "+234 803 123 4567", "2024-02-15", "250", ""),
    ("Nia Fictitious", "Fictitious Tea House", "+86-139-1234-5678", "2024-02-18", "007", ""),
    ("Oto Mock", "Mock Hardware", "(+86) 137 0000 1111", "2024-02-22", "60", ""),
    ("Pia Dummy", "Dummy Dental", "+1 212 555 0199", "2024-02-25", "0", ""),
    ("Quin Test", "Test Travel", "1-646-555-0142", "2024-03-01", "42", "no plus sign"),
    ("Rae Example", "Example Garden Centre", "+44 7700 900123", "2024-03-04", "12.5", ""),
    ("Sol Sample", "Sample Surf Shop", "0044 161 496 0000", "2024-03-08", "8", ""),
    ("Tom Demo", "Demo Deli", "+49 151 23456789", "2024-03-11", "007", ""),
    ("Uma Placeholder", "Placeholder Pharmacy", "+55 21 98765 4321", "2024-03-15", "33", ""),
    ("Vic Fictitious", "Fictitious Fitness", "+62 21 5555 1234", "2024-03-18", "0100", ""),
    ("Wen Mock", "Mock Music", "+61 2 5550 1234", "2024-03-22", "9", ""),
    ("Xia Dummy", "Dummy Dumplings", "+81 3-1234-5678", "2024-03-25", "64", ""),
    ("Yul Test", "Test Tailors", "+33 1 23 45 67 89", "2024-03-29", "11", ""),
    ("Zoe Example", "Example Optics", "+971 50 123 4567", "2024-04-01", "5", ""),
    # the same numbers again, spelled differently: no extra call
    ("Ada Example", "Example Bakery Ltd", "86 138 0013 8000", "2024-04-05", "007", "duplicate"),
    ("Ada Example", "Example Bakery Ltd", "+8613800138000", "2024-04-08", "007", "duplicate"),
    ("Eli Fictitious", "Fictitious Books", "00442079460958", "2024-04-12", "099.90", "duplicate"),
    ("Chen Demo", "Demo Noodles", "+86 138.0013.8002", "2024-04-15", "0042", "duplicate"),
    # no number
    ("Ann Blank", "Blank & Co.", "", "2024-04-19", "1", "no phone given"),
    ("Ben Blank", "Blank & Co.", "   ", "2024-04-22", "2", "only spaces"),
    # not numbers the API can take
    ("Cy Invalid", "Invalid Imports", "12", "2024-04-26", "3", "too short"),
    ("Di Invalid", "Invalid Imports", "abc", "2024-04-29", "4", "letters"),
    ("Ed Invalid", "Invalid Imports", "+999 123", "2024-05-03", "5", "no such country code"),
    ("Flo Invalid", "Invalid Imports", "n/a", "2024-05-06", "6", ""),
    # national spelling: invalid unless --default-region GB
    ("Gil National", "National Newsagents", "020 7946 0958", "2024-05-10", "7", "try GB"),
    # input cells that look like formulas stay exactly as they are
    ("Hal Formula", '=HYPERLINK("http://example.com")', "+44 20 7946 0959", "2024-05-13", "8", ""),
    ("Ida Quote", 'Quote "Q" Ltd, Branch 2', "+1 415 555 0101", "2024-05-17", "-3", "a, b\nc"),
    ("Jo Plus", "+Plus Hardware", "+49 30 901821", "2024-05-20", "+4", ""),
]

COLUMNS = ["id", "name", "company", "phone", "joined", "amount", "note"]


def text_frame() -> pl.DataFrame:
    """Every cell as text, the way a CSV export carries it."""
    records = [
        (f"{i:04d}", name, company, phone, joined, amount, note)
        for i, (name, company, phone, joined, amount, note) in enumerate(ROWS, start=1)
    ]
    df = pl.DataFrame(records, schema=dict.fromkeys(COLUMNS, pl.String), orient="row")
    # An empty cell is written as an empty field, not as "".
    return df.select(pl.when(pl.all() != "").then(pl.all()).name.keep())


def typed_frame() -> pl.DataFrame:
    """The same rows with real types: an int id, a date, a float amount, a bool."""
    text = text_frame()
    return text.select(
        pl.col("id").cast(pl.Int64),
        "name",
        "company",
        pl.col("phone"),
        pl.col("joined").str.to_date("%Y-%m-%d"),
        pl.col("amount").cast(pl.Float64),
        (pl.col("note").fill_null("") != "duplicate").alias("first_seen"),
        "note",
    )


def write_csv(path: Path) -> None:
    text_frame().write_csv(path)


def write_parquet(path: Path) -> None:
    typed_frame().write_parquet(path, compression="zstd", statistics=False)


def write_xlsx(path: Path) -> None:
    df = typed_frame()
    workbook = xlsxwriter.Workbook(
        str(path), {"strings_to_formulas": False, "strings_to_numbers": False}
    )
    workbook.set_properties(
        {
            "title": "Contacts (demo)",
            "author": "cams-enrich sample data",
            "created": dt.datetime(2024, 6, 1, 9, 0, 0),
        }
    )
    bold = workbook.add_format({"bold": True})
    date = workbook.add_format({"num_format": "dd/mm/yyyy"})
    money = workbook.add_format({"num_format": "#,##0.00"})
    ws = workbook.add_worksheet("Contacts")
    for c, name in enumerate(df.columns):
        ws.write_string(0, c, name, bold)
    for r, row in enumerate(df.iter_rows(named=True), start=1):
        ws.write_number(r, 0, row["id"])
        ws.write_string(r, 1, row["name"])
        ws.write_string(r, 2, row["company"])
        phone = (row["phone"] or "").strip()
        if phone.isdigit() and not phone.startswith("0"):
            # What Excel does to a typed-in number: a numeric cell.
            ws.write_number(r, 3, int(phone))
        elif row["phone"] is not None:
            ws.write_string(r, 3, row["phone"])
        ws.write_datetime(r, 4, row["joined"], date)
        ws.write_number(r, 5, row["amount"], money)
        ws.write_boolean(r, 6, row["first_seen"])
        if row["note"] is not None:
            ws.write_string(r, 7, row["note"])
    ws.set_column(0, 0, 6)
    ws.set_column(1, 3, 24)
    ws.set_column(4, 7, 12)
    ws.freeze_panes(1, 0)

    notes = workbook.add_worksheet("Notes")
    lines = [
        "Demo contact list for cams-enrich.",
        "Phone cells: some numeric (typed in), some text (formatted).",
        "Rows 31-32 have no number; rows 33-36 are not valid numbers.",
        "Row 37 is a national number: try --default-region GB.",
    ]
    notes.write_string(0, 0, "note", bold)
    for r, line in enumerate(lines, start=1):
        notes.write_string(r, 0, line)
    notes.set_column(0, 0, 70)
    workbook.close()


def main() -> None:
    """Write the three sample files beside this script."""
    write_csv(HERE / "contacts.csv")
    write_parquet(HERE / "contacts.parquet")
    write_xlsx(HERE / "contacts.xlsx")


if __name__ == "__main__":
    main()
