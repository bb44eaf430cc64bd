"""Message signatures: an HMAC-SHA256 over a message's body, headers, queue and priority, with keys that rotate.

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
VERSION = "v2"


def _material(body: str, headers: Mapping[str, Any], queue: str, priority: Any) -> bytes:
    signed = {key: value for key, value in headers.items() if key not in UNSIGNED_HEADERS}
    canonical = json.dumps([queue, priority, signed], sort_keys=True, separators=(",", ":"), default=str)
    return f"{body}\n{canonical}".encode()


def sign(body: str, headers: Mapping[str, Any], key: str, queue: str = "", priority: Any = None) -> str:
    """The signature under ``key`` of a message's ``body`` (as sent, e.g. base64), ``headers``, the ``queue``
    it is published to and its ``priority``: a signed message moved to another queue or priority fails."""
    material = _material(body, headers, queue, priority)
    return f"{VERSION}:" + hmac.new(key.encode(), material, hashlib.sha256).hexdigest()


def verify(body: str, headers: Mapping[str, Any], keys: Sequence[str], queue: str = "", priority: Any = None) -> bool:
    """True if the message carries a signature made with one of ``keys`` over this body, these headers,
    this queue (the one it was fetched from) and this priority."""
    given = headers.get(Header.SIGNATURE.value)
    if not isinstance(given, str) or not keys:
        return False
    return any(hmac.compare_digest(given, sign(body, headers, key, queue, priority)) for key in keys)


def parse_keys(value: str | None) -> list[str]:
    """The keys of a ``TASKPLANE_SIGNING_KEY`` value: comma-separated, the signing key first."""
    return [key.strip() for key in (value or "").split(",") if key.strip()]
