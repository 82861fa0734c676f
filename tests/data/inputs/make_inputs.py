"""Make the input files of tests/test_inputs_*.py the way their tools make them.

Run once (``.venv/bin/python tests/data/inputs/make_inputs.py``) with pandas and
openpyxl installed; the files are checked in, so the tests need neither pandas
nor this script. Each file is small and holds what its tool really writes:

- ``pandas_blanks.csv``: ``DataFrame.to_csv`` of a phone column with blanks, which
  pandas holds as float64 and writes as ``8613800138000.0``;
- ``excel_ansi.csv``: Excel's "CSV (Comma delimited)": cp1252, CRLF, no BOM;
- ``excel_utf8.csv``: Excel's "CSV UTF-8": a BOM, CRLF;
- ``title_rows.csv``: an Excel sheet with a title above the header saved as CSV:
  every line padded to the sheet's width (``Leads,,,``), blank rows as ``,,,``;
- ``google_contacts.csv``: a Google Contacts export ("Google CSV"): ``Phone 1 -
  Label`` / ``Phone 1 - Value``, several numbers in one cell joined by `` ::: ``;
- ``quoted_newlines.csv``: a note spanning lines inside quotes;
- ``excel_user.xlsx``: a workbook as an Excel user saves it (openpyxl): a cover
  sheet first, then the data under a title row and an empty row, numeric phone
  cells beside typed-in ones, a blank row, widths, a frozen header.
"""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pandas_blanks() -> None:
    import pandas as pd

    df = pd.DataFrame(
        {
            "name": ["Ada", "Bob", "Cy", "Di", "Ed"],
            # blanks make pandas hold the column as float64
            "phone": [8613800138000, None, 447946095800, 14155550100, 8613800138001],
            "amount": [1.5, 2.0, None, 4.25, 5.0],
        }
    )
    df.to_csv(HERE / "pandas_blanks.csv", index=False)


ROWS = [
    ["Name", "Phone", "City"],
    ["José Álvarez", "+44 7700 900001", "Málaga"],
    ["Zoë Brontë", "+44 7700 900002", "Köln"],
    ["Ånne Ødegård", "12", "Tromsø"],
]


def excel_csvs() -> None:
    with (HERE / "excel_ansi.csv").open("w", encoding="cp1252", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(ROWS)
    with (HERE / "excel_utf8.csv").open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(ROWS)


def title_rows() -> None:
    lines = [
        ["Leads export, March", "", "", ""],
        ["", "", "", ""],
        ["Name", "Phone", "", ""],
        ["Ada", "+8613800138000", "", ""],
        ["", "", "", ""],
        ["Bob", "abc", "", ""],
        ["Cy", "+44 7700 900003", "", ""],
    ]
    with (HERE / "title_rows.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(lines)


def google_contacts() -> None:
    header = [
        "First Name", "Middle Name", "Last Name", "Nickname", "Organization Name", "Notes",
        "Labels", "E-mail 1 - Label", "E-mail 1 - Value", "Phone 1 - Label",
        "Phone 1 - Value", "Phone 2 - Label", "Phone 2 - Value",
    ]  # fmt: skip
    people = [
        ["Ann", "", "Lee", "", "Acme", "", "* myContacts ::: Friends", "* Home",
         "ann@example.com", "Mobile", "+44 7700 900001 ::: +44 7700 900002", "Work",
         "+44 20 7946 0958"],
        ["Bo", "", "Chan", "", "", "met in Lisbon", "* myContacts", "", "", "Mobile",
         "+86 138 0013 8000", "", ""],
        ["Cy", "", "", "", "", "", "* myContacts", "", "", "Home", "12 ::: +1 415 555 0100",
         "", ""],
        ["Di", "", "Roe", "", "", "", "* myContacts", "", "", "", "", "Mobile",
         "+1 415 555 0101"],
    ]  # fmt: skip
    with (HERE / "google_contacts.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows([header, *people])


def quoted_newlines() -> None:
    with (HERE / "quoted_newlines.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(
            [
                ["id", "note", "phone"],
                ["1", "one line", "+8613800138000"],
                ["2", "first line\nsecond line\nthird line", "abc"],
                ["3", "plain", ""],
                ["4", "a\r\nb", "12"],
            ]
        )


def excel_user() -> None:
    import openpyxl
    from openpyxl.styles import Font

    wb = openpyxl.Workbook()
    cover = wb.active
    cover.title = "Cover"
    cover["B2"] = "Q1 leads"
    cover["B3"] = "Prepared by the sales team; the list is on the Leads sheet."
    leads = wb.create_sheet("Leads")
    leads["A1"] = "Leads, March (do not forward)"
    leads["A1"].font = Font(bold=True, size=14)
    leads.append([])
    leads.append(["Name", "Phone", "Notes"])
    for cell in leads[3]:
        cell.font = Font(bold=True)
    leads.append(["Ada", 8613800138000, "numeric cell"])
    leads.append(["Bob", "+44 7700 900002", "typed in"])
    leads.append([None, None, None])
    leads.append(["Cy", 447946095800, None])
    leads.append(["Di", "abc", "not a number"])
    for row in leads.iter_rows(min_row=4, min_col=2, max_col=2):
        for cell in row:
            if isinstance(cell.value, int):
                cell.number_format = "0"
    leads.column_dimensions["A"].width = 12
    leads.column_dimensions["B"].width = 18
    leads.freeze_panes = "A4"
    notes = wb.create_sheet("Notes")
    notes["A1"] = "nothing here"
    wb.save(HERE / "excel_user.xlsx")


if __name__ == "__main__":
    pandas_blanks()
    excel_csvs()
    title_rows()
    google_contacts()
    quoted_newlines()
    excel_user()
