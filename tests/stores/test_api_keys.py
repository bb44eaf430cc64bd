"""API keys: scopes, digests, revocation."""

import pytest

from taskplane import (
    Taskplane,
)


def test_api_keys_scopes_digest_and_revocation(redis_url: str) -> None:
    from taskplane import InvalidRequestError, NotFoundError

    tp = Taskplane("t")
    key, token = tp.api_keys.create("svc", ["enqueue", "read", "read"])
    assert key.scopes == ["read", "enqueue"] and token.startswith(f"tpk_{key.id}_")
    found = tp.api_keys.authenticate(token)
    assert found is not None and found.id == key.id and found.allows("read") and not found.allows("admin")
    assert tp.api_keys.authenticate(token + "x") is None and tp.api_keys.authenticate("garbage") is None
    with pytest.raises(InvalidRequestError, match="scopes must be"):
        tp.api_keys.create("svc", ["root"])
    replaced, new_token = tp.api_keys.create("svc", ["admin"], replace=True)
    assert tp.api_keys.authenticate(token) is None and [k.id for k in tp.api_keys.find()] == [replaced.id]
    tp.api_keys.revoke(replaced.id)
    assert tp.api_keys.authenticate(new_token) is None
    with pytest.raises(NotFoundError):
        tp.api_keys.revoke(replaced.id)
