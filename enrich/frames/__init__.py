"""Read and write the tables the job works on: CSV, Parquet and XLSX.

Reading keeps every input cell as it was written (CSV cells stay text, so
``007``, 13-digit numbers and dates come back exactly; Parquet keeps its
dtypes; XLSX keeps numbers numeric). Every problem with an input becomes one
``InputError`` line naming the file and what to fix.

Writing is atomic (``atomic_path``: a temp file beside the target, fsync,
``os.replace``; ``staged_outputs`` for several files renamed together) and safe
for spreadsheet programs: text that came from the API is neutralised when it
could start a formula (``neutralize``), and no XLSX cell is ever written as a
formula. Input columns are never altered.

This module is the façade; the work is done by one module per concern, and
imports among them point one way (format modules → ``cells``, ``_common``)::

    _common     Format, file types by name (.tsv, .csv.gz, -), parse_separator, Table;
                input checks; error reasons
    cells       cell_texts, neutralize, for_spreadsheet (text for CSV and XLSX)
    sources     standard input; gzip and zstd undone
    csv_text    CSV bytes to text: encodings, BOM, line ends, title lines skipped
    csv_read    CSV: sniff the separator, scan every record, build the frame, source lines
    csv_write   CSV: BOM, line ends, tabs and compression as the names say
    parquet     Parquet: read (checked), write
    xlsx_read   XLSX: pick the sheet, read it and the others, mixed number/text cells
    xlsx_write  XLSX: text cells never formulas, typed cells, header, widths
    staging     atomic_path, staged_outputs (several files committed together), stale temps
    tables      read_table, write_table: the format's module by extension
"""

from __future__ import annotations

from enrich.frames._common import (
    INPUT_FORMATS,
    STDIN_NAME,
    FileType,
    Format,
    InputFormat,
    Table,
    file_type,
    format_for,
    is_stdio,
    parse_separator,
    split_name,
)
from enrich.frames.cells import DANGEROUS_PREFIXES, cell_texts, neutralize
from enrich.frames.csv_read import CSV_SEPARATORS
from enrich.frames.staging import atomic_path, remove_stale_temps, staged_outputs, staging_path
from enrich.frames.tables import read_table, write_table

__all__ = [
    "CSV_SEPARATORS",
    "DANGEROUS_PREFIXES",
    "INPUT_FORMATS",
    "STDIN_NAME",
    "FileType",
    "Format",
    "InputFormat",
    "Table",
    "atomic_path",
    "cell_texts",
    "file_type",
    "format_for",
    "is_stdio",
    "neutralize",
    "parse_separator",
    "read_table",
    "remove_stale_temps",
    "split_name",
    "staged_outputs",
    "staging_path",
    "write_table",
]
