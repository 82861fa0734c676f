"""The deterministic business profile of every phone number (the emulator's "truth").

:func:`profile_for` is pure and stable across processes and Python versions:
every choice is drawn from SHAKE-256 of the phone number, never from
``hash()`` or ``random``. The profile depends on the phone number only (a
WhatsApp business profile belongs to the number, whoever asks); the
CustSpaceId is taken so callers need not know that.

The mix, by the first drawn byte (out of 100):

- 17% **no fields**. The emulator answers ``Code: OK`` with ``"Data": null``
  for some (no profile: ``no_profile``) and ``"Data": {}`` for the others (an
  empty business profile: ``ok`` with every field empty, as SPEC "Output file"
  says of a ``Data`` object whose fields are all empty); :func:`no_profile_form`
  says which. :func:`profile_for` returns ``None`` for both, and
  :func:`data_on_wire` gives the exact ``Data`` value sent.
- 45% **full**: all seven fields (About, Address, Description, Email,
  ProfilePictureUrl, Vertical, Websites with one or two URLs); texts often
  end in the ``"\\n"`` the real service leaves.
- 38% **partial**: each field present, empty (``""``, sometimes ``"\\n"``)
  or missing; ``Websites`` a URL, ``[]`` or missing; always at least one
  text field that is not blank after stripping.

Texts come from pools that mix English, Chinese, Japanese and Portuguese,
emoji, and values starting with ``=``, ``+``, ``-``, ``@`` (also after
leading spaces) - spreadsheet formula-injection material.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Final, Literal

__all__ = [
    "DATA_FIELDS",
    "data_json",
    "data_on_wire",
    "no_profile_form",
    "profile_for",
]

#: The ``Data`` keys, as the SDK model names them.
DATA_FIELDS: Final = (
    "About",
    "Address",
    "Description",
    "Email",
    "ProfilePictureUrl",
    "Vertical",
    "Websites",
)
_TEXT_FIELDS: Final = ("About", "Address", "Description", "Email", "ProfilePictureUrl", "Vertical")

_NO_PROFILE_PCT: Final = 17
_FULL_PCT: Final = 45

_ABOUT: Final = (
    "Hey there! I am using WhatsApp.",
    "Open Mon–Sat 9:00–18:00",
    "欢迎光临！营业时间 9:00-21:00",
    "🍜 Best noodles in town 🔥",
    '=HYPERLINK("https://evil.example/","Click me")',
    "+1 for fresh coffee ☕",
    "-20% on everything this week",
    "@acme_support on every platform",
    "Available",
    "Busy 💼",
    "お気軽にお問い合わせください",
    "Atendimento de segunda a sexta",
)
_ADDRESS: Final = (
    "Changsha",
    "969 West Wen Yi Road, Yu Hang District, Hangzhou",
    "湖南省长沙市岳麓区麓谷大道 88 号",
    "1 Raffles Place, Singapore 048616",
    "Av. Paulista, 1578 - Bela Vista, São Paulo",
    "=cmd|' /C calc'!A0",
    "Calle Mayor 5, 28013 Madrid",
    "Jl. Jend. Sudirman Kav. 52-53, Jakarta 12190",
    "東京都渋谷区道玄坂 1-2-3",
    "-",
    "+971 Sheikh Zayed Rd, Dubai",
    "Unit 12, 3/F, 88 Queen's Road Central, Hong Kong",
)
_DESCRIPTION: Final = (
    "Description",
    "Family-run bakery since 1987.",
    "专业手机维修，价格实惠",
    "Wholesale electronics & accessories 📱🔌",
    "=1+1",
    "+Premium quality guaranteed",
    "-- Closed on public holidays --",
    "@everyone welcome!",
    "Tours, tickets & transfers ✈️🏝️",
    "  =SUM(A1:A3)",
    "Line one\nLine two",
    'Quotes "inside", commas, and; semicolons',
)
_VERTICAL: Final = (
    "Retail",
    "RETAIL",
    "Restaurant",
    "Professional Services",
    "EDU",
    "Automotive",
    "Beauty, Spa and Salon",
    "Travel and Transportation",
    "Other",
    "零售",
    "Food and Grocery",
    "Medical and Health",
)
_EMAIL_LOCAL: Final = ("info", "sales", "contact", "hello", "support", "shop")
_EMAIL_DOMAIN: Final = ("example.com", "example.cn", "aliyun.com", "mail.example.org")
_WEBSITES: Final = (
    "https://alibaba.com",
    "https://www.example.com/",
    "https://shop.example.cn/店铺",
    "http://example.org/?ref=wa&id=42",
    "https://m.example.com.br/loja",
    "https://example.jp/",
)


class _Draw:
    """Successive choices from a SHAKE-256 stream of the phone number."""

    def __init__(self, phone: str) -> None:
        self._bytes = hashlib.shake_256(
            b"cams-enrich-emulator/profile/v1\x00" + phone.encode("utf-8")
        ).digest(96)
        self._pos = 0
        self.tag = self._bytes[-8:].hex()

    def byte(self) -> int:
        value = self._bytes[self._pos % 88]
        self._pos += 1
        return value

    def pct(self) -> int:
        return self.byte() * 100 // 256

    def pick(self, pool: tuple[str, ...]) -> str:
        return pool[self.byte() % len(pool)]


def _texts(draw: _Draw) -> dict[str, str]:
    local = draw.pick(_EMAIL_LOCAL)
    domain = draw.pick(_EMAIL_DOMAIN)
    return {
        "About": draw.pick(_ABOUT),
        "Address": draw.pick(_ADDRESS),
        "Description": draw.pick(_DESCRIPTION),
        "Email": f"{local}.{draw.tag[:4]}@{domain}",
        "ProfilePictureUrl": (
            f"https://pps.whatsapp.net/v/t61.24694-24/{draw.tag}_n.jpg?ccb=11-4&oh=01_{draw.tag[:6]}"
        ),
        "Vertical": draw.pick(_VERTICAL),
    }


def _trailing(draw: _Draw, value: str) -> str:
    # The real service leaves a trailing newline on some free-text fields.
    return value + "\n" if draw.pct() < 40 else value


def _websites(draw: _Draw) -> list[str]:
    first = draw.pick(_WEBSITES)
    if draw.pct() < 30:
        return [first, f"https://www.example.net/{draw.tag[:6]}"]
    return [first]


def _profile(phone: str) -> dict[str, object] | None:
    draw = _Draw(phone)
    kind = draw.pct()
    draw.byte()  # the no-profile form's byte: keep later draws independent of it
    if kind < _NO_PROFILE_PCT:
        return None
    texts = _texts(draw)
    data: dict[str, object] = {}
    if kind < _NO_PROFILE_PCT + _FULL_PCT:
        for name in _TEXT_FIELDS:
            value = texts[name]
            data[name] = (
                _trailing(draw, value)
                if name in ("About", "Address", "Description", "Vertical")
                else value
            )
        data["Websites"] = _websites(draw)
        return data
    for name in _TEXT_FIELDS:
        roll = draw.pct()
        if roll < 45:
            data[name] = _trailing(draw, texts[name])
        elif roll < 70:
            data[name] = "\n" if roll < 50 else ""
    if not any(isinstance(v, str) and v.strip() for v in data.values()):
        data["Address"] = texts["Address"]
    roll = draw.pct()
    if roll < 40:
        data["Websites"] = _websites(draw)
    elif roll < 80:
        data["Websites"] = []
    return {name: data[name] for name in DATA_FIELDS if name in data}


@lru_cache(maxsize=65_536)
def _profile_json(phone: str) -> str | None:
    profile = _profile(phone)
    return None if profile is None else json.dumps(profile, ensure_ascii=False)


def profile_for(cust_space_id: str, phone: str) -> dict[str, object] | None:
    """The ``Data`` object the emulator answers for ``phone``, or ``None`` when it has no fields.

    Pure and deterministic (SHAKE-256 of the phone; ``cust_space_id`` does not
    change the answer). Every call returns a fresh dict. When this is ``None``
    the emulator sends either ``"Data": null`` (no profile) or ``"Data": {}`` (an
    empty profile, ``ok`` for a client; see :func:`no_profile_form`); a
    non-``None`` profile always has at least one text field that is not blank
    after stripping.
    """
    del cust_space_id
    text = _profile_json(phone)
    if text is None:
        return None
    loaded: dict[str, object] = json.loads(text)
    return loaded


def no_profile_form(phone: str) -> Literal["null", "empty"] | None:
    """How a number without fields is sent: ``"null"`` (no profile) or ``"empty"`` (``{}``).

    ``"empty"`` is an empty business profile (status ``ok``), ``"null"`` is no
    profile (``no_profile``). ``None`` when the number has a profile with fields.
    """
    draw = _Draw(phone)
    if draw.pct() >= _NO_PROFILE_PCT:
        return None
    return "null" if draw.byte() % 2 == 0 else "empty"


def data_on_wire(cust_space_id: str, phone: str) -> dict[str, object] | None:
    """Exactly the ``Data`` value of a successful answer: ``profile_for``, ``{}`` or ``None``."""
    profile = profile_for(cust_space_id, phone)
    if profile is None and no_profile_form(phone) == "empty":
        return {}
    return profile


def data_json(phone: str) -> str:
    """The JSON text of :func:`data_on_wire` (``null``, ``{}`` or an object); cached."""
    text = _profile_json(phone)
    if text is not None:
        return text
    return "{}" if no_profile_form(phone) == "empty" else "null"
