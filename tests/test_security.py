"""Security: formula neutralising, the secret never leaks, TLS, body size cap, no header injection.

- **Formulas** (end to end, CSV and XLSX): API text starting with ``=`` ``+`` ``-``
  ``@`` gets a leading ``'``; input columns never change; no XLSX cell ever becomes a
  live formula (a formula cell of the user's workbook may stay that same formula when
  the workbook is kept as it was); Parquet carries the API text as is.
  API text is stripped of surrounding whitespace before it is written, so a leading
  tab or CR cannot arrive end to end: ``frames.write_table`` is tested for those two.
- **The secret** (a distinctive value, with retries, errors and a fatal run, in text and
  JSON logs) is in no byte of stdout, stderr, any output, the summary or the ledger
  (and its WAL); nor is the STS token.
- **TLS**: verification is off only for a loopback host. Shown with a self-signed
  certificate valid for both ``127.0.0.1`` and ``cams.example.test``: accepted on
  127.0.0.1; refused for ``cams.example.test``, resolved to 127.0.0.1 through the
  client's ``session`` seam (an aiohttp session whose resolver maps that name),
  which changes where the name points but not the client's TLS decision.
- **Body cap**: a 64 MB answer (chunked, or with its Content-Length) is refused as
  ``Client.BadResponse`` quickly, and the server could not send it all.
- **Header injection**: CR/LF in a CustSpaceId (a cell of ``--cust-space-column``, or
  ``--cust-space-id``) reaches the wire percent-encoded in the query, never as a
  header: a raw asyncio server records the request bytes.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openpyxl
import polars as pl
import pytest
import xlsxwriter
from aiohttp import web
from aiohttp.abc import AbstractResolver
from click.testing import CliRunner

from enrich.cli import cli
from enrich.client import CamsClient
from enrich.emulator.profiles import profile_for
from enrich.errors import CallError
from enrich.frames import read_table, write_table
from enrich.logs import Log
from enrich.report import API_TEXT_COLUMNS
from enrich.signing import Credentials

API_COLUMNS = ["bp_about", "bp_address", "bp_description", "bp_vertical", "bp_email",
               "bp_profile_picture_url", "bp_websites"]
_FIELDS = dict(zip(API_COLUMNS, ["About", "Address", "Description", "Vertical", "Email",
                                 "ProfilePictureUrl", "Websites"], strict=True))
DANGEROUS = ("=", "+", "-", "@")
# Input cells that look like formulas: they must come out exactly as they went in.
INPUT_TEXTS = ["=1+1", "+44 20 7946 0958", "-5", "@SUM(A1)", "\tindented", "\rcarriage",
               '=HYPERLINK("http://x.example","y")', "plain"]


def truth(number: str) -> dict[str, str | None]:
    """The API text of each bp_* column for ``number``, stripped, as Parquet carries it."""
    data = profile_for("S1", number) or {}
    out: dict[str, str | None] = {}
    for col, key in _FIELDS.items():
        value = data.get(key)
        if key == "Websites":
            sites = [s.strip() for s in (value or []) if isinstance(s, str) and s.strip()]
            out[col] = " ".join(sites) or None
        else:
            out[col] = (value.strip() or None) if isinstance(value, str) else None
    if all(v is None for v in out.values()):
        return dict.fromkeys(API_COLUMNS)
    return out


def neutral(value: str | None) -> str | None:
    return "'" + value if value and value[0] in "=+-@\t\r" else value


def formula_numbers() -> list[str]:
    """A few numbers whose profiles together start texts with each dangerous character."""
    chosen: list[str] = []
    missing = set(DANGEROUS)
    for i in range(2000):
        number = f"861380{i:07d}"
        firsts = {v[0] for v in truth(number).values() if v}
        if firsts & missing:
            chosen.append(number)
            missing -= firsts
        if not missing:
            return chosen
    raise AssertionError(f"no profile starts with {missing}")


NUMBERS = formula_numbers()


def write_input(path: Path) -> list[list[str]]:
    rows = [["phone", "note"]] + [
        ["+" + n, INPUT_TEXTS[i % len(INPUT_TEXTS)]] for i, n in enumerate(NUMBERS)]
    rows += [["+8613800999999", text] for text in INPUT_TEXTS]  # every input text once
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return rows


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["run", *args], catch_exceptions=False)


# ------------------------------------------------------------------------------- formulas


def test_csv_output_neutralises_api_text_not_input(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    rows = write_input(tmp_path / "in.csv")
    res = run("in.csv", "--endpoint", server.url, "--cust-space-id", "S1", "--no-cache")
    assert res.exit_code == 0, res.stderr
    with (tmp_path / "in.enriched.csv").open(newline="", encoding="utf-8") as f:
        out = list(csv.DictReader(f))
    seen: set[str] = set()
    for given, got in zip(rows[1:], out, strict=True):
        assert [got["phone"], got["note"]] == given  # input columns untouched
        want = truth(got["bp_phone"])
        for col in API_COLUMNS:
            assert got[col] == (neutral(want[col]) or ""), (got["bp_phone"], col)
            if want[col] and want[col][0] in DANGEROUS:
                seen.add(want[col][0])
                assert got[col].startswith("'")
    assert seen == set(DANGEROUS)


def test_error_report_keeps_the_raw_input_value(emulator, creds, tmp_path: Path) -> None:
    """SPEC.md: the report's ``phone`` is the raw input value, formula-like or not."""
    server = emulator()
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["phone", "note"], *([t, "x"] for t in INPUT_TEXTS)])
    res = run("in.csv", "--endpoint", server.url, "--cust-space-id", "S1", "--no-cache")
    assert res.exit_code == 0, res.stderr
    with (tmp_path / "in.errors.csv").open(newline="", encoding="utf-8") as f:
        report = {int(r["row"]): r for r in csv.DictReader(f)}
    assert len(report) >= len(INPUT_TEXTS) - 1  # all but the real number are invalid
    for row, r in report.items():
        assert r["phone"] == INPUT_TEXTS[row - 1]


def _xlsx_cells(path: Path) -> list[openpyxl.cell.cell.Cell]:
    wb = openpyxl.load_workbook(path)
    return [cell for ws in wb.worksheets for row in ws.iter_rows() for cell in row]


def test_xlsx_output_has_no_live_formula(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    rows = write_input(tmp_path / "in.csv")
    res = run("in.csv", "-o", "out.xlsx", "--endpoint", server.url, "--cust-space-id", "S1",
              "--no-cache")
    assert res.exit_code == 0, res.stderr
    cells = _xlsx_cells(tmp_path / "out.xlsx")
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    ws = openpyxl.load_workbook(tmp_path / "out.xlsx").active
    assert all(c.data_type == "s" for row in ws.iter_rows(min_row=2, max_col=2) for c in row)
    # values through calamine: openpyxl leaves xlsx escapes such as _x000D_ (CR) undecoded
    back = read_table(tmp_path / "out.xlsx").df
    seen: set[str] = set()
    for given, got in zip(rows[1:], back.iter_rows(named=True), strict=True):
        assert [got["phone"], got["note"]] == given  # input text stays text, unchanged
        want = truth(got["bp_phone"])
        for col in API_COLUMNS:
            assert got[col] == neutral(want[col]), (got["bp_phone"], col)
            if want[col] and want[col][0] in DANGEROUS:
                seen.add(want[col][0])
    assert seen == set(DANGEROUS)


def test_xlsx_input_cells_never_become_live_formulas(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    wb = xlsxwriter.Workbook(str(tmp_path / "in.xlsx"))
    ws = wb.add_worksheet("Leads")
    ws.write_row(0, 0, ["phone", "note", "total"])
    for r, number in enumerate(NUMBERS, start=1):
        ws.write_string(r, 0, "+" + number)
        ws.write_string(r, 1, INPUT_TEXTS[r % len(INPUT_TEXTS)])
        ws.write_formula(r, 2, f"=1+{r}", None, 1 + r)  # a real formula, with its value
    wb.close()
    res = run("in.xlsx", "--endpoint", server.url, "--cust-space-id", "S1", "--no-cache")
    assert res.exit_code == 0, res.stderr
    out = tmp_path / "in.enriched.xlsx"
    # The user's own formulas may stay formulas, exactly as written (the workbook kept as
    # its user made it); no other cell ever becomes one: input text "=…" stays text.
    given = {c.coordinate: c.value for c in _xlsx_cells(tmp_path / "in.xlsx") if c.data_type == "f"}
    written = {c.coordinate: c.value for c in _xlsx_cells(out) if c.data_type == "f"}
    assert written in ({}, given)
    sheet = openpyxl.load_workbook(out)["Leads"]
    for r, row in enumerate(sheet.iter_rows(min_row=2, max_col=3), start=1):
        phone, note, total = row
        assert (phone.value, phone.data_type) == ("+" + NUMBERS[r - 1], "s")
        assert (note.value, note.data_type) == (INPUT_TEXTS[r % len(INPUT_TEXTS)], "s")
        assert total.value in (1 + r, f"=1+{r}")


def test_parquet_carries_api_text_as_is(emulator, creds, tmp_path: Path) -> None:
    server = emulator()
    write_input(tmp_path / "in.csv")
    res = run("in.csv", "-o", "out.parquet", "--endpoint", server.url, "--cust-space-id", "S1",
              "--no-cache")
    assert res.exit_code == 0, res.stderr
    out = pl.read_parquet(tmp_path / "out.parquet")
    seen: set[str] = set()
    for row in out.iter_rows(named=True):
        want = truth(row["bp_phone"])
        got = {c: row[c] for c in API_COLUMNS}
        got["bp_websites"] = " ".join(row["bp_websites"] or []) or None
        assert got == want
        seen |= {v[0] for v in want.values() if v and v[0] in DANGEROUS}
    assert seen == set(DANGEROUS)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_tab_and_cr_lead_are_neutralised_in_api_columns_only(tmp_path: Path, fmt: str) -> None:
    texts = ["\tx", "\ry", "=z", "+1", "-2", "@a", "ok"]
    df = pl.DataFrame({"note": texts, "bp_about": texts,
                       "bp_websites": [[t] for t in texts]})
    path = tmp_path / f"t.{fmt}"
    write_table(df, path, fmt=fmt, api_text_columns=API_TEXT_COLUMNS)
    if fmt == "xlsx":
        assert not [c for c in _xlsx_cells(path) if c.data_type == "f"]
    back = read_table(path).df
    note, about, sites = (back[c].to_list() for c in ("note", "bp_about", "bp_websites"))
    assert note == texts
    assert about == sites == [neutral(t) for t in texts]


# ----------------------------------------------------------------------------- the secret

SECRET = "Zq7-NEVER-PRINT-ME-5ecr3t-91f0c2"
WRONG_SECRET = "Wr0ng-ALSO-NEVER-PRINT-ME-77a1"
TOKEN = "sts-token-NEVER-PRINT-ME-3b9e"
AK = "LTAI5tSecurityTestKey"


def _subprocess_run(args: list[str], folder: Path, secret: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "CAMS_"))}
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID=AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=secret,
               ALIBABA_CLOUD_SECURITY_TOKEN=TOKEN, XDG_CACHE_HOME=str(folder / ".cache"))
    return subprocess.run([sys.executable, "-m", "enrich", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=90, check=False)


def test_the_secret_is_never_printed_or_written(emulator, tmp_path: Path) -> None:
    server = emulator(keys={AK: SECRET}, fault_rate=0.5, hang_s=30.0, seed=3)
    numbers = [f"86135{i:08d}" for i in range(40)]
    (tmp_path / "a.csv").write_text("phone\n" + "".join(f"+{n}\n" for n in numbers[:20]))
    (tmp_path / "b.csv").write_text("phone\n" + "".join(f"+{n}\n" for n in numbers[20:]))
    common = ["--endpoint", server.url, "--cust-space-id", "S1", "--rate", "500",
              "--max-attempts", "2", "--timeout", "0.3", "--cache", "ledger.sqlite3"]
    runs = [
        _subprocess_run(["run", "a.csv", *common], tmp_path, SECRET),
        _subprocess_run(["run", "b.csv", "-o", "b.xlsx", "--log-format", "json", *common],
                        tmp_path, SECRET),
        # a fatal run: the wrong secret is refused (SignatureDoesNotMatch), exit 3
        _subprocess_run(["run", "a.csv", "-o", "c.csv", "--no-cache",
                         *common[:-2]], tmp_path, WRONG_SECRET),
    ]
    assert [r.returncode for r in runs] == [0, 0, 3], [r.stderr[-500:] for r in runs]
    summaries = [json.loads((tmp_path / f).read_text()) for f in ("a.summary.json",
                                                                  "b.summary.json")]
    assert sum(s["retries"] for s in summaries) > 0  # retries happened ...
    assert sum(s["error_rows"] for s in summaries) > 0  # ... and errors were reported
    assert "retry" in runs[0].stderr and '"event"' in runs[1].stderr
    assert "SignatureDoesNotMatch" in runs[2].stderr

    blobs = {f"stdout/err of run {i}": (r.stdout + r.stderr).encode() for i, r in enumerate(runs)}
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"ledger.sqlite3", "a.enriched.csv", "b.xlsx", "a.errors.csv", "b.summary.json"} <= {
        p.name for p in files}
    blobs.update({str(p): p.read_bytes() for p in files})
    for needle in (SECRET, WRONG_SECRET, TOKEN):
        for encoded in {needle.encode(), needle.encode("utf-16-le")}:
            leaks = [name for name, blob in blobs.items() if encoded in blob]
            assert not leaks, (needle, leaks)
    # XLSX is a zip: look inside too
    import zipfile

    with zipfile.ZipFile(tmp_path / "b.xlsx") as z:
        for name in z.namelist():
            assert SECRET.encode() not in z.read(name), name


# ------------------------------------------------------------------------------------ TLS


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cams.example.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("cams.example.test"), x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


OK_BODY = {"RequestId": "R-1", "Code": "OK", "Message": "None", "Data": {"About": "hi"}}


class StaticResolver(AbstractResolver):
    """Resolve every name to 127.0.0.1 (where the test server listens)."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[dict[str, Any]]:
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        return None


def test_tls_verification_is_off_only_for_loopback(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    cert, key = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(OK_BODY)

    async def main() -> tuple[Any, Any, Any]:
        app = web.Application()
        app.router.add_post("/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        port = runner.addresses[0][1]
        creds = Credentials("AK", "secret")
        try:
            async with CamsClient(endpoint=f"https://127.0.0.1:{port}", credentials=creds,
                                  timeout_s=5) as client:
                loopback = await client.query("S1", "8613800138000")
            async with CamsClient(endpoint=f"https://localhost:{port}", credentials=creds,
                                  timeout_s=5) as client:
                named_loopback = await client.query("S1", "8613800138000")
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=StaticResolver()))
            try:
                client = CamsClient(endpoint=f"https://cams.example.test:{port}",
                                    credentials=creds, timeout_s=5, session=session)
                try:
                    await client.query("S1", "8613800138000")
                    remote: Any = "accepted"
                except CallError as err:
                    remote = err
            finally:
                await session.close()
        finally:
            await runner.cleanup()
        return loopback, named_loopback, remote

    loopback, named_loopback, remote = asyncio.run(main())
    assert loopback.profile.about == "hi" and named_loopback.profile.about == "hi"
    assert isinstance(remote, CallError), remote
    assert remote.code == "Client.Connection"
    assert "certificate" in remote.message.lower(), remote.message


# ------------------------------------------------------------------------------- body cap

TOTAL = 64 * 1024 * 1024
CHUNK = 256 * 1024


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_huge_body_is_refused_unread(tmp_path: Path, declared: bool) -> None:
    sent = {"bytes": 0, "finished": False}

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declared:
            resp.content_length = TOTAL
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = b'{"Data":"' + b"x" * (CHUNK - 9)
        try:
            for _ in range(TOTAL // CHUNK):  # bounded: 256 chunks at most
                await resp.write(chunk)
                sent["bytes"] += len(chunk)
            sent["finished"] = True
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        return resp

    async def main() -> tuple[Any, float]:
        app = web.Application()
        app.router.add_post("/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        t0 = time.monotonic()
        try:
            async with CamsClient(endpoint=f"http://127.0.0.1:{port}",
                                  credentials=Credentials("AK", "s"), timeout_s=30) as client:
                try:
                    await client.query("S1", "8613800138000")
                    outcome: Any = "read it all"
                except CallError as err:
                    outcome = err
            elapsed = time.monotonic() - t0
            await asyncio.sleep(0.2)  # let the server notice the closed connection
        finally:
            await runner.cleanup()
        return outcome, elapsed

    outcome, elapsed = asyncio.run(main())
    assert isinstance(outcome, CallError), outcome
    assert outcome.code == "Client.BadResponse"
    assert "refused" in outcome.message
    assert elapsed < 5
    assert not sent["finished"]
    assert sent["bytes"] < TOTAL // 2, sent


# ----------------------------------------------------------------------- header injection


class RecordingServer:
    """A raw HTTP/1.1 server on 127.0.0.1 that records request bytes and answers OK."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            self.requests.append(head)
            body = json.dumps({**OK_BODY, "Data": None}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


EVIL = "a\r\nX-Evil: 1"


@pytest.mark.parametrize("how", ["column", "option"])
def test_crlf_in_a_parameter_never_reaches_a_header(recorder: RecordingServer, creds,
                                                    tmp_path: Path, how: str) -> None:
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["space", "phone"], [EVIL, "+8613800138000"],
                                 [EVIL + "\x1b\x7f", "+8613800138001"]])
    space = ["--cust-space-column", "space"] if how == "column" else ["--cust-space-id", EVIL]
    res = run(str(src), "--endpoint", f"http://127.0.0.1:{recorder.port}", *space, "--no-cache",
              "--rate", "100")
    assert res.exit_code == 0, res.stderr
    assert len(recorder.requests) == 2
    for raw in recorder.requests:
        lines = raw[:-4].split(b"\r\n")
        request_line, headers = lines[0], lines[1:]
        assert b"\n" not in raw[:-4].replace(b"\r\n", b"")  # no bare LF, no bare CR
        assert b"\r" not in raw[:-4].replace(b"\r\n", b"")
        assert not [h for h in headers if h.lower().startswith(b"x-evil")]
        assert all(b":" in h for h in headers)
        assert b"CustSpaceId=a%0D%0AX-Evil%3A%201" in request_line, request_line
        assert all(0x20 <= b < 0x7F for b in request_line)  # every control byte encoded


def test_text_log_lines_carry_no_line_break_or_terminal_control() -> None:
    buf = io.StringIO()
    log = Log(fmt="text", stream=buf)
    log.warning("x", "server said: \x1b[2Jcleared\r\nX-Forged: 1\u2028next\x85end\tok")
    text = buf.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert not any(ch in text[:-1] for ch in "\x1b\r\n\u2028\x85")
    assert text == (
        "enrich: warning: server said: \\x1b[2Jcleared\\r\\nX-Forged: 1\\u2028next\\x85end\tok\n"
    )


def test_error_report_messages_carry_no_control_character(emulator, creds, tmp_path: Path) -> None:
    """A garbage body quoted in Client.BadResponse: one line, nothing for a terminal."""
    server = emulator()
    (tmp_path / "g.csv").write_text("phone\n+8613800000001\n")
    res = run("g.csv", "--endpoint", server.url, "--cust-space-id", "fault-garbage-9",
              "--no-cache", "--max-attempts", "1")
    assert res.exit_code == 0, res.stderr
    with (tmp_path / "g.errors.csv").open(newline="", encoding="utf-8") as f:
        (row,) = list(csv.DictReader(f))
    assert row["error_code"] == "Client.BadResponse"
    assert row["error_message"].isprintable(), row["error_message"]
