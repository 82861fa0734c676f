"""Where the credentials come from: the official Alibaba Cloud chain, tamed for a batch run.

:class:`CredentialSource` walks the chain of ``alibabacloud-credentials`` in the
order of its ``DefaultCredentialsProvider`` (SPEC.md "Credentials"):

1. the environment: ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` (optional ``_SECURITY_TOKEN``);
2. OIDC / RRSA: ``ALIBABA_CLOUD_ROLE_ARN``, ``_OIDC_PROVIDER_ARN``, ``_OIDC_TOKEN_FILE``;
3. the aliyun CLI's ``~/.aliyun/config.json`` (profile ``ALIBABA_CLOUD_PROFILE``, else
   its ``current``);
4. ``~/.alibabacloud/credentials.ini`` (or ``ALIBABA_CLOUD_CREDENTIALS_FILE``), section
   ``ALIBABA_CLOUD_PROFILE``, else ``default``;
5. the ECS instance's RAM role, unless ``ALIBABA_CLOUD_ECS_METADATA_DISABLED=true``;
6. ``ALIBABA_CLOUD_CREDENTIALS_URI``.

It finds the first source present at start-up, fetches from it once (so a broken
source is one line and exit 1 before any call), then sticks to it. The fetching is
the library's: its provider classes, built with explicit arguments, never the
``DefaultCredentialsProvider`` itself, because

- the library reads the environment once, at import, into module globals; we pass
  the values of the ``environ`` we are given (tests are hermetic);
- its default chain starts an APScheduler thread (the ECS provider's async refresh)
  as soon as it is built; we build the ECS provider with ``async_update_enabled=False``;
- it marks STS credentials stale 15 minutes before they expire, whatever their
  lifetime: a token of 15 minutes or less (the aliyun CLI's RamRoleArn default is
  900 s) is fetched anew on every call, and a ``threading.Lock`` held across an
  ``await`` blocks the event loop when two coroutines refresh at once.

So the *when* is ours: credentials are cached until ``expiration − min(15 min,
lifetime / 2)``, then fetched by a fresh library provider (which has no cache), one
coroutine at a time. A failed refresh keeps the current credentials while they are
valid and tries again with a backoff; a row never fails because of it. The library's
log handlers (plain text on stderr, at import) are removed and its loggers silenced:
their messages can carry a credentials URI's answer, a secret.

The one touch of the library's internals is :func:`_inner_provider` (a profile's own
provider, whose credentials keep their expiration); it is checked at import.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from alibabacloud_credentials import provider as _lib
from alibabacloud_credentials.http import HttpOptions

from enrich.errors import InputError
from enrich.signing import Credentials

__all__ = [
    "ENV_ACCESS_KEY_ID",
    "ENV_ACCESS_KEY_SECRET",
    "ENV_CREDENTIALS_FILE",
    "ENV_CREDENTIALS_URI",
    "ENV_ECS_METADATA_DISABLED",
    "ENV_OIDC_PROVIDER_ARN",
    "ENV_OIDC_TOKEN_FILE",
    "ENV_PROFILE",
    "ENV_ROLE_ARN",
    "ENV_SECURITY_TOKEN",
    "REFRESH_AHEAD_S",
    "CredentialSource",
    "CredentialsUnavailable",
    "ProviderName",
    "silence_library_logs",
]

ENV_ACCESS_KEY_ID: Final = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET: Final = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN: Final = "ALIBABA_CLOUD_SECURITY_TOKEN"
ENV_ROLE_ARN: Final = "ALIBABA_CLOUD_ROLE_ARN"
ENV_OIDC_PROVIDER_ARN: Final = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"
ENV_OIDC_TOKEN_FILE: Final = "ALIBABA_CLOUD_OIDC_TOKEN_FILE"
ENV_ROLE_SESSION_NAME: Final = "ALIBABA_CLOUD_ROLE_SESSION_NAME"
ENV_STS_REGION: Final = "ALIBABA_CLOUD_STS_REGION"
ENV_VPC_ENDPOINT_ENABLED: Final = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"
ENV_PROFILE: Final = "ALIBABA_CLOUD_PROFILE"
ENV_CLI_PROFILE_DISABLED: Final = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED"
ENV_CREDENTIALS_FILE: Final = "ALIBABA_CLOUD_CREDENTIALS_FILE"
ENV_ECS_METADATA_DISABLED: Final = "ALIBABA_CLOUD_ECS_METADATA_DISABLED"
ENV_ECS_METADATA: Final = "ALIBABA_CLOUD_ECS_METADATA"
ENV_IMDSV1_DISABLED: Final = "ALIBABA_CLOUD_IMDSV1_DISABLED"
ENV_CREDENTIALS_URI: Final = "ALIBABA_CLOUD_CREDENTIALS_URI"

#: The library marks STS credentials stale this long before they expire; we renew
#: no later than that (earlier for short-lived tokens: at half their lifetime).
REFRESH_AHEAD_S: Final = 15 * 60
#: Credentials are not used for a request leaving later than this before expiry.
_SAFETY_S: Final = 1.0
#: A failing refresh while the credentials are still valid is retried after
#: 0.5 s, 1 s, 2 s … at most this.
_RETRY_CAP_S: Final = 30.0
#: With no valid credentials left, a failing source is retried this long, then the run stops.
GIVE_UP_S: Final = 60.0

#: SPEC.md's provider names (``cli_profile:NAME``, ``credentials_file:NAME`` carry the profile).
ProviderName = str
_Kind = Literal[
    "environment", "oidc", "cli_profile", "credentials_file", "ecs_ram_role", "credentials_uri",
    "fixed",
]

#: The aliyun CLI's profile modes that alibabacloud-credentials reads.
CLI_MODES: Final = (
    "AK", "StsToken", "RamRoleArn", "EcsRamRole", "OIDC", "ChainableRamRoleArn", "CloudSSO",
    "OAuth", "External",
)
#: The ``type`` values of a credentials.ini section that alibabacloud-credentials reads.
INI_TYPES: Final = ("access_key", "ram_role_arn", "oidc_role_arn", "ecs_ram_role", "rsa_key_pair")

_LIBRARY_LOGGERS: Final = ("credentials", "alibabacloud-tea")


class CredentialsUnavailable(InputError):
    """During the run, the source gave no valid credentials for :data:`GIVE_UP_S` (exit 1)."""


# -- the library, tamed ---------------------------------------------------------------


def silence_library_logs() -> None:
    """Remove the plain-text stderr handlers the library and Tea attach at import.

    Their records can hold a credentials URI's answer (a secret) and Tea's HTTP
    debug dumps headers, so nothing is routed anywhere: a NullHandler, no
    propagation, and a level above CRITICAL so no record is even made.
    """
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
        logger.setLevel(logging.CRITICAL + 1)


def _check_library() -> None:
    """Fail loudly at import if the internals :func:`_inner_provider` uses are gone."""
    for cls in (_lib.CLIProfileCredentialsProvider, _lib.ProfileCredentialsProvider):
        if not callable(getattr(cls, "_get_credentials_provider", None)):
            raise ImportError(
                f"alibabacloud-credentials changed: {cls.__name__}._get_credentials_provider "
                "is gone; enrich.credentials needs updating"
            )


silence_library_logs()
_check_library()


def _inner_provider(kind: _Kind, path: Path, name: str, config: Any) -> Any:
    """The provider a profile describes, built by the library's own dispatch.

    The public profile providers wrap it and drop the expiration of its
    credentials; we need the expiration to renew in time.
    """
    if kind == "cli_profile":
        outer = _lib.CLIProfileCredentialsProvider(profile_name=name, profile_file=str(path))
        return outer._get_credentials_provider(config, name)
    outer = _lib.ProfileCredentialsProvider(profile_file=str(path), profile_name=name)
    return outer._get_credentials_provider(config)


# -- what was found -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """A source that is present: how to build a fresh library provider for it."""

    kind: _Kind
    provider: ProviderName  # SPEC's name
    where: str  # for messages: the variable or file it comes from
    sts_source: str  # the budget's name for temporary credentials
    make: Callable[[], Any]
    refreshable: bool = True
    probe: bool = False  # a failure means "not here" (ECS): go on down the chain


@dataclass(frozen=True, slots=True)
class _Entry:
    """Cached credentials and when to renew them (wall-clock seconds)."""

    credentials: Credentials
    expiration: float | None
    renew_at: float  # inf: never (long-term or static)
    valid_until: float  # inf: no expiry known


def _entry(credentials: Credentials, expiration: float | None, now: float) -> _Entry:
    if expiration is None:
        return _Entry(credentials, None, math.inf, math.inf)
    lifetime = expiration - now
    ahead = min(REFRESH_AHEAD_S, max(0.0, lifetime) / 2)
    return _Entry(credentials, expiration, expiration - ahead, expiration - _SAFETY_S)


class CredentialSource:
    """The credentials of a run, from the first source of the chain that has them.

    ::

        source = await CredentialSource.discover(environ=os.environ)   # InputError: exit 1
        source.provider       # "environment", "cli_profile:prod", "credentials_uri", …
        source.budget_name    # the quota budget: AccessKeyId, role ARN, profile or URI
        creds = await source.get()      # before every attempt; cheap while cached
        await source.refresh(creds)     # after InvalidSecurityToken.Expired
        source.close()

    Seams: ``clock`` (wall time, for expirations), ``sleep`` (between failed
    fetches), ``timeout_s`` (one fetch, the first one included).
    """

    def __init__(
        self,
        plan: _Plan,
        provider: Any,
        first: _Entry,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeout_s: float = 10.0,
        give_up_s: float = GIVE_UP_S,
    ) -> None:
        """Use :meth:`discover` or :meth:`fixed`; this is their common end."""
        self._plan = plan
        self._provider: Any = provider
        self._entry = first
        self._clock = clock
        self._sleep = sleep
        self._timeout_s = timeout_s
        self._give_up_s = give_up_s
        self._lock = asyncio.Lock()
        self._failures = 0
        self._fetches = 1
        self._closed = False
        self.provider: ProviderName = plan.provider
        first_creds = first.credentials
        self.budget_name: str = (
            plan.sts_source if first_creds.security_token else first_creds.access_key_id
        )

    # -- construction ------------------------------------------------------------

    @classmethod
    def fixed(
        cls, credentials: Credentials, *, provider: ProviderName = "mock"
    ) -> CredentialSource:
        """A source that always gives ``credentials`` (``--mock``, tests); never refreshes."""

        def make() -> Any:
            raise AssertionError("a fixed source never fetches")  # pragma: no cover

        plan = _Plan("fixed", provider, provider, provider, make, refreshable=False)
        return cls(plan, None, _Entry(credentials, None, math.inf, math.inf))

    @classmethod
    async def discover(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        home: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeout_s: float = 10.0,
        ecs_timeout_s: float = 1.0,
    ) -> CredentialSource:
        """Walk the chain and fetch once from the first source present.

        Raises ``InputError`` (one line, no secret) when nothing is found, or when
        the source found is broken: an unreadable or malformed file, a profile of
        an unknown mode, a credentials URI that answers garbage or nothing within
        ``timeout_s``. Nothing is sent to CAMS before this returns.
        """
        silence_library_logs()
        env = dict(os.environ if environ is None else environ)
        base = Path(home) if home is not None else Path(env.get("HOME") or Path.home())
        chain = _Chain(env, base, timeout_s=timeout_s, ecs_timeout_s=ecs_timeout_s)
        for step in chain.steps():
            plan = step()
            if plan is None:
                continue
            try:
                provider = plan.make()
            except InputError:
                raise
            except Exception as exc:
                if plan.probe:
                    chain.looked.append(f"{plan.where} ({_reason(exc, timeout_s)})")
                    continue
                raise InputError(
                    f"credentials from {plan.where} unusable: {_reason(exc)}"
                ) from None
            try:
                # the ECS provider makes up to four requests of ecs_timeout_s each
                budget = ecs_timeout_s * 4 if plan.probe else timeout_s
                credentials, expiration = await _fetch(provider, budget)
            except Exception as exc:
                reason = _reason(exc, budget)
                if plan.probe:
                    chain.looked.append(f"{plan.where} ({reason})")
                    continue
                raise InputError(
                    f"credentials from {plan.where} failed: {reason}; nothing was sent"
                ) from None
            first = _entry(credentials, expiration, clock())
            return cls(plan, provider, first, clock=clock, sleep=sleep, timeout_s=timeout_s)
        raise InputError(chain.nothing_found())

    # -- use -----------------------------------------------------------------------

    @property
    def fetches(self) -> int:
        """How many times credentials were fetched from the source (the first included)."""
        return self._fetches

    @property
    def expiration(self) -> float | None:
        """When the current credentials expire (Unix seconds), None for long-term ones."""
        return self._entry.expiration

    async def get(self) -> Credentials:
        """Credentials valid for a request leaving now; renews them ahead of expiry."""
        entry = self._entry
        if self._clock() < entry.renew_at:
            return entry.credentials
        async with self._lock:
            entry = self._entry
            if self._clock() < entry.renew_at:
                return entry.credentials
            return await self._renew()

    async def refresh(self, stale: Credentials | None = None) -> bool:
        """Fetch anew now (after ``InvalidSecurityToken.Expired``); True if they changed.

        Several requests signed with the same ``stale`` credentials cause one fetch:
        whoever comes second finds them replaced already.
        """
        async with self._lock:
            current = self._entry.credentials
            if stale is not None and current != stale:
                return True
            if not self._plan.refreshable:
                return False
            self._entry = replace(self._entry, renew_at=-math.inf, valid_until=-math.inf)
            fresh = await self._renew()
            return fresh != (stale if stale is not None else current)

    def close(self) -> None:
        """Forget the provider. Nothing of the library runs in the background."""
        self._closed = True
        self._provider = None

    async def __aenter__(self) -> CredentialSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CredentialSource(provider={self.provider!r}, budget_name={self.budget_name!r})"

    # -- renewing ------------------------------------------------------------------

    async def _renew(self) -> Credentials:
        """Fetch from a fresh provider (the lock is held); see the module docstring."""
        first_failure: float | None = None
        while True:
            if self._closed:
                raise CredentialsUnavailable(
                    f"credentials from {self._plan.where}: the source was closed"
                )
            try:
                provider = self._plan.make()
                credentials, expiration = await _fetch(provider, self._timeout_s)
            except Exception as exc:
                now = self._clock()
                self._failures += 1
                delay = min(_RETRY_CAP_S, 0.5 * 2 ** (self._failures - 1))
                old = self._entry
                if now < old.valid_until:
                    self._entry = replace(old, renew_at=min(now + delay, old.valid_until))
                    return old.credentials
                first_failure = now if first_failure is None else first_failure
                if now - first_failure >= self._give_up_s:
                    raise CredentialsUnavailable(
                        f"credentials from {self._plan.where} could not be refreshed for "
                        f"{self._give_up_s:g} s ({_reason(exc, self._timeout_s)}); the run "
                        "stops, answers so far are kept in the cache"
                    ) from None
                await self._sleep(min(delay, 5.0))
                continue
            self._provider = provider
            self._fetches += 1
            self._failures = 0
            self._entry = _entry(credentials, expiration, self._clock())
            return credentials


async def _fetch(provider: Any, timeout_s: float) -> tuple[Credentials, float | None]:
    """One ``get_credentials_async`` of a library provider → ours, with its expiration."""
    async with asyncio.timeout(timeout_s):
        lib = await provider.get_credentials_async()
    ak = lib.get_access_key_id()
    secret = lib.get_access_key_secret()
    token = lib.get_security_token()
    if not isinstance(ak, str) or not ak.strip():
        raise _Refused("it gave no AccessKeyId")
    if not isinstance(secret, str) or not secret.strip():
        raise _Refused("it gave no AccessKeySecret")
    expiration = lib.get_expiration() if hasattr(lib, "get_expiration") else None
    sts = token.strip() if isinstance(token, str) else ""
    creds = Credentials(ak.strip(), secret.strip(), sts or None)
    return creds, float(expiration) if isinstance(expiration, int | float) else None


class _Refused(Exception):
    """A fetch that worked but gave unusable credentials (the message is ours, safe)."""


def _reason(exc: BaseException, timeout_s: float | None = None) -> str:
    """What went wrong, in our words: a library message can hold an answer body (a secret)."""
    if isinstance(exc, _Refused):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s" if timeout_s else "no answer in time"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename} does not exist"
    if isinstance(exc, PermissionError):
        return f"{exc.filename} is not readable (permission denied)"
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename} is a directory"
    if isinstance(exc, UnicodeDecodeError):
        return "the answer is not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return "the answer is not JSON"
    text = str(exc)
    status = re.search(r"http_?code[=:]\s*(\d{3})", text, re.IGNORECASE)
    if status:
        return f"HTTP {status.group(1)}"
    if "error retrieving credentials" in text:
        return (
            'the answer is not {"Code": "Success", "AccessKeyId", "AccessKeySecret", '
            '"SecurityToken", "Expiration"}'
        )
    if "No cached value was found" in text:  # the library's word for an Expiration passed
        return "it gave credentials that have expired already"
    if "does not match format" in text:
        return "its Expiration is not YYYY-MM-DDTHH:MM:SSZ"
    if type(exc).__name__ == "RetryError" or isinstance(exc, OSError):
        return "cannot connect"  # its text may carry the URL, query included
    if isinstance(exc, aiohttp.ClientError):
        return f"connection failed ({type(exc).__name__})"
    if isinstance(exc, ValueError | TypeError) and type(exc).__module__ == "builtins":
        # the library's constructors: "the access key id is empty", "role_arn … cannot be empty"
        return _first_words(text) or type(exc).__name__
    if type(exc).__name__ == "CredentialException" and "result" not in text:
        return _first_words(text)
    return type(exc).__name__


def _first_words(text: str, limit: int = 160) -> str:
    return " ".join(text.split())[:limit]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _sanitised_uri(uri: str) -> str:
    """A credentials URI without userinfo or query (either may hold a secret)."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "(unparseable URI)"


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


# -- the chain ------------------------------------------------------------------------


class _Chain:
    """The six steps, each a source present (a plan), None (absent: noted), or InputError."""

    def __init__(
        self, env: Mapping[str, str], home: Path, *, timeout_s: float, ecs_timeout_s: float
    ) -> None:
        self.env = env
        self.home = home
        self.looked: list[str] = []
        self._http = HttpOptions(
            connect_timeout=int(timeout_s * 1000), read_timeout=int(timeout_s * 1000)
        )
        self._ecs_http = HttpOptions(
            connect_timeout=int(ecs_timeout_s * 1000), read_timeout=int(ecs_timeout_s * 1000)
        )

    def _get(self, name: str) -> str:
        return (self.env.get(name) or "").strip()

    def steps(self) -> tuple[Callable[[], _Plan | None], ...]:
        """The library's order."""
        return (self.environment, self.oidc, self.cli_profile, self.credentials_file, self.ecs,
                self.uri)

    def nothing_found(self) -> str:
        """The one line when no source has credentials (names and files, no values)."""
        return (
            "no Alibaba Cloud credentials found; looked at: " + "; ".join(self.looked)
            + f". Set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} in the environment, "
            "or configure a profile (aliyun configure) (or use --mock to try the local emulator)"
        )

    # 1. environment
    def environment(self) -> _Plan | None:
        ak, secret = self._get(ENV_ACCESS_KEY_ID), self._get(ENV_ACCESS_KEY_SECRET)
        token = self._get(ENV_SECURITY_TOKEN)
        if not ak and not secret:
            self.looked.append(f"{ENV_ACCESS_KEY_ID}/_SECRET (not set)")
            return None
        pairs = ((ENV_ACCESS_KEY_ID, ak), (ENV_ACCESS_KEY_SECRET, secret))
        missing = [name for name, value in pairs if not value]
        if missing:
            raise InputError(
                f"missing credentials: set {' and '.join(missing)} in the environment "
                "(or use --mock to try the local emulator)"
            )

        def make() -> Any:
            if token:
                return _lib.StaticSTSCredentialsProvider(
                    access_key_id=ak, access_key_secret=secret, security_token=token
                )
            return _lib.StaticAKCredentialsProvider(access_key_id=ak, access_key_secret=secret)

        # the environment cannot change during the run: nothing to refresh from
        return _Plan("environment", "environment", f"{ENV_ACCESS_KEY_ID}/_SECRET", ak, make,
                     refreshable=False)

    # 2. OIDC / RRSA
    def oidc(self) -> _Plan | None:
        names = (ENV_ROLE_ARN, ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE)
        role_arn, provider_arn, token_file = (self._get(n) for n in names)
        if not (role_arn and provider_arn and token_file):
            unset = [n for n, v in zip(names, (role_arn, provider_arn, token_file), strict=True)
                     if not v]
            what = "not set" if len(unset) == 3 else f"{', '.join(unset)} not set"
            self.looked.append(f"{ENV_ROLE_ARN}/_OIDC_PROVIDER_ARN/_OIDC_TOKEN_FILE ({what})")
            return None
        session = self._get(ENV_ROLE_SESSION_NAME) or f"cams-enrich-{int(time.time())}"
        region = self._get(ENV_STS_REGION) or None
        vpc = _true(self.env.get(ENV_VPC_ENDPOINT_ENABLED))

        def make() -> Any:
            return _lib.OIDCRoleArnCredentialsProvider(
                role_arn=role_arn,
                oidc_provider_arn=provider_arn,
                oidc_token_file_path=token_file,
                role_session_name=session,
                sts_region_id=region,
                enable_vpc=vpc,
                http_options=self._http,
            )

        return _Plan("oidc", "oidc", f"OIDC ({ENV_ROLE_ARN})", role_arn, make)

    # 3. the aliyun CLI's config.json
    def cli_profile(self) -> _Plan | None:
        path = self.home / ".aliyun" / "config.json"
        if _true(self.env.get(ENV_CLI_PROFILE_DISABLED)):
            self.looked.append(f"{path} (disabled by {ENV_CLI_PROFILE_DISABLED})")
            return None
        if not path.exists():
            self.looked.append(f"{path} (not found)")
            return None
        config = _read_cli_config(path)
        wanted = self._get(ENV_PROFILE)
        name = wanted or config.get("current")
        if not isinstance(name, str) or not name:
            self.looked.append(f"{path} (no current profile)")
            return None
        profiles = config.get("profiles")
        profile = next(
            (p for p in profiles if isinstance(p, dict) and p.get("name") == name), None
        ) if isinstance(profiles, list) else None
        if profile is None:
            via = f" ({ENV_PROFILE})" if wanted else ""
            self.looked.append(f"{path} (no profile {name!r}{via})")
            return None
        mode = profile.get("mode")
        if mode not in CLI_MODES:
            raise InputError(
                f"profile {name!r} in {path} has mode {_one_line(repr(mode))}, which "
                f"alibabacloud-credentials cannot use; modes: {', '.join(CLI_MODES)}"
            )
        if mode in ("AK", "StsToken", "RamRoleArn"):
            _require(profile, ("access_key_id", "access_key_secret"), f"profile {name!r} in {path}")
        role = profile.get("ram_role_arn")
        source = role if isinstance(role, str) and role else f"cli_profile:{name}"
        label = f"cli_profile:{name}"
        where = f"profile {name!r} of {path}"
        if mode == "EcsRamRole":
            role_name = profile.get("ram_role_name")
            return _Plan("cli_profile", label, where, source,
                         self._ecs_maker(role_name if isinstance(role_name, str) else None))

        def make() -> Any:
            return _inner_provider("cli_profile", path, name, _read_cli_config(path))

        return _Plan("cli_profile", label, where, source, make)

    # 4. credentials.ini
    def credentials_file(self) -> _Plan | None:
        named = self._get(ENV_CREDENTIALS_FILE)
        default = self.home / ".alibabacloud" / "credentials.ini"
        path = Path(named).expanduser() if named else default
        if not path.exists():
            if named:
                raise InputError(f"{ENV_CREDENTIALS_FILE} names {path}, which does not exist")
            self.looked.append(f"{path} (not found)")
            return None
        sections = _read_ini(path)
        name = self._get(ENV_PROFILE) or "default"
        section = sections.get(name)
        if section is None:
            self.looked.append(f"{path} (no section [{name}])")
            return None
        kind = section.get("type")
        if kind not in INI_TYPES:
            raise InputError(
                f"section [{name}] of {path} has type {_one_line(repr(kind))}, which "
                f"alibabacloud-credentials cannot use; types: {', '.join(INI_TYPES)}"
            )
        if kind in ("access_key", "ram_role_arn"):
            _require(section, ("access_key_id", "access_key_secret"), f"section [{name}] of {path}")
        role = section.get("role_arn")
        source = role if role else f"credentials_file:{name}"
        label = f"credentials_file:{name}"
        where = f"section [{name}] of {path}"
        if kind == "ecs_ram_role":
            return _Plan("credentials_file", label, where, source,
                         self._ecs_maker(section.get("role_name") or None))

        def make() -> Any:
            return _inner_provider("credentials_file", path, name, _read_ini(path)[name])

        return _Plan("credentials_file", label, where, source, make)

    # 5. ECS RAM role
    def ecs(self) -> _Plan | None:
        if _true(self.env.get(ENV_ECS_METADATA_DISABLED)):
            self.looked.append(f"ECS RAM role (disabled by {ENV_ECS_METADATA_DISABLED})")
            return None
        role_name = self._get(ENV_ECS_METADATA) or None
        return _Plan("ecs_ram_role", "ecs_ram_role", "the ECS metadata service (RAM role)",
                     f"ecs_ram_role:{role_name}" if role_name else "ecs_ram_role",
                     self._ecs_maker(role_name), probe=True)

    def _ecs_maker(self, role_name: str | None) -> Callable[[], Any]:
        imds_v1_disabled = _true(self.env.get(ENV_IMDSV1_DISABLED))

        def make() -> Any:
            # no APScheduler thread, no background executor: refreshed on demand
            return _lib.EcsRamRoleCredentialsProvider(
                role_name=role_name,
                disable_imds_v1=imds_v1_disabled,
                http_options=self._ecs_http,
                async_update_enabled=False,
            )

        return make

    # 6. credentials URI
    def uri(self) -> _Plan | None:
        uri = self._get(ENV_CREDENTIALS_URI)
        if not uri:
            self.looked.append(f"{ENV_CREDENTIALS_URI} (not set)")
            return None
        shown = _sanitised_uri(uri)
        if urlsplit(uri).scheme not in ("http", "https"):
            raise InputError(f"{ENV_CREDENTIALS_URI} {shown!r} is not an http(s) URL")

        def make() -> Any:
            return _lib.URLCredentialsProvider(uri=uri, http_options=self._http)

        return _Plan("credentials_uri", "credentials_uri", f"{ENV_CREDENTIALS_URI} {shown}",
                     shown, make)


def _require(fields: Mapping[str, Any], names: tuple[str, ...], where: str) -> None:
    """Empty key fields would make the library fall back to the environment it read at import."""
    missing = [n for n in names if not isinstance(fields.get(n), str) or not fields[n].strip()]
    if missing:
        raise InputError(f"{where} has no {' and no '.join(missing)}")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"cannot read {path}: it is not UTF-8 text") from None
    except OSError as exc:
        why = (exc.strerror or type(exc).__name__).lower()
        raise InputError(f"cannot read {path}: {why}") from None


def _read_cli_config(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}); "
            "fix it or run aliyun configure"
        ) from None
    if not isinstance(config, dict):
        raise InputError(f"{path} is not a JSON object; fix it or run aliyun configure")
    return config


def _read_ini(path: Path) -> dict[str, dict[str, str]]:
    """The sections as alibabacloud-credentials reads them (``#`` starts a comment in a value)."""
    text = _read_text(path)
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text, source=str(path))
        sections = {
            section: {
                key: value.split("#")[0].strip() if "#" in value else value.strip()
                for key, value in parser.items(section)
            }
            for section in parser.sections()
        }
    except configparser.Error as exc:
        # configparser's own message quotes the offending line: it may be a secret
        line = getattr(exc, "lineno", None)
        errors = getattr(exc, "errors", None)
        if line is None and errors:
            line = errors[0][0]
        where = f" (line {line})" if line else ""
        raise InputError(
            f"{path} is not a valid credentials file{where}: {type(exc).__name__}"
        ) from None
    return sections
