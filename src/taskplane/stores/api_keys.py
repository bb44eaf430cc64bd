"""API keys: bearer tokens with scopes, stored as digests in Redis and checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, field

from taskplane.core.clock import now_ms
from taskplane.core.errors import InvalidRequestError, NotFoundError
from taskplane.redis.storage import Storage

#: ``read``: look at tasks, queues, workers, dead letters; ``enqueue``: create and cancel tasks;
#: ``admin``: everything, including requeueing and purging dead letters.
SCOPES = ("read", "enqueue", "admin")
TOKEN_PREFIX = "tpk"
SESSION_PREFIX = "tps"
_DUMMY_DIGEST = hashlib.sha256(b"no such key").hexdigest()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class ApiKey:
    """One API key as stored: never the secret, only its digest."""

    id: str
    name: str
    scopes: list[str]
    created_ms: int
    digest: str = field(repr=False)

    def allows(self, scope: str) -> bool:
        """True if this key may do what ``scope`` covers (``admin`` covers everything)."""
        return scope in self.scopes or "admin" in self.scopes

    def public(self) -> dict[str, object]:
        """What listings show: everything but the digest."""
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes), "created_ms": self.created_ms}


def check_scopes(scopes: list[str]) -> list[str]:
    """The scopes, deduplicated in canonical order.

    Raises:
        InvalidRequestError: none given, or one that does not exist.
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidRequestError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
    return [scope for scope in SCOPES if scope in scopes]


class ApiKeyStore:
    """Creates, lists, revokes and authenticates API keys."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def create(self, name: str, scopes: list[str], replace: bool = False) -> tuple[ApiKey, str]:
        """Make a key; returns it and its token (shown once, never stored). ``replace`` revokes keys of that name.

        Raises:
            InvalidRequestError: an empty name or bad scopes.
        """
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidRequestError("an API key needs a name of 1..100 characters")
        scopes = check_scopes(scopes)
        if replace:
            for key in self.find():
                if key.name == name:
                    self.revoke(key.id)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(id=key_id, name=name, scopes=scopes, created_ms=now_ms(), digest=_digest(secret))
        self._storage.client.hset(self._storage.keys.api_keys(), key_id, json.dumps(asdict(key)))
        return key, f"{TOKEN_PREFIX}_{key_id}_{secret}"

    def find(self) -> list[ApiKey]:
        """Every key, oldest first."""
        stored = self._storage.client.hgetall(self._storage.keys.api_keys())
        keys = [ApiKey(**json.loads(text)) for text in stored.values()]
        return sorted(keys, key=lambda key: (key.created_ms, key.id))

    def revoke(self, key_id: str) -> None:
        """Delete a key; requests with its token fail from now on.

        Raises:
            NotFoundError: no key with that id.
        """
        if not self._storage.client.hdel(self._storage.keys.api_keys(), key_id):
            raise NotFoundError(f"API key {key_id} not found")

    def open_session(self, key: ApiKey, ttl_seconds: int) -> str:
        """A session token for ``key`` (what the dashboard's cookie holds instead of the key), valid for
        ``ttl_seconds`` or until the key is revoked or the session closed. Only its digest is stored."""
        token = f"{SESSION_PREFIX}_{secrets.token_urlsafe(32)}"
        self._storage.client.set(self._storage.keys.session(_digest(token)), key.id, ex=ttl_seconds)
        return token

    def session_key(self, token: str) -> ApiKey | None:
        """The key a session token signed in with, or None (unknown, expired, closed, or the key revoked)."""
        if not token.startswith(f"{SESSION_PREFIX}_"):
            return None
        key_id = self._storage.client.get(self._storage.keys.session(_digest(token)))
        stored = self._storage.client.hget(self._storage.keys.api_keys(), key_id) if key_id else None
        return ApiKey(**json.loads(stored)) if stored else None

    def close_session(self, token: str) -> None:
        """End a session (sign-out)."""
        self._storage.client.delete(self._storage.keys.session(_digest(token)))

    def sign_in_failed(self, client: str) -> int:
        """Count a failed sign-in from ``client`` (an address); returns the failures of its current minute."""
        key = self._storage.keys.sign_in_failures(client)
        pipe = self._storage.client.pipeline()
        pipe.incr(key).expire(key, 60, nx=True)
        return int(pipe.execute()[0])

    def sign_in_failures(self, client: str) -> tuple[int, int]:
        """Failed sign-ins from ``client`` in its current minute, and the seconds until that minute ends."""
        key = self._storage.keys.sign_in_failures(client)
        pipe = self._storage.client.pipeline()
        pipe.get(key).ttl(key)
        count, ttl = pipe.execute()
        return int(count or 0), max(int(ttl or 0), 1)

    def authenticate(self, token: str) -> ApiKey | None:
        """The key a bearer token belongs to, or None. The secret is compared in constant time."""
        prefix, _, rest = token.partition("_")
        key_id, _, secret = rest.partition("_")
        stored = None
        if prefix == TOKEN_PREFIX and key_id and secret and len(key_id) <= 32:
            stored = self._storage.client.hget(self._storage.keys.api_keys(), key_id)
        key = ApiKey(**json.loads(stored)) if stored else None
        # Compare even when there is no such key, so timing does not tell ids apart.
        matches = hmac.compare_digest(_digest(secret), key.digest if key else _DUMMY_DIGEST)
        return key if key is not None and matches else None
