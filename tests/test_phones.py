"""Phone column detection and number normalisation (enrich.phones)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enrich.errors import InputError, UsageError
from enrich.phones import (
    PHONE_ALIASES,
    Normalized,
    find_phone_column,
    normalize_phone,
    validate_region,
)

MISSING = Normalized(None, "Client.MissingPhone")
INVALID = Normalized(None, "Client.InvalidPhone")


def ok(number: str) -> Normalized:
    return Normalized(number, None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # international spellings of the same number
        ("+86 138 0013 8000", ok("8613800138000")),
        ("+8613800138000", ok("8613800138000")),
        ("008613800138000", ok("8613800138000")),
        ("00 86 138-0013-8000", ok("8613800138000")),
        ("(00) 86 138 0013 8000", ok("8613800138000")),
        ("8613800138000", ok("8613800138000")),
        ("86-138-0013-8000", ok("8613800138000")),
        ("86.138.0013.8000", ok("8613800138000")),
        ("  +86 138 0013 8000\t", ok("8613800138000")),
        ("tel:+86-138-0013-8000", ok("8613800138000")),
        ("TEL:+86 138 0013 8000", ok("8613800138000")),
        ("\uff0b86 138 0013 8000", ok("8613800138000")),  # full-width plus
        # other countries
        ("+1 (415) 555-0100", ok("14155550100")),
        ("1 415 555 0100", ok("14155550100")),
        ("+44 20 7946 0958", ok("442079460958")),
        ("+44 (0)20 7946 0958", ok("442079460958")),
        ("+49 30 901820", ok("4930901820")),
        ("+55 11 91234-5678", ok("5511912345678")),
        ("+62 812-3456-7890", ok("6281234567890")),
        # an extension is dropped
        ("+1 415 555 0100 ext. 12", ok("14155550100")),
        ("+1 415 555 0100 x12", ok("14155550100")),
        # missing
        (None, MISSING),
        ("", MISSING),
        ("   ", MISSING),
        ("\t\n", MISSING),
        # invalid: unparseable, impossible, local-only
        ("12", INVALID),
        ("abc", INVALID),
        ("n/a", INVALID),
        ("+999 123", INVALID),
        ("+86 1", INVALID),
        ("+", INVALID),
        ("00", INVALID),
        ("+1 415 555 0100 0100 0100", INVALID),
        ("020 7946 0958", INVALID),  # national, but no --default-region
        ("1" * 300, INVALID),
        ("310000000", INVALID),  # +31 0…: reads back differently, so no real number
    ],
)
def test_normalize_without_region(raw: str | None, expected: Normalized) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        # national reading in the region first
        ("020 7946 0958", "GB", ok("442079460958")),
        ("020 7946 0958", "gb", ok("442079460958")),
        ("07700 900123", "GB", ok("447700900123")),
        ("(415) 555-0123", "US", ok("14155550123")),
        ("138 0013 8000", "CN", ok("8613800138000")),
        ("030 901820", "DE", ok("4930901820")),
        # not valid nationally → the international reading (country code first)
        ("8613800138000", "US", ok("8613800138000")),
        ("442079460958", "US", ok("442079460958")),
        # valid both ways: national wins
        ("4155550123", "US", ok("14155550123")),
        # a leading + or 00 is international whatever the region
        ("+44 20 7946 0958", "US", ok("442079460958")),
        ("0044 20 7946 0958", "US", ok("442079460958")),
        # still invalid with a region
        ("12", "GB", INVALID),
        ("abc", "US", INVALID),
        ("", "US", MISSING),
    ],
)
def test_normalize_with_region(raw: str, region: str, expected: Normalized) -> None:
    assert normalize_phone(raw, default_region=region) == expected


@pytest.mark.parametrize(
    "raw", ["+86 138 0013 8000", "008613800138001", "+1 (415) 555-0100", "+44 20 7946 0958"]
)
def test_normalized_numbers_are_fixed_points(raw: str) -> None:
    number = normalize_phone(raw).number
    assert number is not None
    assert number.isdigit()
    assert normalize_phone(number) == ok(number)
    assert normalize_phone("+" + number, default_region="GB") == ok(number)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_normalize_never_raises_and_is_idempotent(raw: str) -> None:
    result = normalize_phone(raw)
    assert (result.number is None) != (result.error is None)
    if result.number is not None:
        assert result.number.isascii() and result.number.isdigit()
        assert normalize_phone(result.number) == result


phone_like = st.text(alphabet="0123456789 +-().", min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(phone_like, st.sampled_from([None, "US", "GB", "CN", "DE", "ID", "BR"]))
def test_phone_like_text_never_raises_and_results_are_stable(raw: str, region: str | None) -> None:
    result = normalize_phone(raw, default_region=region)
    if result.number is not None:
        assert result.number.isdigit()
        # A result is its own normal form when read as international.
        assert normalize_phone("+" + result.number, default_region=region) == result
        assert normalize_phone(result.number) == result


def test_validate_region() -> None:
    assert validate_region("gb") == "GB"
    assert validate_region(" US ") == "US"
    with pytest.raises(UsageError) as err:
        validate_region("UK")
    assert str(err.value) == (
        "unknown region 'UK' for --default-region (the United Kingdom is GB); "
        "use an ISO 3166 two-letter code such as US, GB, CN or ID"
    )
    with pytest.raises(UsageError, match="unknown region 'XX'"):
        validate_region("XX")


# ------------------------------------------------------------------ column detection


@pytest.mark.parametrize(
    "name",
    [
        "phone",
        "Phone",
        "PHONE",
        "phone_number",
        "Phone Number",
        "PHONE-NUMBER",
        "PhoneNumber",
        "phone.number",
        " phone ",
        "Mobile",
        "mobile_number",
        "MSISDN",
        "Tel",
        "Telephone",
        "WhatsApp",
        "WhatsApp #",
        "whatsapp_number",
        "Cell",
    ],
)
def test_detects_alias_spellings(name: str) -> None:
    assert find_phone_column(["id", name, "company"]) == name


def test_aliases_include_the_spec_names() -> None:
    for name in ("phone", "phone_number", "phonenumber", "mobile", "msisdn"):
        assert name in PHONE_ALIASES


def test_no_phone_column() -> None:
    with pytest.raises(InputError) as err:
        find_phone_column(["id", "name", "company"], source="contacts.csv")
    assert str(err.value) == (
        "no phone column found in contacts.csv; name it with --phone-column NAME "
        "(columns: id, name, company)"
    )


def test_several_phone_columns() -> None:
    with pytest.raises(InputError) as err:
        find_phone_column(["Phone", "name", "mobile"], source="contacts.csv")
    assert str(err.value) == (
        "several columns of contacts.csv look like phone columns ('Phone', 'mobile'); "
        "choose one with --phone-column NAME"
    )


def test_similar_names_are_not_phone_columns() -> None:
    with pytest.raises(InputError):
        find_phone_column(["phone_type", "telegram", "cellar"])


def test_explicit_column_must_exist_exactly() -> None:
    assert find_phone_column(["a", "Numbers"], explicit="Numbers") == "Numbers"
    assert find_phone_column(["phone", "mobile"], explicit="mobile") == "mobile"
    with pytest.raises(InputError) as err:
        find_phone_column(["a", "b", "c"], explicit="X", source="contacts.csv")
    assert str(err.value) == "column 'X' not found in contacts.csv; columns: a, b, c"


def test_explicit_column_suggests_the_near_spelling() -> None:
    with pytest.raises(InputError) as err:
        find_phone_column(["id", "Phone Number"], explicit="phone_number", source="x.csv")
    assert str(err.value) == (
        "column 'phone_number' not found in x.csv (did you mean 'Phone Number'?); "
        "columns: id, Phone Number"
    )


def test_long_column_lists_are_shortened() -> None:
    columns = [f"c{i}" for i in range(30)]
    with pytest.raises(InputError) as err:
        find_phone_column(columns, source="wide.csv")
    message = str(err.value)
    assert "c19, … (30 columns)" in message
    assert "c20" not in message
    assert "\n" not in message


def test_a_title_row_gets_a_hint() -> None:
    with pytest.raises(InputError) as err:
        find_phone_column(["Leads export, March", "__UNNAMED__1"], source="leads.xlsx")
    assert str(err.value) == (
        "no phone column found in leads.xlsx; name it with --phone-column NAME "
        "(columns: Leads export, March, __UNNAMED__1); is row 1 a title? "
        "give the header's row with --header-row N"
    )
