"""``--quota STORE``: which store it names, and how to show it without its secret."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from enrich.errors import UsageError

__all__ = [
    "DEFAULT_FILE",
    "RedisSpec",
    "SqliteSpec",
    "parse_spec",
    "redact_url",
    "scrub",
]

#: The default store's file name, in the user's cache folder beside the default cache.
DEFAULT_FILE = "quota.sqlite3"
_SECRET_PARAMS = frozenset({"password", "pass", "pwd", "token"})
_REDIS_SCHEMES = ("redis", "rediss")


@dataclass(frozen=True, slots=True)
class SqliteSpec:
    """A SQLite file shared by the runs of one host."""

    path: Path

    def describe(self) -> str:
        return str(self.path)


@dataclass(frozen=True, slots=True)
class RedisSpec:
    """A Redis server shared by the runs of several hosts; ``url`` holds the secret."""

    url: str
    display: str
    secrets: tuple[str, ...]

    def describe(self) -> str:
        return self.display

    def __repr__(self) -> str:  # never the password, not even in a traceback
        return f"RedisSpec({self.display!r})"


def parse_spec(spec: str | None, *, cache_dir: Path) -> SqliteSpec | RedisSpec | None:
    """The store ``spec`` names: ``None``/``""`` the default file, ``off`` none at all.

    A bad spec is a :class:`~enrich.errors.UsageError` whose line never holds the
    password of a Redis URL.
    """
    text = (spec or "").strip()
    if not text:
        return SqliteSpec((cache_dir / DEFAULT_FILE).expanduser().absolute())
    if text.lower() == "off":
        return None
    if "://" not in text:
        return SqliteSpec(Path(text).expanduser().absolute())
    scheme = text.split("://", 1)[0].lower()
    if scheme not in _REDIS_SCHEMES:
        raise UsageError(
            f"--quota: unknown store {scheme}://…; give a file path (SQLite), "
            "redis://[:password@]host:port/db, rediss://… or off"
        )
    return RedisSpec(url=text, display=redact_url(text), secrets=_secrets_of(text))


def redact_url(url: str) -> str:
    """``url`` without its password (in the authority or the query string)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise UsageError(
            f"--quota: {parts.scheme}://… has a bad port; use {parts.scheme}://host:port/db"
        ) from None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
         if k.lower() not in _SECRET_PARAMS]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced by ``***`` (belt and braces for foreign messages)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _secrets_of(url: str) -> tuple[str, ...]:
    parts = urlsplit(url)
    found: list[str] = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in _SECRET_PARAMS and value:
            found += [value, unquote(value)]
    # longest first, so a secret that contains another is replaced whole
    return tuple(sorted(set(found), key=len, reverse=True))
