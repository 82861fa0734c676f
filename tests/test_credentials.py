"""The credential chain (issue 14): real library, real emulator on 127.0.0.1, no patching.

Every test passes its own ``environ`` and ``home`` (tmp_path), with the ECS metadata
service disabled, and an audit hook checks that nothing but loopback is reached
(100.100.100.200 above all). Start-up errors are one line, no secret, nothing sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from enrich.client import CamsClient
from enrich.credentials import CredentialSource, CredentialsUnavailable
from enrich.emulator import EmulatorConfig, EmulatorServer
from enrich.errors import CallError, InputError
from enrich.signing import Credentials

SPACE = "space"
NUMBER = "8613800138000"
NO_ECS = {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
SECRET = "s3cr3t-never-shown"

# -- nothing but loopback ----------------------------------------------------------------

_REACHED: list[Any] = []
_RECORDING = [False]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING[0] and event in ("socket.connect", "socket.getaddrinfo"):
        _REACHED.append(args[1] if event == "socket.connect" else args[0])


sys.addaudithook(_audit)


def _is_loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode()
    return isinstance(host, str) and (host in ("localhost", "::1") or host.startswith("127."))


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # Tea sends the URI fetch through a proxy
    _REACHED.clear()
    _RECORDING[0] = True
    try:
        yield
    finally:
        _RECORDING[0] = False
    assert [a for a in _REACHED if not _is_loopback(a)] == []


@pytest.fixture(scope="module")
def sts_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(rate_limit=0)) as server:
        yield server


def env(**values: str) -> dict[str, str]:
    return {**NO_ECS, **{f"ALIBABA_CLOUD_{k}": v for k, v in values.items()}}


def discover(environ: dict[str, str], home: Path, **kw: Any) -> CredentialSource:
    return asyncio.run(CredentialSource.discover(environ=environ, home=home, **kw))


def fails(environ: dict[str, str], home: Path, **kw: Any) -> str:
    with pytest.raises(InputError) as err:
        discover(environ, home, **kw)
    message = str(err.value)
    assert "\n" not in message and SECRET not in message
    return message


def call_with(source: CredentialSource | Credentials, server: EmulatorServer) -> Any:
    async def go() -> Any:
        async with CamsClient(endpoint=server.url, credentials=source) as client:
            return await client.query(SPACE, NUMBER)

    return asyncio.run(go())


def write_cli(home: Path, config: dict[str, Any]) -> Path:
    path = home / ".aliyun" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config), "utf-8")
    return path


def ak_profile(name: str, ak: str = "testAKID", secret: str = "testSecret") -> dict[str, str]:
    return {"name": name, "mode": "AK", "access_key_id": ak, "access_key_secret": secret}


def write_ini(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def default_ini(home: Path) -> Path:
    return home / ".alibabacloud" / "credentials.ini"


# -- which source, in the library's order ------------------------------------------------


def test_the_environment_comes_first(tmp_path: Path, server: EmulatorServer) -> None:
    write_cli(tmp_path, {"current": "p", "profiles": [ak_profile("p", "OTHER")]})
    source = discover(env(ACCESS_KEY_ID="testAKID", ACCESS_KEY_SECRET="testSecret"), tmp_path)
    assert (source.provider, source.budget_name) == ("environment", "testAKID")
    assert source.expiration is None
    assert call_with(source, server).request_id
    assert _REACHED and all(_is_loopback(a) for a in _REACHED)  # the guard sees connections
    assert "testSecret" not in repr(source)


def test_an_sts_token_in_the_environment_is_used_and_budgeted_by_its_key(tmp_path: Path) -> None:
    source = discover(env(ACCESS_KEY_ID="STS.AK", ACCESS_KEY_SECRET="s", SECURITY_TOKEN="tok"),
                      tmp_path)  # fmt: skip
    creds = asyncio.run(source.get())
    assert creds == Credentials("STS.AK", "s", "tok")
    assert (source.provider, source.budget_name) == ("environment", "STS.AK")
    assert asyncio.run(source.refresh(creds)) is False  # nothing fresher to be had


def test_half_a_key_pair_in_the_environment_names_the_missing_variable(tmp_path: Path) -> None:
    assert fails(env(ACCESS_KEY_ID="testAKID"), tmp_path) == (
        "missing credentials: set ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment "
        "(or use --mock to try the local emulator)"
    )


def test_no_credentials_anywhere_is_one_line_naming_variables_and_files(tmp_path: Path) -> None:
    message = fails(env(), tmp_path)
    assert message == (
        "no Alibaba Cloud credentials found; looked at: "
        "ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET (not set); "
        "ALIBABA_CLOUD_ROLE_ARN/_OIDC_PROVIDER_ARN/_OIDC_TOKEN_FILE (not set); "
        f"{tmp_path}/.aliyun/config.json (not found); "
        f"{tmp_path}/.alibabacloud/credentials.ini (not found); "
        "ECS RAM role (disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED); "
        "ALIBABA_CLOUD_CREDENTIALS_URI (not set). "
        "Set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET in the "
        "environment, or configure a profile (aliyun configure) "
        "(or use --mock to try the local emulator)"
    )
    assert _REACHED == []  # the metadata service was not even looked up


def test_a_cli_profile_current_then_alibaba_cloud_profile(tmp_path: Path,
                                                         server: EmulatorServer) -> None:
    write_cli(tmp_path, {"current": "work", "profiles": [
        ak_profile("work"), ak_profile("other", "otherAK")]})  # fmt: skip
    write_ini(default_ini(tmp_path), "[default]\ntype = access_key\n"
              "access_key_id = iniAK\naccess_key_secret = x\n")  # fmt: skip
    source = discover(env(), tmp_path)
    assert (source.provider, source.budget_name) == ("cli_profile:work", "testAKID")
    assert call_with(source, server).request_id
    other = discover(env(PROFILE="other"), tmp_path)
    assert (other.provider, other.budget_name) == ("cli_profile:other", "otherAK")


def test_a_cli_sts_profile_is_budgeted_by_the_profile(tmp_path: Path,
                                                      sts_server: EmulatorServer) -> None:
    minted = asyncio.run(CredentialSource.discover(
        environ=env(CREDENTIALS_URI=sts_server.credentials_uri()), home=tmp_path))  # fmt: skip
    creds = asyncio.run(minted.get())
    write_cli(tmp_path, {"current": "sts", "profiles": [{
        "name": "sts", "mode": "StsToken", "access_key_id": creds.access_key_id,
        "access_key_secret": creds.access_key_secret, "sts_token": creds.security_token}]})
    source = discover(env(), tmp_path)
    assert (source.provider, source.budget_name) == ("cli_profile:sts", "cli_profile:sts")
    assert call_with(source, sts_server).request_id


def test_credentials_ini_default_section(tmp_path: Path, server: EmulatorServer) -> None:
    write_ini(default_ini(tmp_path), "[default]\ntype = access_key\naccess_key_id = testAKID\n"
              "access_key_secret = testSecret # a comment, as the library reads it\n")
    source = discover(env(), tmp_path)
    assert (source.provider, source.budget_name) == ("credentials_file:default", "testAKID")
    assert call_with(source, server).request_id


def test_credentials_ini_section_from_alibaba_cloud_profile_and_file_from_env(
    tmp_path: Path, server: EmulatorServer
) -> None:
    path = write_ini(tmp_path / "elsewhere.ini", "[default]\ntype = access_key\n"
                     "access_key_id = wrong\naccess_key_secret = wrong\n"
                     "[prod]\ntype = access_key\naccess_key_id = testAKID\n"
                     "access_key_secret = testSecret\n")  # fmt: skip
    source = discover(env(PROFILE="prod", CREDENTIALS_FILE=str(path)), tmp_path)
    assert source.provider == "credentials_file:prod"
    assert call_with(source, server).request_id


def test_a_profile_missing_everywhere_is_named(tmp_path: Path) -> None:
    write_cli(tmp_path, {"current": "work", "profiles": [ak_profile("work")]})
    write_ini(default_ini(tmp_path), "[default]\ntype = access_key\n"
              "access_key_id = a\naccess_key_secret = b\n")  # fmt: skip
    message = fails(env(PROFILE="nightly"), tmp_path)
    assert (f"{tmp_path}/.aliyun/config.json (no profile 'nightly' (ALIBABA_CLOUD_PROFILE)); "
            f"{tmp_path}/.alibabacloud/credentials.ini (no section [nightly])") in message


def test_a_credentials_uri_is_sanitised_for_messages_and_budget(
    tmp_path: Path, sts_server: EmulatorServer
) -> None:
    uri = sts_server.credentials_uri(lifetime=600, token=SECRET)
    source = discover(env(CREDENTIALS_URI=uri), tmp_path)
    assert source.provider == "credentials_uri"
    assert source.budget_name == f"{sts_server.url}/credentials"
    assert SECRET not in repr(source)
    assert call_with(source, sts_server).request_id


def test_oidc_comes_before_profiles_and_a_missing_token_file_sends_nothing(
    tmp_path: Path,
) -> None:
    write_cli(tmp_path, {"current": "work", "profiles": [ak_profile("work")]})
    missing = tmp_path / "no-token"
    oidc = env(ROLE_ARN="acs:ram::1:role/r", OIDC_PROVIDER_ARN="acs:ram::1:oidc-provider/p",
               OIDC_TOKEN_FILE=str(missing))  # fmt: skip
    message = fails(oidc, tmp_path)
    assert message == (
        f"credentials from OIDC (ALIBABA_CLOUD_ROLE_ARN) failed: {missing} does not exist; "
        "nothing was sent"
    )
    # an incomplete OIDC set is skipped, as the library does
    source = discover(env(ROLE_ARN="acs:ram::1:role/r"), tmp_path)
    assert source.provider == "cli_profile:work"


# -- bad input: one line, exit 1, nothing sent, no secret ----------------------------------


def test_malformed_cli_config(tmp_path: Path) -> None:
    path = tmp_path / ".aliyun" / "config.json"
    path.parent.mkdir()
    text = '{"current": "p",\n "profiles": [{"access_key_secret": "' + SECRET + '"'
    path.write_text(text, "utf-8")
    assert fails(env(), tmp_path) == (
        f"{path} is not valid JSON (line 2, column {len(SECRET) + 39}); "
        "fix it or run aliyun configure"
    )


def test_unreadable_cli_config(tmp_path: Path) -> None:
    path = tmp_path / ".aliyun" / "config.json"
    path.mkdir(parents=True)  # a directory: unreadable, even as root
    assert fails(env(), tmp_path) == f"cannot read {path}: is a directory"
    path.rmdir()
    path.write_bytes(b'{"x": "\xff\xfe"}')
    assert fails(env(), tmp_path) == f"cannot read {path}: it is not UTF-8 text"


def test_a_cli_profile_of_an_unknown_mode(tmp_path: Path) -> None:
    path = write_cli(tmp_path, {"current": "p", "profiles": [
        {"name": "p", "mode": "Magic\nMode", "access_key_secret": SECRET}]})  # fmt: skip
    assert fails(env(), tmp_path) == (
        f"profile 'p' in {path} has mode 'Magic\\nMode', which alibabacloud-credentials "
        "cannot use; modes: AK, StsToken, RamRoleArn, EcsRamRole, OIDC, ChainableRamRoleArn, "
        "CloudSSO, OAuth, External"
    )


def test_a_cli_profile_without_its_keys(tmp_path: Path) -> None:
    path = write_cli(tmp_path, {"current": "p", "profiles": [
        {"name": "p", "mode": "AK", "access_key_id": "", "access_key_secret": SECRET}]})
    assert fails(env(), tmp_path) == f"profile 'p' in {path} has no access_key_id"


def test_malformed_credentials_ini(tmp_path: Path) -> None:
    path = write_ini(default_ini(tmp_path), f"access_key_secret = {SECRET}\n[default]\n")
    assert fails(env(), tmp_path) == (
        f"{path} is not a valid credentials file (line 1): MissingSectionHeaderError"
    )
    write_ini(path, f"[default]\ntype = access_key\nthis line has no equals {SECRET}\n")
    assert fails(env(), tmp_path) == (
        f"{path} is not a valid credentials file (line 3): ParsingError"
    )


def test_credentials_ini_of_an_unknown_type_or_missing_file(tmp_path: Path) -> None:
    path = write_ini(default_ini(tmp_path), f"[default]\ntype = magic\nkey = {SECRET}\n")
    assert fails(env(), tmp_path) == (
        f"section [default] of {path} has type 'magic', which alibabacloud-credentials "
        "cannot use; types: access_key, ram_role_arn, oidc_role_arn, ecs_ram_role, rsa_key_pair"
    )
    gone = tmp_path / "gone.ini"
    assert fails(env(CREDENTIALS_FILE=str(gone)), tmp_path) == (
        f"ALIBABA_CLOUD_CREDENTIALS_FILE names {gone}, which does not exist"
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("garbage", "the answer is not UTF-8 text"),
        ("error", 'the answer is not {"Code": "Success", "AccessKeyId", "AccessKeySecret", '
                  '"SecurityToken", "Expiration"}'),
        ("incomplete", 'the answer is not {"Code": "Success", "AccessKeyId", "AccessKeySecret", '
                       '"SecurityToken", "Expiration"}'),
        ("http500", "HTTP 500"),
        ("hang", "no answer within 1 s"),
    ],
)  # fmt: skip
def test_a_credentials_uri_answering_garbage_or_nothing(
    tmp_path: Path, emulator: Any, fault: str, reason: str
) -> None:
    server = emulator()
    uri = server.credentials_uri(fault=fault, secret=SECRET)
    message = fails(env(CREDENTIALS_URI=uri), tmp_path, timeout_s=1.0)
    assert message == (
        f"credentials from ALIBABA_CLOUD_CREDENTIALS_URI {server.url}/credentials failed: "
        f"{reason}; nothing was sent"
    )
    assert server.stats.credentials_served == {fault: 1}
    assert server.stats.requests_total == 0


def test_a_credentials_uri_giving_expired_credentials(tmp_path: Path, emulator: Any) -> None:
    server = emulator()
    message = fails(env(CREDENTIALS_URI=server.credentials_uri(lifetime=-10)), tmp_path)
    assert message == (
        f"credentials from ALIBABA_CLOUD_CREDENTIALS_URI {server.url}/credentials failed: "
        "it gave credentials that have expired already; nothing was sent"
    )


def test_a_credentials_uri_nobody_listens_on(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        message = fails(env(CREDENTIALS_URI=f"http://127.0.0.1:{port}/c?t={SECRET}"), tmp_path,
                        timeout_s=2.0)  # fmt: skip
    assert message == (
        f"credentials from ALIBABA_CLOUD_CREDENTIALS_URI http://127.0.0.1:{port}/c failed: "
        "cannot connect; nothing was sent"
    )


def test_a_hanging_credentials_uri_is_cancelled_at_once(tmp_path: Path, emulator: Any) -> None:
    server = emulator()
    uri = server.credentials_uri(fault="hang")

    async def go() -> float:
        task = asyncio.ensure_future(CredentialSource.discover(
            environ=env(CREDENTIALS_URI=uri), home=tmp_path, timeout_s=60))  # fmt: skip
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 2.0)
        return loop.time() - started

    assert asyncio.run(go()) < 2.0


# -- the library, tamed -------------------------------------------------------------------


def test_the_library_alone_refetches_tokens_of_15_minutes_or_less_on_every_call(
    sts_server: EmulatorServer,
) -> None:
    """Why the source renews on its own schedule (if this fails, the library changed)."""
    from alibabacloud_credentials.provider import URLCredentialsProvider

    async def keys(lifetime: int) -> set[str]:
        provider = URLCredentialsProvider(uri=sts_server.credentials_uri(lifetime=lifetime))
        got = [await provider.get_credentials_async() for _ in range(3)]
        return {c.get_access_key_id() for c in got}

    assert len(asyncio.run(keys(900))) == 3  # stale 15 minutes before expiry: at once
    assert len(asyncio.run(keys(1000))) == 1  # cached until 100 s from now



def test_the_library_loggers_print_nothing(tmp_path: Path, sts_server: EmulatorServer,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    for name in ("credentials", "alibabacloud-tea"):
        logger = logging.getLogger(name)
        ours = [h for h in logger.handlers if not type(h).__module__.startswith("_pytest")]
        assert [type(h) for h in ours] == [logging.NullHandler]
        assert not logger.propagate and logger.level > logging.CRITICAL
    # a 3-second token makes the library warn ("stale time is in the past") on every fetch
    source = discover(env(CREDENTIALS_URI=sts_server.credentials_uri(lifetime=3)), tmp_path)
    logging.getLogger("credentials").warning("a library warning")
    assert source.provider == "credentials_uri"
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_no_thread_outlives_the_source(tmp_path: Path, sts_server: EmulatorServer) -> None:
    before = set(threading.enumerate())
    write_ini(default_ini(tmp_path), "[default]\ntype = ecs_ram_role\nrole_name = r\n")

    async def go() -> None:
        source = await CredentialSource.discover(
            environ=env(CREDENTIALS_URI=sts_server.credentials_uri(lifetime=2)),
            home=tmp_path / "x",
        )
        for _ in range(3):
            await source.get()
            await source.refresh()
        source.close()

    asyncio.run(go())
    # the ECS provider a profile names is built without its APScheduler thread
    from enrich.credentials import _Chain

    chain = _Chain(env(), tmp_path, timeout_s=1, ecs_timeout_s=1)
    plan = chain.credentials_file()
    assert plan is not None and plan.provider == "credentials_file:default"
    plan.make()
    assert set(threading.enumerate()) - before == set()


# -- STS: refreshed ahead of expiry, Expired retried once ----------------------------------


class FakeTime:
    """One clock for the emulator, the source and the client's x-acs-date."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def test_a_run_outlives_hour_long_tokens_renewed_15_minutes_ahead(emulator: Any,
                                                                 tmp_path: Path) -> None:
    clock = FakeTime()
    server = emulator(clock=clock, sts_lifetime_s=3600)

    async def go() -> tuple[list[float], int]:
        source = await CredentialSource.discover(
            environ=env(CREDENTIALS_URI=server.credentials_uri()), home=tmp_path, clock=clock)
        ahead: list[float] = []
        ok = 0
        async with CamsClient(endpoint=server.url, credentials=source, clock=clock) as client:
            for minute in range(0, 5 * 60, 5):  # five hours, a call every five minutes
                expiration = source.expiration
                assert expiration is not None
                before = await source.get()
                if source.expiration != expiration:
                    ahead.append(expiration - clock.now)
                assert before.security_token
                answers = await asyncio.gather(
                    *(client.query(SPACE, f"86138{minute:04d}{i:04d}") for i in range(3)))
                ok += len(answers)
                clock.now += 300
        return ahead, ok

    ahead, ok = asyncio.run(go())
    assert ok == 180
    assert len(ahead) >= 5 and all(600 < a <= 900 for a in ahead)
    assert "InvalidSecurityToken.Expired" not in server.stats.codes
    assert server.stats.credentials_served["ok"] == len(ahead) + 1


def test_a_run_outlives_several_second_long_tokens_in_real_time(emulator: Any,
                                                                tmp_path: Path) -> None:
    server = emulator(sts_lifetime_s=3)

    async def go() -> tuple[int, int, int]:
        source = await CredentialSource.discover(
            environ=env(CREDENTIALS_URI=server.credentials_uri()), home=tmp_path)
        failures = 0
        async with CamsClient(endpoint=server.url, credentials=source) as client:
            async def worker(w: int) -> int:
                failed = 0
                for i in range(35):
                    try:
                        await client.query(SPACE, f"861380{w:03d}{i:04d}")
                    except CallError:
                        failed += 1
                    await asyncio.sleep(0.2)
                return failed

            failures = sum(await asyncio.gather(*(worker(w) for w in range(3))))
            return failures, source.fetches, client.resends

    failures, fetches, resends = asyncio.run(go())
    assert (failures, resends) == (0, 0)
    assert fetches >= 4  # ~7 s of 2–3 s tokens, renewed at half their life
    keys = {key for _, key in server.stats.arrivals}
    assert len(keys) >= 4 and all(k.startswith("STS.") for k in keys)
    assert server.stats.codes == {"OK": 105}


def test_an_expired_answer_is_sent_again_once_with_fresh_credentials(emulator: Any,
                                                                     tmp_path: Path) -> None:
    server = emulator()
    resends: list[int] = []

    async def slot() -> None:
        resends.append(1)

    async def go() -> tuple[int, int, int]:
        source = await CredentialSource.discover(
            environ=env(CREDENTIALS_URI=server.credentials_uri(fault="revoked-1")), home=tmp_path)
        async with CamsClient(endpoint=server.url, credentials=source,
                              before_resend=slot) as client:  # fmt: skip
            answers = await asyncio.gather(
                *(client.query(SPACE, f"8613800{i:06d}") for i in range(8)))
            assert all(a.request_id for a in answers)
            return source.fetches, client.resends, len(answers)

    fetches, sent_again, answered = asyncio.run(go())
    # eight requests signed with the revoked token, one refresh for all, eight resends
    assert (fetches, sent_again, answered, len(resends)) == (2, 8, 8, 8)
    assert server.stats.codes == {"InvalidSecurityToken.Expired": 8, "OK": 8}


def test_a_second_expired_answer_is_raised(emulator: Any, tmp_path: Path) -> None:
    server = emulator()

    async def go() -> tuple[CallError, int, int]:
        source = await CredentialSource.discover(
            environ=env(CREDENTIALS_URI=server.credentials_uri(fault="revoked")), home=tmp_path)
        async with CamsClient(endpoint=server.url, credentials=source) as client:
            with pytest.raises(CallError) as err:
                await client.query(SPACE, NUMBER)
            return err.value, source.fetches, client.resends

    err, fetches, resends = asyncio.run(go())
    assert (err.code, err.http_status, fetches, resends) == (
        "InvalidSecurityToken.Expired", 400, 2, 1)
    assert server.stats.codes == {"InvalidSecurityToken.Expired": 2}


def test_fixed_credentials_with_an_expired_token_are_not_sent_again(server: EmulatorServer) -> None:
    async def go() -> tuple[str, int]:
        creds = Credentials("testAKID", "testSecret", "expired-token")
        async with CamsClient(endpoint=server.url, credentials=creds) as client:
            with pytest.raises(CallError) as err:
                await client.query(SPACE, NUMBER)
            return err.value.code, client.resends

    assert asyncio.run(go()) == ("InvalidSecurityToken.Expired", 0)


def test_a_coroutine_function_is_asked_before_every_attempt(server: EmulatorServer) -> None:
    asked: list[int] = []

    async def credentials() -> Credentials:
        asked.append(1)
        return Credentials("testAKID", "testSecret")

    async def go() -> None:
        async with CamsClient(endpoint=server.url, credentials=credentials) as client:
            await client.query(SPACE, NUMBER)
            await client.query(SPACE, NUMBER, attempt=2)

    asyncio.run(go())
    assert len(asked) == 2


def test_a_failed_refresh_keeps_valid_credentials_then_gives_up(tmp_path: Path) -> None:
    clock = FakeTime()
    server = EmulatorServer(EmulatorConfig(rate_limit=0, clock=clock, sts_lifetime_s=3600))
    server.start()

    async def go() -> tuple[Credentials, Credentials, str]:
        source = await CredentialSource.discover(
            environ=env(CREDENTIALS_URI=server.credentials_uri()), home=tmp_path,
            clock=clock, sleep=clock.sleep, timeout_s=1.0)  # fmt: skip
        first = await source.get()
        server.stop()  # the URI is gone from now on
        clock.now += 3600 - 600  # past the renewal time, still valid
        kept = await source.get()
        clock.now += 700  # expired
        with pytest.raises(CredentialsUnavailable) as err:
            await source.get()
        return first, kept, str(err.value)

    first, kept, message = asyncio.run(go())
    assert kept == first
    assert message.startswith(
        f"credentials from ALIBABA_CLOUD_CREDENTIALS_URI {server.url}/credentials could not be "
        "refreshed for 60 s (cannot connect); the run stops"
    )


# -- the emulator's STS keys --------------------------------------------------------------


def test_the_emulator_refuses_a_minted_key_without_its_token(sts_server: EmulatorServer,
                                                             tmp_path: Path) -> None:
    source = discover(env(CREDENTIALS_URI=sts_server.credentials_uri()), tmp_path)
    creds = asyncio.run(source.get())
    assert creds.access_key_id.startswith("STS.") and creds.security_token
    for token in (None, "another-token"):
        with pytest.raises(CallError) as err:
            call_with(Credentials(creds.access_key_id, creds.access_key_secret, token), sts_server)
        assert (err.value.code, err.value.http_status) == (
            "InvalidSecurityToken.MismatchWithAccessKey", 400)
    assert call_with(creds, sts_server).request_id
