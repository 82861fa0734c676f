"""The ``enrich`` command line: options → a RunConfig, errors → exit codes. No logic here."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click
from click.core import ParameterSource

from enrich import errors as E
from enrich.job import RunConfig, apply_job_file, parse_duration
from enrich.logs import Log, one_line
from enrich.types import utc_timestamp

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """An ``EnrichError`` as click shows it: one line on stderr, its own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        # One line, whatever the message carries (a server message may hold newlines).
        # A stop asked for by the user (exit 130) is no error: its message says
        # "interrupted: …" itself.
        label = "" if self.exit_code == E.EXIT_INTERRUPTED else "error: "
        click.echo(f"enrich: {label}{one_line(self.format_message())}", err=True)


def translate_errors(fn: F) -> F:
    """Turn the error tree into exit codes; never a traceback for a known failure."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except E.EnrichError as exc:
            raise CliError(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise CliError("interrupted", E.EXIT_INTERRUPTED) from None
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("ENRICH_DEBUG") == "1":
                raise
            raise CliError(
                f"internal error: {type(exc).__name__}: {exc} "
                "(rerun with ENRICH_DEBUG=1 for details, and please report it)",
                E.EXIT_FAILURE,
            ) from None

    return wrapper  # type: ignore[return-value]


def _one_or_several(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> str | tuple[str, ...] | None:
    """A repeatable option as RunConfig takes it: None, one name, or several."""
    del ctx, param
    if not value:
        return None
    return value[0] if len(value) == 1 else value


_PATH = click.Path(path_type=Path, readable=False)
_FILE = click.Path(path_type=Path, dir_okay=False, readable=False)

#: Every option of ``enrich run``, in ``--help`` order. ``enrich check`` takes the same
#: list, so a run's command line can swap its verb and the two cannot drift apart.
_RUN_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--job",
        "job",
        type=_FILE,
        help="Job file (TOML) with the options; flags given here override it.",
    ),
    click.option(
        "-o",
        "--output",
        type=_PATH,
        help="Enriched file; format from the extension (.csv .parquet .xlsx).  "
        "[default: <input stem>.enriched.<input ext> beside the input]",
    ),
    click.option(
        "--errors",
        type=_PATH,
        help="Error report (CSV).  "
        "[default: named after the output, a.enriched.csv → a.errors.csv]",
    ),
    click.option(
        "--summary",
        type=_PATH,
        help="Run summary (JSON).  "
        "[default: named after the output, a.enriched.csv → a.summary.json]",
    ),
    click.option(
        "--phone-column",
        metavar="NAME",
        multiple=True,
        callback=_one_or_several,
        help="Column holding the numbers (default: auto-detect phone, "
        "phone_number, mobile, msisdn, tel, whatsapp, Phone 1 - Value…). "
        "Give it again for more columns: per row, the first with a valid number is used.",
    ),
    click.option(
        "--cust-space-id",
        metavar="ID",
        envvar="CAMS_CUST_SPACE_ID",
        help="CustSpaceId for every row (env CAMS_CUST_SPACE_ID).",
    ),
    click.option(
        "--cust-space-column", metavar="NAME", help="Column with a per-row CustSpaceId."
    ),
    click.option(
        "--default-region",
        metavar="CC",
        help="ISO 3166 region (e.g. CN, GB) for numbers written without a country code.",
    ),
    click.option(
        "--sheet",
        metavar="NAME",
        help="XLSX sheet: a name or a 1-based position (default: first).",
    ),
    click.option(
        "--separator",
        metavar="C",
        help="CSV separator: one character, or tab (default: tab for .tsv, "
        "else sniffed among , ; tab |).",
    ),
    click.option(
        "--encoding",
        metavar="NAME",
        help="CSV encoding, e.g. cp1252 for Excel's \"CSV (Comma delimited)\".  "
        "[default: utf-8]",
    ),
    click.option(
        "--header-row",
        type=int,
        metavar="N",
        help="The header's line (CSV) or sheet row (XLSX), 1-based, "
        "when title rows sit above it.  [default: 1]",
    ),
    click.option(
        "--input-format",
        type=click.Choice(["csv", "tsv", "parquet", "xlsx"]),
        help="Format of INPUT whatever its name says; INPUT - (standard input) "
        "is csv unless given.",
    ),
    click.option(
        "--rate", type=float, help="Requests per second for this account.  [default: 10]"
    ),
    click.option(
        "--cache",
        type=_FILE,
        help="Result cache (SQLite).  [default: a file in the user cache dir]",
    ),
    click.option("--no-cache", is_flag=True, default=None, help="Use no result cache."),
    click.option(
        "--max-age",
        metavar="DURATION",
        help="Reuse cached answers younger than this (30m, 12h, 7d).  [default: 7d]",
    ),
    click.option(
        "--region-id",
        metavar="R",
        envvar="ALIBABA_CLOUD_REGION_ID",
        help="Region of the endpoint cams.<R>.aliyuncs.com (env ALIBABA_CLOUD_REGION_ID).  "
        "[default: ap-southeast-1]",
    ),
    click.option(
        "--endpoint",
        metavar="URL",
        envvar="CAMS_ENDPOINT",
        help="Full endpoint URL, overrides --region-id (env CAMS_ENDPOINT). "
        "Plain http only to loopback.",
    ),
    click.option(
        "--mock",
        is_flag=True,
        default=None,
        help="Start the embedded emulator and use it (no credentials needed).",
    ),
    click.option(
        "--concurrency",
        type=int,
        help="Most requests in flight.  [default: sized from rate × observed latency]",
    ),
    click.option(
        "--max-attempts", type=int, help="Tries per number for retryable failures.  [default: 6]"
    ),
    click.option("--timeout", type=float, help="Per-request timeout, seconds.  [default: 10]"),
    click.option(
        "--max-error-rate",
        type=float,
        help="Exit 4 when error rows / rows exceed this.  [default: 1.0, never]",
    ),
    click.option(
        "--limit", type=int, help="Enrich only the first N distinct numbers (a quick trial)."
    ),
    click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress bar and final table on stderr (--progress: even on a pipe).  "
        "[default: on when stderr is a terminal]",
    ),
    click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        help="Log lines on stderr.  [default: text]",
    ),
    click.option(
        "--quota",
        metavar="STORE",
        envvar="CAMS_ENRICH_QUOTA",
        help="Where runs share the account's budget: a SQLite file, "
        "redis://[:password@]host:port/db (several hosts), or off (env CAMS_ENRICH_QUOTA).  "
        "[default: quota.sqlite3 in the user cache dir]",
    ),
    click.option(
        "--quota-name",
        metavar="NAME",
        help="The shared budget's name.  [default: the AccessKeyId (or the STS source) and "
        "the endpoint host]",
    ),
    click.option(
        "--metrics-file",
        type=_FILE,
        help="Prometheus metrics of the run (a .prom file for the node_exporter textfile "
        "collector), written at the end of every run that read its input.",
    ),
]


def _run_options(fn: F) -> F:
    """Every ``enrich run`` option (``_RUN_OPTIONS``), on ``run`` and on ``check`` alike."""
    for opt in reversed(_RUN_OPTIONS):
        fn = opt(fn)
    return fn


def _config(ctx: click.Context, input_path: Path | None, params: dict[str, Any]) -> RunConfig:
    """Command-line values override the job file; env and built-in defaults come last."""
    job = params.pop("job", None)
    overrides: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for name, value in params.items():
        source = ctx.get_parameter_source(name)
        if value is None:
            continue
        if source in (ParameterSource.COMMANDLINE, ParameterSource.PROMPT):
            overrides[name] = value
        else:
            defaults[name] = value
    if input_path is not None:
        overrides["input"] = input_path
    return apply_job_file(job, overrides, defaults)


class _LazyGroup(click.Group):
    """A group whose heavier commands are imported only when they are asked for.

    ``enrich emulator`` pulls in the aiohttp server; ``enrich check`` must not.
    """

    lazy: ClassVar[dict[str, tuple[str, str]]] = {
        "emulator": ("enrich.emulator.command", "emulator_command"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            import importlib

            module, attr = self.lazy[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="cams-enrich", prog_name="enrich")
def cli() -> None:
    """Enrich phone lists with WhatsApp business profiles from Alibaba Cloud CAMS.

    \b
    Try it with no account, against the embedded emulator:
      enrich run sample_data/contacts.csv --mock
    """


@cli.command("run")
@click.argument(
    "input_path",
    metavar="INPUT",
    required=False,
    type=click.Path(path_type=Path, dir_okay=True, readable=False),
)
@_run_options
@click.pass_context
@translate_errors
def run_command(ctx: click.Context, /, input_path: Path | None, **params: Any) -> None:
    """Enrich INPUT (CSV, Parquet or XLSX) with WhatsApp business profiles.

    Writes the enriched file, an error report (CSV) and a run summary (JSON).
    Credentials come from the standard Alibaba Cloud chain (the environment's
    ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET, RRSA, an aliyun CLI or credentials.ini
    profile, the ECS RAM role, ALIBABA_CLOUD_CREDENTIALS_URI), never from a flag.

    \b
    Examples:
      enrich run sample_data/contacts.csv --mock
      enrich run leads.xlsx --cust-space-id 2934839388494 --default-region GB -o leads.out.xlsx
      enrich run --job jobs/nightly.example.toml

    \b
    Exit codes: 0 done, 1 failure, 2 usage, 3 aborted on a fatal account error,
    4 done but --max-error-rate exceeded, 130 interrupted (rerun to resume).
    """
    from enrich.presentation import make_presentation
    from enrich.runner import Seams, run

    json_logs = params.get("log_format") == "json"
    try:
        cfg = _config(ctx, input_path, params)
        json_logs = cfg.log_format == "json"
        pres = make_presentation(cfg)
        with pres:
            seams = Seams(log=pres.log, on_progress=pres.on_progress, on_phase=pres.on_phase)
            result = run(cfg, seams=seams)
            pres.final_table(result.summary)
    except E.EnrichError as exc:
        if not json_logs:
            raise
        # JSON logs stay JSON: the error is an event (the run logged it, with its end
        # event, when it had started)
        if not getattr(exc, "logged", False):
            Log(fmt="json").event("error", one_line(str(exc)), level="error",
                                  exit_code=exc.exit_code)  # fmt: skip
        ctx.exit(exc.exit_code)
    ctx.exit(result.exit_code)


@cli.command("check")
@click.argument(
    "input_path",
    metavar="INPUT",
    required=False,
    type=click.Path(path_type=Path, dir_okay=True, readable=False),
)
@_run_options
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
@translate_errors
def check_command(
    ctx: click.Context, /, input_path: Path | None, as_json: bool, **params: Any
) -> None:
    """Validate INPUT and its numbers, call nothing, and say what a run would cost.

    Prints rows, valid and invalid numbers (with the first examples and their row
    numbers), duplicates, numbers already fresh in the cache, the calls a run
    needs and how long they take at --rate.

    Takes every option of enrich run (and --job): swap the verb of a run's command
    line, and the count is exactly the first attempts that run makes. --endpoint
    and --mock pick their caches as run does; the options that do not change the
    count (--output, --errors, --summary, --metrics-file, --region-id,
    --concurrency, --max-attempts, --timeout, --max-error-rate, --progress,
    --log-format, --quota, --quota-name) are accepted and ignored.

    \b
    Examples:
      enrich check sample_data/contacts.xlsx --mock
      enrich check leads.xlsx --cust-space-id 2934839388494 --default-region GB --limit 20
      enrich check --job jobs/nightly.example.toml
    """
    from enrich.checking import check, render_check

    cfg = _config(ctx, input_path, params)
    result = check(cfg)
    click.echo(
        json.dumps(result, indent=2, ensure_ascii=False) if as_json else render_check(result)
    )


@cli.group("cache")
def cache_group() -> None:
    """Look after the result cache (SQLite).

    \b
    Examples:
      enrich cache stats
      enrich cache prune --older-than 30d
      enrich cache clear --cache /var/lib/enrich/ledger.sqlite3
    """


_cache_opt = click.option(
    "--cache",
    "cache_path",
    type=click.Path(path_type=Path, dir_okay=False, readable=False),
    help="The cache file.  [default: the one enrich run uses]",
)


def _ledger(cache_path: Path | None) -> Any:
    """The existing cache, or None: looking after a cache never creates one."""
    from enrich.cache import Ledger, default_cache_path

    path = cache_path or default_cache_path()
    try:
        if path.is_dir():
            raise E.InputError(f"{path} is a directory, not a cache file")
        exists = path.exists()
    except OSError as exc:
        raise E.InputError(f"cannot use the cache {path}: {exc.strerror or exc}") from None
    return Ledger(path) if exists else None


def _no_cache_line(cache_path: Path | None) -> str:
    from enrich.cache import CACHE_FILES, default_cache_path

    if cache_path is not None:
        return f"no cache at {cache_path}"
    default = default_cache_path()
    others = (default_cache_path(kind) for kind in CACHE_FILES if kind != "account")
    apart = [p for p in others if p.exists()]
    if apart:
        where = " and ".join(str(p) for p in apart)
        return f"no cache at {default} yet; --mock and emulator answers are kept apart in {where}"
    return f"no cache at {default} yet"


@cache_group.command("stats")
@_cache_opt
@translate_errors
def cache_stats(cache_path: Path | None) -> None:
    """Print entries by status, oldest and newest answer, and size (JSON).

    \b
    Example:
      enrich cache stats
    """
    ledger = _ledger(cache_path)
    if ledger is None:
        hint = "; pass the --cache PATH that run used" if cache_path is not None else ""
        raise E.InputError(_no_cache_line(cache_path) + hint)
    with ledger:
        stats = ledger.stats()
    for key in ("oldest", "newest"):
        if stats[key] is not None:
            stats[key] = utc_timestamp(stats[key])
    click.echo(json.dumps(stats, indent=2))


@cache_group.command("prune")
@_cache_opt
@click.option(
    "--older-than",
    metavar="DURATION",
    required=True,
    help="Delete answers older than this (30m, 12h, 30d).",
)
@translate_errors
def cache_prune(cache_path: Path | None, older_than: str) -> None:
    """Delete cached answers older than a duration.

    \b
    Example:
      enrich cache prune --older-than 30d
    """
    age = parse_duration(older_than, option="--older-than")
    ledger = _ledger(cache_path)
    if ledger is None:
        click.echo(f"nothing to prune: {_no_cache_line(cache_path)}")
        return
    with ledger:
        n = ledger.prune(older_than=time.time() - age)
    click.echo(f"pruned {n} answers older than {older_than}")


@cache_group.command("clear")
@_cache_opt
@translate_errors
def cache_clear(cache_path: Path | None) -> None:
    """Delete every cached answer.

    \b
    Example:
      enrich cache clear
    """
    ledger = _ledger(cache_path)
    if ledger is None:
        click.echo(f"nothing to clear: {_no_cache_line(cache_path)}")
        return
    with ledger:
        n = ledger.clear()
    click.echo(f"cleared {n} answers")




@cli.group("quota")
def quota_group() -> None:
    """Look at the account budgets that runs share (the --quota store).

    \b
    Examples:
      enrich quota status
      enrich quota status --quota redis://cams-redis.internal:6379/0
    """


@quota_group.command("status")
@click.option(
    "--quota",
    metavar="STORE",
    envvar="CAMS_ENRICH_QUOTA",
    help="The store: a SQLite file or redis://… (env CAMS_ENRICH_QUOTA).  "
    "[default: the one enrich run uses]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the budgets as JSON.")
@translate_errors
def quota_status(quota: str | None, as_json: bool) -> None:
    """Show each budget, its rate, and the runs on it now (PID, host, input, recent rate).

    \b
    Example:
      enrich quota status
    """
    from enrich.quota_status import quota_status as status

    click.echo(status(quota, as_json=as_json))


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="enrich", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - click maps it to Abort first
        sys.exit(E.EXIT_INTERRUPTED)
