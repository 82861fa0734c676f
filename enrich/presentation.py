"""What a person sees on stderr: log lines, a progress bar, and a final table.

Nothing here ever writes to stdout. The bar and the table are drawn when
stderr is a terminal, or when ``--progress`` asks for them; ``--no-progress``
(or a pipe, a file, cron) gives plain log lines instead, the last of which
says the same as the table. ``--log-format json`` turns the bar off unless
``--progress`` is given too.

The bar shows numbers done / to call, requests per second, the ETA, and the
errors and throttle answers so far; the table shows the outcome by status,
the errors by code, calls, cache hits, elapsed time and rate.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from enrich.job import RunConfig
from enrich.logs import Log
from enrich.phones import PHONE_ERROR_CODES
from enrich.types import Progress

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

__all__ = ["Presentation", "format_duration", "make_presentation"]

#: Error codes that mean "no usable number" (rows counted as ``invalid``).
_INVALID_CODES = frozenset(PHONE_ERROR_CODES)


def format_duration(seconds: float | None) -> str:
    """``75.2`` → ``1:15``; ``3725`` → ``1:02:05``; ``None`` → ``-:--``."""
    if seconds is None:
        return "-:--"
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Presentation:
    """Log + optional rich progress bar + end-of-run table, all on stderr.

    ``console`` is a seam for tests (a ``rich.console.Console`` writing to a
    buffer); by default a console on stderr is made when the bar is wanted.
    """

    def __init__(
        self,
        *,
        log: Log,
        progress: bool,
        force_terminal: bool = False,
        console: Console | None = None,
    ) -> None:
        self.log = log
        self._want_bar = progress
        self._force_terminal = force_terminal
        self._console: Console | None = console
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Presentation:
        if not self._want_bar:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        if self._console is None:
            self._console = Console(stderr=True, force_terminal=self._force_terminal or None)
        self._bar = RichProgress(
            TextColumn("[bold]enrich[/]"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>5.1f} req/s"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("errors {task.fields[errors]}"),
            TextColumn("throttled {task.fields[throttled]}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
            # stdout stays the caller's: nothing of ours may ever land there.
            redirect_stdout=False,
            # log lines written to stderr scroll above the bar instead of tearing it
            redirect_stderr=True,
        )
        self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop_bar()

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def on_progress(self, p: Progress) -> None:
        """Called by the runner after every finished number (cheap: rich redraws at 10 Hz)."""
        if self._bar is None:
            return
        fields: dict[str, Any] = {
            "rate": p.rate,
            "eta": format_duration(p.eta_s),
            "errors": p.errors,
            "throttled": p.throttled,
        }
        if self._task is None:
            self._task = self._bar.add_task("enrich", total=p.total, **fields)
        self._bar.update(self._task, total=p.total, completed=p.done, **fields)

    def final_table(self, summary: Mapping[str, Any]) -> None:
        """The outcome as a table, under the bar (only when the bar is shown)."""
        if self._console is None or not self._want_bar:
            return
        self._stop_bar()
        self._console.print(summary_table(summary))


def summary_table(summary: Mapping[str, Any]) -> Any:
    """A ``rich.table.Table`` of a run summary (see SPEC "Run summary")."""
    from rich.table import Table

    by_code: Mapping[str, int] = summary.get("errors_by_code") or {}
    invalid = int(summary.get("invalid") or 0)
    errors = int(summary.get("error_rows") or 0) - invalid
    table = Table(title="enrich: run summary", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("rows", str(summary.get("rows", 0)))
    table.add_row("ok", str(summary.get("ok", 0)))
    table.add_row("no_profile", str(summary.get("no_profile", 0)))
    table.add_row("invalid", str(invalid))
    for code, n in by_code.items():
        if code in _INVALID_CODES:
            table.add_row(f"  {code}", str(n))
    table.add_row("errors", str(errors))
    for code, n in by_code.items():
        if code not in _INVALID_CODES:
            table.add_row(f"  {code}", str(n))
    table.add_row("calls", str(summary.get("api_calls", 0)))
    table.add_row("  retries", str(summary.get("retries", 0)))
    table.add_row("  throttled", str(summary.get("throttled", 0)))
    table.add_row("cache hits", str(summary.get("cache_hits", 0)))
    table.add_row("elapsed", f"{float(summary.get('elapsed_s') or 0.0):.1f} s")
    table.add_row("rate", f"{float(summary.get('requests_per_s') or 0.0):.1f} req/s")
    if summary.get("output"):
        table.add_row("output", str(summary["output"]))
    return table


def make_presentation(cfg: RunConfig) -> Presentation:
    """The bar is on when ``--progress`` says so, else when stderr is a terminal.

    ``--progress`` forces it even on a pipe (drawn as on a terminal);
    ``--no-progress`` turns it off; JSON logs turn it off unless forced.
    """
    if cfg.progress is not None:
        want = cfg.progress
    else:
        want = cfg.log_format == "text" and sys.stderr.isatty()
    return Presentation(
        log=Log(fmt=cfg.log_format, quiet_info=want),
        progress=want,
        force_terminal=cfg.progress is True,
    )
