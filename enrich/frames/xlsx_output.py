"""XLSX output: the input workbook kept as it is up to a size, else written anew.

``write_xlsx_output`` decides. openpyxl (``xlsx_keep``) is imported only when a
workbook is kept, so commands that never write one (``enrich check``, CSV
runs) do not pay for loading it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import polars as pl

from enrich.frames.xlsx_parts import sheet_order, workbook_cells
from enrich.frames.xlsx_write import write_xlsx

__all__ = ["KEEP_MAX_CELLS", "NOT_KEPT", "write_xlsx_output"]

#: The largest workbook kept as it is, in cells: the used ranges of every sheet
#: plus the ``bp_*`` cells added. Above it openpyxl is too slow and too big
#: (bench/bench_xlsx.py), and the fast writer is used.
KEEP_MAX_CELLS: Final = 1_000_000

#: What the fast writer does not carry over from an input workbook (for the warning).
NOT_KEPT: Final = (
    "number formats, column widths, filters, frozen panes, styles, merged cells and "
    "formulas (their last values are written instead) are not kept"
)


def write_xlsx_output(
    shown: Path,
    tmp: Path,
    df: pl.DataFrame,
    flat: pl.DataFrame,
    *,
    source: Path | None,
    header_row: int | None,
    sheet_name: str,
    other_sheets: Mapping[str, pl.DataFrame],
    highlighted: set[str],
    numeric_cells: Mapping[str, Mapping[str, pl.Series]],
    max_cells: int = KEEP_MAX_CELLS,
) -> list[str]:
    """An XLSX output: ``source`` kept as it is when it can be, else written anew.

    Without ``source`` (the input was not a workbook) the fast writer writes
    ``flat``. With it, the workbook is kept (``KeepWorkbook``) up to
    ``max_cells`` cells (``workbook_cells`` plus the cells added); above that,
    or when it cannot be kept, the fast writer writes it in the workbook's
    sheet order and a warning says what is not kept. Returns the warnings.
    """
    def write_anew(order: list[str] | None = None) -> None:
        """The fast writer: from the values, in ``order`` when the workbook's is known."""
        write_xlsx(shown, tmp, flat, sheet_name=sheet_name, other_sheets=other_sheets,
                   highlighted=highlighted, numeric_cells=numeric_cells,
                   sheet_order=order)  # fmt: skip

    if source is None:
        write_anew()
        return []
    appended = [name for name in df.columns if name in highlighted]
    why = _too_big(source, df, appended, max_cells)
    if why is None:
        from enrich.frames.xlsx_keep import CannotKeep, KeepWorkbook

        keep = KeepWorkbook(
            source=source,
            shown=shown,
            sheet_name=sheet_name,
            header_row=header_row,
            df=df,
            flat=flat,
            appended=appended,
        )
        try:
            return keep.write(tmp)
        except CannotKeep as exc:
            why = f"cannot keep {source.name} as it is: {exc}"
    write_anew(sheet_order(source))
    return [f"{shown}: {why}; written anew from its values: {NOT_KEPT}"]


def _too_big(source: Path, df: pl.DataFrame, appended: Sequence[str], max_cells: int) -> str | None:
    """Why ``source`` is not to be kept by size (None: it may be), in the user's words."""
    try:
        cells = workbook_cells(source) + (df.height + 1) * len(appended)
    except (OSError, zipfile.BadZipFile) as exc:
        return f"cannot keep {source.name} as it is: cannot read it again ({exc})"
    if cells > max_cells:
        return (
            f"{source.name} with the added columns spans {cells:,} cells, more than the "
            f"{max_cells:,} an output keeps as the workbook was"
        )
    return None
