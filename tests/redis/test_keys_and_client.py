"""Key names share one prefix; TLS URLs verify the server's certificate."""

from typing import Any

import pytest

from taskplane.redis.keys import Keys


def test_every_key_shares_the_prefix() -> None:
    keys = Keys("app1:")
    names = [
        keys.record("q", "i"),
        keys.index_state("q", "queued"),
        keys.index_name("q", "n"),
        keys.index_queue("q"),
        keys.delayed("q"),
        keys.dead_index("q.dead"),
        keys.dead_items("q.dead"),
        keys.dead_dropped("q.dead"),
        keys.dead_queues(),
        keys.cancel("q", "i"),
        keys.unique("q", "d"),
        keys.sent("q", "n"),
        keys.idempotency("q", "d"),
        keys.rate("q", "n", "k"),
        keys.worker("h"),
        keys.workers(),
        keys.unacked("q"),
        keys.unacked_index("q"),
        keys.unacked_mutex("q"),
        keys.metrics("h"),
        keys.metrics_hosts(),
    ]
    assert all(name.startswith(("app1:", "{app1:")) for name in names)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    "url,expected",
    [
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("rediss://u:p@h:6380/0", "rediss://u:p@h:6380/0?ssl_cert_reqs=required"),
        ("rediss://h:6380/0?ssl_ca_certs=/ca.pem", "rediss://h:6380/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required"),
        ("rediss://h:6380/0?ssl_cert_reqs=none", "rediss://h:6380/0?ssl_cert_reqs=none"),
    ],
)
def test_a_tls_url_verifies_the_server_certificate_unless_it_says_otherwise(url: str, expected: str) -> None:
    from taskplane.redis.client import with_tls_verification

    assert with_tls_verification(url) == expected


def test_celery_accepts_a_tls_url_without_ssl_cert_reqs() -> None:
    from taskplane import Taskplane

    tp = Taskplane("tls", redis_url="rediss://u:p@127.0.0.1:6380/0")
    backend: Any = tp.celery.backend  # Celery raises here for rediss:// without ssl_cert_reqs
    assert backend.connparams["ssl_cert_reqs"] == 2  # ssl.CERT_REQUIRED
    assert tp.celery.conf.broker_url.endswith("ssl_cert_reqs=required")


def queue_owned(keys: Keys, queue: str) -> list[str]:
    """Every key ``queue`` owns so far in the layout per queue (issue 26)."""
    return [
        *keys.queue_lists(queue),
        keys.bell(queue),
        keys.delayed(queue),
        keys.purging(queue),
        keys.dead_index(f"{queue}.dead"),
        keys.dead_items(f"{queue}.dead"),
        keys.dead_dropped(f"{queue}.dead"),
        keys.dead_bytes(f"{queue}.dead"),
        keys.unique(queue, "digest"),
        keys.sent(queue, "nonce"),
        keys.idempotency(queue, "digest"),
        keys.rate(queue, "task", "bucket"),
        keys.record(queue, "id"),
        keys.index_state(queue, "queued"),
        keys.index_name(queue, "task"),
        keys.index_queue(queue),
        keys.cancel(queue, "id"),
        keys.events(queue, "id"),
        keys.quarantine(queue),
        keys.unacked(queue),
        keys.unacked_index(queue),
        keys.unacked_mutex(queue),
    ]


def test_the_keys_a_queue_owns_share_the_slot_of_its_first_list() -> None:
    from redis.crc import key_slot

    keys = Keys("app1:")
    # its first list is named as a plain Celery client with global_keyprefix names it
    assert keys.queue("normal") == "app1:normal"
    slots = {name: {key_slot(key.encode()) for key in queue_owned(keys, name)} for name in ("normal", "high", "q-1")}
    assert all(len(slot) == 1 for slot in slots.values()), slots
    assert len({next(iter(slot)) for slot in slots.values()}) == 3  # queues spread over slots
    assert {keys.queue_of(key) for key in keys.queue_lists("q-1")} == {"q-1"}


def test_a_prefix_with_a_hash_tag_puts_every_queue_in_its_slot() -> None:
    from redis.crc import key_slot

    keys = Keys("{tp}:")
    owned = [*queue_owned(keys, "normal"), *queue_owned(keys, "high")]
    assert {key_slot(key.encode()) for key in owned} == {key_slot(b"tp")}
    assert all(key.startswith("{tp}:") for key in owned)
    assert {keys.queue_of(key) for key in keys.queue_lists("high")} == {"high"}


def test_the_scheduler_keys_share_a_slot_of_their_own() -> None:
    from redis.crc import key_slot

    for prefix in ("app1:", "{tp}:"):
        keys = Keys(prefix)
        names = [keys.scheduler_lease(), keys.scheduler_epoch(), keys.schedule("nightly"), keys.schedule_fires("n")]
        assert all(name.startswith(prefix) or name.startswith("{" + prefix) for name in names)
        assert len({key_slot(name.encode()) for name in names}) == 1  # a fenced claim touches one slot
    keys = Keys("app1:")
    assert keys.scheduler_lease() == "{app1:scheduler}:leader"
