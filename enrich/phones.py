"""Find the phone column of a table and normalise a number for the API (pure).

The API wants a number as its country code followed by the national
significant number, digits only (``8613800138000``). ``normalize_phone`` turns
whatever a person or an export wrote into that form, following SPEC "How a
value becomes a number", and says why when it cannot.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, ValidationResult

from enrich.errors import InputError, UsageError
from enrich.text import shown_name

__all__ = [
    "MISSING_PHONE",
    "NORMALIZER_VERSION",
    "PHONE_ALIASES",
    "PHONE_ERROR_CODES",
    "CellReading",
    "Normalized",
    "PhoneError",
    "column_key",
    "find_phone_column",
    "find_phone_columns",
    "normalize_cell",
    "normalize_cells",
    "normalize_phone",
    "split_numbers",
    "validate_region",
]

#: Column names recognised as the phone column, compared by ``column_key``
#: (case, spaces and punctuation ignored), so ``Phone Number``, ``PHONE-NUMBER``
#: and ``WhatsApp #`` all match.
PHONE_ALIASES: Final[tuple[str, ...]] = (
    "phone",
    "phone_number",
    "phonenumber",
    "phone_no",
    "phone_num",
    "mobile",
    "mobile_number",
    "mobile_no",
    "mobile_phone",
    "mobile_phone_number",
    "msisdn",
    "tel",
    "tel_no",
    "telephone",
    "telephone_number",
    "whatsapp",
    "whatsapp_number",
    "whatsapp_no",
    "whatsapp_phone",
    "wa_number",
    "cell",
    "cell_phone",
    "cell_number",
    "cellphone",
    "contact_number",
    "contact_phone",
)

PhoneError = Literal["Client.MissingPhone", "Client.InvalidPhone"]
#: The codes of a row whose number is missing or invalid (status ``invalid_phone``).
PHONE_ERROR_CODES: Final[tuple[PhoneError, ...]] = ("Client.MissingPhone", "Client.InvalidPhone")

_MAX_LISTED_COLUMNS: Final = 20


def column_key(name: str) -> str:
    """The comparison key of a column name: lower case, letters and digits only."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


_ALIAS_KEYS: Final = frozenset(column_key(alias) for alias in PHONE_ALIASES)
#: Exports that number their phone fields and give each a label beside it: Google
#: Contacts' ``Phone 1 - Value`` (its ``Phone 1 - Label`` / ``- Type`` is the label).
_NUMBERED_VALUE: Final = re.compile(r"(?:phone|mobile|telephone|tel|cell|whatsapp)(\d*)value")


def _list_columns(columns: Sequence[str]) -> str:
    shown = ", ".join(shown_name(c) for c in columns[:_MAX_LISTED_COLUMNS])
    if len(columns) > _MAX_LISTED_COLUMNS:
        shown += f", … ({len(columns)} columns)"
    return shown or "(none)"


def find_phone_column(
    columns: Sequence[str],
    *,
    explicit: str | None = None,
    source: str = "input",
    other_sheets: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Return the name of the column holding the phone numbers.

    With ``explicit`` (``--phone-column``) that exact name must exist. Without
    it, the one column whose name matches an entry of ``PHONE_ALIASES`` (case,
    spaces and punctuation ignored) is chosen; failing that, the lowest
    numbered ``Phone N - Value`` column of an address-book export (never its
    ``Label`` or ``Type`` column). ``source`` names the file in messages;
    ``other_sheets`` (an XLSX workbook's other sheets and their columns) are
    named when no column is found, so the user can pick one with ``--sheet``.

    Raises:
        InputError: the explicit column is missing, or no column or several
            columns look like a phone column.
    """
    columns = list(columns)
    if explicit is not None:
        return find_phone_columns(columns, explicit=[explicit], source=source)[0]
    matches = [c for c in columns if column_key(c) in _ALIAS_KEYS]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        numbered = _numbered_value_column(columns)
        if numbered is not None:
            return numbered
        raise InputError(
            f"no phone column found in {source}; name it with --phone-column NAME "
            f"(columns: {_list_columns(columns)}){_not_found_hint(columns, other_sheets)}"
        )
    names = ", ".join(f"'{shown_name(c)}'" for c in matches)
    raise InputError(
        f"several columns of {source} look like phone columns ({names}); "
        f"choose one with --phone-column NAME"
    )


def find_phone_columns(
    columns: Sequence[str], *, explicit: Sequence[str], source: str = "input"
) -> list[str]:
    """The columns ``--phone-column`` named (given once or more), each checked to exist.

    Raises:
        InputError: a named column is missing (a near spelling is suggested).
    """
    columns = list(columns)
    for name in explicit:
        if name in columns:
            continue
        near = [c for c in columns if column_key(c) == column_key(name)]
        hint = f" (did you mean '{shown_name(near[0])}'?)" if len(near) == 1 else ""
        raise InputError(
            f"column '{shown_name(name)}' not found in {source}{hint}; "
            f"columns: {_list_columns(columns)}"
        )
    return list(dict.fromkeys(explicit))


def _numbered_value_column(columns: Sequence[str]) -> str | None:
    """``Phone 1 - Value`` before ``Phone 2 - Value``; ``None`` when none or a tie."""
    found: dict[int, list[str]] = {}
    for c in columns:
        m = _NUMBERED_VALUE.fullmatch(column_key(c))
        if m:
            found.setdefault(int(m.group(1) or 0), []).append(c)
    if not found:
        return None
    first = found[min(found)]
    return first[0] if len(first) == 1 else None


def _not_found_hint(
    columns: Sequence[str], other_sheets: Mapping[str, Sequence[str]] | None
) -> str:
    hint = ""
    if any(c.startswith("__UNNAMED__") or not c for c in columns):
        hint = "; is row 1 a title? give the header's row with --header-row N"
    if not other_sheets:
        return hint
    for sheet, names in other_sheets.items():
        with_phone = [c for c in names if column_key(c) in _ALIAS_KEYS]
        candidate = with_phone[0] if len(with_phone) == 1 else _numbered_value_column(names)
        if candidate is not None:
            return (
                f"{hint}; sheet '{shown_name(sheet)}' has a phone column "
                f"'{shown_name(candidate)}': add --sheet {shlex.quote(shown_name(sheet))}"
            )
    listed = ", ".join(shown_name(name) for name in other_sheets)
    return f"{hint}; other sheets: {listed} (choose one with --sheet NAME)"


@dataclass(frozen=True, slots=True)
class Normalized:
    """The outcome of normalising one raw value: a number, or why not."""

    number: str | None
    """Country code + national significant number, digits only, e.g. ``8613800138000``."""
    error: PhoneError | None
    """``None`` when ``number`` is set."""


MISSING_PHONE: Final = Normalized(None, "Client.MissingPhone")
_INVALID_PHONE: Final = Normalized(None, "Client.InvalidPhone")

# Separators people put inside numbers; removed only to look at how a value
# starts (``+``, ``00``), never to decide what the digits are.
_SEPARATORS: Final = {
    ord(ch): None for ch in " \t\u00a0\u2007\u202f-\u2010\u2011\u2012\u2013\u2014.()[]/"
}


def _usable(number: PhoneNumber) -> bool:
    # IS_POSSIBLE only: IS_POSSIBLE_LOCAL_ONLY numbers lack an area code, so
    # they cannot be dialled from abroad and the API could not find them.
    return bool(phonenumbers.is_possible_number_with_reason(number) == ValidationResult.IS_POSSIBLE)


def _parse(text: str, region: str | None) -> PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    except Exception:  # pragma: no cover - a parser bug must not end a batch of 50,000
        return None


def _result(number: PhoneNumber | None, read_as: str | None = None) -> Normalized:
    """``read_as``: the digits that were parsed after a ``+``, when known."""
    if number is None or not _usable(number):
        return _INVALID_PHONE
    national = phonenumbers.national_significant_number(number)
    digits = f"{number.country_code}{national}"
    if digits == read_as:
        # "+" + digits is what was just parsed: reading it again gives the same.
        return Normalized(digits, None)
    # phonenumbers strips a trunk prefix written after the country code
    # ("+44 (0)20 ..."). If the rest still starts with one, reading the result
    # again would strip more: such a number is no real one, and a result must
    # read back as itself.
    again = _parse("+" + digits, None)
    if (
        again is None
        or again.country_code != number.country_code
        or phonenumbers.national_significant_number(again) != national
    ):
        return _INVALID_PHONE
    return Normalized(digits, None)


# A number written by a program that held it as a float: pandas writes a phone
# column with blanks as 8613800138000.0. Its digits are the integer before the dot.
_FLOAT_LEFTOVER: Final = re.compile(r"(\+?\d+)\.0+")
# Scientific notation (8.613800138e+12): a number only when every integer digit
# is written; Excel's 8.6138E+12 has lost digits, and a guess would send another number.
_SCIENTIFIC: Final = re.compile(r"(\d)(?:\.(\d*))?[eE]\+?(\d{1,2})")


def _integer_digits(text: str) -> str | None:
    """The digits of a float leftover or an exact scientific notation; ``""`` when
    scientific notation has lost digits; ``None`` when ``text`` is neither."""
    m = _FLOAT_LEFTOVER.fullmatch(text)
    if m:
        return m.group(1)
    m = _SCIENTIFIC.fullmatch(text)
    if not m:
        return None
    digits, exponent = m.group(1) + (m.group(2) or ""), int(m.group(3))
    if len(digits) <= exponent or digits[exponent + 1 :].strip("0"):
        return ""
    return digits[: exponent + 1]


def normalize_phone(raw: str | None, *, default_region: str | None = None) -> Normalized:
    """Normalise one raw phone value to country code + national number, digits only.

    Rules (SPEC "How a value becomes a number"):

    * ``None``, empty or whitespace only → ``Client.MissingPhone``.
    * A leading ``+`` or ``00`` (separators such as spaces, dashes, dots and
      parentheses ignored; a ``tel:`` prefix allowed) → read as international.
    * Anything else, with ``default_region`` (an ISO 3166 code in any case,
      see ``validate_region``): the reading ``phonenumbers`` finds *valid*, the
      national one in that region first, else the international one (country
      code first). When neither is valid, the first *possible* one is used.
    * Anything else without ``default_region`` → read as international.
    * A value ``phonenumbers`` cannot parse, or whose number is not possible
      (wrong length for its country, or only dialable locally) →
      ``Client.InvalidPhone``. Possibility, not validity, is the bar: numbering
      plans change faster than the library, and the API answers for any real
      number.
    * A float leftover (``8613800138000.0``, as pandas writes a phone column
      with blanks) is read as its integer digits, and so is scientific
      notation that writes every integer digit (``8.613800138000e+12``);
      scientific notation that lost digits (``8.6138E+12``) is invalid: a
      number is never sent changed from what its cell says.

    An extension (``ext. 12``, ``x12``) is dropped: WhatsApp numbers have none.
    Never raises. Without ``default_region`` it is idempotent: normalising a
    result gives the same number. With one, a result can read differently as
    a national number of that region in rare cases; feed results back with
    ``default_region=None`` (or a leading ``+``).
    """
    if raw is None:
        return MISSING_PHONE
    text = raw.strip()
    if not text:
        return MISSING_PHONE
    if text[:4].casefold() == "tel:":
        text = text[4:].strip()
    digits = _integer_digits(text)
    if digits == "":
        return _INVALID_PHONE
    if digits is not None:
        text = digits
    compact = text.translate(_SEPARATORS)
    if compact.startswith(("+", "\uff0b")):
        return _result(_parse(text, None), compact[1:])
    if compact.startswith("00"):
        # Drop the two zeros (wherever separators put them) and read as "+...".
        zeros = 0
        for index, ch in enumerate(text):
            if ch == "0":
                zeros += 1
                if zeros == 2:
                    return _result(_parse("+" + text[index + 1 :], None))
    if default_region is not None:
        region = default_region.upper()  # phonenumbers knows "GB", not "gb"
        national = _parse(text, region)
        if national is not None and phonenumbers.is_valid_number(national):
            return _result(national)
        international = _parse("+" + text, None)
        if international is not None and phonenumbers.is_valid_number(international):
            return _result(international)
        if national is not None and _usable(national):
            return _result(national)
        return _result(international)
    return _result(_parse("+" + text, None), compact)


@dataclass(frozen=True, slots=True)
class CellReading:
    """A phone cell read: its number (the first valid one), or why not."""

    number: str | None
    error: PhoneError | None
    several: bool = False
    """The cell held several numbers (Google Contacts' ``a ::: b``, ``a; b``, …)."""


# Between full numbers in one cell: Google Contacts' " ::: ", else these, only
# where every piece is a number on its own ("030/901820" stays one number).
_MULTI: Final = ":::"
_BETWEEN: Final = (";", ",", "/")


def split_numbers(raw: str, *, default_region: str | None = None) -> list[str] | None:
    """The numbers of a cell that holds several; ``None`` for a cell of one value.

    `` ::: `` always separates (empty pieces dropped); ``;``, ``,`` and ``/``
    only when every piece normalises to a number on its own.
    """
    if _MULTI in raw:
        return [piece.strip() for piece in raw.split(_MULTI) if piece.strip()]
    for sep in _BETWEEN:
        if sep not in raw:
            continue
        pieces = [piece.strip() for piece in raw.split(sep)]
        if all(
            piece and normalize_phone(piece, default_region=default_region).number
            for piece in pieces
        ):
            return pieces
    return None


def normalize_cell(raw: str | None, *, default_region: str | None = None) -> CellReading:
    """Read one phone cell: ``normalize_phone``, or the first valid number of several.

    A cell holding several numbers (``split_numbers``) gives its first valid
    one; when none is valid, ``Client.InvalidPhone``. Never raises.
    """
    pieces = split_numbers(raw, default_region=default_region) if raw else None
    if pieces is None or len(pieces) == 1:
        one = normalize_phone(pieces[0] if pieces else raw, default_region=default_region)
        return CellReading(one.number, one.error)
    for piece in pieces:
        got = normalize_phone(piece, default_region=default_region)
        if got.number is not None:
            return CellReading(got.number, None, several=True)
    error: PhoneError = "Client.InvalidPhone" if pieces else "Client.MissingPhone"
    return CellReading(None, error, several=len(pieces) > 1)


#: What a remembered reading of a cell depends on: phonenumbers' metadata and our
#: rules (SPEC "How a value becomes a number"). Bump the rules' number with any
#: change to ``normalize_cell`` that can read a cell differently.
NORMALIZER_VERSION: Final = f"phonenumbers {phonenumbers.__version__}; rules 1"

#: Below this many cells one process is quicker than starting a pool (measured with
#: bench/bench_normalise.py: a pool of two 0.78x one process at 20,000 cells, 1.12x
#: at 30,000, 1.68x at 200,000; bench/README.md, "Normalising new cells").
POOL_MIN_CELLS: Final = 30_000
_POOL_CHUNK: Final = 5_000

CellColumns = tuple[list[str | None], list[str | None], list[bool]]


def _read_cells(values: Sequence[str], default_region: str | None) -> CellColumns:
    numbers: list[str | None] = []
    errors: list[str | None] = []
    several: list[bool] = []
    for value in values:
        got = normalize_cell(value, default_region=default_region)
        numbers.append(got.number)
        errors.append(got.error)
        several.append(got.several)
    return numbers, errors, several


def normalize_cells(
    values: Sequence[str], *, default_region: str | None = None, workers: int = 1
) -> CellColumns:
    """``normalize_cell`` of each value, as three columns: numbers, errors, several.

    With ``workers`` > 1 and at least ``POOL_MIN_CELLS`` values, the values are
    read in a pool of that many processes (phonenumbers is pure Python: threads
    would not help). The pool's processes are started by a fork server, never
    forked from a process whose other threads (polars') may hold locks.
    """
    if workers <= 1 or len(values) < POOL_MIN_CELLS:
        return _read_cells(values, default_region)
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["enrich.phones"])
    chunks = [values[i : i + _POOL_CHUNK] for i in range(0, len(values), _POOL_CHUNK)]
    numbers: list[str | None] = []
    errors: list[str | None] = []
    several: list[bool] = []
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        for n, e, s in pool.map(_read_cells, chunks, [default_region] * len(chunks)):
            numbers += n
            errors += e
            several += s
    return numbers, errors, several


def validate_region(code: str) -> str:
    """Check a ``--default-region`` value and return it upper-cased (``gb`` → ``GB``).

    Raises:
        UsageError: not a region ``phonenumbers`` knows.
    """
    region = code.strip().upper()
    if region in phonenumbers.SUPPORTED_REGIONS:
        return region
    hint = " (the United Kingdom is GB)" if region == "UK" else ""
    raise UsageError(
        f"unknown region '{code}' for --default-region{hint}; "
        "use an ISO 3166 two-letter code such as US, GB, CN or ID"
    )
