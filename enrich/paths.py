"""Where a run writes: the three outputs' paths, checked before anything happens.

The side files (error report, summary) are named after the output, so two runs of
one input with two outputs never share them (SPEC.md "Names of the side files").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from enrich import frames
from enrich.errors import UsageError
from enrich.job import RunConfig
from enrich.metrics import check_metrics_path

__all__ = ["OutputPaths", "default_paths", "output_paths", "side_name"]


@dataclass(frozen=True)
class OutputPaths:
    """The three outputs, and the enriched file's format."""

    output: Path
    errors: Path
    summary: Path
    fmt: frames.Format


#: Output extensions, longest first, that the side files' names replace.
_OUTPUT_EXTS = (".csv.gz", ".tsv.gz", ".csv.zst", ".parquet", ".xlsx", ".csv", ".tsv")


def side_name(output: Path, suffix: str) -> Path:
    """The side file named after the output: ``a.enriched.csv`` → ``a.errors.csv``
    (``.enriched.<ext>``, or ``.<ext>``, replaced by ``suffix``), beside it."""
    name = output.name
    for ext in _OUTPUT_EXTS:
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    else:
        name = output.stem
    if name.lower().endswith(".enriched"):
        name = name[: -len(".enriched")]
    return output.with_name(name + suffix)


def default_paths(cfg: RunConfig) -> tuple[Path, Path, Path]:
    """(output, errors, summary) as SPEC.md names them by default: the side files
    after the output, so two runs with two outputs never share them."""
    inp = cfg.input
    output = cfg.output or inp.with_name(f"{inp.stem}.enriched{inp.suffix.lower()}")
    errors = cfg.errors or side_name(output, ".errors.csv")
    summary = cfg.summary or side_name(output, ".summary.json")
    return output, errors, summary


def output_paths(cfg: RunConfig) -> OutputPaths:
    """Check the input format and the three output paths before anything else happens."""
    output, errors_path, summary_path = default_paths(cfg)
    frames.format_for(cfg.input, role="input")  # a bad input is exit 1, whatever the output
    out_fmt = frames.format_for(output, role="output")
    for p in (output, errors_path, summary_path):
        if p.parent.exists() and not p.parent.is_dir():
            raise UsageError(f"cannot write {p}: {p.parent} is not a folder")
        if not p.parent.is_dir():
            raise UsageError(f"cannot write {p}: folder {p.parent} does not exist")
        if p.is_dir():
            raise UsageError(f"cannot write {p}: it is a directory")
    if errors_path.suffix.lower() != ".csv":
        raise UsageError(f"--errors {errors_path.name}: the error report is a .csv file")
    if summary_path.suffix.lower() != ".json":
        raise UsageError(f"--summary {summary_path.name}: the run summary is a .json file")
    if cfg.metrics_file is not None:
        check_metrics_path(cfg.metrics_file)
    distinct = {p.resolve() for p in (output, errors_path, summary_path, cfg.input)}
    if len(distinct) < 4:
        raise UsageError("input, output, error report and summary must be four different files")
    return OutputPaths(output, errors_path, summary_path, out_fmt)
