"""The three outputs: the enriched file, the error report and the run summary.

Every input row, in input order, with its columns unchanged, then exactly the
``BP_COLUMNS``. The error report has one line per row that did not end ``ok`` or
``no_profile``. All three are staged as temporary files beside their targets and
renamed only once all three are whole, so a failure never leaves a half-written
file nor replaces an older good one.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from enrich import frames
from enrich.cache import RESULT_SCHEMA
from enrich.errors import InputError
from enrich.frames.appending import CsvAppender, ParquetParts, output_separator
from enrich.frames.cells import for_spreadsheet
from enrich.frames.stream import Batch
from enrich.logs import one_line
from enrich.phones import PHONE_ERROR_CODES
from enrich.prepare import BP_PHONE_COLUMN, Prepared, refuse_enriched_input
from enrich.types import API_TEXT_COLUMNS, BP_COLUMNS, ERROR_COLUMNS, Key, KeyOutcome

__all__ = [
    "API_TEXT_COLUMNS",
    "BP_COLUMNS",
    "ERROR_COLUMNS",
    "enriched_frame",
    "error_frame",
    "for_copy",
    "public_columns",
    "refuse_enriched_input",
    "results_frame",
    "row_counts",
    "write_outputs",
]

_PROFILE_ATTRS = (
    ("bp_about", "about"),
    ("bp_address", "address"),
    ("bp_description", "description"),
    ("bp_vertical", "vertical"),
    ("bp_email", "email"),
    ("bp_profile_picture_url", "profile_picture_url"),
)
_LOCAL_MESSAGES = {
    "Client.MissingPhone": "empty phone cell",
    "Client.InvalidPhone": "not a possible phone number",
    "Client.MissingCustSpaceId": "empty CustSpaceId cell",
}
_S = pl.String
# ``phone`` and ``cust_space_id`` are input values: as they were, like the input
# columns of the output (SPEC.md); the rest came from the API.
_ERROR_API_TEXT = ("error_code", "error_message", "request_id")
_ERROR_SCHEMA = {
    "row": pl.Int64,
    "phone": _S,
    "phone_normalized": _S,
    "cust_space_id": _S,
    "error_code": _S,
    "error_message": _S,
    "http_status": pl.Int64,
    "request_id": _S,
    "attempts": pl.Int64,
    "source_row": pl.Int64,
}


def results_frame(cached: pl.DataFrame, fresh: Mapping[Key, KeyOutcome]) -> pl.DataFrame:
    """One row per answered key: the ledger's frame (``Ledger.lookup_frame``, profiles
    decoded) plus this run's outcomes."""
    rows = [
        (
            space,
            number,
            o.status,
            o.profile.to_json() if o.profile is not None else None,
            o.request_id,
            int(o.fetched_at * 1000) if o.fetched_at is not None else None,
            o.error_code,
            o.error_message,
            o.http_status,
        )
        for (space, number), o in fresh.items()
    ]
    attempts = [0] * cached.height + [o.attempts for o in fresh.values()]
    both = pl.concat([cached, pl.DataFrame(rows, schema=RESULT_SCHEMA, orient="row")])
    profile = pl.col("profile")
    return both.select(
        "cust",
        "number",
        "r_status",
        *(profile.struct.field(attr).alias(col) for col, attr in _PROFILE_ATTRS),
        profile.struct.field("websites").fill_null(pl.lit([], pl.List(_S))).alias("bp_websites"),
        "r_fetched_ms",
        "bp_request_id",
        "r_code",
        "r_message",
        "r_http",
        pl.Series("r_attempts", attempts, dtype=pl.Int64),
    )


def enriched_frame(
    prep: Prepared, results: pl.DataFrame, *, join_websites: bool = False
) -> pl.DataFrame:
    """Input rows + the bp_* columns (plus private ``_``-prefixed report columns).

    ``results``: ``results_frame`` — one row per answered key. ``join_websites``
    (for CSV and XLSX): ``bp_websites`` as its URLs joined by a space, done once
    per key rather than once per row.
    """
    refuse_enriched_input(prep.table.df.columns)
    streamed = prep.source is not None
    if join_websites:
        sites = pl.col("bp_websites").list.join(" ")
        results = results.with_columns(  # as ``for_spreadsheet`` joins a list: "" is no cell
            pl.when(sites != "").then(sites).alias("bp_websites")
        )
    joined = prep.rows.join(results, on=["cust", "number"], how="left", maintain_order="left")
    local = pl.col("err")
    status = (
        pl.when(local.is_in(PHONE_ERROR_CODES))
        .then(pl.lit("invalid_phone"))
        .when(local.is_not_null())
        .then(pl.lit("error"))
        .when(pl.col("r_status").is_null())
        .then(pl.lit("error"))
        .otherwise(pl.col("r_status"))
    )
    code = (
        pl.when(local.is_not_null())
        .then(local)
        .when(pl.col("r_status").is_null())
        .then(pl.lit("Client.Aborted"))
        .otherwise(pl.col("r_code"))
    )
    message = (
        pl.when(local.is_not_null())
        .then(local.replace_strict(_LOCAL_MESSAGES, default=None, return_dtype=_S))
        .when(pl.col("r_status").is_null())
        .then(pl.lit("never attempted: the run was aborted"))
        .otherwise(pl.col("r_message"))
    )
    fetched = (
        pl.from_epoch(pl.col("r_fetched_ms"), time_unit="ms")
        .dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        .cast(_S)
    )
    bp = joined.select(
        *(_group_columns(prep) if streamed else []),
        status.alias("bp_status"),
        pl.col("number").alias("bp_phone"),
        *(pl.col(c) for c, _ in _PROFILE_ATTRS),
        pl.when(status.is_in(["ok", "no_profile"]))
        .then(pl.col("bp_websites"))
        .otherwise(pl.lit(None, dtype=joined.schema["bp_websites"]))
        .alias("bp_websites"),
        fetched.alias("bp_fetched_at"),
        pl.col("bp_request_id"),
        pl.when(status.is_in(["ok", "no_profile"]))
        .then(pl.lit(None, dtype=_S))
        .otherwise(code)
        .alias("bp_error_code"),
        # several --phone-column: the 14th column, the one each row's number came from
        *([pl.col("phone_column").alias(BP_PHONE_COLUMN)] if prep.several_columns else []),
        *(
            []
            if streamed
            else [
                pl.col("row").alias("_row"),
                (pl.col("source_row") if "source_row" in joined.columns else pl.col("row"))
                .cast(pl.Int64)
                .alias("_source_row"),
            ]
        ),
        pl.col("raw").alias("_raw"),
        pl.col("cust").alias("_cust"),
        message.alias("_message"),
        pl.col("r_http").alias("_http"),
        pl.col("r_attempts").fill_null(0).alias("_attempts"),
    )
    if streamed:
        # one row per distinct (CustSpaceId, phone cells): the batches are joined to it.
        # For a text output its API text is neutralised here, once per group (it is
        # idempotent); bp_error_code stays as the counts want it, done per batch.
        if join_websites:
            api = [c for c in API_TEXT_COLUMNS if c != "bp_error_code"]
            bp = for_spreadsheet(bp, api_text_columns=api, list_columns=())
        return bp
    return pl.concat([prep.table.df, bp], how="horizontal")


def _group_columns(prep: Prepared) -> list[pl.Expr]:
    """A large file's group keys and how many rows each stands for (``_n``)."""
    keys = [pl.col("cust").alias("_k_cust")]
    keys += [pl.col(f"_p{i}") for i in range(len(prep.phone_columns))]
    return [*keys, pl.col("n").alias("_n")]


def error_frame(prep: Prepared, frame: pl.DataFrame) -> pl.DataFrame:
    """One line per row that did not end ok or no_profile.

    ``error_message`` is made one line with no control character (``logs.one_line``):
    it may quote a server's text or the start of a garbage body.
    """
    if prep.source is not None and "_row" not in frame.columns:
        return pl.DataFrame(schema=_ERROR_SCHEMA)  # written batch by batch
    bad = frame.filter(~pl.col("bp_status").is_in(["ok", "no_profile"]))
    messages = bad["_message"].drop_nulls().unique().to_list()
    unsafe = {m: one_line(m) for m in messages if not m.isprintable()}
    return bad.select(
        pl.col("_row").alias("row"),
        pl.col("_raw").alias("phone"),
        pl.col("bp_phone").alias("phone_normalized"),
        pl.col("_cust").alias("cust_space_id"),
        pl.col("bp_error_code").alias("error_code"),
        pl.col("_message").replace(unsafe).alias("error_message"),
        pl.col("_http").alias("http_status"),
        pl.col("bp_request_id").alias("request_id"),
        pl.col("_attempts").alias("attempts"),
        pl.col("_source_row").alias("source_row"),
    )


def row_counts(frame: pl.DataFrame) -> dict[str, Any]:
    """ok / no_profile / error_rows and errors_by_code, counted over rows.

    A large file's frame has one row per group of rows (``_n`` of them).
    """
    if "_n" not in frame.columns:
        frame = frame.select("bp_status", "bp_error_code", pl.lit(1).alias("_n"))
    n = pl.col("_n")
    status = pl.col("bp_status")
    ok, nop, bad_n = frame.select(
        n.filter(status == "ok").sum().alias("ok"),
        n.filter(status == "no_profile").sum().alias("no_profile"),
        n.filter(~status.is_in(["ok", "no_profile"])).sum().alias("bad"),
    ).row(0)
    bad = frame.filter(~status.is_in(["ok", "no_profile"]))
    by_code = {
        str(code): int(count)
        for code, count in bad.group_by("bp_error_code")
        .agg(n.sum().alias("count"))
        .sort("bp_error_code")
        .iter_rows()
    }
    return {
        "ok": int(ok or 0),
        "no_profile": int(nop or 0),
        "error_rows": int(bad_n or 0),
        "errors_by_code": by_code,
    }


def write_outputs(
    prep: Prepared,
    frame: pl.DataFrame,
    err_frame: pl.DataFrame,
    summary: Mapping[str, Any],
    *,
    output: Path,
    errors: Path,
    summary_path: Path,
    out_fmt: frames.Format,
    source: Path | None = None,
    commit: contextlib.AbstractContextManager[None] | None = None,
) -> list[str]:
    """Stage all three outputs, then rename them into place inside ``commit``; the
    writer's warnings for the user (what an XLSX output could not keep).

    ``commit`` (default: nothing) is where the run stops being interruptible, so the
    three renames are never split by a signal. Staged files left by a killed run
    (its process gone) are removed first (``frames.staged_outputs``). ``source``:
    the input file, for an XLSX output that keeps the user's workbook. A CSV output
    of a CSV input keeps its BOM and line ends (Excel's "CSV UTF-8" opens right);
    standard output gets no BOM.
    """
    if prep.source is not None:
        _write_streamed(prep, frame, summary, (output, errors, summary_path), out_fmt, commit)
        return []
    table = prep.table
    same_kind = table.fmt == "csv" and out_fmt == "csv"
    public = frame.select(public_columns(prep, frame))
    separator = prep.table.separator if prep.table.fmt == "csv" and out_fmt == "csv" else ","
    targets = (output, errors, summary_path)
    with frames.staged_outputs(targets, commit=commit) as (out_tmp, err_tmp, summary_tmp):
        warnings = frames.write_table(
            public,
            out_tmp,
            fmt=out_fmt,
            api_text_columns=API_TEXT_COLUMNS,
            list_columns=("bp_websites",),
            sheet_name=prep.table.sheet_name,
            other_sheets=prep.table.other_sheets,
            numeric_cells=prep.table.numeric_cells if prep.table.fmt == "xlsx" else None,
            separator=separator,
            shown_as=output,
            source=source if table.fmt == "xlsx" else None,
            header_row=table.header_row,
            bom=same_kind and table.bom and not frames.is_stdio(output),
            line_terminator=table.line_terminator if same_kind else "\n",
        )
        frames.write_table(
            err_frame,
            err_tmp,
            fmt="csv",
            # ``phone`` and ``cust_space_id`` are input values: as they were, like the
            # input columns of the output (SPEC.md); the rest came from the API.
            api_text_columns=_ERROR_API_TEXT,
            list_columns=(),
            shown_as=errors,
        )
        _write_summary(summary, summary_tmp, summary_path)
    return warnings


def _join_groups(keys: pl.DataFrame, groups: pl.DataFrame, on: list[str]) -> pl.DataFrame:
    """Each row of a batch with its group's columns, in row order.

    Joined on one 64-bit hash of the keys (a million groups: a hash table of
    integers per batch, not of strings), then checked key by key; a batch where two
    groups share a hash is joined on the keys themselves.
    """
    right = groups.rename({c: f"_g{c}" for c in on})
    joined = keys.with_columns(pl.struct(on).hash().alias("_h")).join(
        right, on="_h", how="left", maintain_order="left"
    )
    if joined.height == keys.height:
        same = joined.select(
            pl.all_horizontal(*(pl.col(c).eq_missing(pl.col(f"_g{c}")) for c in on))
        )
        if same.to_series().all():
            return joined
    return keys.join(groups, on=on, how="left", nulls_equal=True, maintain_order="left")


def _write_summary(summary: Mapping[str, Any], tmp_path: Path, shown: Path) -> None:
    with frames.atomic_path(tmp_path, shown_as=shown) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8")


def _write_streamed(
    prep: Prepared,
    groups: pl.DataFrame,
    summary: Mapping[str, Any],
    targets: tuple[Path, Path, Path],
    out_fmt: frames.Format,
    commit: contextlib.AbstractContextManager[None] | None,
) -> None:
    """Pass 2 over a large file: each batch joined to the groups' outcomes, appended.

    ``groups``: ``enriched_frame`` of a streamed ``Prepared``. Output and error
    report come out as ``write_outputs`` writes them whole, in input order.

    A CSV file that pass 1 found free of quotes, written as CSV with its separator,
    is copied line by line: each group's ``bp_*`` cells are written once (by
    ``write_csv``, so quoted as it quotes them) and each row's line gets its
    group's text, with no cell of the row parsed or quoted again.
    """
    source = prep.source
    assert source is not None and prep.batch_keys is not None
    output, errors, summary_path = targets
    on = ["_k_cust", *(f"_p{i}" for i in range(len(prep.phone_columns)))]
    order = [c for c in groups.columns if c not in (*on, "_n")]
    groups = groups.with_columns(pl.struct(on).hash().alias("_h"))
    order[order.index("_raw") : order.index("_raw")] = ["_row", "_source_row"]
    table = source
    same_kind = table.fmt == "csv" and out_fmt == "csv"
    with frames.staged_outputs(targets, commit=commit) as (out_tmp, err_tmp, summary_tmp):
        out: CsvAppender | ParquetParts = (
            ParquetParts(out_tmp, shown=output)
            if out_fmt == "parquet"
            else CsvAppender(
                out_tmp,
                shown=output,
                separator=table.separator if same_kind else ",",
                bom=same_kind and table.bom and not frames.is_stdio(output),
                line_terminator=table.line_terminator if same_kind else "\n",
            )
        )
        err = CsvAppender(err_tmp, shown=errors, separator=",", bom=False, line_terminator="\n")
        copied = "_line" in groups.columns  # ``for_copy``: each row's line is copied
        header = [*table.df.columns, *_public_bp(prep)]
        try:
            seen, wrote = 0, False
            empty = Batch(table.df, pl.Series("source_row", [], dtype=pl.Int64))
            batches = (
                source.batches(checked=True, columns=table.key_columns, lines=True)
                if copied
                else source.batches(checked=True)
            )
            for batch in itertools.chain(batches, [empty]):
                if batch is empty and wrote:
                    break
                wrote = True
                height = batch.df.height
                keys = (
                    prep.batch_keys(batch.df)
                    .rename({"cust": "_k_cust"})
                    .with_columns(
                        pl.int_range(seen + 1, seen + height + 1, dtype=pl.Int64).alias("_row"),
                        batch.source_rows.cast(pl.Int64).alias("_source_row"),
                    )
                )
                seen += height
                bp = _join_groups(keys, groups, on).select(order)
                if copied:
                    if batch.lines is None and batch is not empty:
                        raise _changed(source.path)
                    assert isinstance(out, CsvAppender)
                    lines = batch.lines if batch.lines is not None else pl.Series([], dtype=_S)
                    if bp["_line"].null_count():
                        raise _changed(source.path)
                    out.write_lines(lines, bp["_line"], header=header)
                    frame = bp
                else:
                    frame = pl.concat([batch.df, bp], how="horizontal")
                    public = frame.select([*batch.df.columns, *_public_bp(prep)])
                    if out_fmt == "csv":  # nested input cells as text; the error codes
                        flat = for_spreadsheet(
                            public if table.fmt != "csv" else public.select("bp_error_code"),
                            api_text_columns=("bp_error_code",),
                            list_columns=(),
                        )
                        public = public.with_columns(flat.get_columns())
                    out.write(public)
                err.write(
                    for_spreadsheet(
                        error_frame(prep, frame), api_text_columns=_ERROR_API_TEXT, list_columns=()
                    )
                )
                if source.on_phase is not None and batch is not empty:
                    source.on_phase("writing", batch.bytes_read, source.size)
        except BaseException:
            for handle in (out, err):
                with contextlib.suppress(Exception):
                    handle.discard()
            raise
        out.close()
        err.close()
        if source.path.stat().st_size != source.size:
            raise _changed(source.path)
        _write_summary(summary, summary_tmp, summary_path)


def _changed(path: Path) -> InputError:
    return InputError(f"{path} changed while it was read; run again once it is complete")


#: Ends each group's text while it is cut out of one ``write_csv`` (a text holding
#: this character is written the usual way).
_CUT = "\x1e"
_CUT_GROUPS = 100_000
#: The columns of a group the error report and the counts need.
_REPORTED = ("bp_status", "bp_phone", "bp_error_code", "bp_request_id")


def _public_bp(prep: Prepared) -> list[str]:
    return [*BP_COLUMNS, *([BP_PHONE_COLUMN] if prep.several_columns else [])]


def public_columns(prep: Prepared, frame: pl.DataFrame) -> list[str]:
    """The columns of ``frame`` (``enriched_frame``) an output holds: the input's (even
    those whose names start with ``_``), then the ``bp_*`` ones."""
    bp = _public_bp(prep)
    if prep.source is not None:  # a large file's groups: no input column
        return [c for c in bp if c in frame.columns]
    return [*prep.table.df.columns, *bp]


def for_copy(prep: Prepared, groups: pl.DataFrame, *, output: Path, out_fmt: str) -> pl.DataFrame:
    """A large file's groups (``enriched_frame``) ready for pass 2 to copy each row's line.

    Where the input is CSV without a quote (``StreamedTable.plain``) and the output
    CSV with its separator: each group's ``bp_*`` cells are written once, by
    ``write_csv`` (quoted as it quotes them), as ``_line``, and
    the text columns the output alone needs are dropped, so that pass 2 holds no
    more than it needs. Otherwise (or where a cell holds ``_CUT``) ``groups`` as it is.
    """
    source = prep.source
    if (
        source is None
        or not source.plain
        or source.fmt != "csv"
        or out_fmt != "csv"
        or output_separator(output, source.separator) != source.separator
        or [c for c in groups.columns if not c.startswith("_")] != _public_bp(prep)
    ):
        return groups
    public = _public_bp(prep)
    cells = groups.select(public)
    cells = cells.with_columns(
        for_spreadsheet(
            cells.select("bp_error_code"), api_text_columns=("bp_error_code",), list_columns=()
        ).get_columns()
    )
    pieces: list[pl.Series] = []
    for start in range(0, cells.height, _CUT_GROUPS):  # a slice at a time: bounded memory
        part = cells.slice(start, _CUT_GROUPS)
        buffer = io.BytesIO()
        part.write_csv(
            buffer,
            separator=source.separator,
            null_value="",
            include_header=False,
            line_terminator=_CUT,
        )
        data = buffer.getvalue()
        if data.count(_CUT.encode()) != part.height:
            return groups
        text = pl.Series([data], dtype=pl.Binary).cast(pl.String)
        pieces.append(text.str.split(_CUT).explode().head(part.height))
    line = pl.concat(pieces, rechunk=False) if pieces else pl.Series([], dtype=_S)
    keep = [c for c in groups.columns if c.startswith("_") or c in _REPORTED]
    return groups.select(keep).with_columns(line.alias("_line"))
