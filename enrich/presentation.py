"""What a person sees on stderr: log lines, a progress bar, and a final table.

Nothing here ever writes to stdout. The bar and the table are drawn when
stderr is a terminal, or when ``--progress`` asks for them; ``--no-progress``
(or a pipe, a file, cron) gives plain log lines instead, the last of which
says the same as the table. ``--log-format json`` turns the bar off unless
``--progress`` is given too.

The bar shows numbers done / to call, requests per second, the ETA, and the
errors and throttle answers so far; the errors as they happen, too: a failed
attempt shows at once (``errors 0 (41 failed tries)``), before its number has
run out of retries and counts as an error row. The table shows the outcome by status,
the errors by code, calls, cache hits, elapsed time and rate. On a narrow
terminal the bar's parts give way in ``BAR_DROP_ORDER`` (the bar itself
shrinks first), so done / to call is always on the line (``fit_bar``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from enrich.job import RunConfig
from enrich.logs import Log
from enrich.phones import PHONE_ERROR_CODES
from enrich.types import Progress

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.progress import Progress as RichProgress
    from rich.progress import ProgressColumn, Task, TaskID

__all__ = [
    "BAR_DROP_ORDER",
    "BAR_PARTS",
    "Presentation",
    "errors_text",
    "fit_bar",
    "format_duration",
    "make_presentation",
]

#: Error codes that mean "no usable number" (rows counted as ``invalid``).
_INVALID_CODES = frozenset(PHONE_ERROR_CODES)

#: The progress line's parts, in the order they are shown.
BAR_PARTS = ("name", "bar", "count", "rate", "eta", "errors", "throttled", "elapsed")
#: What gives way, first to last, when the line is too narrow for every part; the
#: bar shrinks from ``_BAR_WIDTH`` to ``_BAR_MIN`` before anything goes. ``count``
#: (done / to call) never goes.
BAR_DROP_ORDER = ("elapsed", "rate", "throttled", "name", "eta", "bar", "errors")
_BAR_WIDTH = 30
_BAR_MIN = 10


def fit_bar(widths: Mapping[str, int], width: int) -> tuple[tuple[str, ...], int]:
    """The parts that fit on a line of ``width`` cells, and the bar's width (0: no bar).

    ``widths``: the width of every part of ``BAR_PARTS`` but the bar. Parts are
    one space apart. Pure, so a layout is tested without a terminal.
    """
    shown = list(BAR_PARTS)

    def room() -> int:
        used = sum(widths[part] for part in shown if part != "bar")
        return width - used - (len(shown) - 1)

    for part in (None, *BAR_DROP_ORDER):
        if part is not None:
            shown.remove(part)
        if "bar" in shown and room() >= _BAR_MIN:
            return tuple(shown), min(_BAR_WIDTH, room())
        if "bar" not in shown and room() >= 0:
            return tuple(shown), 0
    return tuple(shown), 0  # only the count, even if the line cuts it


def errors_text(p: Progress) -> str:
    """The bar's errors part: ``errors 2``, and the failed attempts when some of them
    are not (yet) error rows: ``errors 0 (41 failed tries)`` while an endpoint that
    refuses every connection is being retried."""
    text = f"errors {p.errors}"
    if p.failed_attempts > p.errors:
        tries = "try" if p.failed_attempts == 1 else "tries"
        text += f" ({p.failed_attempts} failed {tries})"
    return text


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
        self._phases: dict[str, TaskID] = {}

    def __enter__(self) -> Presentation:
        if not self._want_bar:
            return self
        from rich.console import Console

        if self._console is None:
            self._console = Console(stderr=True, force_terminal=self._force_terminal or None)
        self._bar = _fitting_progress(self._console)
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
            # the finished state, drawn once more: in Jupyter rich's stop() does not, and
            # the bar would be left on its last 10 Hz frame (24/25)
            self._bar.refresh()
            self._bar.stop()
            self._bar = None

    def on_progress(self, p: Progress) -> None:
        """Called by the runner after every finished number (cheap: rich redraws at 10 Hz).

        The errors part reads ``p`` itself at every redraw (``live``): failed attempts
        come between finished numbers, and show as they happen.
        """
        if self._bar is None:
            return
        fields: dict[str, Any] = {
            "rate": p.rate,
            "eta": format_duration(p.eta_s),
            "throttled": p.throttled,
            "live": p,
        }
        if self._task is None:
            self._task = self._bar.add_task("enrich", total=p.total, **fields)
        self._bar.update(self._task, total=p.total, completed=p.done, **fields)

    def on_phase(self, phase: str, done: int, total: int) -> None:
        """A large file's ``reading``, ``normalising`` or ``writing`` (``Seams.on_phase``):
        a line of its own per phase, above the calls' bar; ``reading`` and ``writing``
        count bytes of the input, ``normalising`` distinct phone cells."""
        if self._bar is None:
            return
        task = self._phases.get(phase)
        if task is None:
            task = self._phases[phase] = self._bar.add_task(
                phase, total=total, phase=phase, unit="MB" if phase != "normalising" else ""
            )
        self._bar.update(task, total=total, completed=min(done, total))

    def final_table(self, summary: Mapping[str, Any]) -> None:
        """The outcome as a table, under the bar (only when the bar is shown)."""
        if self._console is None or not self._want_bar:
            return
        self._stop_bar()
        self._console.print(summary_table(summary))


def _fitting_progress(console: Console) -> RichProgress:
    """A rich progress display whose line is laid out for the console's width at every
    redraw (a resized terminal included): ``fit_bar`` says which parts are shown."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.table import Column, Table
    from rich.text import Text

    class ErrorsColumn(ProgressColumn):
        """``errors N (M failed tries)``, read from the run's live counters at each redraw."""

        def render(self, task: Task) -> Text:
            live = task.fields.get("live")
            return Text(errors_text(live) if isinstance(live, Progress) else "errors 0")

    bar = BarColumn(bar_width=_BAR_WIDTH)
    parts: dict[str, ProgressColumn] = {
        "name": TextColumn("[bold]enrich[/]"),
        "bar": bar,
        "count": MofNCompleteColumn(),
        "rate": TextColumn("{task.fields[rate]:>5.1f} req/s"),
        "eta": TextColumn("ETA {task.fields[eta]}"),
        "errors": ErrorsColumn(),
        "throttled": TextColumn("throttled {task.fields[throttled]}"),
        "elapsed": TimeElapsedColumn(),
    }

    class FittingProgress(RichProgress):
        def get_renderables(self) -> Iterable[RenderableType]:
            # rich's documented hook for a custom layout (rich would squeeze every
            # column alike, and cut the count first)
            for task in self.tasks:
                if task.visible:
                    yield self._line(task)

        def _line(self, task: Task) -> RenderableType:
            if "phase" in task.fields:
                return self._phase_line(task)
            cells = {name: col.render(task) for name, col in parts.items() if name != "bar"}
            widths = {name: self.console.measure(cell).maximum for name, cell in cells.items()}
            shown, bar_width = fit_bar(widths, self.console.width)
            bar.bar_width = bar_width
            grid = Table.grid(*(Column(no_wrap=True) for _ in shown), padding=(0, 1))
            grid.add_row(*(bar.render(task) if name == "bar" else cells[name] for name in shown))
            return grid

        def _phase_line(self, task: Task) -> RenderableType:
            """``reading  ━━━━━━━━━  312/638 MB  49 %  0:00:12``: a large file's phase.

            On a narrow line the elapsed time goes first, then the share, the bar,
            the phase's name; the count stays."""
            done, total = task.completed, task.total or 0
            if task.fields.get("unit") == "MB":
                count = f"{done / 1e6:.0f}/{total / 1e6:.0f} MB"
            else:
                count = f"{done:.0f}/{total:.0f}"
            cells: dict[str, RenderableType] = {
                "name": Text(f"{task.fields['phase']:<11}"),
                "count": Text(count),
                "share": Text(f"{100.0 * done / total if total else 100.0:3.0f} %"),
                "elapsed": elapsed.render(task),
            }
            widths = {name: self.console.measure(cell).maximum for name, cell in cells.items()}
            shown = ["name", "bar", "count", "share", "elapsed"]
            for gone in (None, "elapsed", "share", "bar", "name"):
                if gone is not None:
                    shown.remove(gone)
                room = self.console.width - sum(widths[n] for n in shown if n != "bar")
                room -= len(shown) - 1
                if "bar" not in shown and room >= 0:
                    break
                if "bar" in shown and room >= _BAR_MIN:
                    phase_bar.bar_width = min(_BAR_WIDTH, room)
                    break
            grid = Table.grid(*(Column(no_wrap=True) for _ in shown), padding=(0, 1))
            grid.add_row(*(phase_bar.render(task) if n == "bar" else cells[n] for n in shown))
            return grid

    phase_bar = BarColumn(bar_width=_BAR_WIDTH)
    elapsed = TimeElapsedColumn()

    return FittingProgress(
        *parts.values(),
        console=console,
        transient=False,
        # stdout stays the caller's: nothing of ours may ever land there.
        redirect_stdout=False,
        # log lines written to stderr scroll above the bar instead of tearing it
        redirect_stderr=True,
    )


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
        table.add_row("output", str(Path(summary["output"]).resolve()))
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
