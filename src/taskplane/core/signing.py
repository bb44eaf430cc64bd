"""Message signatures: an HMAC-SHA256 over a message's body and headers, with keys that rotate.

The first key signs; every key verifies, so a new key is rolled out by putting it first on every
process, and the old one is removed once no message signed with it can still be waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from taskplane.core.protocol import Header

#: Headers a broker may change after publishing (kombu marks restored messages), left out of the MAC.
UNSIGNED_HEADERS = frozenset({Header.SIGNATURE.value, "redelivered"})
VERSION = "v1"


def _material(body: str, headers: Mapping[str, Any]) -> bytes:
    signed = {key: value for key, value in headers.items() if key not in UNSIGNED_HEADERS}
    canonical = json.dumps(signed, sort_keys=True, separators=(",", ":"), default=str)
    return f"{body}\n{canonical}".encode()


def sign(body: str, headers: Mapping[str, Any], key: str) -> str:
    """The signature of a message's ``body`` (as sent, e.g. base64) and ``headers`` under ``key``."""
    return f"{VERSION}:" + hmac.new(key.encode(), _material(body, headers), hashlib.sha256).hexdigest()


def verify(body: str, headers: Mapping[str, Any], keys: Sequence[str]) -> bool:
    """True if the message carries a signature made with one of ``keys`` over this body and these headers."""
    given = headers.get(Header.SIGNATURE.value)
    if not isinstance(given, str) or not keys:
        return False
    return any(hmac.compare_digest(given, sign(body, headers, key)) for key in keys)


def parse_keys(value: str | None) -> list[str]:
    """The keys of a ``TASKPLANE_SIGNING_KEY`` value: comma-separated, the signing key first."""
    return [key.strip() for key in (value or "").split(",") if key.strip()]
