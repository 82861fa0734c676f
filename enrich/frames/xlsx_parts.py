"""Looking inside an XLSX package without loading it: its size, and what a round trip lost.

An XLSX file is a ZIP of XML parts. Two questions are answered from the parts
alone, cheaply, whatever the workbook's size:

* ``workbook_cells``: how many cells its worksheets span (each sheet's
  ``<dimension ref="A1:H100001">``), to decide whether openpyxl may load it;
* ``lost_parts``: what kinds of content the input holds that an output no
  longer does (pictures, slicers, shapes, …), so the user is told by name.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["lost_parts", "sheet_order", "workbook_cells"]

_DIMENSION: Final = re.compile(
    rb'<(?:\w+:)?dimension\s+ref="\$?([A-Z]+)\$?([0-9]+)(?::\$?([A-Z]+)\$?([0-9]+))?"'
)
_SHEET_PART: Final = re.compile(r"xl/worksheets/[^/]+\.xml")
# A sheet without a <dimension> (rare: Excel, LibreOffice, openpyxl and xlsxwriter
# all write one) is sized from its XML: a plain cell takes ~30 bytes, so this
# over-counts, which only sends a borderline workbook to the fast writer.
_BYTES_PER_CELL: Final = 16
_HEAD_BYTES: Final = 4096

#: Kinds of part a kept workbook may lose, by path prefix: what the user is told.
_KINDS: Final[tuple[tuple[str, str], ...]] = (
    ("xl/media/", "pictures"),
    ("xl/slicers/", "slicers"),
    ("xl/slicerCaches/", "slicers"),
    ("xl/timelines/", "timelines"),
    ("xl/threadedComments/", "threaded comments (their notes are kept)"),
    ("xl/ctrlProps/", "form controls"),
    ("xl/activeX/", "ActiveX controls"),
    ("xl/queryTables/", "query tables"),
    ("xl/connections.xml", "data connections"),
    ("xl/model/", "the data model"),
    ("xl/richData/", "pictures in cells"),
    ("xl/charts/", "charts"),
    ("xl/pivotTables/", "pivot tables"),
    ("xl/externalLinks/", "links to other workbooks"),
    ("customXml/", "custom XML parts"),
)
_SHAPE: Final = re.compile(rb"<(?:\w+:)?sp[\s>]")


def workbook_cells(path: Path) -> int:
    """Cells spanned by the worksheets of the workbook at ``path`` (used ranges).

    Raises:
        OSError, zipfile.BadZipFile: the file cannot be opened as a ZIP.
    """
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not _SHEET_PART.fullmatch(info.filename):
                continue
            with archive.open(info) as part:
                head = part.read(_HEAD_BYTES)
            found = _DIMENSION.search(head)
            if found is None:
                total += info.file_size // _BYTES_PER_CELL
                continue
            col1, row1, col2, row2 = (g.decode("ascii") if g else None for g in found.groups())
            assert col1 is not None and row1 is not None
            width = abs(_column(col2 or col1) - _column(col1)) + 1
            total += width * (abs(int(row2 or row1) - int(row1)) + 1)
    return total


def _column(letters: str) -> int:
    """``A`` → 1, ``Z`` → 26, ``AA`` → 27."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - ord("A") + 1
    return n


def sheet_order(path: Path) -> list[str] | None:
    """The sheet names of the workbook at ``path``, in workbook order; None if unreadable."""
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        try:
            return list(workbook.sheet_names)
        finally:
            workbook.close()
    except (CalamineError, OSError, ValueError):
        return None


def lost_parts(source: Path, output: Path) -> list[str]:
    """What ``source`` holds that ``output`` lost, by kind (``pictures``, ``slicers``, …).

    A kind counts as lost when ``source`` has parts of it and ``output`` none;
    drawings whose shapes (text boxes, arrows, …) did not survive count as
    ``shapes and text boxes``. Unreadable files give an empty list.
    """
    try:
        before = _names(source)
        after = _names(output)
        lost = [
            label for prefix, label in _KINDS if _has(before, prefix) and not _has(after, prefix)
        ]
        if _shapes(source) and not _shapes(output):
            lost.append("shapes and text boxes")
    except (OSError, zipfile.BadZipFile):
        return []
    return list(dict.fromkeys(lost))


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def _has(names: Sequence[str], prefix: str) -> bool:
    return any(name.startswith(prefix) for name in names)


def _shapes(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            drawing = name.startswith("xl/drawings/") and name.endswith(".xml")
            if drawing and "_rels" not in name and _SHAPE.search(archive.read(name)):
                return True
    return False
