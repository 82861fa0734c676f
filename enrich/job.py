"""``RunConfig`` — everything one run needs — and job files (flat TOML).

A job file names ``input`` and any long ``run`` option with dashes turned into
underscores. String values may use ``${ENV}``; paths may use ``{date}``
(``YYYY-MM-DD``, UTC) and ``{datetime}`` (``YYYYMMDDTHHMMSSZ``). Relative paths are
relative to the job file's folder. Options given on the command line override it.

A key that is no option is a ConfigError (exit 1) that names a close one (``cust-space-id``
→ ``did you mean cust_space_id?``); a value the option refuses is a UsageError (exit 2,
as the flag's) that names the key in its file (``rate in nightly.toml: …``).
"""

from __future__ import annotations

import codecs
import difflib
import math
import os
import re
import time
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from enrich.errors import ConfigError, UsageError

__all__ = [
    "JOB_KEYS",
    "PATH_KEYS",
    "RunConfig",
    "apply_job_file",
    "parse_duration",
]

LogFormat = Literal["text", "json"]
InputFormat = Literal["csv", "tsv", "parquet", "xlsx"]
INPUT_FORMATS: tuple[InputFormat, ...] = ("csv", "tsv", "parquet", "xlsx")
_TAB_WORDS = frozenset({"tab", "TAB", "\\t"})

#: Keys whose values are paths (``{date}`` expanded, relative to the job file).
PATH_KEYS = frozenset({"input", "output", "errors", "summary", "cache", "metrics_file"})


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """The options of one ``enrich run`` (names as in SPEC.md, dashes → underscores)."""

    input: Path
    output: Path | None = None
    errors: Path | None = None
    summary: Path | None = None
    phone_column: str | tuple[str, ...] | None = None
    """One column, or several (``--phone-column`` given more than once): per row,
    the first holding a valid number is used."""
    cust_space_id: str | None = None
    cust_space_column: str | None = None
    default_region: str | None = None
    region_id: str = "ap-southeast-1"
    endpoint: str | None = None
    mock: bool = False
    rate: float = 10.0
    concurrency: int | None = None
    max_attempts: int = 6
    timeout: float = 10.0
    cache: Path | None = None
    no_cache: bool = False
    max_age: str = "7d"
    max_error_rate: float = 1.0
    progress: bool | None = None
    log_format: LogFormat = "text"
    sheet: str | None = None
    separator: str | None = None
    encoding: str | None = None
    """CSV input's encoding; ``None``: UTF-8."""
    header_row: int | None = None
    """The header's line (CSV) or sheet row (XLSX), 1-based; ``None``: the first."""
    input_format: InputFormat | None = None
    """The input's format whatever its name says; ``-`` (standard input) is CSV without it."""
    limit: int | None = None
    metrics_file: Path | None = None
    quota: str | None = None
    quota_name: str | None = None
    #: the ``--job`` file's stem (metrics label); not a job-file key
    job_name: str | None = None

    def validated(self, *, sources: Mapping[str, str] | None = None) -> RunConfig:
        """Check value ranges; raise UsageError (exit 2) naming the option.

        ``sources``: key → the job file it came from (its name). An option from a
        job file is named as its key there (``rate in nightly.toml: …``), not as a flag.
        """
        named = _Namer(sources or {})
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise named.error(
                "rate", f"must be a positive number of requests per second, not {self.rate:g}"
            )
        if self.concurrency is not None and self.concurrency < 1:
            raise named.error("concurrency", f"must be at least 1, not {self.concurrency}")
        if self.max_attempts < 1:
            raise named.error("max_attempts", f"must be at least 1, not {self.max_attempts}")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise named.error(
                "timeout", f"must be a positive number of seconds, not {self.timeout:g}"
            )
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise named.error(
                "max_error_rate", f"must be between 0 and 1, not {self.max_error_rate:g}"
            )
        if self.limit is not None and self.limit < 1:
            raise named.error("limit", f"must be at least 1, not {self.limit}")
        if (
            self.separator is not None
            and len(self.separator) != 1
            and self.separator not in _TAB_WORDS
        ):
            raise named.error("separator", f"must be one character, not {self.separator!r}")
        if self.header_row is not None and self.header_row < 1:
            raise named.error(
                "header_row",
                f"must be at least 1 (the first line or row), not {self.header_row}",
            )
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                use = 'use utf-8, cp1252 (Excel\'s "CSV (Comma delimited)"), latin-1, …'
                raise named.error(
                    "encoding",
                    f"unknown encoding {self.encoding!r}; {use}",
                    flag_line=f"unknown encoding {self.encoding!r} for --encoding; {use}",
                ) from None
        if self.input_format is not None and self.input_format not in INPUT_FORMATS:
            raise named.error(
                "input_format",
                f"{self.input_format!r} is not one of {', '.join(INPUT_FORMATS)}",
            )
        if self.cust_space_id and self.cust_space_column:
            raise named.either("cust_space_id", "cust_space_column")
        if self.no_cache and self.cache is not None:
            raise named.either("cache", "no_cache", first_flag="--cache PATH")
        if self.mock and self.endpoint:
            raise named.either("mock", "endpoint", first_flag="--mock (the built-in emulator)")
        parse_duration(self.max_age, option=named.label("max_age"))
        return self

    @property
    def phone_columns(self) -> tuple[str, ...]:
        """The ``--phone-column`` names, in order (empty: auto-detect)."""
        if self.phone_column is None:
            return ()
        if isinstance(self.phone_column, str):
            return (self.phone_column,)
        return tuple(self.phone_column)

    @property
    def max_age_s(self) -> float:
        """``--max-age`` in seconds."""
        return parse_duration(self.max_age, option="--max-age")


class _Namer:
    """How a message names an option: its flag (``--rate``), or its key and the job
    file it came from (``rate in nightly.toml:``)."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = sources

    def label(self, key: str) -> str:
        job = self.sources.get(key)
        return f"{key} in {job}:" if job is not None else "--" + key.replace("_", "-")

    def error(self, key: str, problem: str, *, flag_line: str | None = None) -> UsageError:
        """``--rate must be …`` or ``rate in nightly.toml: must be …``."""
        if key not in self.sources and flag_line is not None:
            return UsageError(flag_line)
        return UsageError(f"{self.label(key)} {problem}")

    def either(self, key: str, other: str, *, first_flag: str | None = None) -> UsageError:
        """Two options that exclude each other, set in one place (a stronger place
        displaces the weaker one's: ``apply_job_file``)."""
        job = self.sources.get(key)
        if job is not None and self.sources.get(other) == job:
            return UsageError(f"give either {key} or {other} in {job}, not both")
        first = first_flag or "--" + key.replace("_", "-")
        return UsageError(f"give either {first} or --{other.replace('_', '-')}, not both")


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, *, option: str) -> float:
    """``30m``, ``12h``, ``7d`` (also ``s`` and ``w``) → seconds; UsageError otherwise."""
    m = _DURATION.fullmatch(str(text))
    if not m:
        raise UsageError(f"{option} {text!r} is not a duration such as 30m, 12h or 7d")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _interpolate(value: str, *, key: str, job: Path, environ: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in environ:
            raise ConfigError(f"{job.name}: {key} uses ${{{name}}} but {name} is not set")
        return environ[name]

    return _ENV.sub(sub, value)


def _expand_path(value: str, *, base: Path, now: float) -> Path:
    stamp = time.gmtime(now)
    text = value.replace("{date}", time.strftime("%Y-%m-%d", stamp)).replace(
        "{datetime}", time.strftime("%Y%m%dT%H%M%SZ", stamp)
    )
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


_FIELDS = {f.name: f for f in fields(RunConfig)}
#: What a job file may set: every option, not what the command line itself gives.
JOB_KEYS = frozenset(_FIELDS) - {"job_name"}
#: (key, the key it displaces, and the reverse too?): set in a stronger layer
#: (flag > job file > environment), the first removes the second from the weaker ones.
_DISPLACES = (
    ("cust_space_id", "cust_space_column", True),
    ("cache", "no_cache", True),
    ("mock", "endpoint", True),
    ("mock", "cust_space_id", False),  # the demo space, unless one is given beside --mock
)
_BOOL = frozenset({"mock", "no_cache", "progress"})
_INT = frozenset({"concurrency", "max_attempts", "limit", "header_row"})
_FLOAT = frozenset({"rate", "timeout", "max_error_rate"})


def _toml(value: Any) -> str:
    """A value as the job file spells it: ``"fast"``, ``true``, ``0``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _bad_value(key: str, value: Any, problem: str, *, job: Path) -> UsageError:
    """A job value the option would refuse: exit 2 like the flag, named as the key."""
    return UsageError(f"{key} in {job.name}: {problem}, not {_toml(value)}")


def _coerce(key: str, value: Any, *, job: Path) -> Any:
    if key in _BOOL:
        if not isinstance(value, bool):
            raise _bad_value(key, value, "must be true or false", job=job)
        return value
    if key in _INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad_value(key, value, "must be a whole number", job=job)
        return value
    if key in _FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad_value(key, value, "must be a number", job=job)
        return float(value)
    if key == "sheet" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a position, as --sheet 2
    if key == "phone_column" and isinstance(value, list):
        if not value or not all(isinstance(v, str) for v in value):
            raise _bad_value(key, value, "must be a string or a list of strings", job=job)
        return value[0] if len(value) == 1 else tuple(value)
    if not isinstance(value, str):
        problem = "must be a string"
        if isinstance(value, int | float) and not isinstance(value, bool):
            problem += f" (in quotes: {key} = {_toml(str(value))})"
        raise _bad_value(key, value, problem, job=job)
    if key == "log_format" and value not in ("text", "json"):
        raise _bad_value(key, value, 'must be "text" or "json"', job=job)
    if key == "input_format" and value not in INPUT_FORMATS:
        raise _bad_value(key, value, f"must be one of {', '.join(INPUT_FORMATS)}", job=job)
    return value


def _unknown_key(key: str, *, job: Path) -> ConfigError:
    """One line; a close known key (a dash for an underscore, a typo) is named."""
    spelled = key.strip("-").replace("-", "_").lower()
    if spelled in JOB_KEYS:
        return ConfigError(
            f"{job.name}: unknown key {key!r}; did you mean {spelled}? "
            "(keys are the long run options with _ for -)"
        )
    # 0.7, not difflib's 0.6: 'speed' is not 'sheet'
    close = difflib.get_close_matches(spelled, sorted(JOB_KEYS), n=1, cutoff=0.7)
    if close:
        return ConfigError(f"{job.name}: unknown key {key!r}; did you mean {close[0]}?")
    known = ", ".join(sorted(JOB_KEYS))
    return ConfigError(f"{job.name}: unknown key {key!r}; known keys: {known}")


def load_job_file(
    job: Path,
    *,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
    skip: Collection[str] = (),
) -> dict[str, Any]:
    """Read a job file into RunConfig keyword arguments (ConfigError on any problem).

    Keys in ``skip`` (given on the command line) are checked as names only: their
    values are not read, so an unset ``${ENV}`` in one of them is no error.
    """
    env = os.environ if environ is None else environ
    when = time.time() if now is None else now
    try:
        raw = tomllib.loads(job.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"job file {job} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read job file {job}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{job.name} is not valid TOML: {exc}") from None
    base = job.resolve().parent
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            raise ConfigError(f"{job.name}: [{key}] tables are not supported; keep it flat")
        if key not in JOB_KEYS:
            raise _unknown_key(key, job=job)
        if key in skip:
            continue
        if isinstance(value, str):
            value = _interpolate(value, key=key, job=job, environ=env)
        elif isinstance(value, list):
            value = [
                _interpolate(v, key=key, job=job, environ=env) if isinstance(v, str) else v
                for v in value
            ]
        value = _coerce(key, value, job=job) if key not in PATH_KEYS else value
        if key in PATH_KEYS:
            if not isinstance(value, str):
                raise _bad_value(key, value, "must be a path in quotes", job=job)
            value = _expand_path(value, base=base, now=when)
        out[key] = value
    if "input" not in out and "input" not in skip:
        raise ConfigError(f'{job.name}: no input = "..." key; name the file to enrich')
    return out


def _is_set(value: Any) -> bool:
    return value is not None and value is not False


def apply_job_file(
    job: Path | None,
    overrides: Mapping[str, Any],
    defaults: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
) -> RunConfig:
    """Merge three layers: command-line ``overrides`` > job file > ``defaults`` (env).

    A key given on the command line is not read from the job file. A key set in a
    stronger layer also displaces its alternative from the weaker ones (``_DISPLACES``):
    ``--cust-space-column`` beats a ``cust_space_id`` from the file or
    ``CAMS_CUST_SPACE_ID``, ``--mock`` beats an ``endpoint`` from the file or
    ``CAMS_ENDPOINT``, and so on. The same pair set in one layer is a usage error.
    """
    flags = {k: v for k, v in overrides.items() if k in _FIELDS and v is not None}
    env = {k: v for k, v in defaults.items() if k in _FIELDS and v is not None}
    from_file: dict[str, Any] = {}
    if job is not None:
        skip = set(flags)
        for key, other, both_ways in _DISPLACES:
            if _is_set(flags.get(key)):
                skip.add(other)
            if both_ways and _is_set(flags.get(other)):
                skip.add(key)
        from_file = load_job_file(job, environ=environ, now=now, skip=skip)
    merged: dict[str, Any] = {}
    layer_of: dict[str, int] = {}  # the layer that set the key (0 env, 1 file, 2 flag)
    for layer, values in enumerate((env, from_file, flags)):
        for key, value in values.items():
            merged[key] = value
            layer_of[key] = layer if _is_set(value) else -1
    for key, other, both_ways in _DISPLACES:
        mine, theirs = layer_of.get(key, -1), layer_of.get(other, -1)
        if mine < 0 or theirs < 0 or mine == theirs:
            continue  # not both set, or set together: validated() names the conflict
        if mine > theirs:
            merged.pop(other)
            layer_of[other] = -1
        elif both_ways:
            merged.pop(key)
            layer_of[key] = -1
    if merged.get("input") is None:
        raise UsageError("name an INPUT file, or a job file with --job")
    merged["input"] = Path(merged["input"])
    for key in ("output", "errors", "summary", "cache", "metrics_file"):
        if merged.get(key) is not None:
            merged[key] = Path(merged[key])
    sources: dict[str, str] = {}
    if job is not None:
        merged["job_name"] = job.stem
        # a key the file set (and no flag replaced) is named as the file's key
        sources = {key: job.name for key in from_file if key in merged}
    return replace(RunConfig(input=merged.pop("input")), **merged).validated(sources=sources)
