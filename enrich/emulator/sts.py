"""Temporary (STS) credentials minted by the emulator, as a credentials URI serves them.

``GET /credentials`` answers what ``ALIBABA_CLOUD_CREDENTIALS_URI`` must answer::

    {"Code": "Success", "AccessKeyId": "STS.…", "AccessKeySecret": "…",
     "SecurityToken": "…", "Expiration": "YYYY-MM-DDTHH:MM:SSZ"}

valid for ``EmulatorConfig.sts_lifetime_s`` (``?lifetime=S`` overrides it per call).
A request signed with a minted key is accepted while its token is valid, and
answered ``InvalidSecurityToken.Expired`` (HTTP 400) once it has expired. Minted keys
belong to the account of the first configured key: they share its rate limit.

Failures on demand, by ``?fault=`` (the input picks the failure):

- ``garbage`` 200 with bytes that are not JSON; ``error`` 200 ``{"Code": "Failed"}``;
  ``http500`` a 500; ``incomplete`` 200 without ``SecurityToken``;
  ``hang`` no answer for ``hang_s`` (the connection is then closed);
- ``revoked`` credentials that the API already holds expired, though their
  ``Expiration`` is ahead (as after a revocation, or a clock ahead of the client's);
  ``revoked-<n>``: the first ``n`` answers of that kind are revoked, later ones valid.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

__all__ = ["CREDENTIALS_PATH", "StsCredential", "StsIssuer"]

#: Where the emulator serves its credentials URI.
CREDENTIALS_PATH: Final = "/credentials"


@dataclass(frozen=True, slots=True)
class StsCredential:
    """One minted key: what the API checks a request against."""

    access_key_id: str
    secret: str = field(repr=False)
    token: str = field(repr=False)
    expires_at: float  # when the API starts answering Expired (Unix seconds)
    expiration: float  # what the answer's Expiration says
    account: str  # the configured key whose rate limit it shares

    def to_json(self) -> dict[str, str]:
        """The credentials URI's answer."""
        return {
            "Code": "Success",
            "AccessKeyId": self.access_key_id,
            "AccessKeySecret": self.secret,
            "SecurityToken": self.token,
            "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expiration)),
            "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


class StsIssuer:
    """Mints and remembers STS credentials (event-loop only, like ``NonceStore``).

    Expired keys are remembered for ``keep_s`` more (so they are answered
    ``Expired``, not ``NotFound``), then forgotten.
    """

    def __init__(
        self,
        *,
        lifetime_s: float,
        account: str,
        clock: Callable[[], float] = time.time,
        keep_s: float = 3600.0,
    ) -> None:
        self.lifetime_s = lifetime_s
        self.account = account
        self._clock = clock
        self._keep_s = keep_s
        self._minted: dict[str, StsCredential] = {}
        self._served: dict[str, int] = {}
        self.count = 0

    def mint(self, *, lifetime_s: float | None = None, revoked: bool = False) -> StsCredential:
        """New credentials valid for ``lifetime_s`` (whole seconds, as ``Expiration`` shows)."""
        now = self._clock()
        life = self.lifetime_s if lifetime_s is None else lifetime_s
        expiration = float(math.floor(now + life))
        cred = StsCredential(
            access_key_id=f"STS.{os.urandom(8).hex()}",
            secret=os.urandom(16).hex(),
            token=f"CAIS{os.urandom(24).hex()}",
            expires_at=now if revoked else expiration,
            expiration=expiration,
            account=self.account,
        )
        self._forget_old(now)
        self._minted[cred.access_key_id] = cred
        self.count += 1
        return cred

    def served(self, fault: str) -> int:
        """Count one more answer for ``fault`` and return the count (1 for the first)."""
        self._served[fault] = self._served.get(fault, 0) + 1
        return self._served[fault]

    def get(self, access_key_id: str) -> StsCredential | None:
        """The minted key of that AccessKeyId, if any."""
        return self._minted.get(access_key_id)

    def _forget_old(self, now: float) -> None:
        if len(self._minted) < 1024:
            return
        for key in [k for k, c in self._minted.items() if c.expires_at + self._keep_s < now]:
            del self._minted[key]
