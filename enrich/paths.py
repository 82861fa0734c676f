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

__all__ = ["OutputPaths", "default_paths", "lock_target", "output_paths", "side_name"]


@dataclass(frozen=True)
class OutputPaths:
    """The three outputs, and the enriched file's format."""

    output: Path
    errors: Path
    summary: Path
    fmt: frames.Format


#: What the files of standard input and output are named after (SPEC.md: ``stdin.*``).
_STDIO_STEM = "stdin"


def side_name(output: Path, suffix: str) -> Path:
    """The side file named after the output: ``a.enriched.csv`` → ``a.errors.csv``
    (``.enriched.<ext>``, or ``.<ext>``, replaced by ``suffix``), beside it; for
    standard output (``-o -``), ``stdin<suffix>`` in the current folder."""
    if frames.is_stdio(output):
        return Path(_STDIO_STEM + suffix)
    stem, _ = frames.split_name(output)
    if stem.lower().endswith(".enriched"):
        stem = stem[: -len(".enriched")]
    return output.with_name(stem + suffix)


def default_paths(cfg: RunConfig) -> tuple[Path, Path, Path]:
    """(output, errors, summary) as SPEC.md names them by default: the side files
    after the output, so two runs with two outputs never share them. Standard input
    is ``stdin.<format>`` in the current folder."""
    inp = cfg.input
    if frames.is_stdio(inp):
        default = Path(f"{_STDIO_STEM}.enriched.{cfg.input_format or 'csv'}")
    else:
        stem, ext = frames.split_name(inp)
        default = inp.with_name(f"{stem}.enriched{ext.lower()}")
    output = cfg.output or default
    errors = cfg.errors or side_name(output, ".errors.csv")
    summary = cfg.summary or side_name(output, ".summary.json")
    return output, errors, summary


def lock_target(paths: OutputPaths) -> Path:
    """What the run's lock is named after: the output, or (``-o -``) its error report."""
    return paths.errors if frames.is_stdio(paths.output) else paths.output


def output_paths(cfg: RunConfig) -> OutputPaths:
    """Check the input format and the three output paths before anything else happens."""
    output, errors_path, summary_path = default_paths(cfg)
    # a bad input is exit 1, whatever the output
    frames.format_for(cfg.input, role="input", given=cfg.input_format)
    out_fmt = frames.format_for(output, role="output")
    files = [p for p in (output, errors_path, summary_path) if not frames.is_stdio(p)]
    for p in files:
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
    named = [*files, *([] if frames.is_stdio(cfg.input) else [cfg.input])]
    if len({p.resolve() for p in named}) < len(named):
        raise UsageError("input, output, error report and summary must be four different files")
    return OutputPaths(output, errors_path, summary_path, out_fmt)
