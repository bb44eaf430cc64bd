"""Message signatures: what is covered, what is not, and key rotation."""

from __future__ import annotations

from taskplane.core.signing import parse_keys, sign, verify


def signed(body: str, headers: dict[str, object], key: str) -> dict[str, object]:
    return {**headers, "x-taskplane-signature": sign(body, headers, key)}


def test_a_signature_covers_the_body_and_every_header_but_redelivered() -> None:
    headers = signed("Ym9keQ==", {"task": "t.add", "id": "1", "retries": 0}, "k")
    assert verify("Ym9keQ==", headers, ["k"])
    assert verify("Ym9keQ==", {**headers, "redelivered": True}, ["k"])  # kombu marks restored messages
    assert not verify("Ym9keQ=!", headers, ["k"])
    assert not verify("Ym9keQ==", {**headers, "task": "celery.starmap"}, ["k"])
    assert not verify("Ym9keQ==", {**headers, "retries": 1}, ["k"])
    assert not verify("Ym9keQ==", {"task": "t.add", "id": "1", "retries": 0}, ["k"])  # unsigned


def test_keys_rotate_the_first_signs_every_one_verifies() -> None:
    keys = parse_keys(" new , old ,")
    assert keys == ["new", "old"]
    old = signed("b", {"id": "1"}, "old")
    assert verify("b", old, keys) and not verify("b", old, ["new"])
    assert not verify("b", signed("b", {"id": "1"}, "stolen"), keys)
    assert not verify("b", old, [])
