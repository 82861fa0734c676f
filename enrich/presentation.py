"""What a person sees on stderr: log lines, a progress bar on a terminal, a final table.

Nothing here goes to stdout; the progress bar is drawn only when stderr is a
terminal (or ``--progress`` forces it) and never with ``--no-progress``.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from enrich.job import RunConfig
from enrich.logs import Log
from enrich.runner import Progress

__all__ = ["Presentation", "make_presentation"]


class Presentation:
    """Log + optional rich progress bar + optional end-of-run table."""

    def __init__(self, *, log: Log, progress: bool) -> None:
        self.log = log
        self._want_bar = progress
        self._bar: Any = None
        self._task: Any = None
        self._console: Any = None

    def __enter__(self) -> Presentation:
        if self._want_bar:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._console = Console(stderr=True)
            self._bar = RichProgress(
                TextColumn("[bold]enrich[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>6.1f} req/s"),
                TextColumn("errors {task.fields[errors]}  throttled {task.fields[throttled]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self._console,
                transient=False,
            )
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def on_progress(self, p: Progress) -> None:
        """Called by the runner after every finished number."""
        if self._bar is None:
            return
        if self._task is None:
            self._task = self._bar.add_task(
                "enrich", total=p.total, rate=0.0, errors=0, throttled=0
            )
        self._bar.update(
            self._task, completed=p.done, rate=p.rate, errors=p.errors, throttled=p.throttled
        )

    def final_table(self, summary: dict[str, Any]) -> None:
        """A short table of the outcome (terminal only)."""
        if self._console is None:
            return
        from rich.table import Table

        if self._bar is not None:
            self._bar.stop()
        table = Table(title="enrich: run summary", show_header=False)
        table.add_column("what")
        table.add_column("value", justify="right")
        for key in (
            "rows",
            "ok",
            "no_profile",
            "invalid",
            "error_rows",
            "api_calls",
            "cache_hits",
            "retries",
            "throttled",
            "elapsed_s",
            "requests_per_s",
        ):
            table.add_row(key, str(summary.get(key)))
        for code, n in summary.get("errors_by_code", {}).items():
            table.add_row(f"  {code}", str(n))
        self._console.print(table)


def make_presentation(cfg: RunConfig) -> Presentation:
    """Bar on when asked, or by default when stderr is a terminal (and logs are text)."""
    want = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
    if cfg.log_format == "json" and cfg.progress is None:
        want = False
    return Presentation(log=Log(fmt=cfg.log_format, quiet_info=want), progress=want)
