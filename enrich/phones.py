"""Find the phone column of a table and normalise a number for the API (pure).

The API wants a number as its country code followed by the national
significant number, digits only (``8613800138000``). ``normalize_phone`` turns
whatever a person or an export wrote into that form, following SPEC "How a
value becomes a number", and says why when it cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, ValidationResult

from enrich.errors import InputError, UsageError
from enrich.text import shown_name

__all__ = [
    "MISSING_PHONE",
    "PHONE_ALIASES",
    "PHONE_ERROR_CODES",
    "Normalized",
    "PhoneError",
    "column_key",
    "find_phone_column",
    "normalize_phone",
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


def _list_columns(columns: Sequence[str]) -> str:
    shown = ", ".join(shown_name(c) for c in columns[:_MAX_LISTED_COLUMNS])
    if len(columns) > _MAX_LISTED_COLUMNS:
        shown += f", … ({len(columns)} columns)"
    return shown or "(none)"


def find_phone_column(
    columns: Sequence[str], *, explicit: str | None = None, source: str = "input"
) -> str:
    """Return the name of the column holding the phone numbers.

    With ``explicit`` (``--phone-column``) that exact name must exist. Without
    it, the one column whose name matches an entry of ``PHONE_ALIASES`` (case,
    spaces and punctuation ignored) is chosen. ``source`` names the file in
    messages.

    Raises:
        InputError: the explicit column is missing, or no column or several
            columns look like a phone column.
    """
    columns = list(columns)
    if explicit is not None:
        if explicit in columns:
            return explicit
        near = [c for c in columns if column_key(c) == column_key(explicit)]
        hint = f" (did you mean '{shown_name(near[0])}'?)" if len(near) == 1 else ""
        raise InputError(
            f"column '{shown_name(explicit)}' not found in {source}{hint}; "
            f"columns: {_list_columns(columns)}"
        )
    matches = [c for c in columns if column_key(c) in _ALIAS_KEYS]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        title = any(c.startswith("__UNNAMED__") for c in columns)
        hint = "; is row 1 a title? the header must be the first row" if title else ""
        raise InputError(
            f"no phone column found in {source}; name it with --phone-column NAME "
            f"(columns: {_list_columns(columns)}){hint}"
        )
    names = ", ".join(f"'{shown_name(c)}'" for c in matches)
    raise InputError(
        f"several columns of {source} look like phone columns ({names}); "
        f"choose one with --phone-column NAME"
    )


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
